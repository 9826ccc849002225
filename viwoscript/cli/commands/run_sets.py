"""``viwo run FILE --arg-sets SETS.json``: one whole job per argument set (design §17's first unit of work).

Every set is loaded (a template bound with it) and checked before anything runs. With the local executor
the jobs run here one after another; with ``--executor ray`` they run at the same time, one per free
worker, each on the worker's own Runtime under this run's grants, limits and roots. Images are saved as
``STEM-setNNN-001.png``; a failing set is reported and the others go on (exit 1 if any failed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import options
from ..app import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from ..execute import check_out_dir, execute
from ..options import parse_args, template_args

if TYPE_CHECKING:
    from ...config import Config
    from ...executors.settings import ExecutorConfig

#: More sets than this in one file is surely a mistake (each is a whole job).
MAX_SETS = 10_000


def read_sets(path: str) -> list:
    """The argument sets in ``path``: a JSON list of lists (positional arguments) or objects (template
    parameters by name; for other scripts taken in key order)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise click.BadParameter(f"cannot read {path}: {e}", param_hint="--arg-sets") from None
    except ValueError as e:
        raise click.BadParameter(f"{path} is not JSON: {e}", param_hint="--arg-sets") from None
    if not isinstance(data, list) or not data:
        raise click.BadParameter(f"{path}: expected a non-empty JSON list of argument sets, e.g. "
                                 '[{"prompt": "a cat"}, {"prompt": "a dog"}] or [[1, 2], [3, 4]]',
                                 param_hint="--arg-sets")
    if len(data) > MAX_SETS:
        raise click.BadParameter(f"{path}: {len(data)} sets; at most {MAX_SETS}", param_hint="--arg-sets")
    for i, s in enumerate(data, 1):
        if not isinstance(s, list | dict):
            raise click.BadParameter(f"{path}: set #{i} is {json.dumps(s)}, not a list or an object",
                                     param_hint="--arg-sets")
    return data


def load_sets(file: str, sets: list, rt, models: Any) -> list[tuple[Any, list]]:
    """``(Script, args)`` per set; a template is bound with each set (its parameters checked here)."""
    from ...errors import ViwoError
    from ...terminal.loader import load_script

    out = []
    plain = None
    for i, s in enumerate(sets, 1):
        text = json.dumps(s)
        try:
            if file.startswith("template:"):
                script = load_script(file, rt.parse, template_args=template_args((), text))
                out.append((script, script.args or []))
                continue
        except ViwoError as e:
            e.message = f"argument set #{i}: {e.message}"
            raise
        if plain is None:
            plain = load_script(file, rt.parse, models=models)
        out.append((plain, parse_args((), text)))
    return out


def run_sets(file: str, sets_path: str, cfg: Config, ec: ExecutorConfig, *, models: Any, quiet: bool,
             as_json: bool, debug: bool, check: bool, show_null: bool) -> int:
    """Run ``file`` once per set of ``sets_path``; returns the exit code (the worst of the sets')."""
    rt = options.make_runtime(cfg)
    jobs = load_sets(file, read_sets(sets_path), rt, models)
    n = len(jobs)
    if not _checked(cfg, rt, jobs, quiet=quiet, check=check):
        return EXIT_ERROR
    if ec.kind == "local":
        worst = EXIT_OK
        for i, (script, args) in enumerate(jobs, 1):
            if not quiet:
                click.echo(f"set {i}/{n}: {json.dumps(args)}", err=True)
            code = execute(cfg, rt if i == 1 else options.make_runtime(cfg), script, args=args, quiet=quiet,
                           as_json=as_json, debug=debug, check=False, show_null=show_null, stem=_stem(script, i))
            if code == EXIT_INTERRUPTED:
                return code
            worst = max(worst, code)
        return worst
    return _on_executor(ec, cfg, jobs, quiet=quiet, as_json=as_json, show_null=show_null)


def _checked(cfg: Config, rt, jobs: list, *, quiet: bool, check: bool) -> bool:
    """Before any set runs: the output folder, and the static check of every set's script (each problem
    shown once); False when there is an error."""
    from ...terminal.console import use_color

    color = use_color(sys.stderr)
    scripts = list({id(s): s for s, _ in jobs}.values())
    for script in scripts:
        check_out_dir(cfg, script, rt)
    if not check:
        return True
    from ...checker import check_tree

    shown: set[str] = set()
    ok = True
    for script in scripts:
        diagnostics = check_tree(script.tree, rt.registry)
        errors = [d for d in diagnostics if d.severity == "error"]
        ok = ok and not errors
        for d in diagnostics if (errors or not quiet) else ():
            text = d.render(script.text, color=color)
            if text not in shown:
                shown.add(text)
                click.echo(text, err=True)
    return ok


def _stem(script, i: int) -> str:
    return f"{script.stem}-set{i:03d}"


def _messages(i: int):
    """Prints a set's log and warn events as they come (prefixed with the set's number)."""
    def on_event(event: dict) -> None:
        if event.get("type") in ("log", "warn"):
            click.echo(f"set {i}: {event.get('message', '')}", err=True)
    return on_event


def _on_executor(ec, cfg: Config, jobs: list, *, quiet: bool, as_json: bool, show_null: bool) -> int:
    """Every set as a whole job on the executor's workers, at the same time; results printed in order."""
    from concurrent.futures import ThreadPoolExecutor

    from ...errors import ViwoError
    from ...executors.base import RunSettings
    from ...executors.settings import make_executor
    from ...nodes import to_data
    from ...terminal.console import ImageSaver, Terminal, use_color

    color = use_color(sys.stderr)
    kw = cfg.runtime_kwargs()
    settings = RunSettings(limits=kw["limits"], grants=kw["grants"], roots=tuple(str(r) for r in kw["roots"]),
                           canvas_size=tuple(kw["canvas_size"]), runner=kw["runner"])
    ex = make_executor(ec, models=cfg.models or None)
    ids = [f"set-{i}" for i in range(1, len(jobs) + 1)]
    terminals = [Terminal(ImageSaver(cfg.out_dir, _stem(script, i)), quiet=True)
                 for i, (script, _) in enumerate(jobs, 1)]
    try:
        ex.start()
        with ThreadPoolExecutor(max_workers=max(1, len(ex.workers))) as pool:
            # the text travels where there is one (positions in errors), else the tree's JSON form
            futures = [pool.submit(ex.run_unit, wid, script.text if script.text is not None else to_data(script.tree),
                                   None, args, settings,
                                   None if quiet else _messages(i), script.filename, None)
                       for i, (wid, (script, args)) in enumerate(zip(ids, jobs, strict=True), 1)]
            try:
                outcomes = [f.result() for f in futures]
            except KeyboardInterrupt:
                for wid in ids:
                    ex.cancel(wid)
                click.echo("interrupted", err=True)
                return EXIT_INTERRUPTED
        worst = EXIT_OK
        for i, (outcome, (script, args), terminal) in enumerate(zip(outcomes, jobs, terminals, strict=True), 1):
            worker = outcome.extra.get("worker") or "?"
            if not quiet:
                click.echo(f"set {i}/{len(jobs)} on {worker}: {json.dumps(args)}", err=True)
            if outcome.status == "done":
                terminal.saver.script, terminal.saver.args = to_data(script.tree), args
                terminal.saver.where = {"executor": ex.name, "worker": worker}
                terminal.quiet = quiet
                try:
                    terminal.result(outcome.value, as_json=as_json, show_null=show_null, limits=settings.limits)
                except (ValueError, OSError) as e:
                    click.echo(f"error: {e}", err=True)
                    worst = EXIT_ERROR
            elif outcome.status == "cancelled":
                click.echo(f"set {i}: cancelled", err=True)
                worst = max(worst, EXIT_INTERRUPTED)
            else:
                err = outcome.error
                text = err.render(None if err.source else script.text, color=color) \
                    if isinstance(err, ViwoError) else f"error: {err}"
                click.echo(text, err=True)
                worst = max(worst, EXIT_ERROR)
        return worst
    except ViwoError as e:
        click.echo(e.render(color=color), err=True)
        return EXIT_ERROR
    finally:
        if not quiet:
            click.echo(ex.describe(), err=True)
        ex.shutdown()

