"""viwoscript.io: image files, embedded metadata, and other tools' metadata."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from PIL.PngImagePlugin import PngInfo

from viwoscript.errors import ArgumentError, ScriptError, SizeLimitError
from viwoscript.io import (
    a1111_parameters,
    decode_bytes,
    parse_a1111,
    read_image,
    read_metadata,
    script_from_image,
    write_image,
)
from viwoscript.runtime import Runtime
from viwoscript.syntax import parse
from viwoscript.values import Image

# Tests give Pillow colours as tuples: Pillow caches named colours it resolved as tuples in
# ImageColor.colormap, which canvas.colors reads (a bug reported to the canvas owner).

META = {"prompt": "a red comet, night sky", "negative_prompt": "blurry", "seed": 1234, "steps": 20,
        "guidance_scale": 7.5, "width": 24, "height": 16, "model": "fake", "capability": "diffusers.generate",
        "method": "textToImage"}


def sample(channels=4, h=16, w=24, seed=0, meta=META) -> Image:
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    if channels == 4:
        px[0, 0, 3] = 0
        px[0, 0, :3] = 0
    return Image(px, meta)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_round_trip_is_pixel_exact_with_metadata(tmp_path, channels):
    img = sample(channels)
    path = write_image(img, tmp_path / "a.png", script=parse("(+ 1 2)"), args=["x", 2], extra={"seeds": [1234]})
    back = read_image(path)
    assert back.mode == img.mode
    assert np.array_equal(back.pixels, img.pixels)
    assert back.metadata == META
    info = read_metadata(path)
    assert info["format"] == "PNG" and info["sources"] == ["viwo", "a1111"]
    assert info["script"] == ["+", 1, 2] and info["args"] == ["x", 2]
    assert info["viwo"]["seeds"] == [1234] and info["viwo"]["capability"] == "diffusers.generate"
    assert info["prompt"] == META["prompt"] and info["seed"] == 1234 and info["cfg_scale"] == 7.5
    assert info["size"] == [24, 16] and info["errors"] == [] and info["unknown"] == []
    with PILImage.open(path) as im:  # what other tools see: a tEXt "parameters" chunk
        assert im.text["parameters"].splitlines()[0] == META["prompt"]
        assert json.loads(im.text["viwo"])["viwo"] == 1


def test_webp_lossless_round_trip_exact_and_lossy_close(tmp_path):
    img = sample(4)
    p = write_image(img, tmp_path / "a.webp", lossless=True, script=["+", 1, 2])
    back = read_image(p)
    assert np.array_equal(back.pixels, img.pixels)
    assert back.metadata == META
    assert script_from_image(p) == (["+", 1, 2], [])
    smooth = Image(np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (32, 1, 3)), META)
    back = read_image(write_image(smooth, tmp_path / "b.webp", quality=95))
    assert np.abs(back.pixels.astype(int) - smooth.pixels).max() <= 12


def test_jpeg_round_trip_metadata_in_exif_ifd_and_xmp(tmp_path):
    smooth = Image(np.tile(np.arange(64, dtype=np.uint8)[None, :, None] * 4, (32, 1, 3)), META)
    p = write_image(smooth, tmp_path / "a.jpg", script=parse("(std.seq 1)"), args=[5])
    back = read_image(p)
    assert back.mode == "RGB" and back.metadata == META
    assert np.abs(back.pixels.astype(int) - smooth.pixels).max() <= 6
    with PILImage.open(p) as im:
        exif = im.getexif()
        assert 0x9286 not in exif  # not in IFD0
        comment = exif.get_ifd(0x8769)[0x9286]
        assert comment.startswith(b"ASCII\0\0\0") and b"Seed: 1234" in comment
        assert b"viwo:payload" in im.info["xmp"]
    assert script_from_image(p) == (["std.seq", 1], [5])


def test_jpeg_flattens_alpha_onto_background(tmp_path):
    px = np.zeros((8, 8, 4), np.uint8)  # fully transparent
    back = read_image(write_image(Image(px), tmp_path / "t.jpg", background="#ff0000", quality=100))
    assert np.abs(back.pixels.astype(int) - [255, 0, 0]).max() <= 3


def test_unicode_metadata_survives_every_format(tmp_path):
    meta = {"prompt": "un chat — 猫, «rouge»", "seed": 3}
    for ext in ("png", "jpg", "webp"):
        p = write_image(Image(np.full((8, 8, 3), 128, np.uint8), meta), tmp_path / f"u.{ext}")
        info = read_metadata(p)
        assert info["prompt"] == meta["prompt"], ext
        assert info["a1111"]["Seed"] == "3", ext  # the parameters text (UNICODE UserComment on JPEG/WebP)


def test_metadata_stores_text_as_text_and_never_parses(tmp_path):
    # io/ knows no script (design §14): a node tree is stored in its JSON form, text as the text it is
    p = write_image(sample(3), tmp_path / "t.png", script="(+ 1 2)", args=[])
    assert script_from_image(p) == ("(+ 1 2)", [])


def test_huge_script_in_jpeg_is_dropped_not_an_error(tmp_path):
    script = ["std.seq"] + ["x" * 100] * 2000
    p = write_image(sample(3), tmp_path / "big.jpg", script=script)
    info = read_metadata(p)
    assert "script" not in info and info["viwo"]["script_omitted"].startswith("too large")
    assert info["seed"] == 1234
    p = write_image(sample(3), tmp_path / "big.png", script=script)
    assert read_metadata(p)["script"] == script


def test_write_is_atomic_and_checks_format(tmp_path):
    with pytest.raises(ArgumentError, match="cannot tell the format"):
        write_image(sample(), tmp_path / "a.gif")
    with pytest.raises(ArgumentError, match="quality"):
        write_image(sample(), tmp_path / "a.jpg", quality=0)
    write_image(sample(), tmp_path / "x.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]  # no temporary left behind


# --- other tools' metadata ----------------------------------------------------------------------------

A1111 = ("masterpiece, a castle on a hill, (sunset:1.2)\n"
         "Negative prompt: lowres, bad anatomy\n"
         "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
         "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.45, "
         'Lora hashes: "add_detail: 7c6bad76eb54, more: abc", Version: v1.9.4')

COMFY_PROMPT = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 156680208700286, "steps": 20, "cfg": 8,
                                              "sampler_name": "euler", "scheduler": "normal", "denoise": 1,
                                              "model": ["10", 0], "positive": ["6", 0], "negative": ["7", 0],
                                              "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "beautiful scenery nature glass bottle",
                                                     "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["10", 1]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    "10": {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1],
                                                  "lora_name": "detail.safetensors"}},
}
COMFY_WORKFLOW = {"last_node_id": 10, "nodes": [{"id": i, "type": "X"} for i in range(8)], "links": []}

INVOKE = {"generation_mode": "txt2img", "positive_prompt": "a fox in the snow", "negative_prompt": "",
          "width": 768, "height": 512, "seed": 42, "steps": 30, "cfg_scale": 7, "scheduler": "euler_a",
          "model": {"key": "abc", "hash": "blake3:deadbeef", "name": "Juggernaut XL", "base": "sdxl"}}
INVOKE2 = {"model": "stable diffusion", "model_weights": "stable-diffusion-1.5", "model_hash": "cc6cb27103",
           "app_id": "invoke-ai/InvokeAI", "image": {"prompt": [{"prompt": "a lighthouse", "weight": 1.0}],
                                                     "steps": 50, "cfg_scale": 7.5, "seed": 9, "width": 512,
                                                     "height": 512, "sampler": "k_lms"}}


def png_with_text(path, chunks: dict, size=(8, 8)):
    info = PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v)
    PILImage.new("RGB", size, (128, 128, 128)).save(path, pnginfo=info)
    return path


def test_parse_a1111_real_text():
    d = parse_a1111(A1111)
    assert d["prompt"] == "masterpiece, a castle on a hill, (sunset:1.2)"
    assert d["negative_prompt"] == "lowres, bad anatomy"
    assert (d["steps"], d["sampler"], d["scheduler"], d["cfg_scale"], d["seed"]) == (28, "DPM++ 2M", "Karras", 6.5,
                                                                                      3141592653)
    assert d["size"] == [512, 768] and d["model"] == "v1-5-pruned-emaonly" and d["model_hash"] == "6ce0161689"
    assert d["denoise"] == 0.45 and d["fields"]["Lora hashes"] == "add_detail: 7c6bad76eb54, more: abc"
    only_prompt = parse_a1111("just a prompt\nover two lines")
    assert only_prompt["prompt"] == "just a prompt\nover two lines" and "seed" not in only_prompt


def test_a1111_text_we_write_parses_back():
    text = a1111_parameters({**META, "prompt": 'quotes "and", commas: too'})
    d = parse_a1111(text)
    assert d["prompt"] == 'quotes "and", commas: too' and d["seed"] == 1234 and d["cfg_scale"] == 7.5
    assert d["fields"]["Version"].startswith("viwoscript ")
    assert a1111_parameters({"layer": "x"}) is None


def test_read_a1111_png_and_jpeg(tmp_path):
    info = read_metadata(png_with_text(tmp_path / "a.png", {"parameters": A1111}))
    assert info["source"] == "a1111" and info["seed"] == 3141592653 and info["model"] == "v1-5-pruned-emaonly"
    assert read_image(tmp_path / "a.png").metadata["seed"] == 3141592653
    # A1111 JPEGs: UNICODE UserComment, big-endian UTF-16 (as piexif writes it)
    ex = PILImage.Exif()
    ex.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + A1111.encode("utf-16-be")
    PILImage.new("RGB", (8, 8)).save(tmp_path / "a.jpg", exif=ex)
    info = read_metadata(tmp_path / "a.jpg")
    assert info["source"] == "a1111" and info["prompt"].startswith("masterpiece") and info["steps"] == 28


def test_read_comfyui(tmp_path):
    p = png_with_text(tmp_path / "c.png", {"prompt": json.dumps(COMFY_PROMPT), "workflow": json.dumps(COMFY_WORKFLOW)})
    info = read_metadata(p)
    assert info["source"] == "comfyui"
    assert info["prompt"] == "beautiful scenery nature glass bottle" and info["negative_prompt"] == "text, watermark"
    assert info["seed"] == 156680208700286 and info["steps"] == 20 and info["cfg_scale"] == 8
    assert info["sampler"] == "euler" and info["scheduler"] == "normal"
    assert info["model"] == "v1-5-pruned-emaonly.safetensors"  # followed through the LoRA loader
    assert info["size"] == [512, 512] and info["comfyui_nodes"] == 8 and info["comfyui_workflow_nodes"] == 8
    assert json.loads(info["raw"]["workflow"]) == COMFY_WORKFLOW


def test_read_invokeai_v3_and_v2(tmp_path):
    info = read_metadata(png_with_text(tmp_path / "i.png", {"invokeai_metadata": json.dumps(INVOKE)}))
    assert (info["source"], info["prompt"], info["seed"], info["steps"]) == ("invokeai", "a fox in the snow", 42, 30)
    assert info["model"] == "Juggernaut XL" and info["model_hash"] == "blake3:deadbeef" and info["size"] == [768, 512]
    info = read_metadata(png_with_text(tmp_path / "j.png", {"sd-metadata": json.dumps(INVOKE2)}))
    assert (info["prompt"], info["seed"], info["sampler"], info["model"]) == ("a lighthouse", 9, "k_lms",
                                                                             "stable-diffusion-1.5")


def test_corrupt_and_unknown_metadata_is_reported_not_raised(tmp_path):
    p = png_with_text(tmp_path / "bad.png", {"viwo": "{not json", "prompt": "[1, 2", "workflow": "7",
                                              "invokeai_metadata": '"a string"', "parameters": A1111,
                                              "mystery": "hello"})
    info = read_metadata(p)
    assert info["source"] == "a1111" and info["seed"] == 3141592653
    joined = "\n".join(info["errors"])
    for what in ("viwo: invalid JSON", "prompt (ComfyUI): invalid JSON", "workflow (ComfyUI)", "invokeai_metadata"):
        assert what in joined
    assert info["unknown"] == ["mystery"]
    assert read_image(p).metadata["source"] == "a1111"
    with pytest.raises(ScriptError, match="carries no script"):
        script_from_image(p)


def test_damaged_exif_does_not_crash(tmp_path):
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), (0, 0, 255)).save(buf, format="JPEG", exif=b"Exif\0\0II*\0\xff\xff\xff\x7f garbage")
    (tmp_path / "e.jpg").write_bytes(buf.getvalue())
    assert read_image(tmp_path / "e.jpg").width == 8
    assert any(e.startswith("EXIF: ") for e in read_metadata(tmp_path / "e.jpg")["errors"])


def test_legacy_viwo_chunk_with_script_only(tmp_path):
    p = png_with_text(tmp_path / "old.png", {"viwo": json.dumps({"script": ["+", 1, 1], "metadata": {"seed": 3}})})
    assert script_from_image(p) == (["+", 1, 1], [])
    assert read_image(p).metadata == {"seed": 3}


# --- decoding ------------------------------------------------------------------------------------------

def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_decompression_bombs_are_refused_without_touching_pillow_globals():
    before = PILImage.MAX_IMAGE_PIXELS
    with pytest.raises(SizeLimitError, match="exceeds the limit"):
        decode_bytes(png_header_only(9000, 9000))  # 81 Mpx: over our 64 Mpx default, under Pillow's
    with pytest.raises(SizeLimitError, match="exceeds the limit"):
        decode_bytes(png_header_only(100_000, 100_000))  # Pillow's own bomb error, turned into ours
    with pytest.raises(SizeLimitError, match="100 pixels"):
        decode_bytes(png_header_only(11, 10), max_pixels=100)
    assert PILImage.MAX_IMAGE_PIXELS == before


def test_not_an_image_and_truncated(tmp_path):
    with pytest.raises(ScriptError, match="not an image in a supported format"):
        decode_bytes(b"hello world")
    buf = io.BytesIO()
    PILImage.new("RGB", (64, 64), (255, 0, 0)).save(buf, format="PNG")
    with pytest.raises(ScriptError, match="could not decode"):
        decode_bytes(buf.getvalue()[:-40])
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    with pytest.raises(ScriptError, match="not an image"):
        decode_bytes(eps)  # EPS would run Ghostscript: never opened


def _encode(im: PILImage.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_modes_become_l_rgb_rgba():
    p = PILImage.new("P", (4, 4))
    p.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    p.putpixel((1, 1), 1)
    assert decode_bytes(_encode(p, "PNG")).mode == "RGB"
    p.info["transparency"] = 0
    rgba = decode_bytes(_encode(p, "PNG", transparency=0))
    assert rgba.mode == "RGBA" and rgba.pixels[0, 0, 3] == 0 and tuple(rgba.pixels[1, 1]) == (255, 0, 0, 255)
    sixteen = PILImage.fromarray(np.full((4, 4), 0xABCD, np.uint16))
    g = decode_bytes(_encode(sixteen, "PNG"))
    assert g.mode == "L" and g.pixels[0, 0, 0] == 0xAB
    assert decode_bytes(_encode(PILImage.new("LA", (3, 3), (10, 20)), "PNG")).mode == "RGBA"
    assert decode_bytes(_encode(PILImage.new("1", (3, 3), 1), "PNG")).pixels.max() == 255
    assert decode_bytes(_encode(PILImage.new("RGB", (5, 3), (255, 0, 0)), "BMP")).width == 5
    assert decode_bytes(_encode(PILImage.new("CMYK", (5, 3)), "TIFF")).mode == "RGB"


def test_exif_orientation_is_applied():
    im = PILImage.new("RGB", (6, 2), (255, 255, 255))
    im.putpixel((0, 0), (255, 0, 0))
    ex = PILImage.Exif()
    ex[0x0112] = 6  # rotate 90° clockwise to display
    out = decode_bytes(_encode(im, "PNG", exif=ex))
    assert (out.width, out.height) == (2, 6)
    assert tuple(out.pixels[0, 1]) == (255, 0, 0)


def test_first_frame_of_animations():
    frames = [PILImage.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert tuple(decode_bytes(data).pixels[0, 0]) == (255, 0, 0)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(1, 12), w=st.integers(1, 12), c=st.sampled_from([1, 3, 4]), seed=st.integers(0, 2**32 - 1),
       meta=st.dictionaries(st.text(min_size=1, max_size=10), json_values, max_size=5),
       fmt=st.sampled_from(["png", "webp"]))
def test_lossless_round_trip_property(tmp_path, h, w, c, seed, meta, fmt):
    px = np.random.default_rng(seed).integers(0, 256, (h, w, c), dtype=np.uint8)
    if c == 4:
        px[px[:, :, 3] == 0] = 0  # fully transparent pixels carry no colour in WebP
    img = Image(px, meta)
    back = read_image(write_image(img, tmp_path / f"p.{fmt}", lossless=True, args=[meta]))
    want = px if not (fmt == "webp" and c == 1) else np.repeat(px, 3, axis=2)
    assert np.array_equal(np.asarray(back.pixels).reshape(want.shape), want)
    assert back.metadata == meta


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_every_written_file_honours_the_umask(tmp_path, umask, mode):
    # issue 13 item 6: mkstemp made every image 0600; files are made like any other tool's
    from viwoscript.canvas import state
    from viwoscript.canvas.layers import LayerStack
    from viwoscript.io.files import atomic_write
    from viwoscript.store import Store
    from viwoscript.templates import export_template, template_from_script

    old = os.umask(umask)
    try:
        written = [write_image(sample(3), tmp_path / "a.png"), write_image(sample(3), tmp_path / "a.jpg"),
                   atomic_write(tmp_path / "sub" / "x.bin", b"x"),
                   export_template(template_from_script("t", "(+ 1 2)", check=False), tmp_path),
                   state.save(LayerStack(4, 4), tmp_path / "c.viwo-canvas"),
                   state.save_png(LayerStack(4, 4), tmp_path / "c.png")]
        with Store(tmp_path / "store") as s:
            rec = s.save_image(sample(3), "x")
            written.append(s.blob_path(rec["blob"]))
            db = s.path
        rt = Runtime(roots=[tmp_path])
        rt.run('(image.save (image.new 2 2 "red") "saved.webp")')
        written.append(tmp_path / "saved.webp")
    finally:
        os.umask(old)
    for path in written:
        assert stat.S_IMODE(os.stat(path).st_mode) == mode, path
    assert stat.S_IMODE(os.stat(db).st_mode) == mode & 0o644  # SQLite asks for 0644, then the umask
    assert not list(tmp_path.glob("**/.*.tmp"))  # no temporary file left behind
