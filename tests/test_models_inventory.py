"""The model folders' files (viwoscript.models.inventory) and `viwo models list/scan` (CliRunner)."""

from __future__ import annotations

import hashlib
import json
import struct

from click.testing import CliRunner

from viwoscript.cli import cli
from viwoscript.models import ModelConfig
from viwoscript.models.hashes import HashCache
from viwoscript.models.inventory import inventory


def st_file(path, tensors: dict, meta: dict | None = None, body: bytes = b"\0" * 64):
    header = {k: {"dtype": "F32", "shape": list(s), "data_offsets": [0, 0]} for k, s in tensors.items()}
    if meta:
        header["__metadata__"] = meta
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    return path


def folders(tmp_path):
    ck, lora, emb, vae = (tmp_path / d for d in ("Stable-diffusion", "Lora", "embeddings", "VAE"))
    st_file(ck / "xl" / "juggernaut.safetensors", {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
                                                   "conditioner.embedders.1.model.positional_embedding": (77, 1280)})
    st_file(ck / "dream.safetensors", {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
                                       "cond_stage_model.transformer.text_model.x": (1,)})
    (ck / "old.ckpt").write_bytes(b"PK pickle")
    st_file(lora / "detail.safetensors", {"lora_unet_x.lora_down.weight": (4, 8)},
            meta={"ss_base_model_version": "sdxl_base_v1-0"})
    st_file(lora / "style.safetensors", {
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": (4, 768)})
    st_file(emb / "easynegative.safetensors", {"emb_params": (8, 768)})
    st_file(vae / "sdxl_vae.safetensors", {"encoder.conv_in.weight": (128, 3, 3, 3)})
    (tmp_path / "notes.txt").write_text("not a model")
    return {"checkpoints_dir": str(ck), "lora_dir": str(lora), "embeddings_dir": str(emb), "vae_dir": str(vae),
            "cache_dir": str(tmp_path / "cache")}


def test_inventory_names_families_and_hashes(tmp_path):
    config = ModelConfig.from_table(folders(tmp_path))
    rows = {(r["kind"], r["name"]): r for r in inventory(config)}
    assert set(rows) == {("checkpoint", "xl/juggernaut.safetensors"), ("checkpoint", "dream.safetensors"),
                         ("checkpoint", "old.ckpt"), ("lora", "detail.safetensors"), ("lora", "style.safetensors"),
                         ("embedding", "easynegative.safetensors"), ("vae", "sdxl_vae.safetensors")}
    assert rows["checkpoint", "xl/juggernaut.safetensors"]["family"] == "SDXL"
    assert rows["checkpoint", "dream.safetensors"]["family"] == "SD 1.x"
    assert rows["checkpoint", "old.ckpt"]["family"] is None  # a pickle is never opened to look
    assert rows["lora", "detail.safetensors"]["family"] == "SDXL"
    assert rows["lora", "style.safetensors"]["family"] == "SD 1.x"
    assert rows["embedding", "easynegative.safetensors"]["family"] == "SD 1.x"
    assert not any(r["hash"] or r["cached"] for r in rows.values())  # list: cached hashes only

    done = {(r["kind"], r["name"]): r for r in inventory(config, compute=True)}
    ck = done["checkpoint", "dream.safetensors"]
    data = open(ck["path"], "rb").read()
    assert ck["hash"] == hashlib.sha256(data).hexdigest()[:10] and ck["sha256"] == hashlib.sha256(data).hexdigest()
    lora = done["lora", "detail.safetensors"]
    raw = open(lora["path"], "rb").read()
    assert lora["hash"] == hashlib.sha256(raw[8 + struct.unpack("<Q", raw[:8])[0]:]).hexdigest()[:12]  # addnet
    emb = done["embedding", "easynegative.safetensors"]
    assert emb["hash"] == hashlib.sha256(open(emb["path"], "rb").read()).hexdigest()[:12]
    again = {(r["kind"], r["name"]): r for r in inventory(config)}  # now cached: list shows them
    assert all(r["cached"] and r["hash"] == done[k]["hash"] for k, r in again.items())
    assert HashCache.for_config(config).path.parent == tmp_path / "cache"


def write_config(tmp_path, table: dict) -> str:
    lines = ["[models]"] + [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path = tmp_path / "viwo.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_viwo_models_list_and_scan(tmp_path):
    conf = write_config(tmp_path, folders(tmp_path))
    runner = CliRunner()
    listed = runner.invoke(cli, ["models", "list", "--config", conf], catch_exceptions=False)
    assert listed.exit_code == 0, listed.output
    assert "xl/juggernaut.safetensors" in listed.output and "SDXL" in listed.output
    assert "viwo models scan" in listed.output  # hashes not computed yet
    scanned = runner.invoke(cli, ["models", "scan", "--config", conf], catch_exceptions=False)
    assert scanned.exit_code == 0, scanned.output
    assert "hashing dream.safetensors: 100%" in scanned.output  # progress (CliRunner mixes stderr in)
    out = runner.invoke(cli, ["models", "list", "--json", "--config", conf], catch_exceptions=False)
    rows = json.loads(out.output)
    files = {r["name"]: r for r in rows if r["role"] == "file"}
    assert len(files) == 7 and all(len(r["hash"]) in (10, 12) for r in files.values())
    assert files["detail.safetensors"]["kind"] == "lora" and len(files["detail.safetensors"]["hash"]) == 12
    assert files["dream.safetensors"]["hash"] in runner.invoke(cli, ["models", "list", "--config", conf]).output


def test_a_checkpoint_alias_shows_its_kind(tmp_path):
    table = folders(tmp_path)
    table["dream"] = table["checkpoints_dir"] + "/dream.safetensors"
    table["default"] = "dream"
    out = CliRunner().invoke(cli, ["models", "list", "--config", write_config(tmp_path, table)])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("dream  (alias, default): SD 1.x, native 512 px")


def test_nothing_configured(tmp_path):
    out = CliRunner().invoke(cli, ["models", "list", "--config", write_config(tmp_path, {"device": "cpu"})])
    assert "no models configured" in out.output and "checkpoints_dir" in out.output


def test_relative_model_folders_in_viwo_toml_are_relative_to_the_file(tmp_path, monkeypatch):
    from viwoscript.config import load_config

    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "viwo.toml").write_text('[models]\ncheckpoints_dir = "models/Stable-diffusion"\n'
                                                 'lora_dir = "~/Lora"\nsd = "org/model"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    models = load_config(tmp_path / "conf" / "viwo.toml").models
    assert models["checkpoints_dir"] == str(tmp_path / "conf" / "models" / "Stable-diffusion")
    assert models["lora_dir"] == "~/Lora" and models["sd"] == "org/model"  # ~ and aliases as written


def test_a_missing_folder_is_a_warning_and_exit_1_and_every_loadable_suffix_is_listed(tmp_path):
    from viwoscript.models import embeddings, lora, vae
    from viwoscript.models.inventory import SUFFIXES

    # what `list` shows is what the loaders read (a .bin LoRA, a .pth VAE)
    assert set(SUFFIXES["lora"]) == set(lora.SAFE_SUFFIXES + lora.PICKLE_SUFFIXES)
    assert set(SUFFIXES["vae"]) == set(vae.VAE_SUFFIXES) and set(SUFFIXES["embedding"]) == set(embeddings.SUFFIXES)
    table = folders(tmp_path)
    table["lora_dir"] = str(tmp_path / "Lorra")  # a typo
    out = CliRunner().invoke(cli, ["models", "list", "--config", write_config(tmp_path, table)])
    assert out.exit_code == 1
    assert f"[models] lora_dir = {tmp_path / 'Lorra'} does not exist" in out.output
    assert "dream.safetensors" in out.output  # the other folders are still listed
