"""``batch.*``: seed and prompt variations run through any capability method (docs/batch.md).

``batch.seeds`` and ``batch.product`` build lists of parameter objects; ``batch.run`` calls one capability
method once per item with ``continue_on_error``, a progress event per item, interrupt between items, the
grant's ``max_batch`` applied to the whole batch, results saved with their metadata and an optional
contact sheet.
"""

from __future__ import annotations

import itertools
from typing import Any

from ..errors import ArgumentError, LimitError, ScriptError, ViwoError
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import HostValue, Image

OPCODES: list = []

#: Most items one batch builds or runs.
MAX_ITEMS = 10_000


def opcode(name, *params, **kw):
    kw.setdefault("category", "batch")
    return _opcode(name, *params, into=OPCODES, **kw)


def _count(v: Any, op: str, name: str, lo: int, hi: int) -> int:
    if type(v) not in (int, float) or v != v or v != int(v) or not lo <= v <= hi:
        raise ArgumentError(f"{op}: {name} must be a whole number from {lo} to {hi}, got {v!r}")
    return int(v)


@opcode("batch.seeds", P("start", "number", description="first seed"), P("count", "number", description="how many"),
        returns="array", label="Seed Variations")
def seeds(ev, start=None, count=None, *_):
    """[start, start+1, ..., start+count-1]: seeds for a batch (the original's createSeedVariations)."""
    op = "batch.seeds"
    s = _count(start, op, "start", 0, 2**53 - MAX_ITEMS)
    n = _count(count, op, "count", 0, MAX_ITEMS)
    return list(range(s, s + n))


@opcode("batch.product", P("variables", "object", description='e.g. {"prompt" ["a cat" "a dog"] "seed" [1 2 3]}'),
        returns="array", label="Sweep")
def product(ev, variables=None, *_):
    """Every combination of the variables' values (a sweep), as a list of objects; the first key varies
    slowest. A value that is not a list is used as it is in every item."""
    op = "batch.product"
    keys = list(variables)
    lists = [v if isinstance(v, list) else [v] for v in variables.values()]
    total = 1
    for values in lists:
        total *= len(values)
    if total > MAX_ITEMS:
        raise LimitError(f"{op}: {total} combinations is more than {MAX_ITEMS}", hint="sweep fewer values")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*lists)]


def _variations(items: Any, op: str) -> list[dict]:
    if not isinstance(items, list):
        raise ArgumentError(f"{op}: variations must be a list of objects or seeds")
    out = []
    for i, item in enumerate(items):
        if isinstance(item, dict):
            out.append(item)
        elif type(item) in (int, float):
            out.append({"seed": item})
        elif isinstance(item, str):
            out.append({"prompt": item})
        else:
            raise ArgumentError(f"{op}: variation {i} must be an object, a seed or a prompt")
    return out


def _first_image(result: Any) -> Image | None:
    if isinstance(result, Image):
        return result
    if isinstance(result, dict):
        for key in ("image", "images"):
            v = result.get(key)
            if isinstance(v, Image):
                return v
            if isinstance(v, list) and v and isinstance(v[0], Image):
                return v[0]
    return None


@opcode("batch.run", P("capability", "capability"), P("method", "string", description="e.g. textToImage"),
        P("base", "object", description="parameters shared by every item, e.g. {prompt, steps}"),
        P("variations", "array", description="one object of parameter changes per item (a number = a seed, a "
          "string = a prompt)"),
        P("options", "object", None, "{continue_on_error (true), save (path prefix under the allowed folders), "
          "contact_sheet (true or {columns, labels}), format (png)}"),
        returns="object", label="Run Batch", pure=False)
def run(ev, capability=None, method=None, base=None, variations=None, options=None, *_):
    """Call a capability method once per variation, base and variation merged. Returns {results, ok,
    failed, sheet}: results[i] is {index, params, status ("ok" or "error"), seed, image, result, error, path}.
    With continue_on_error (default) a failing item is recorded and the batch goes on; without it the
    first failure stops the batch. The grant's max_batch limits the number of items; interrupt and time
    limits stop the whole batch. A progress event is sent per item."""
    op = "batch.run"
    opts = options or {}
    for key in opts:
        if key not in ("continue_on_error", "save", "contact_sheet", "format"):
            raise ArgumentError(f"{op}: unknown option '{key}'",
                                hint="options: continue_on_error, save, contact_sheet, format")
    items = _variations(variations, op)
    limit = getattr(capability, "params", {}).get("max_batch") if isinstance(capability, HostValue) else None
    if isinstance(limit, int | float) and len(items) > limit:
        from ..errors import CapabilityError

        raise CapabilityError(f"{op}: {len(items)} items exceed this grant's max_batch of {limit:g}",
                              hint="the host sets max_batch in the grant; or run fewer variations")
    if len(items) > MAX_ITEMS:
        raise LimitError(f"{op}: {len(items)} items is more than {MAX_ITEMS}")
    keep_going = opts.get("continue_on_error", True) is not False
    save = opts.get("save")
    fmt = str(opts.get("format", "png")).lower().lstrip(".")
    if save is not None and not isinstance(save, str):
        raise ArgumentError(f"{op}: save must be a path prefix like \"out/comet\"")
    results: list[dict] = []
    total = len(items)
    caps = ev.runtime.caps
    for i, change in enumerate(items):
        ev.check_interrupt()
        params = {**base, **change}
        entry: dict[str, Any] = {"index": i, "params": params, "status": "ok", "seed": params.get("seed"),
                                 "image": None, "result": None, "error": None, "path": None}
        try:
            result = caps.call(ev, capability, method, [dict(params)])
            image = _first_image(result)
            entry["result"] = result
            entry["image"] = image
            if isinstance(result, dict) and result.get("seed") is not None:
                entry["seed"] = result["seed"]
            if image is not None and save:
                entry["path"] = _save(ev, image, f"{save}-{i + 1:03d}.{fmt}", i, params, op)
        except LimitError:
            raise  # interrupt, time, gas: the whole batch stops
        except ViwoError as e:
            if not keep_going:
                raise
            entry.update(status="error", error=e.message, image=None)
        results.append(entry)
        ev.runtime.emit({"type": "progress", "task": op, "step": i + 1, "total": total})
    out = {"results": results, "ok": sum(r["status"] == "ok" for r in results),
           "failed": sum(r["status"] == "error" for r in results), "sheet": None}
    sheet_opts = opts.get("contact_sheet")
    if sheet_opts:
        sheet = contact_sheet(results, **(sheet_opts if isinstance(sheet_opts, dict) else {}), op=op)
        out["sheet"] = sheet
        if save and sheet is not None:
            out["sheet_path"] = _save(ev, sheet, f"{save}-sheet.png", None, None, op)
    return out


def _save(ev, image: Image, path: str, index: int | None, params: dict | None, op: str) -> str:
    from ..io.codec import encode_image, format_for_path
    from .image import _atomic_write, _running_script

    target = ev.runtime.resolve_path(path, op, must_exist=False)
    if not target.parent.is_dir():
        raise ScriptError(f"{op}: folder of {path} does not exist", hint="save into an existing folder")
    extra = {"batch": {"index": index, "params": params}} if index is not None else {"batch": {"sheet": True}}
    data = encode_image(image, format_for_path(path, op), script=_running_script(ev), args=ev.args, extra=extra,
                        op=op)
    _atomic_write(target, data)
    return path


def contact_sheet(results: list[dict], columns: int | None = None, labels: bool = True, cell: int = 256,
                  op: str = "batch.run") -> Image | None:
    """A grid of the batch's images (failed items as grey cells marked with an ×), each labelled with its
    index and seed."""
    import math

    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageDraw

    if not results:
        return None
    n = len(results)
    cols = int(columns) if isinstance(columns, int | float) and columns >= 1 else math.ceil(math.sqrt(n))
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    label_h = 16 if labels else 0
    pad = 4
    sheet = PILImage.new("RGB", (cols * (cell + pad) + pad, rows * (cell + label_h + pad) + pad), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for i, r in enumerate(results):
        x = pad + (i % cols) * (cell + pad)
        y = pad + (i // cols) * (cell + label_h + pad)
        img = r.get("image")
        if isinstance(img, Image):
            thumb = img.to_pil().convert("RGB")
            thumb.thumbnail((cell, cell))
            sheet.paste(thumb, (x + (cell - thumb.width) // 2, y + (cell - thumb.height) // 2))
        else:
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(90, 90, 90))
            draw.line([x, y, x + cell - 1, y + cell - 1], fill=(200, 60, 60), width=3)
            draw.line([x, y + cell - 1, x + cell - 1, y], fill=(200, 60, 60), width=3)
        if labels:
            text = f"#{i + 1}" + (f" seed {r['seed']}" if r.get("seed") is not None else "")
            if r.get("status") == "error":
                text += " (failed)"
            draw.text((x + 2, y + cell + 2), text, fill=(230, 230, 230))
    return Image(np.asarray(sheet), {"contact_sheet": True, "items": n, "columns": cols})
