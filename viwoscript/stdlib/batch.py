"""``batch.*``: seed and prompt variations run through any capability method (docs/batch.md).

``batch.seeds`` and ``batch.product`` build lists of parameter objects; ``batch.run`` calls one capability
method once per item with ``continue_on_error``, a progress event per item, interrupt between items, the
grant's ``max_batch`` and ``max_compute`` applied to the whole batch (the sum of every item's
``width × height × steps that run / 1e6``, checked before the first item runs), results saved with their
metadata and an optional contact sheet. ``batch.progress`` lets sweeps written in ViwoScript (the
``batch`` module of the shipped library, ``stdlib/batch.viwo``) report progress and honour interrupts.
"""

from __future__ import annotations

import itertools
from typing import Any

from ..errors import ArgumentError, LimitError, ScriptError, ViwoError
from ..limits import images_made_by
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import HostValue, Image, to_display

OPCODES: list = []

#: Most items one batch builds or runs.
MAX_ITEMS = 10_000


def opcode(name, *params, **kw):
    kw.setdefault("category", "batch")
    register = _opcode(name, *params, into=OPCODES, **kw)
    if kw.get("returns") not in ("image", "array", "object", "any"):
        return register
    return lambda fn: register(images_made_by(fn, name))  # images count against Limits.max_memory


def _count(v: Any, op: str, name: str, lo: int, hi: int) -> int:
    if type(v) not in (int, float) or not lo <= v <= hi or v != int(v):  # (NaN fails lo <= v)
        raise ArgumentError(f"{op}: {name} must be a whole number from {lo} to {hi}, got {to_display(v)}")
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
          "contact_sheet (true or {columns, labels}), format (png), max_compute (lower the whole batch's "
          "compute budget)}"),
        returns="object", label="Run Batch", pure=False)
def run(ev, capability=None, method=None, base=None, variations=None, options=None, *_):
    """Call a capability method once per variation, base and variation merged. Returns {results, ok,
    failed, sheet}: results[i] is {index, params, status ("ok" or "error"), seed, image, result, error, path}.
    With continue_on_error (default) a failing item is recorded and the batch goes on; without it the
    first failure stops the batch. The grant's max_batch limits the number of items and its max_compute
    the total compute of all items (width × height × steps that run / 1e6, summed), checked before the
    first item runs; interrupt and time limits stop the whole batch. A progress event is sent per item."""
    op = "batch.run"
    opts = options or {}
    for key in opts:
        if key not in ("continue_on_error", "save", "contact_sheet", "format", "max_compute"):
            raise ArgumentError(f"{op}: unknown option '{key}'",
                                hint="options: continue_on_error, save, contact_sheet, format, max_compute")
    items = _variations(variations, op)
    limit = getattr(capability, "params", {}).get("max_batch") if isinstance(capability, HostValue) else None
    if isinstance(limit, int | float) and len(items) > limit:
        from ..errors import CapabilityError

        raise CapabilityError(f"{op}: {len(items)} items exceed this grant's max_batch of {limit:g}",
                              hint="the host sets max_batch in the grant; or run fewer variations")
    if len(items) > MAX_ITEMS:
        raise LimitError(f"{op}: {len(items)} items is more than {MAX_ITEMS}")
    own_budget = opts.get("max_compute")
    if own_budget is not None and (type(own_budget) not in (int, float) or not own_budget >= 0):
        raise ArgumentError(f"{op}: max_compute must be a number of at least 0, got {to_display(own_budget)}")
    keep_going = opts.get("continue_on_error", True) is not False
    save = opts.get("save")
    fmt = str(opts.get("format", "png")).lower().lstrip(".")
    if save is not None and not isinstance(save, str):
        raise ArgumentError(f"{op}: save must be a path prefix like \"out/comet\"")
    if save:  # where results go is checked before anything is computed
        check_save_target(ev, f"{save}-001.{fmt}", op)
    check_budget(ev, capability, method, base, items, own_budget, op)
    results: list[dict] = []
    total = len(items)
    caps = ev.runtime.caps
    dispatcher = item_dispatcher(ev)
    if dispatcher is not None:
        results = _run_dispatched(ev, dispatcher, capability, method, base, items, keep_going, save, fmt, op)
    for i, change in enumerate(items if dispatcher is None else ()):
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


def item_dispatcher(ev) -> Any:
    """The Runtime's executor when it sends batch items elsewhere (``ray``), else None (run them here)."""
    ex = getattr(ev.runtime, "executor", None)
    return ex if getattr(ex, "dispatches_items", False) else None


def precheck_call(ev, capability, method: str, params: dict) -> None:
    """Bind one call's arguments and apply the grant's per-call checks here, before it is sent (the
    worker checks again under the same grant); raises the call's error."""
    from ..capabilities.base import CallContext
    from ..capabilities.binding import bind_arguments

    caps = ev.runtime.caps
    rec = caps._own_record(capability, "batch.run")
    entry = caps._entry_for(rec)
    spec = entry.cls.methods.get(method)
    if spec is None or entry.reason is not None:
        return  # the worker reports it, as the first local call would
    instance = entry.get_instance()
    ctx = CallContext(_Quiet(), None, instance, method, dict(rec.params), rec.handle, caps)
    bound = bind_arguments(f"{rec.type}.{method}", spec, [dict(params)], ctx)
    instance.check_inputs(ctx, spec, bound)


def _run_dispatched(ev, dispatcher, capability, method, base, items, keep_going, save, fmt, op) -> list[dict]:
    """``batch.run`` through an executor that sends items to workers: every item checked here first,
    then sent at once, results gathered in order (saved here, in order)."""
    from ..travel import call_item, error_from_record

    entries: list[dict] = []
    work, where = [], []
    for i, change in enumerate(items):
        params = {**base, **change}
        entry: dict[str, Any] = {"index": i, "params": params, "status": "ok", "seed": params.get("seed"),
                                 "image": None, "result": None, "error": None, "path": None}
        entries.append(entry)
        try:
            precheck_call(ev, capability, method, params)
        except LimitError:
            raise
        except ViwoError as e:
            if not keep_going:
                raise
            entry.update(status="error", error=e.message)
            continue
        model = params.get("model") if isinstance(params.get("model"), str) else None
        work.append(call_item(capability, method, params, op, ev.current_span, model=model))
        where.append(i)
    total = len(items)
    done = [total - len(work)]

    def finished(k: int, outcome: dict) -> None:
        done[0] += 1
        ev.runtime.emit({"type": "progress", "task": op, "step": done[0], "total": total})

    outcomes = dispatcher.run_items(ev, work, stop_on_error=not keep_going, on_done=finished) if work else []
    _raise_first_failure(ev, outcomes, keep_going)
    for i, outcome in zip(where, outcomes, strict=True):
        entry = entries[i]
        if outcome["status"] != "ok":
            err = error_from_record(outcome["error"], ev.current_span)
            if isinstance(err, LimitError) or not keep_going:
                raise err
            entry.update(status="error", error=err.message)
            continue
        result = outcome["value"]
        entry["result"] = result
        entry["image"] = _first_image(result)
        if isinstance(result, dict) and result.get("seed") is not None:
            entry["seed"] = result["seed"]
    for entry in entries:
        if entry["image"] is not None and save:
            entry["path"] = _save(ev, entry["image"], f"{save}-{entry['index'] + 1:03d}.{fmt}", entry["index"],
                                  entry["params"], op)
    return entries


def _raise_first_failure(ev, outcomes: list[dict], keep_going: bool) -> None:
    """Raise what stops the whole batch: an interrupt, time or gas limit of an item, or (without
    continue_on_error) the first item that failed (rather than the items stopped because of it)."""
    from ..travel import error_from_record

    errors = [error_from_record(o["error"], ev.current_span) for o in outcomes if o["status"] == "error"]
    for err in errors:
        if isinstance(err, LimitError) or not err.catchable:
            raise err
    if errors and not keep_going:
        raise errors[0]
    if any(o["status"] == "cancelled" for o in outcomes):
        ev.check_interrupt()
        from ..errors import InterruptedError_

        raise InterruptedError_("batch cancelled", ev.current_span, hint="the host stopped the run")


@opcode("batch.dispatches", returns="boolean", label="Items Sent To Workers")
def dispatches(ev, *_):
    """Whether this run's executor sends batch items to workers (`ray`) rather than running them here."""
    return item_dispatcher(ev) is not None


@opcode("batch.each", P("items", "array"), P("fn", "lambda", description="called as fn(item, index)"),
        P("options", "object", None, "{continue_on_error (true), task (\"batch.each\")}"),
        returns="object", label="Each Item", pure=False)
def each(ev, items=None, fn=None, options=None, *_):
    """Call fn(item, index) once per item, as the batch module's `each`: {results ok failed}, results[i]
    being {index item status value error}. With an executor that sends items to workers (`ray`) the
    items run there at the same time (the lambda and what it captures travel; a capture that cannot is
    an error naming it) and are gathered in order; otherwise one after another, here."""
    op = "batch.each"
    opts = options or {}
    keep_going = opts.get("continue_on_error", True) is not False
    task = opts.get("task", op)
    if not isinstance(items, list):
        raise ArgumentError(f"{op}: items must be a list")
    if len(items) > MAX_ITEMS:
        raise LimitError(f"{op}: {len(items)} items is more than {MAX_ITEMS}")
    total = len(items)
    results: list[dict] = []
    dispatcher = item_dispatcher(ev)
    if dispatcher is not None:
        from ..travel import error_from_record, lambda_item

        work = [lambda_item(fn, [item, i], op, ev.current_span) for i, item in enumerate(items)]
        done = [0]

        def finished(k: int, outcome: dict) -> None:
            done[0] += 1
            ev.runtime.emit({"type": "progress", "task": task, "step": done[0], "total": total})

        outcomes = dispatcher.run_items(ev, work, stop_on_error=not keep_going, on_done=finished) if work else []
        _raise_first_failure(ev, outcomes, keep_going)
        for i, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
            entry = {"index": i, "item": item, "status": "ok", "value": None, "error": None}
            if outcome["status"] == "ok":
                entry["value"] = outcome["value"]
            else:
                err = error_from_record(outcome["error"], ev.current_span)
                if not keep_going or not err.catchable:
                    raise err
                entry.update(status="error", error=err.message)
            results.append(entry)
    else:
        for i, item in enumerate(items):
            entry = {"index": i, "item": item, "status": "ok", "value": None, "error": None}
            try:
                entry["value"] = ev.call(fn, [item, i], op=op)
            except ViwoError as e:
                if not keep_going or not e.catchable:
                    raise
                entry.update(status="error", error=e.message)
            results.append(entry)
            ev.runtime.emit({"type": "progress", "task": task, "step": i + 1, "total": total})
            ev.check_interrupt()
    failed = sum(r["status"] == "error" for r in results)
    return {"results": results, "ok": total - failed, "failed": failed}


class _Quiet:
    """A runtime stand-in for planning: binding warnings (sizes rounded) are sent once, by the real call."""

    def emit(self, event: dict) -> None:
        pass


def item_costs(ev, capability, method: str, base: dict, items: list[dict]) -> list[float | None]:
    """The compute cost of each item (``Workload.compute``), worked out exactly as the call will.

    Arguments are bound and the grant's per-call checks applied (so a left-out ``steps`` is lowered to
    ``max_steps`` as the call would); an item that would fail those checks costs ``None``: it fails on its
    own, before running anything. A method without a workload costs 0.
    """
    from ..capabilities.base import CallContext
    from ..capabilities.binding import bind_arguments

    caps = ev.runtime.caps
    rec = caps._own_record(capability, "batch.run")
    entry = caps._entry_for(rec)
    spec = entry.cls.methods.get(method)
    if spec is None or entry.reason is not None:
        return [None] * len(items)  # the first call reports it
    if spec.workload is None:
        return [0.0] * len(items)
    instance = entry.get_instance()
    where = f"{rec.type}.{method}"
    costs: list[float | None] = []
    for change in items:
        ctx = CallContext(_Quiet(), None, instance, method, dict(rec.params), rec.handle, caps)
        try:
            bound = bind_arguments(where, spec, [{**base, **change}], ctx)
            instance.check_inputs(ctx, spec, bound)
            costs.append(spec.workload(bound).compute)
        except ViwoError:
            costs.append(None)
    return costs


def check_budget(ev, capability, method: str, base: dict, items: list[dict], own_budget, op: str) -> float:
    """Refuse a batch whose total compute exceeds the grant's ``max_compute`` (or the script's own lower
    budget) before any item runs; returns the total."""
    limit = capability.params.get("max_compute") if isinstance(capability, HostValue) else None
    if limit is None and own_budget is None:
        return 0.0
    costs = item_costs(ev, capability, method, base, items)
    total = sum(c for c in costs if c is not None)
    for lim, whose in ((limit, "this grant's max_compute"), (own_budget, "the max_compute you passed")):
        if lim is not None and total > lim:
            from ..errors import CapabilityError

            counted = sum(c is not None for c in costs)
            raise CapabilityError(
                f"{op}: total compute {total:.4g} of {counted} item{'s' if counted != 1 else ''} exceeds {whose} of "
                f"{lim:g} (each item costs width × height × steps that run / 1e6)",
                hint="run fewer variations, smaller sizes or fewer steps, or split the batch"
                     + ("" if whose.startswith("the max") else "; the host sets max_compute in the grant"))
    return total


@opcode("batch.progress", P("task", "string", description="what is running, e.g. \"lineup\""),
        P("step", "number", description="items done"), P("total", "number", description="items in all"),
        returns="null", label="Report Progress", pure=False)
def progress(ev, task=None, step=None, total=None, *_):
    """Send a progress event {type: "progress", task, step, total} to the host (the CLI shows a progress
    bar), then stop here if the run was interrupted. For loops written in ViwoScript, like the batch
    module's `each`."""
    op = "batch.progress"
    n = _count(total, op, "total", 0, 2**53)
    k = _count(step, op, "step", 0, n)
    ev.runtime.emit({"type": "progress", "task": task, "step": k, "total": n})
    ev.check_interrupt()
    return None


def check_save_target(ev, path: str, op: str):
    """The resolved target of a file the batch will write, or a located error now: a format the file name
    does not give, a path outside the allowed folders, a folder that does not exist or cannot be written."""
    import os

    from ..io.codec import format_for_path

    format_for_path(path, op)
    target = ev.runtime.resolve_path(path, op, must_exist=False)
    folder = target.parent
    if not folder.is_dir():
        raise ScriptError(f"{op}: cannot save to {path}: the folder {_shown_folder(path)} does not exist",
                          hint="create the folder first, or save into an existing one")
    if target.is_dir():
        raise ScriptError(f"{op}: cannot save to {path}: it is a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ScriptError(f"{op}: cannot save to {path}: the folder {_shown_folder(path)} is not writable",
                          hint="save into a folder you can write to")
    return target


def _shown_folder(path: str) -> str:
    from pathlib import PurePath

    return str(PurePath(path).parent) if str(PurePath(path).parent) != "." else "."


def _save(ev, image: Image, path: str, index: int | None, params: dict | None, op: str) -> str:
    from ..io.codec import encode_image, format_for_path
    from .image import _atomic_write, _running_script

    target = check_save_target(ev, path, op)
    extra = {"batch": {"index": index, "params": params}} if index is not None else {"batch": {"sheet": True}}
    data = encode_image(image, format_for_path(path, op), script=_running_script(ev), args=ev.args, extra=extra,
                        op=op, budget=ev)
    _atomic_write(target, data)
    return path


def _thumbnail(pixels, cell: int):
    """RGB (over white) shrunk to fit a cell × cell square, keeping its aspect ratio (never enlarged)."""
    from ..pixels.channels import to_rgb
    from ..pixels.resize import resize

    h, w = pixels.shape[:2]
    f = min(1.0, cell / max(w, h))
    return resize(to_rgb(pixels), max(1, round(w * f)), max(1, round(h * f)), "cubic")


def contact_sheet(results: list[dict], columns: int | None = None, labels: bool = True, cell: int = 256,
                  op: str = "batch.run") -> Image | None:
    """A grid of the batch's images (failed items as grey cells marked with an ×), each labelled with its
    index and seed."""
    import math

    import numpy as np
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from ..pixels.encode import to_pil

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
            thumb = to_pil(_thumbnail(img.pixels, cell))
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
    meta: dict[str, Any] = {"contact_sheet": True, "items": n, "columns": cols}
    made = [r["image"].metadata for r in results if isinstance(r.get("image"), Image)]
    workers = sorted({m["worker"] for m in made if isinstance(m.get("worker"), str)})
    if workers:  # a composite of results made elsewhere records where (design §17)
        meta["executor"] = next(m["executor"] for m in made if m.get("executor"))
        meta["workers"] = workers
    return Image(np.asarray(sheet), meta)
