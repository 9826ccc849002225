"""Host configuration of diffusers.upscale's files through viwo.toml's [models] table (upscale_dir,
face_detector) → viwoscript.capabilities.capabilities → a configured Upscale instance."""

from __future__ import annotations

import numpy as np
import pytest

from viwoscript.capabilities import capabilities
from viwoscript.capabilities.upscale import Upscale
from viwoscript.config import ConfigError, load_config
from viwoscript.errors import CapabilityError
from viwoscript.models import ModelConfig
from viwoscript.runtime import Runtime
from viwoscript.values import Image


def write_config(tmp_path, body: str):
    (tmp_path / "viwo.toml").write_text(body, encoding="utf-8")
    return load_config(cwd=tmp_path)


def upscale_row(rt):
    rows = [r for r in rt.caps.status() if r["type"] == "diffusers.upscale" and r["selected"]]
    assert len(rows) == 1
    return rows[0]


def test_models_table_configures_upscale_dir_and_face_detector(tmp_path):
    up = tmp_path / "upscale"
    up.mkdir()
    onnx = tmp_path / "yunet.onnx"
    onnx.write_bytes(b"not really onnx")
    cfg = write_config(tmp_path, f'[models]\nupscale_dir = "{up}"\nface_detector = "{onnx}"\ndevice = "cpu"\n')
    assert cfg.models == {"upscale_dir": str(up), "face_detector": str(onnx), "device": "cpu"}
    rt = Runtime(**cfg.runtime_kwargs())
    row = upscale_row(rt)
    assert row["available"] and row["granted"] and row["provider"] == "viwoscript"
    inst = rt.caps.registry.select("diffusers.upscale").get_instance()
    assert isinstance(inst, Upscale)
    assert inst.config.folder() == up and inst.face_detector == onnx and inst.config.device == "cpu"
    # a model name resolves to files in that folder (the error names where it looked)
    src = '(std.call_method (get_capability "diffusers.upscale") "upscale" (std.arg 0) "realesrgan" 2)'
    pytest.importorskip("torch")
    pytest.importorskip("spandrel")
    with pytest.raises(CapabilityError, match=str(up / "RealESRGAN_x2plus.pth")):
        rt.run(src, args=[Image(np.zeros((8, 8, 3), np.uint8))])


def test_configured_folder_is_used_for_weights(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("spandrel")
    from upscale_weights import rrdbnet_state, save

    up = tmp_path / "w"
    up.mkdir()
    save(rrdbnet_state(2), up / "RealESRGAN_x2plus.pth")
    cfg = write_config(tmp_path, f'[models]\nupscale_dir = "{up}"\n')
    rt = Runtime(**cfg.runtime_kwargs())
    src = '(std.call_method (get_capability "diffusers.upscale") "upscale" (std.arg 0) "realesrgan" 2)'
    r = rt.run(src, args=[Image(np.zeros((8, 12, 3), np.uint8))])
    assert (r["width"], r["height"]) == (24, 16)


def test_without_the_settings_the_entry_point_upscale_stays():
    caps = capabilities(ModelConfig(aliases={"m": "/nowhere"}))
    assert not any(isinstance(c, Upscale) for c in caps)
    caps = capabilities({"upscale_dir": "/models/upscale"})
    (inst,) = [c for c in caps if isinstance(c, Upscale)]
    assert str(inst.config.models_dir) == "/models/upscale"


def test_bad_setting_type_is_a_located_config_error(tmp_path):
    with pytest.raises(ConfigError, match="upscale_dir must be a path") as e:
        write_config(tmp_path, "[models]\nupscale_dir = 3\n")
    assert "viwo.toml" in e.value.render()
