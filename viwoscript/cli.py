"""The ``viwo`` command: run, check, format and explore ViwoScript.

Exit codes: 0 success, 1 script error (or diagnostics found, or files that would be reformatted),
2 usage or configuration error, 130 interrupted (Ctrl-C).

Only click is imported up front; the runtime, rich and prompt_toolkit load inside the commands that
need them, so ``viwo --help`` and ``viwo run`` start quickly.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from .config import Config
    from .console import Terminal

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")


class Exit(Exception):
    """Leave a command with an exit code (after its message was printed)."""

    def __init__(self, code: int):
        self.code = code


def _guarded(fn):
    """Map errors to exit codes: ViwoError → 1 (2 for configuration), Ctrl-C → 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exit as e:
            sys.exit(e.code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as e:
            from .config import ConfigError
            from .errors import InterruptedError_, ViwoError

            if isinstance(e, InterruptedError_):
                click.echo("interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)
            if isinstance(e, ViwoError):
                from .console import use_color

                click.echo(e.render(color=use_color(sys.stderr)), err=True)
                sys.exit(EXIT_USAGE if isinstance(e, ConfigError) else EXIT_ERROR)
            raise

    return wrapper


# --------------------------------------------------------------------------------------------------
# Shared options
# --------------------------------------------------------------------------------------------------


def _parse_size(ctx, param, value: str | None):
    if value is None:
        return None
    try:
        w, h = (int(p) for p in value.lower().replace("×", "x").split("x"))
    except ValueError:
        raise click.BadParameter("expected WIDTHxHEIGHT, e.g. 512x768") from None
    if not (1 <= w <= 16384 and 1 <= h <= 16384):
        raise click.BadParameter("width and height must be between 1 and 16384")
    if w * h > CANVAS_MAX_PIXELS:  # the canvas refuses more (viwoscript.canvas.layers.MAX_PIXELS)
        raise click.BadParameter(f"{w}x{h} is {w * h:,} pixels; a canvas holds at most {CANVAS_MAX_PIXELS:,}")
    return (w, h)


CANVAS_MAX_PIXELS = 64 * 1024 * 1024


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


_CONFIG_OPTION = click.option("--config", "config_path", type=click.Path(dir_okay=False), metavar="FILE",
                              help="Configuration file (default: ./viwo.toml, else the user config dir).")


def runtime_options(fn):
    """--config --gas --timeout --size --out --root --runner."""
    opts = [
        _CONFIG_OPTION,
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
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def make_config(config_path=None, gas=None, timeout=None, size=None, out=None, roots=(), runner=None) -> Config:
    from .config import load_config

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
    from .runtime import Runtime

    # Entity opcodes use the default store (the user data folder, as `viwo images`), opened only if used.
    rt = Runtime(**cfg.runtime_kwargs(), on_event=terminal.on_event if terminal else None, store=True)
    if isinstance(cfg.grants, list):  # a [[grants]] table: report a bad one now, as a config error
        from .config import ConfigError
        from .errors import CapabilityError

        try:
            rt.caps  # noqa: B018 - builds the capability manager, which checks every grant
        except CapabilityError as e:
            raise ConfigError(f"config: [[grants]]: {e.message}", hint=e.hint or "see `viwo caps` and `viwo config`") from None
    return rt


# --------------------------------------------------------------------------------------------------
# Reading scripts
# --------------------------------------------------------------------------------------------------


def read_script(file: str, template_args: list | dict | None = None) -> tuple[str, str, list | None]:
    """(source text, filename, embedded args) of a script file, ``-`` (stdin) or an image viwo wrote."""
    from .errors import ScriptError

    if file == "-":
        return sys.stdin.read(), "<stdin>", None
    if file.startswith("template:"):  # a template saved with `viwo template save`
        from .cli_workflow import template_script
        from .syntax import from_python, to_json

        script, args = template_script(file, args=template_args)
        return to_json(from_python(script)) + "\n", file + ".json", args
    path = Path(file)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise click.BadParameter(f"cannot read {file}: {e.strerror or e}", param_hint="FILE") from None
    if data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        from .console import embedded_script
        from .syntax import from_python, to_json

        script, args = embedded_script(path)
        if isinstance(script, str):
            return script, file, args
        return to_json(from_python(script)) + "\n", file + ".json", args
    try:
        return data.decode("utf-8-sig"), file, None
    except UnicodeDecodeError as e:
        raise ScriptError(f"{file} is not UTF-8 text (byte {e.start})",
                          hint="scripts are UTF-8 .viwo or .json files, or PNG/JPEG/WebP images viwo saved") from None


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


def _render(err, text: str | None, color: bool) -> str:
    return err.render(None if err.source else text, color=color)


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------


@click.group(invoke_without_command=True, context_settings=CONTEXT)
@click.version_option(package_name="viwoscript", prog_name="viwo")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """ViwoScript: run, check and explore image-generation workflows.

    \b
    Examples:
      viwo run examples/hello.viwo        run a script, save its images to ./viwo-out
      viwo eval '(+ 1 2)'                 evaluate one expression
      viwo check *.viwo                   report every problem without running
      viwo ops canvas                     list the canvas opcodes
      viwo repl                           interactive session (also: plain `viwo` on a terminal)

    Exit codes: 0 ok, 1 script error, 2 usage or configuration error, 130 interrupted.
    """
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            ctx.invoke(repl)
        else:
            click.echo(ctx.get_help())


def _execute(cfg: Config, text: str, filename: str, *, args: list, quiet: bool, as_json: bool, debug: bool,
             check: bool, stem: str, show_null: bool) -> int:
    """Parse, check, run and print; returns the exit code."""
    from .console import ImageSaver, Terminal, sigint_interrupts, use_color
    from .errors import InterruptedError_, ViwoError
    from .nodes import to_data

    terminal = Terminal(ImageSaver(cfg.out_dir, stem), quiet=quiet)
    color = use_color(sys.stderr)
    rt = make_runtime(cfg, terminal)  # configuration errors leave through _guarded (exit 2)
    try:
        tree = rt.parse(text, filename=filename)
        if check:
            diagnostics = rt.check(tree)
            errors = [d for d in diagnostics if d.severity == "error"]
            for d in diagnostics if (errors or not quiet) else ():
                terminal.err(d.render(text, color=color))
            if errors:
                return EXIT_ERROR
        terminal.saver.script = to_data(tree)
        terminal.saver.args = args
        with sigint_interrupts(rt):
            value = rt.run(tree, filename=filename, args=args)
        terminal.stop_progress()
        try:
            terminal.result(value, as_json=as_json, show_null=show_null)
        except (ValueError, OSError) as e:  # a result with no JSON form; an image that cannot be saved
            terminal.error(f"error: {e}")
            return EXIT_ERROR
        return EXIT_OK
    except InterruptedError_:
        terminal.error("interrupted")
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        terminal.error("interrupted")
        return EXIT_INTERRUPTED
    except ViwoError as e:
        terminal.error(_render(e, text, color))
        if debug:
            import traceback

            terminal.error("".join(traceback.format_exception(e)).rstrip())
        return EXIT_ERROR
    finally:
        terminal.stop_progress()


_OUTPUT_OPTIONS = [
    click.option("--quiet", "-q", is_flag=True, help="No progress bars and no std.log output."),
    click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
    click.option("--debug", is_flag=True, help="Also print the Python traceback of an error."),
]


def output_options(fn):
    for opt in reversed(_OUTPUT_OPTIONS):
        fn = opt(fn)
    return fn


@cli.command(context_settings=CONTEXT)
@click.argument("file", metavar="FILE|-")
@click.option("--arg", "arg_pairs", multiple=True, metavar="NAME=VALUE",
              help="A script argument (repeatable; std.arg 0 is the first). VALUE is JSON, else text.")
@click.option("--args-json", metavar="JSON", help="Script arguments as a JSON array (or object, in key order).")
@runtime_options
@output_options
@click.option("--no-check", is_flag=True, help="Skip the static check before running.")
@_guarded
def run(file, arg_pairs, args_json, config_path, gas, timeout, size, out, roots, runner, quiet, as_json, debug,
        no_check):
    """Run a script: a .viwo (text) or .json file, - for stdin, or a PNG/JPEG/WebP that viwo saved.

    The static check runs first and reports every problem before anything runs. The result is printed
    (null prints nothing unless --json); images the script returns or outputs are saved as PNG in
    --out with their paths printed.

    \b
    Examples:
      viwo run examples/hello.viwo
      viwo run sweep.viwo --arg prompt='a red comet' --arg steps=20 --size 512x512
      echo '(+ 1 2)' | viwo run -
      viwo run viwo-out/hello-001.png      re-run the script embedded in an image
    """
    cfg = make_config(config_path, gas, timeout, size, out, roots, runner)
    if file.startswith("template:"):  # template parameters by name: --arg prompt="a cat" --arg seed=5
        args = None
        text, filename, embedded_args = read_script(file, template_args=template_args(arg_pairs, args_json))
    else:
        args = parse_args(arg_pairs, args_json)
        text, filename, embedded_args = read_script(file)
    if args is None or (embedded_args and not (arg_pairs or args_json)):  # a template, or an image re-run
        args = embedded_args or []
    stem = "stdin" if file == "-" else Path(file).stem
    if Path(file).suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):  # re-running hello-001.png → hello
        stem = re.sub(r"-\d+\Z", "", stem)
    raise Exit(_execute(cfg, text, filename, args=args, quiet=quiet, as_json=as_json, debug=debug,
                        check=not no_check, stem=stem, show_null=as_json))


@cli.command("eval", context_settings=CONTEXT)
@click.argument("expr")
@runtime_options
@output_options
@_guarded
def eval_(expr, config_path, gas, timeout, size, out, roots, runner, quiet, as_json, debug):
    """Evaluate one expression (text or JSON form) and print its value.

    \b
    Examples:
      viwo eval '(+ 1 2)'                          → 3
      viwo eval '["str.upper", "hi"]'              → "HI"
      viwo eval '(list.map [1 2 3] (std.lambda (x) (* x x)))' --json
    """
    cfg = make_config(config_path, gas, timeout, size, out, roots, runner)
    raise Exit(_execute(cfg, expr, "<eval>", args=[], quiet=quiet, as_json=as_json, debug=debug, check=False,
                        stem="eval", show_null=True))


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="Print the diagnostics as one JSON array.")
@_guarded
def check(files, as_json):
    """Report every problem in scripts without running them; exit 1 if there is any.

    \b
    Examples:
      viwo check examples/*.viwo
      viwo check --json workflow.json
    """
    from .console import use_color
    from .errors import ViwoError
    from .runtime import Runtime

    rt = Runtime()
    color = use_color(sys.stdout)
    found: list[dict] = []
    errors = warnings = 0
    for file in files:
        try:
            text, filename, _ = read_script(file)
            diagnostics = rt.check(text, filename=filename)
        except ViwoError as e:
            text, diagnostics = None, [e.to_diagnostic()]
        for d in diagnostics:
            errors += d.severity == "error"
            warnings += d.severity != "error"
            if as_json:
                found.append({"file": file, **d.to_dict()})
            else:
                click.echo(d.render(text, color=color))
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False, indent=2))
    elif errors or warnings:
        click.echo(f"\n{_plural(errors, 'error')} and {_plural(warnings, 'warning')} in {_plural(len(files), 'file')}",
                   err=True)
    else:
        click.echo(f"{_plural(len(files), 'file')} checked: no problems", err=True)
    raise Exit(EXIT_ERROR if errors or warnings else EXIT_OK)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--to", "target", type=click.Choice(["text", "json"]), help="Convert to this form.")
@click.option("--check", "check_only", is_flag=True, help="Exit 1 if a file is not canonically formatted.")
@click.option("--write", "-w", is_flag=True,
              help="Rewrite files in place (with --to: write NAME.viwo / NAME.json beside them).")
@click.option("--drop-comments", is_flag=True, help="Allow --write to drop comments (the printer loses them).")
@_guarded
def fmt(files, target, check_only, write, drop_comments):
    """Print scripts in canonical form, or convert between the text and JSON forms.

    Without --write the result goes to stdout (give one file, or - for stdin).

    \b
    Examples:
      viwo fmt sketch.viwo                   print canonically formatted
      viwo fmt --check examples/*.viwo       exit 1 if any would change
      viwo fmt --to json sketch.viwo         the JSON form on stdout
      viwo fmt --to json --write sketch.viwo writes sketch.json
    """
    from .repl_lexer import count_comments, has_code
    from .runtime import Runtime
    from .syntax import detect_syntax, to_json, to_text

    if check_only and (write or target):
        raise click.UsageError("--check compares files with their own canonical form; use it without --to/--write")
    if not (write or check_only) and len(files) > 1:
        raise click.UsageError("give one file to print, or use --write / --check for several")
    rt = Runtime()
    changed = failed = skipped = 0
    for file in files:
        if file != "-" and Path(file).is_file() and Path(file).read_bytes()[:8].startswith(IMAGE_MAGIC):
            raise click.BadParameter(f"{file} is an image; fmt works on script files", param_hint="FILE")
        text, filename, _ = read_script(file)
        syntax = detect_syntax(text, filename)
        tree = rt.parse(text, filename=filename, syntax=syntax)
        form = target or syntax
        new = to_text(tree, slots=rt.registry.slot_kind) if form == "text" else to_json(tree) + "\n"
        if form == "text" and not has_code(text, syntax):
            new = ""  # an empty script (or only comments) prints as nothing, not as `null`
        comments = count_comments(text) if syntax == "text" else 0
        if check_only:
            if comments:  # the canonical form has no comments: it would always differ
                skipped += 1
                click.echo(f"skipped {file}: it has comments, which the printer does not keep yet", err=True)
            elif new != text:
                changed += 1
                click.echo(f"would reformat {file}", err=True)
            continue
        if not write:
            if comments:
                click.echo(f"warning: {file}: {_plural(comments, 'comment')} not kept in the output", err=True)
            click.echo(new, nl=False)
            continue
        dest = Path(file) if form == syntax else Path(file).with_suffix(".viwo" if form == "text" else ".json")
        if file == "-":
            raise click.UsageError("--write needs files, not stdin")
        if comments and not drop_comments:
            click.echo(f"error: {file}: formatting would drop {_plural(comments, 'comment')}; not written\n"
                       "  = help: the printer does not keep comments yet; pass --drop-comments to write anyway",
                       err=True)
            failed += 1
            continue
        if dest.exists() and dest.read_text(encoding="utf-8") == new:
            continue
        if dest != Path(file) and dest.exists():
            click.echo(f"error: {file}: {dest} already exists; not overwritten\n"
                       f"  = help: move or remove {dest} first, or print with `viwo fmt --to {form} {file}`", err=True)
            failed += 1
            continue
        dest.write_text(new, encoding="utf-8")
        changed += 1
        click.echo(f"wrote {dest}", err=True)
    if check_only:
        note = f", {skipped} skipped" if skipped else ""
        click.echo(f"{_plural(changed, 'file')} would be reformatted, {len(files) - changed - skipped} already "
                   f"formatted{note}", err=True)
        raise Exit(EXIT_ERROR if changed else EXIT_OK)
    raise Exit(EXIT_ERROR if failed else EXIT_OK)


@cli.command(context_settings=CONTEXT)
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="The get_opcodes metadata (a JSON array).")
@_guarded
def ops(pattern, as_json):
    """List opcodes with their signatures, or describe one.

    PATTERN is an opcode name (describe it), a glob (canvas.*) or a substring (matching names and
    categories).

    \b
    Examples:
      viwo ops                  every opcode
      viwo ops str.             the string opcodes
      viwo ops std.let          one opcode in full
      viwo ops --json > ops.json
    """
    from . import describe
    from .runtime import Runtime

    rt = Runtime()
    specs = describe.match_ops(rt.registry, pattern)
    if as_json:
        click.echo(json.dumps([s.to_metadata() for s in specs], ensure_ascii=False, indent=2))
        raise Exit(EXIT_OK)
    if not specs:
        hint = describe.suggest(rt.registry, pattern)
        click.echo(f"no opcode matches {pattern!r}{hint}", err=True)
        raise Exit(EXIT_ERROR)
    console = describe.console()
    if pattern and len(specs) == 1 and specs[0].name == pattern:
        console.print(describe.describe_op(specs[0]))
    else:
        console.print(describe.op_list(specs))


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="get_capability_metadata plus availability, as JSON.")
@_CONFIG_OPTION
@_guarded
def caps(as_json, config_path):
    """List the capabilities: available or not (and why), their methods and parameters."""
    from . import describe

    cfg = make_config(config_path)
    rt = make_runtime(cfg)
    entries = describe.capabilities(rt)
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False, indent=2))
        raise Exit(EXIT_OK)
    describe.console().print(describe.caps_view(entries))


@cli.command("config", context_settings=CONTEXT)
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.option("--path", "path_only", is_flag=True, help="Print only the path of the file in use.")
@_guarded
def config_(config_path, gas, timeout, size, out, roots, runner, as_json, path_only):
    """Show the effective configuration and where each value came from.

    The file read is --config FILE, else ./viwo.toml, else viwo.toml in the user config directory.
    The same flags as `viwo run` (--gas, --size, ...) show how they override it.
    """
    import os

    from . import describe
    from .config import user_config_file

    cfg = make_config(config_path, gas, timeout, size, out, roots, runner)
    if path_only:
        if cfg.path is None:
            raise Exit(EXIT_ERROR)
        click.echo(str(cfg.path))
        raise Exit(EXIT_OK)
    from .config import RELEVANT_ENV

    env = {k: os.environ[k] for k in RELEVANT_ENV if k in os.environ}
    if as_json:
        click.echo(json.dumps({"file": str(cfg.path) if cfg.path else None, "settings": cfg.to_dict(),
                               "environment": env}, ensure_ascii=False, indent=2))
        raise Exit(EXIT_OK)
    describe.console().print(describe.config_view(cfg, env, [Path.cwd() / "viwo.toml", user_config_file()]))
    problem = grants_problem(cfg)
    if problem is not None:
        from .console import use_color

        click.echo("\n" + problem.render(color=use_color(sys.stderr)), err=True)
        raise Exit(EXIT_USAGE)


def grants_problem(cfg: Config):
    """The error the configured grants cause (an unknown type or limit), or None."""
    if cfg.grants in ("default", []):
        return None
    from .errors import ViwoError

    try:
        make_runtime(cfg).caps  # noqa: B018 - creating the manager applies the grants
    except ViwoError as e:
        return e
    except ImportError:
        return None
    return None


@cli.command(context_settings=CONTEXT)
@runtime_options
@click.option("--json", "as_json", is_flag=True, help="Start with JSON output (toggle with :json).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars and no std.log output.")
@click.option("--history", "history_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="History file (default: in the user state dir).")
@click.option("--no-history", is_flag=True, help="Keep no history file.")
@_guarded
def repl(config_path=None, gas=None, timeout=None, size=None, out=None, roots=(), runner=None, as_json=False,
         quiet=False, history_path=None, no_history=False):
    """Interactive session: variables, canvas and capabilities persist between inputs.

    Type :help inside for the meta commands. Not on a terminal, it reads plain lines
    (echo '(+ 1 2)' | viwo repl) and exits 1 if any input failed.
    """
    from .repl import run_repl

    cfg = make_config(config_path, gas, timeout, size, out, roots, runner)
    raise Exit(run_repl(cfg, as_json=as_json, quiet=quiet, history=None if no_history else (history_path or "")))


@cli.group("models", context_settings=CONTEXT)
def models() -> None:
    """Model helpers (needs the diffusion extra: pip install 'viwoscript[diffusion]')."""


@models.command("make-tiny", context_settings=CONTEXT)
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--family", default="sd15", show_default=True,
              type=click.Choice(["sd15", "sdxl", "sd15-inpaint", "sd15-controlnet", "sdxl-controlnet"]),
              help="Which pipeline layout to build.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same weights.")
def make_tiny(directory, family, seed) -> None:
    """Build a tiny random-weight model in DIRECTORY (diffusers layout) to try workflows without weights.

    \b
    Example:
      viwo models make-tiny tiny-sd15 && printf '[models]\\ndefault = "tiny-sd15"\\n' > viwo.toml
    """
    try:
        from .models.tiny import make_tiny as build
    except ImportError as e:  # the diffusion extra is missing
        raise click.ClickException(f"{e}; install it with: pip install 'viwoscript[diffusion]'") from None
    try:
        import torch  # noqa: F401
    except ImportError:
        raise click.ClickException("torch is not installed: pip install 'viwoscript[diffusion]'") from None
    path = build(directory, family, seed=seed)
    click.echo(f"{family} tiny model written to {path}")


def _attach_workflow_commands() -> None:
    from .cli_workflow import WORKFLOW_COMMANDS

    for command in WORKFLOW_COMMANDS:
        cli.add_command(command)


_attach_workflow_commands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: click's handling, except that Ctrl-C anywhere exits 130."""
    try:
        rv = cli.main(args=argv, prog_name="viwo", standalone_mode=False)
    except BrokenPipeError:  # `viwo ops | head`: the reader left; nothing to report
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        sys.exit(EXIT_OK)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
