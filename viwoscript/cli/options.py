"""Options shared by several commands, and the Config and Runtime they build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..config import Config
    from ..terminal.console import Terminal

CANVAS_MAX_PIXELS = 64 * 1024 * 1024  # the canvas refuses more (viwoscript.canvas.layers.MAX_PIXELS)


def _parse_size(ctx, param, value: str | None):
    if value is None:
        return None
    try:
        w, h = (int(p) for p in value.lower().replace("×", "x").split("x"))
    except ValueError:
        raise click.BadParameter("expected WIDTHxHEIGHT, e.g. 512x768") from None
    if not (1 <= w <= 16384 and 1 <= h <= 16384):
        raise click.BadParameter("width and height must be between 1 and 16384")
    if w * h > CANVAS_MAX_PIXELS:
        raise click.BadParameter(f"{w}x{h} is {w * h:,} pixels; a canvas holds at most {CANVAS_MAX_PIXELS:,}")
    return (w, h)


def _parse_limit(kind):
    def parse(ctx, param, value: str | None):
        if value is None:
            return None
        if value == "unlimited":
            return "unlimited"
        try:
            n = kind(value)
        except ValueError:
            raise click.BadParameter(f'expected a positive number or "unlimited", got {value!r}') from None
        if n <= 0:
            raise click.BadParameter(f'must be positive (or "unlimited"), got {value}')
        return n

    return parse


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False), metavar="FILE",
                             help="Configuration file (default: ./viwo.toml, else the user config dir).")


def _apply(fn, opts):
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def runtime_options(fn):
    """--config --gas --timeout --size --out --root --runner."""
    return _apply(fn, [
        config_option,
        click.option("--gas", callback=_parse_limit(int), metavar="N",
                     help='Opcode evaluations allowed (default 100000000, or "unlimited").'),
        click.option("--timeout", callback=_parse_limit(float), metavar="S",
                     help='Wall-clock limit in seconds (default: none).'),
        click.option("--size", callback=_parse_size, metavar="WxH", help="Canvas size (default 1024x1024)."),
        click.option("--out", type=click.Path(file_okay=False), metavar="DIR",
                     help="Where images are saved (default ./viwo-out)."),
        click.option("--root", "roots", multiple=True, type=click.Path(exists=True, file_okay=False),
                     metavar="DIR", help="Folder scripts may read files from (repeatable; default: cwd)."),
        click.option("--runner", type=click.Choice(["compiled", "tree"]), default=None,
                     help="How scripts run: compiled to Python functions (default) or walked as a tree "
                          "(the reference; slower)."),
    ])


def output_options(fn):
    """--quiet --json --debug."""
    return _apply(fn, [
        click.option("--quiet", "-q", is_flag=True, help="No progress bars and no std.log output."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
        click.option("--debug", is_flag=True, help="Also print the Python traceback of an error."),
    ])


def argument_options(fn):
    """--arg NAME=VALUE (repeatable) and --args-json."""
    return _apply(fn, [
        click.option("--arg", "arg_pairs", multiple=True, metavar="NAME=VALUE",
                     help="A script argument (repeatable; std.arg 0 is the first). VALUE is JSON, else text."),
        click.option("--args-json", metavar="JSON",
                     help="Script arguments as a JSON array (or object, in key order)."),
    ])


def make_config(config_path=None, gas=None, timeout=None, size=None, out=None, roots=(), runner=None) -> Config:
    from ..config import load_config

    cfg = load_config(config_path)
    if runner:
        cfg.set("run.runner", runner, "--runner")
    for key, value, flag in (("gas", gas, "--gas"), ("timeout", timeout, "--timeout")):
        if value == "unlimited":
            cfg.set(f"limits.{key}", None, flag, allow_none=True)
        else:
            cfg.set(f"limits.{key}", value, flag)
    if size:
        cfg.set("canvas.width", size[0], "--size")
        cfg.set("canvas.height", size[1], "--size")
    if out:
        try:  # an output folder that cannot be made is a usage error now, not after a long run
            Path(out).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise click.BadParameter(f"cannot create {out}: {e.strerror or e}", param_hint="--out") from None
        cfg.set("paths.out", Path(out).resolve(), "--out")
    if roots:
        cfg.set("paths.roots", [Path(r).resolve() for r in roots], "--root")
    return cfg


def make_runtime(cfg: Config, terminal: Terminal | None = None):
    from ..runtime import Runtime

    # Entity opcodes use the default store (the user data folder, as `viwo images`), opened only if used.
    rt = Runtime(**cfg.runtime_kwargs(), on_event=terminal.on_event if terminal else None, store=True)
    if isinstance(cfg.grants, list):  # a [[grants]] table: report a bad one now, as a config error
        from ..config import ConfigError
        from ..errors import CapabilityError

        try:
            rt.caps  # noqa: B018 - builds the capability manager, which checks every grant
        except CapabilityError as e:
            raise ConfigError(f"config: [[grants]]: {e.message}", hint=e.hint or "see `viwo caps` and `viwo config`") from None
    return rt


def parse_args(pairs: tuple[str, ...], args_json: str | None) -> list:
    """``--args-json`` (a list, or an object taken in key order) then each ``--arg NAME=VALUE``."""
    out: list = []
    if args_json is not None:
        try:
            data = json.loads(args_json)
        except ValueError as e:
            raise click.BadParameter(f"not JSON: {e}", param_hint="--args-json") from None
        if isinstance(data, dict):
            out.extend(data.values())
        elif isinstance(data, list):
            out.extend(data)
        else:
            raise click.BadParameter("expected a JSON array or object", param_hint="--args-json")
    for pair in pairs:
        _, eq, raw = pair.partition("=")
        if not eq:
            raw = pair
        try:
            out.append(json.loads(raw))
        except ValueError:
            out.append(raw)
    return out


def template_args(pairs: tuple[str, ...], args_json: str | None) -> dict | list:
    """A template's arguments: ``--arg NAME=VALUE`` by name (VALUE is JSON, else text), or ``--args-json``
    (an object by name, or a list by position)."""
    if args_json is not None and not pairs:
        try:
            return json.loads(args_json)
        except ValueError as e:
            raise click.BadParameter(f"not JSON: {e}", param_hint="--args-json") from None
    named: dict = {}
    for pair in pairs:
        name, eq, raw = pair.partition("=")
        if not eq or not name:
            raise click.BadParameter(f"template arguments are NAME=VALUE, got {pair!r}", param_hint="--arg")
        try:
            named[name] = json.loads(raw)
        except ValueError:
            named[name] = raw
    return named


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


store_option = click.option("--store", "store_dir", type=click.Path(file_okay=False), metavar="DIR",
                            help="Store folder (default: the user data folder).")


def open_store(store_dir, *, write: bool = False):
    """The store of ``--store DIR`` (default: the user data folder). Nothing is created until a command
    writes to it (then a note says so); reading a folder given explicitly that holds no store is an error."""
    from ..store import Store, StoreError

    store = Store(store_dir, parents=store_dir is None,  # --store: the parent must exist (a typo is not made)
                  on_create=lambda p: click.echo(f"note: created a new store in {p}", err=True))
    if not write and store_dir is not None and not store.exists():
        raise StoreError(f"store: no store in {store_dir}" if Path(store_dir).is_dir() else
                         f"store: {store_dir} does not exist",
                         hint="check the --store path; a store is created when something is first saved in it "
                              "(viwo template save/import, entity.save)")
    return store


def fail(e: BaseException, command: str | None = None) -> None:
    """Report a ViwoError as ``error: COMMAND: MESSAGE`` (+ hint) and exit 1; re-raise anything else. The
    label a lower layer put on the message (``template save: ...``) gives way to the
    command's own."""
    import re

    from ..errors import ViwoError

    if isinstance(e, ViwoError):
        message = e.message
        if command:
            message = f"{command}: " + re.sub(r"\A(?:template|images?)(?: [a-z]+)?: ", "", message)
        click.echo(f"error: {message}" + (f"\n  hint: {e.hint}" if e.hint else ""), err=True)
        raise SystemExit(1)
    raise e
