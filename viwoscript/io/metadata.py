"""What made an image: the ``viwo`` payload we embed, and the metadata other tools write.

Written (see :func:`build_payload`): a ``viwo`` JSON object — ``{"viwo": 1, "viwoscript": version,
"script": JSON form, "args": [...], "metadata": the image's metadata, "seed", "model", "model_hash",
"capability", "method", ...}`` — plus A1111's ``parameters`` text (:mod:`.a1111`). PNG stores them as an iTXt
chunk ``viwo`` and a text chunk ``parameters``; JPEG and WebP store ``parameters`` in the Exif IFD
UserComment and the payload in XMP (``viwo:payload``).

Read (see :func:`read_metadata`): viwo, A1111 ``parameters`` (PNG text or EXIF UserComment), ComfyUI
``prompt``/``workflow``, InvokeAI ``invokeai_metadata``/``sd-metadata`` → one normalised dict with the raw
fields kept. Damaged or unknown metadata is reported in ``errors``/``unknown``, never raised.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from ..errors import ScriptError
from ..values import meter_for, to_json_text, to_json_value
from .a1111 import a1111_parameters, parse_a1111  # noqa: F401 - a1111_parameters: re-exported, its old home

PAYLOAD_VERSION = 1
#: Normalised generation fields, in display order.
FIELDS = ("prompt", "negative_prompt", "seed", "steps", "sampler", "scheduler", "cfg_scale", "size", "denoise",
          "model", "model_hash", "capability", "method")
#: Fields lifted from an image's metadata to the top of the payload.
_LIFT = ("seed", "seeds", "model", "model_hash", "capability", "method")
#: Text fields we understand.
KNOWN = {"viwo", "parameters", "prompt", "workflow", "invokeai_metadata", "invokeai_graph", "sd-metadata",
         "xmp", "exif:UserComment", "XML:com.adobe.xmp", "Software", "Dream"}
MAX_RAW = 16 * 1024 * 1024


def _version() -> str:
    from .. import __version__

    return __version__


# --- writing ---------------------------------------------------------------------------------------

def script_data(script: Any) -> Any:
    """A script as stored in metadata: a node tree in its JSON form, JSON data as it is. Text is kept as
    text (this module reads no script: a caller that wants the JSON form parses first)."""
    from ..nodes import Array, Atom, Object, to_data

    if script is None:
        return None
    if isinstance(script, Array | Atom | Object):
        return to_data(script)
    return to_json_value(script)


def _json_safe(value: Any, budget: Any = None) -> Any:
    try:
        return to_json_value(value, budget, "writing image metadata")
    except (ValueError, RecursionError):
        return None


def build_payload(image: Any, *, script: Any = None, args: Any = None, extra: dict | None = None, budget=None) -> dict:
    """The ``viwo`` metadata object for an image (a plain JSON-ready dict); ``budget`` bounds the walk."""
    meta = _json_safe(getattr(image, "metadata", None) or {}, budget := meter_for(budget, "writing image metadata")) or {}
    payload: dict[str, Any] = {"viwo": PAYLOAD_VERSION, "viwoscript": _version()}
    if script is not None:
        payload["script"] = script_data(script)
    if args is not None:
        payload["args"] = _json_safe(list(args.values()) if isinstance(args, dict) else args, budget)
    for key in _LIFT:
        if meta.get(key) is not None:
            payload[key] = meta[key]
    payload["metadata"] = meta
    for key, value in (extra or {}).items():
        if key not in ("viwo", "viwoscript"):
            payload[str(key)] = _json_safe(value, budget)
    budget.done()
    return payload


def payload_json(payload: dict, budget: Any = None) -> str:
    return to_json_text(payload, None, budget, "writing image metadata", number=repr)


def xmp_packet(payload: dict, parameters: str | None) -> bytes:
    """An XMP packet carrying the payload (``viwo:payload``) and the parameters (``dc:description``)."""
    body = f"<viwo:payload>{html.escape(payload_json(payload), quote=False)}</viwo:payload>"
    if parameters:
        body += ('<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
                 f"{html.escape(parameters, quote=False)}</rdf:li></rdf:Alt></dc:description>")
    text = ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:viwo="https://viwoscript.org/ns/1.0/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
            f'xmp:CreatorTool="viwoscript {_version()}">{body}</rdf:Description></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>')
    return text.encode("utf-8")


# --- reading: raw fields -----------------------------------------------------------------------------

def decode_user_comment(raw: Any) -> str | None:
    """EXIF UserComment bytes → text (ASCII, UNICODE in either byte order, or undefined = UTF-8)."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, bytes | bytearray) or not raw:
        return None
    raw = bytes(raw)
    head, body = raw[:8], raw[8:]
    if head == b"UNICODE\0":
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            return body.decode("utf-16")
        # The byte order should follow the TIFF header, but writers differ: A1111 writes big-endian.
        # ASCII-range text has its zero bytes first in big-endian.
        even_zero = body[0::2].count(0)
        odd_zero = body[1::2].count(0)
        return body.decode("utf-16-be" if even_zero >= odd_zero else "utf-16-le", "replace")
    if head.startswith(b"ASCII") or head == b"\0" * 8:
        return body.rstrip(b"\0").decode("utf-8", "replace")
    if head.startswith(b"JIS"):
        return body.decode("shift_jis", "replace")
    return raw.rstrip(b"\0").decode("utf-8", "replace")


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value[:MAX_RAW]
    if isinstance(value, bytes | bytearray):
        return bytes(value[:MAX_RAW]).decode("utf-8", "replace")
    return None


def extract_raw(im) -> dict[str, str]:
    """Every metadata text field of an open (loaded) Pillow image."""
    raw: dict[str, str] = {}
    texts = getattr(im, "text", None) if im.format == "PNG" else None
    if isinstance(texts, dict):
        for k, v in texts.items():
            t = _text(v)
            if t is not None:
                raw[str(k)] = t
    for key in ("comment", "xmp", "parameters", "prompt", "workflow", "Comment"):
        if key in im.info and key not in raw:
            t = _text(im.info[key])
            if t is not None:
                raw[key] = t
    import warnings

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exif = im.getexif()
            exif_ifd = exif.get_ifd(0x8769)
        if caught:
            raw["_exif_error"] = "; ".join(str(w.message).strip() for w in caught)
        uc = decode_user_comment(exif_ifd.get(0x9286))
        if uc:
            raw["exif:UserComment"] = uc[:MAX_RAW]
        desc = _text(exif.get(0x010E))
        if desc:
            raw["exif:ImageDescription"] = desc
    except Exception:  # noqa: BLE001 - damaged EXIF is reported by its absence
        raw.setdefault("_exif_error", "unreadable EXIF")
    return raw


_XMP_PAYLOAD = re.compile(r"<viwo:payload>(.*?)</viwo:payload>", re.S)
_XMP_DESC = re.compile(r"<dc:description>.*?<rdf:li[^>]*>(.*?)</rdf:li>", re.S)


# --- reading: interpretation ---------------------------------------------------------------------

def _link(nodes: dict, value: Any) -> dict | None:
    if isinstance(value, list) and value and isinstance(value[0], str | int):
        node = nodes.get(str(value[0]))
        return node if isinstance(node, dict) else None
    return None


def _follow_text(nodes: dict, value: Any, depth: int = 0) -> str | None:
    if isinstance(value, str):
        return value
    node = _link(nodes, value)
    if node is None or depth > 16:
        return None
    inputs = node.get("inputs") or {}
    for key in ("text", "text_g", "prompt", "conditioning", "conditioning_1", "positive", "string"):
        if key in inputs:
            found = _follow_text(nodes, inputs[key], depth + 1)
            if found is not None:
                return found
    return None


def _follow_input(nodes: dict, value: Any, keys: tuple[str, ...], via: tuple[str, ...], depth: int = 0) -> Any:
    node = _link(nodes, value)
    if node is None or depth > 16:
        return None
    inputs = node.get("inputs") or {}
    for key in keys:
        if isinstance(inputs.get(key), str | int | float):
            return inputs[key]
    for key in via:
        if key in inputs:
            found = _follow_input(nodes, inputs[key], keys, via, depth + 1)
            if found is not None:
                return found
    return None


_COMFY_SAMPLERS = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")


def parse_comfyui(prompt: Any) -> dict:
    """A ComfyUI API graph (the ``prompt`` chunk) → normalised fields from its first sampler node."""
    if not isinstance(prompt, dict) or not all(isinstance(v, dict) for v in prompt.values()):
        raise ValueError("not a ComfyUI prompt graph (expected an object of nodes)")
    nodes = {str(k): v for k, v in prompt.items()}

    def order(k: str):
        return (0, int(k)) if k.isdigit() else (1, k)

    samplers = [nodes[k] for k in sorted(nodes, key=order) if nodes[k].get("class_type") in _COMFY_SAMPLERS]
    out: dict[str, Any] = {"nodes": len(nodes)}
    if not samplers:
        return out
    s = samplers[0].get("inputs") or {}
    seed = s.get("seed", s.get("noise_seed"))
    if isinstance(seed, int | float):
        out["seed"] = int(seed)
    elif _link(nodes, seed) is not None:
        found = _follow_input(nodes, seed, ("seed", "noise_seed", "value"), ())
        if isinstance(found, int | float):
            out["seed"] = int(found)
    for name, key in (("steps", "steps"), ("cfg_scale", "cfg"), ("sampler", "sampler_name"),
                      ("scheduler", "scheduler"), ("denoise", "denoise")):
        if isinstance(s.get(key), str | int | float):
            out[name] = s[key]
    pos = _follow_text(nodes, s.get("positive"))
    neg = _follow_text(nodes, s.get("negative"))
    if pos is not None:
        out["prompt"] = pos
    if neg is not None:
        out["negative_prompt"] = neg
    model = _follow_input(nodes, s.get("model"), ("ckpt_name", "unet_name", "model_name"), ("model",))
    if model is not None:
        out["model"] = str(model)
    latent = _link(nodes, s.get("latent_image"))
    if latent is not None:
        li = latent.get("inputs") or {}
        if isinstance(li.get("width"), int) and isinstance(li.get("height"), int):
            out["size"] = [li["width"], li["height"]]
    return out


def parse_invokeai(data: Any, key: str) -> dict:
    """InvokeAI ``invokeai_metadata`` (3.x+) or ``sd-metadata`` (2.x) → normalised fields."""
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    out: dict[str, Any] = {}
    if key == "sd-metadata":
        img = data.get("image") or {}
        if not isinstance(img, dict):
            raise ValueError("'image' is not an object")
        prompt = img.get("prompt")
        if isinstance(prompt, list):
            prompt = " ".join(p.get("prompt", "") for p in prompt if isinstance(p, dict))
        if isinstance(prompt, str):
            out["prompt"] = prompt
        for name, k in (("seed", "seed"), ("steps", "steps"), ("cfg_scale", "cfg_scale"), ("sampler", "sampler"),
                        ("denoise", "strength")):
            if isinstance(img.get(k), str | int | float):
                out[name] = img[k]
        if isinstance(img.get("width"), int) and isinstance(img.get("height"), int):
            out["size"] = [img["width"], img["height"]]
        if isinstance(data.get("model_weights"), str):
            out["model"] = data["model_weights"]
        if isinstance(data.get("model_hash"), str):
            out["model_hash"] = data["model_hash"]
        return out
    for name, k in (("prompt", "positive_prompt"), ("negative_prompt", "negative_prompt"), ("seed", "seed"),
                    ("steps", "steps"), ("cfg_scale", "cfg_scale"), ("scheduler", "scheduler"),
                    ("denoise", "strength")):
        if isinstance(data.get(k), str | int | float):
            out[name] = data[k]
    if isinstance(data.get("width"), int) and isinstance(data.get("height"), int):
        out["size"] = [data["width"], data["height"]]
    model = data.get("model")
    if isinstance(model, dict):
        name = model.get("name") or model.get("model_name")
        if isinstance(name, str):
            out["model"] = name
        if isinstance(model.get("hash"), str):
            out["model_hash"] = model["hash"]
    elif isinstance(model, str):
        out["model"] = model
    return out


def _viwo_fields(payload: dict) -> dict:
    meta = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
    out: dict[str, Any] = {}
    for name in ("prompt", "negative_prompt", "seed", "steps", "sampler", "scheduler", "model", "model_hash",
                 "capability", "method"):
        v = payload.get(name, meta.get(name))
        if v is not None:
            out[name] = v
    cfg = meta.get("guidance_scale", meta.get("cfg_scale"))
    if cfg is not None:
        out["cfg_scale"] = cfg
    if meta.get("strength") is not None:
        out["denoise"] = meta["strength"]
    if isinstance(meta.get("width"), int) and isinstance(meta.get("height"), int):
        out["size"] = [meta["width"], meta["height"]]
    return out


def _json(text: str) -> Any:
    return json.loads(text)


def normalise(raw: dict[str, str]) -> dict:
    """Raw text fields → ``{sources, <normalised fields>, script, args, viwo, comfyui_workflow, raw, errors,
    unknown}``."""
    out: dict[str, Any] = {"sources": []}
    errors: list[str] = []
    found: list[tuple[str, dict]] = []
    raw = dict(raw)
    if "_exif_error" in raw:
        errors.append("EXIF: " + raw.pop("_exif_error"))

    xmp = raw.get("xmp") or raw.get("XML:com.adobe.xmp")
    viwo_text = raw.get("viwo")
    params_text = raw.get("parameters")
    if xmp:
        m = _XMP_PAYLOAD.search(xmp)
        if m and viwo_text is None:
            viwo_text = html.unescape(m.group(1))
        d = _XMP_DESC.search(xmp)
        if d and params_text is None and "Steps:" in d.group(1):
            params_text = html.unescape(d.group(1))
    uc = raw.get("exif:UserComment")
    if uc:
        if uc.lstrip().startswith("{"):
            try:
                data = _json(uc)
                if isinstance(data, dict) and ("viwo" in data or "script" in data) and viwo_text is None:
                    viwo_text = uc
                elif isinstance(data, dict) and "positive_prompt" in data:
                    raw.setdefault("invokeai_metadata", uc)
            except ValueError:
                pass
        elif params_text is None:
            params_text = uc
    if viwo_text is None and "comment" in raw and '"script"' in raw["comment"]:
        viwo_text = raw["comment"]

    if viwo_text is not None:
        try:
            payload = _json(viwo_text)
            if not isinstance(payload, dict):
                raise ValueError("expected a JSON object")
            out["viwo"] = payload
            if payload.get("script") is not None:
                out["script"] = payload["script"]
            if payload.get("args") is not None:
                out["args"] = payload["args"]
            if payload.get("viwoscript") is not None:
                out["viwoscript"] = payload["viwoscript"]
            found.append(("viwo", _viwo_fields(payload)))
        except (ValueError, RecursionError) as e:
            errors.append(f"viwo: invalid JSON ({e})")
    if params_text is not None:
        try:
            fields = parse_a1111(params_text)
            out["a1111"] = fields.pop("fields")
            found.append(("a1111", fields))
        except (ValueError, TypeError, RecursionError) as e:
            errors.append(f"parameters: cannot parse ({e})")
    for key in ("invokeai_metadata", "sd-metadata"):
        if key in raw:
            try:
                found.append(("invokeai", parse_invokeai(_json(raw[key]), key)))
            except (ValueError, TypeError, AttributeError, RecursionError) as e:
                errors.append(f"{key}: {'invalid JSON' if isinstance(e, json.JSONDecodeError) else 'unreadable'} ({e})")
    if "prompt" in raw:
        try:
            comfy = parse_comfyui(_json(raw["prompt"]))
            out["comfyui_nodes"] = comfy.pop("nodes")
            found.append(("comfyui", comfy))
        except (ValueError, TypeError, AttributeError, RecursionError) as e:
            errors.append(f"prompt (ComfyUI): {'invalid JSON' if isinstance(e, json.JSONDecodeError) else 'unreadable'} ({e})")
    if "workflow" in raw:
        try:
            wf = _json(raw["workflow"])
            if not isinstance(wf, dict):
                raise ValueError("expected a JSON object")
            nodes = wf.get("nodes")
            out["comfyui_workflow_nodes"] = len(nodes) if isinstance(nodes, list) else None
            if not any(name == "comfyui" for name, _ in found):
                found.append(("comfyui", {}))
        except (ValueError, RecursionError) as e:
            errors.append(f"workflow (ComfyUI): invalid JSON ({e})")

    for source, fields in found:
        if source not in out["sources"]:
            out["sources"].append(source)
        for name in FIELDS:
            if out.get(name) is None and fields.get(name) not in (None, ""):
                out[name] = fields[name]
    out["source"] = out["sources"][0] if out["sources"] else None
    out["raw"] = raw
    out["errors"] = errors
    out["unknown"] = sorted(k for k in raw if k not in KNOWN and not k.startswith("exif:")
                            and k not in ("comment", "Comment"))
    return out


def image_metadata(raw: dict[str, str], fmt: str | None) -> dict:
    """What ``Image.metadata`` holds after reading a file: the metadata viwoscript wrote, else the
    normalised fields of the other tool (with ``source``)."""
    if not raw:
        return {}
    info = normalise(raw)
    payload = info.get("viwo")
    if isinstance(payload, dict) and isinstance(payload.get("metadata"), dict):
        return dict(payload["metadata"])
    meta = {name: info[name] for name in FIELDS if info.get(name) is not None}
    if meta:
        meta["source"] = info["source"]
    return meta


def read_metadata(path: str | Path, *, max_pixels: int | None = None) -> dict:
    """Everything an image file says about how it was made (never raises for damaged metadata).

    ``{"file", "format", "width", "height", "mode", "source", "sources", "prompt", "negative_prompt",
    "seed", "steps", "sampler", "scheduler", "cfg_scale", "size", "denoise", "model", "model_hash",
    "capability", "method", "script", "args", "viwoscript", "viwo", "a1111", "raw", "errors", "unknown"}``
    (generation fields only when known). A file that is not an image raises ``ScriptError``.
    """
    import warnings

    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    from .formats import DEFAULT_MAX_PIXELS, input_formats

    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    p = Path(path)
    errors: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with PILImage.open(p, formats=input_formats()) as im:
                w, h = im.size
                if w * h <= limit:
                    try:
                        im.load()
                    except (OSError, ValueError, SyntaxError, EOFError) as e:
                        errors.append(f"pixels: {type(e).__name__}: {e}")
                else:
                    errors.append(f"image of {w}×{h} is over the {limit}-pixel limit: pixels not decoded, "
                                  "metadata after them not read")
                try:
                    raw = extract_raw(im)
                except (OSError, ValueError, SyntaxError, EOFError) as e:
                    raw = {}
                    errors.append(f"metadata: {type(e).__name__}: {e}")
                fmt, mode = im.format, im.mode
        errors += [f"{'EXIF' if 'EXIF' in str(c.message) else 'decoder'}: {str(c.message).strip()}" for c in caught
                   if not issubclass(c.category, PILImage.DecompressionBombWarning)]
    except PILImage.DecompressionBombError as e:
        raise ScriptError(f"info: {p.name}: {e}", hint="decompression bombs are refused") from None
    except UnidentifiedImageError:
        raise ScriptError(f"info: {p.name} is not an image in a supported format") from None
    except OSError as e:
        raise ScriptError(f"info: cannot read {p}: {e.strerror or e}") from None
    info = normalise(raw)
    info["errors"] = errors + info["errors"]
    return {"file": str(p), "format": fmt, "width": w, "height": h, "mode": mode, **info}


def script_from_image(path: str | Path) -> tuple[Any, list]:
    """``(script, args)`` embedded in an image viwoscript wrote (for ``viwo run image.png``): the script in
    its JSON form, or text when it was stored as text."""
    info = read_metadata(path)
    script = info.get("script")
    if script is None:
        why = "; ".join(info["errors"]) if info["errors"] else "no viwoscript metadata"
        raise ScriptError(f"run: {Path(path).name} carries no script ({why})",
                          hint="only images written by viwoscript hold the script that made them")
    args = info.get("args")
    return script_data(script), list(args) if isinstance(args, list) else []
