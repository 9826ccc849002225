"""upscale / faceRestore: random-weight networks saved with the official key layouts, loaded through spandrel."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spandrel")
cv2 = pytest.importorskip("cv2")

from upscale_weights import compact_state, gfpgan_state, rrdbnet_state, save  # noqa: E402

from viwoscript.capabilities import upscale_models as um  # noqa: E402
from viwoscript.capabilities.upscale import Upscale  # noqa: E402
from viwoscript.capabilities.upscale_faces import TEMPLATE, restore_faces  # noqa: E402
from viwoscript.capabilities.upscale_traditional import resize_pixels  # noqa: E402
from viwoscript.errors import CapabilityError  # noqa: E402
from viwoscript.runtime import Runtime  # noqa: E402
from viwoscript.values import Image  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    save(rrdbnet_state(4), d / "RealESRGAN_x4plus.pth")
    save(rrdbnet_state(2, seed=1), d / "RealESRGAN_x2plus.pth")
    save(compact_state(4), d / "realesr-general-x4v3.pth")
    only4 = tmp_path_factory.mktemp("only4")
    save(rrdbnet_state(4), only4 / "ESRGAN_x4.pth")
    return d, only4


def rt_for(**kw):
    events = []
    rt = Runtime(capabilities=[Upscale(**kw)], grants=kw.pop("grants", None) or ["diffusers.upscale"],
                 on_event=events.append)
    return rt, events


def call(rt, method, *args):
    return rt.caps.call(None, rt.caps.held_by()[0], method, list(args))


def picture(h=24, w=28, c=3, seed=0):
    return Image(np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8))


def test_official_layouts_load_through_spandrel(models):
    d, only4 = models
    for path, arch, scale in ((d / "RealESRGAN_x4plus.pth", "ESRGAN", 4), (d / "RealESRGAN_x2plus.pth", "ESRGAN", 2),
                              (d / "realesr-general-x4v3.pth", "RealESRGAN Compact", 4)):
        net = um.load_net(path, "cpu", "t")
        assert (net.scale, net.dtype) == (scale, torch.float32)
        assert net.arch.lower().replace(" ", "") in (arch.lower().replace(" ", ""), "compact", "esrgan")


def test_upscale_sizes_and_progress(models):
    d, _ = models
    rt, events = rt_for(models_dir=d)
    img = picture()
    r4 = call(rt, "upscale", img, "realesrgan", 4)
    assert (r4["width"], r4["height"]) == (112, 96)
    r2 = call(rt, "upscale", img, "realesrgan", 2)  # uses the x2plus file (pixel-unshuffle net)
    assert (r2["width"], r2["height"]) == (56, 48)
    g = call(rt, "upscale", img, "realesrgan-general", 4, {"tile": 32})
    assert g["image"].pixels.shape == (96, 112, 3)
    assert any(e["type"] == "progress" and e["task"] == "upscale" for e in events)


def test_factor_two_from_a_four_x_net_is_a_lanczos_reduce(models):
    _, only4 = models
    rt, _ = rt_for(models_dir=only4)
    img = picture()
    full = call(rt, "upscale", img, "esrgan", 4)["image"].pixels
    half = call(rt, "upscale", img, "esrgan", 2)["image"].pixels
    assert np.array_equal(half, resize_pixels(full, 0.5, "lanczos"))


def test_tiled_equals_untiled(models):
    d, _ = models
    net = um.load_net(d / "realesr-general-x4v3.pth", "cpu", "t")
    rgb = np.asarray(picture(70, 90).pixels)
    whole, _ = um.tiled(net, rgb, 512, 0)
    tiles, used = um.tiled(net, rgb, 32, 16)
    assert used == 32 and whole.shape == tiles.shape == (280, 360, 3)
    assert np.abs(whole.astype(int) - tiles).max() <= 2


def test_tile_halves_on_out_of_memory(models, monkeypatch):
    d, _ = models
    net = um.load_net(d / "realesr-general-x4v3.pth", "cpu", "t")
    real = um._run_patch

    def fake(net, patch, *a):
        if max(patch.shape[:2]) > 32:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(net, patch, *a)

    monkeypatch.setattr(um, "_run_patch", fake)
    out, used = um.tiled(net, np.asarray(picture(60, 60).pixels), 128, 8)
    assert used == 32 and out.shape == (240, 240, 3)


def test_alpha_and_grey_preserved(models):
    d, _ = models
    rt, _ = rt_for(models_dir=d)
    rgba = picture(c=4)
    out = call(rt, "upscale", rgba, "realesrgan-general", 4)["image"]
    assert out.mode == "RGBA"
    assert np.array_equal(out.pixels[:, :, 3:], resize_pixels(rgba.pixels[:, :, 3:], 4, "lanczos"))
    assert call(rt, "upscale", picture(c=1), "realesrgan-general", 4)["image"].mode == "L"


def test_missing_and_unknown_models_say_what_to_do(models, tmp_path, monkeypatch):
    monkeypatch.delenv(um.MODELS_DIR_ENV, raising=False)
    rt, _ = rt_for(models_dir=tmp_path)
    with pytest.raises(CapabilityError, match="no weight file for model 'realesrgan-anime'") as e:
        call(rt, "upscale", picture(), "realesrgan-anime", 4)
    assert "RealESRGAN_x4plus_anime_6B.pth" in e.value.hint and "never downloaded" in e.value.hint
    with pytest.raises(CapabilityError, match="unknown model 'nope'"):
        call(rt, "upscale", picture(), "nope", 4)
    d, _ = models
    monkeypatch.setenv(um.MODELS_DIR_ENV, str(d))
    rt2, _ = rt_for()
    assert call(rt2, "upscale", picture(), "realesrgan", 4)["width"] == 112


def test_explicit_model_files_and_allowed_models(models):
    d, _ = models
    rt = Runtime(capabilities=[Upscale(models={"mine": d / "realesr-general-x4v3.pth"})],
                 grants=[{"type": "diffusers.upscale", "params": {"allowed_models": ["mine"]}}])
    assert call(rt, "upscale", picture(), "mine", 4)["width"] == 112
    with pytest.raises(CapabilityError, match="not allowed by this grant's allowed_models"):
        call(rt, "upscale", picture(), "realesrgan", 4)


def test_limits_reject_before_loading(models, monkeypatch):
    d, _ = models
    monkeypatch.setattr(um, "load_net", lambda *a, **k: pytest.fail("loaded"))
    rt = Runtime(capabilities=[Upscale(models_dir=d)],
                 grants=[{"type": "diffusers.upscale", "params": {"max_pixels": 100 * 100}}])
    with pytest.raises(CapabilityError, match="pixel count 10752 exceeds"):
        call(rt, "upscale", picture(), "realesrgan", 4)


# --- face restore ----------------------------------------------------------------------------------

def face_box(scale=0.25, dx=60, dy=50):
    return {"box": (dx, dy, 128 * scale * 2, 128 * scale * 2),
            "landmarks": np.asarray(TEMPLATE, np.float32) * scale + [dx, dy], "score": 0.9}


def test_paste_back_blends_by_strength():
    rgb = np.random.default_rng(0).integers(0, 256, (256, 300, 3), dtype=np.uint8)
    white = lambda crop: np.full_like(crop, 255)  # noqa: E731
    zero, n = restore_faces(rgb, [face_box()], white, 0.0, "t")
    assert n == 1 and np.array_equal(zero, rgb)
    full, _ = restore_faces(rgb, [face_box()], white, 1.0, "t")
    half, _ = restore_faces(rgb, [face_box()], white, 0.5, "t")
    cy, cx = int(50 + 300 * 0.25), int(60 + 256 * 0.25)  # the face centre
    assert (full[cy, cx] == 255).all()
    assert np.abs(half[cy, cx].astype(int) - (rgb[cy, cx].astype(int) + 255) / 2).max() <= 1
    assert np.array_equal(full[:5], rgb[:5]) and np.array_equal(full[:, -5:], rgb[:, -5:])  # only the face


def test_missing_detector_error(models, tmp_path, monkeypatch):
    monkeypatch.delenv(um.MODELS_DIR_ENV, raising=False)
    rt, _ = rt_for(models_dir=tmp_path)
    with pytest.raises(CapabilityError, match="no face detector is configured") as e:
        call(rt, "faceRestore", picture(), 1)
    assert "face_detection_yunet_2023mar.onnx" in e.value.hint


@pytest.mark.slow
def test_gfpgan_restore_with_injected_detector(tmp_path):
    save(gfpgan_state(), tmp_path / "GFPGANv1.4.pth")
    rt, events = rt_for(models_dir=tmp_path, face_detector=lambda rgb: [face_box()])
    img = Image(np.random.default_rng(1).integers(0, 256, (256, 300, 3), dtype=np.uint8))
    same = call(rt, "faceRestore", img, 0)
    assert same["faces"] == 1 and np.array_equal(same["image"].pixels, img.pixels)
    full = call(rt, "faceRestore", img, 1)
    changed = np.any(full["image"].pixels != img.pixels, axis=2)
    assert changed[100:180, 100:150].mean() > 0.9 and not changed[:20].any()
    up = call(rt, "faceRestore", img, 0.5, {"upscale": 2})
    assert (up["width"], up["height"]) == (600, 512)
    assert any(e["type"] == "progress" and e["task"] == "faceRestore" for e in events)


def test_networks_live_in_the_runtimes_model_manager_under_its_byte_budget(models):
    """No cache beside the model manager: upscaling nets are its entries (shared, counted, evicted)."""
    from viwoscript.models.manager import ModelManager

    d, _ = models
    rt, _ = rt_for(models_dir=d)
    rt.models = ModelManager()
    call(rt, "upscale", picture(), "realesrgan", 4, {"tile": 32})
    call(rt, "upscale", picture(), "realesrgan", 4, {"tile": 32})
    (entry,) = rt.models.loaded()
    assert entry["kind"] == "upscaler" and entry["name"] == "RealESRGAN_x4plus" and entry["device"] == "cpu"
    assert entry["bytes"] > 0 and rt.models.nbytes == entry["bytes"] and rt.models.loads == 1
    # a second Runtime sharing the manager reuses the loaded net
    other, _ = rt_for(models_dir=d)
    other.models = rt.models
    call(other, "upscale", picture(), "realesrgan", 4, {"tile": 32})
    assert rt.models.loads == 1
    # one budget for every weight: a budget that fits one net evicts the least recently used
    small = ModelManager(max_bytes=entry["bytes"] + 1)
    rt.models = small
    call(rt, "upscale", picture(), "realesrgan", 4, {"tile": 32})
    call(rt, "upscale", picture(), "realesrgan-general", 4, {"tile": 32})
    assert [e["name"] for e in small.loaded()] == ["realesr-general-x4v3"] and small.evictions == 1
    assert small.unload() == 1 and small.nbytes == 0
