"""``viwo repl``: an interactive session over one Runtime (prompt_toolkit), or a plain line reader.

The pieces are plain functions and classes so they can be tested without a terminal:
:func:`is_complete` (continue reading while the parse is incomplete), :func:`call_context` and
:func:`signature_fragments` (the bottom-toolbar signature help), :class:`ViwoCompleter` (opcode names
in call heads, variables elsewhere, meta commands), and :class:`ReplSession` (evaluation, output and
the ``:`` meta commands). :func:`run_repl` wires them to a terminal.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .console import ImageSaver, Terminal, shown_path, sigint_interrupts, use_color
from .errors import IncompleteInputError, InterruptedError_, ViwoError, ViwoSyntaxError

if TYPE_CHECKING:
    from .config import Config
    from .opcodes import OpSpec, Registry

PROMPT = "viwo> "
CONTINUATION = "  ... "
_WORD_RE = re.compile(r"[^\s()\[\]{}\",;:]*\Z")

META_COMMANDS = {
    ":help": "this help",
    ":ops": "[PATTERN]  list opcodes (names, glob or substring)",
    ":doc": "NAME  describe an opcode",
    ":caps": "capabilities and whether they are available",
    ":canvas": "the canvas layers",
    ":save": "FILE  write this session's inputs as a script (.viwo, or .json)",
    ":load": "FILE  run a script file in this session",
    ":reset": "forget variables, canvas and capabilities",
    ":gas": "[N|unlimited]  show or set the gas budget per input",
    ":json": "toggle printing results as JSON",
    ":show": "open the latest image with the system viewer",
    ":quit": "leave (also Ctrl-D)",
}
_ALIASES = {":q": ":quit", ":exit": ":quit", ":h": ":help", ":?": ":help"}


# --------------------------------------------------------------------------------------------------
# Continuation and signature help
# --------------------------------------------------------------------------------------------------


def is_complete(text: str, registry: Registry | None = None) -> bool:
    """Whether ``text`` is a whole input: it parses, or fails for a reason more lines cannot fix."""
    if not text.strip() or text.lstrip().startswith(":"):
        return True
    from .syntax import parse

    try:
        parse(text, filename="<repl>", slots=registry.slot_kind if registry is not None else None)
    except IncompleteInputError:
        return False
    except ViwoSyntaxError:
        return True
    return True


@dataclasses.dataclass
class _Frame:
    opener: str
    count: int = 0  # items started inside this bracket (the head included)
    head: str | None = None


def call_context(text: str) -> tuple[str, int] | None:
    """The innermost call the cursor (at the end of ``text``) is in: ``(opcode, argument index)``.

    The index is 0-based over the arguments after the head; -1 while the head itself is being typed.
    """
    stack: list[_Frame] = []
    i, n = 0, len(text)
    atom_start = -1
    in_string = False
    while i < n:
        c = text[i]
        if atom_start >= 0 and (c.isspace() or c in "()[]{}\",;:"):
            _end_atom(stack, text[atom_start:i])
            atom_start = -1
        if c == ";":
            nl = text.find("\n", i)
            i = n if nl == -1 else nl
            continue
        if c == '"':
            if stack:
                stack[-1].count += 1
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                in_string = True
                break
            i = j + 1
            continue
        if c in "([{":
            if stack:
                stack[-1].count += 1
            stack.append(_Frame(c))
        elif c in ")]}":
            if stack:
                stack.pop()
        elif not (c.isspace() or c in ",:") and atom_start < 0:
            atom_start = i
            if stack:
                stack[-1].count += 1
        i += 1
    in_item = in_string or atom_start >= 0
    for depth in range(len(stack) - 1, -1, -1):
        f = stack[depth]
        if f.opener != "(":
            continue
        if f.head is None:
            if atom_start >= 0 and depth == len(stack) - 1 and f.count == 1:
                return (text[atom_start:], -1)
            return None
        inner = depth < len(stack) - 1
        return (f.head, f.count - 2 if (inner or in_item) else f.count - 1)
    return None


def _end_atom(stack: list[_Frame], atom: str) -> None:
    if stack and stack[-1].opener == "(" and stack[-1].count == 1 and stack[-1].head is None:
        stack[-1].head = atom


def signature_fragments(spec: OpSpec, index: int) -> list[tuple[str, str]]:
    """prompt_toolkit formatted text: the signature with the current parameter highlighted."""
    from .opcodes import REQUIRED, _show

    out = [("class:signature", f"({spec.name}")]
    current = spec.param_at(index) if index >= 0 else None
    for p in spec.params:
        text = p.name + ("..." if p.variadic else "")
        if p.type not in ("any", "block", "name", "names"):
            text += f": {p.type}"
        if p.default is not REQUIRED and not p.variadic:
            text += f" = {_show(p.default)}"
        out.append(("class:signature", " "))
        out.append(("class:signature.current" if p is current else "class:signature", text))
    out.append(("class:signature", f") -> {spec.returns}"))
    if spec.description:
        from .describe import first_sentence

        out.append(("class:signature.doc", "  " + first_sentence(spec.description)))
    return out


def toolbar_fragments(text: str, registry: Registry) -> list[tuple[str, str]]:
    ctx = call_context(text)
    if ctx is None:
        return [("class:signature.doc", " Enter runs a complete input · Tab completes · :help · Ctrl-D quits")]
    head, index = ctx
    spec = registry.get(head)
    if spec is None:
        if index == -1:
            names = [n for n in registry.names() if n.startswith(head)][:6]
            if names:
                return [("class:signature.doc", " " + "  ".join(names))]
        return [("class:signature.doc", f" unknown opcode {head}" if index >= 0 else "")]
    return signature_fragments(spec, index)


# --------------------------------------------------------------------------------------------------
# Completion
# --------------------------------------------------------------------------------------------------


def _in_string(text: str) -> bool:
    line_quotes = 0
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and line_quotes % 2:
            i += 2
            continue
        if c == '"':
            line_quotes += 1
        elif c == ";" and not line_quotes % 2:
            nl = text.find("\n", i)
            if nl == -1:
                return False
            i = nl
        i += 1
    return bool(line_quotes % 2)


def completions(text: str, registry: Registry, variables: set[str] | dict) -> list[tuple[str, str, str]]:
    """``(completion, kind, meta)`` for the word before the cursor (the end of ``text``).

    Call heads complete opcode names; argument positions complete variables and ``true``/``false``/
    ``null``; a line starting with ``:`` completes meta commands (and opcode names after ``:doc``).
    """
    stripped = text.lstrip()
    if stripped.startswith(":"):
        cmd, sep, arg = stripped.partition(" ")
        if not sep:
            return [(c, "command", META_COMMANDS[c]) for c in META_COMMANDS if c.startswith(cmd)]
        if cmd in (":doc", ":ops") and " " not in arg:
            return [(n, "opcode", "") for n in registry.names() if n.startswith(arg)]
        return []
    if _in_string(text):
        return []
    word = _WORD_RE.search(text).group(0)
    before = text[: len(text) - len(word)].rstrip(" \t")
    if before.endswith("("):
        names = registry.names()
        hits = [n for n in names if n.startswith(word)]
        if not hits and word:
            hits = [n for n in names if word in n]
        return [(n, "opcode", registry.get(n).signature()) for n in hits]
    out = [(v, "variable", _type_of(variables, v)) for v in sorted(variables) if v.startswith(word)]
    out += [(k, "keyword", "") for k in ("true", "false", "null") if k.startswith(word) and word]
    return out


def completion_word(text: str) -> str:
    """The text a completion replaces: the symbol before the cursor, or the meta command/argument."""
    stripped = text.lstrip()
    if stripped.startswith(":"):
        cmd, sep, arg = stripped.partition(" ")
        return arg if sep else cmd
    return _WORD_RE.search(text).group(0)


def _type_of(variables, name: str) -> str:
    if isinstance(variables, dict):
        from .values import typeof

        return typeof(variables.get(name))
    return ""


def _make_completer(session: ReplSession):
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    paths = PathCompleter(expanduser=True)

    class ViwoCompleter(Completer):
        """Completion from the live Runtime: its opcodes and the session's variables."""

        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            stripped = text.lstrip()
            if stripped.startswith((":load ", ":save ")):
                arg = stripped.split(" ", 1)[1]
                yield from paths.get_completions(Document(arg, len(arg)), complete_event)
                return
            rt = session.runtime
            word = completion_word(text)
            for value, _kind, meta in completions(text, rt.registry, _all_vars(rt)):
                yield Completion(value, start_position=-len(word), display_meta=meta)

    return ViwoCompleter()


def _all_vars(runtime) -> dict:
    out: dict = {}
    scope = runtime.globals
    chain = []
    while scope is not None:
        chain.append(scope)
        scope = scope.parent
    for s in reversed(chain):
        out.update(s.vars)
    return out


# --------------------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------------------


class ReplSession:
    """One REPL's state: its Runtime, output, the inputs that ran (for ``:save``) and the options."""

    def __init__(self, cfg: Config, *, as_json: bool = False, quiet: bool = False, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, progress: bool | None = None):
        self.cfg = cfg
        self.as_json = as_json
        self.terminal = Terminal(ImageSaver(cfg.out_dir, "repl"), quiet=quiet, progress=progress,
                                 stdout=stdout, stderr=stderr)
        self.inputs: list[str] = []
        self.failures = 0
        self.done = False
        self.runtime = self._new_runtime()

    def _new_runtime(self):
        from .runtime import Runtime

        return Runtime(**self.cfg.runtime_kwargs(), on_event=self.terminal.on_event)

    @property
    def out(self) -> TextIO:
        return self.terminal.stdout

    # --- evaluation ------------------------------------------------------------------------------
    def handle(self, text: str) -> bool:
        """Run one complete input (code or a meta command); False if it failed."""
        if not text.strip():
            return True
        if text.lstrip().startswith(":"):
            return self.meta(text.strip())
        return self.evaluate(text)

    def evaluate(self, text: str, *, filename: str = "<repl>", record: bool = True) -> bool:
        from .checker import check_tree

        t = self.terminal
        color = use_color(t.stderr)
        try:
            tree = self.runtime.parse(text, filename=filename)
            # The static check first (with the session's variables known): nothing runs if it fails.
            diagnostics = check_tree(tree, self.runtime.registry, known_names=set(_all_vars(self.runtime)))
            for d in diagnostics:
                t.error(d.render(text, color=color))
            if any(d.severity == "error" for d in diagnostics):
                return self._failed()
            with sigint_interrupts(self.runtime):
                value = self.runtime.run(tree, scope=self.runtime.globals, filename=filename)
            t.stop_progress()
            if record:  # it ran: part of the session for :save, whatever happens when printing it
                self.inputs.append(text.strip("\n"))
            t.result(value, as_json=self.as_json)
        except (InterruptedError_, KeyboardInterrupt):
            t.error("interrupted")
            return self._failed()
        except ViwoError as e:
            t.error(e.render(None if e.source else text, color=color))
            return self._failed()
        except (ValueError, OSError) as e:  # a result with no JSON form; an image that cannot be saved
            t.error(f"error: {e}")
            return self._failed()
        except Exception as e:  # noqa: BLE001 - a bug must not end the session
            t.error(f"internal error: {type(e).__name__}: {e} (this is a bug; the session goes on)")
            return self._failed()
        finally:
            t.stop_progress()
        return True

    def _failed(self) -> bool:
        self.failures += 1
        return False

    # --- meta commands ---------------------------------------------------------------------------
    def meta(self, line: str) -> bool:
        cmd, _, arg = line.partition(" ")
        cmd = _ALIASES.get(cmd, cmd)
        arg = arg.strip()
        handler = getattr(self, "cmd_" + cmd[1:], None) if cmd in META_COMMANDS else None
        if handler is None:
            close = difflib.get_close_matches(cmd, list(META_COMMANDS), n=1)
            hint = f"did you mean {close[0]}?" if close else ":help lists the commands"
            self.terminal.error(f"unknown command {cmd}; {hint}")
            return self._failed()
        try:
            result = handler(arg)
        except ViwoError as e:
            self.terminal.error(e.render(color=use_color(self.terminal.stderr)))
            return self._failed()
        return result is not False

    def _print(self, renderable) -> None:
        from .describe import console

        console(self.out).print(renderable)

    def cmd_help(self, arg: str) -> None:
        lines = ["Type an expression (text or JSON form); Enter runs it once it is complete.",
                 "Tab completes opcodes and variables; the bottom bar shows the signature of the call.", ""]
        lines += [f"  {c:<8} {d}" for c, d in META_COMMANDS.items()]
        lines += ["", "Ctrl-C cancels the running input, Ctrl-D leaves. Esc Enter inserts a newline."]
        print("\n".join(lines), file=self.out)

    def cmd_ops(self, arg: str) -> bool:
        from .describe import match_ops, op_list, suggest

        specs = match_ops(self.runtime.registry, arg or None)
        if not specs:
            self.terminal.error(f"no opcode matches {arg!r}{suggest(self.runtime.registry, arg)}")
            return False
        self._print(op_list(specs))
        return True

    def cmd_doc(self, arg: str) -> bool:
        from .describe import describe_op, suggest

        if not arg:
            self.terminal.error(":doc needs an opcode name, e.g. :doc std.let")
            return False
        spec = self.runtime.registry.get(arg)
        if spec is None:
            self.terminal.error(f"no opcode {arg!r}{suggest(self.runtime.registry, arg)}")
            return False
        self._print(describe_op(spec))
        return True

    def cmd_caps(self, arg: str) -> None:
        from .describe import capabilities, caps_view

        self._print(caps_view(capabilities(self.runtime)))

    def cmd_canvas(self, arg: str) -> bool:
        reg = self.runtime.registry
        if "canvas.layers" not in reg:
            self.terminal.error("the canvas opcodes are not installed in this runtime")
            return False
        layers = self.runtime.run("(canvas.layers)", scope=self.runtime.globals, filename="<:canvas>")
        size = self.runtime.canvas_size
        if "canvas.get_size" in reg:
            size = self.runtime.run("(canvas.get_size)", scope=self.runtime.globals, filename="<:canvas>")
        self._print(canvas_table(layers, tuple(size)))
        return True

    def cmd_save(self, arg: str) -> bool:
        if not arg:
            self.terminal.error(":save needs a file name, e.g. :save session.viwo")
            return False
        path = Path(arg).expanduser()
        text = session_script(self.inputs, json_form=path.suffix.lower() == ".json",
                              registry=self.runtime.registry)
        if not text.endswith("\n"):
            text += "\n"
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as e:
            self.terminal.error(f":save: cannot write {path}: {e.strerror or e}")
            return False
        print(f"saved {len(self.inputs)} input{'s' if len(self.inputs) != 1 else ''} to {path}", file=self.out)
        return True

    def cmd_load(self, arg: str) -> bool:
        from .cli import read_script

        if not arg:
            self.terminal.error(":load needs a file name")
            return False
        import click

        try:
            text, filename, _ = read_script(str(Path(arg).expanduser()))
        except click.BadParameter as e:
            self.terminal.error(f"error: {e.message}")
            return False
        return self.evaluate(text, filename=filename)

    def cmd_reset(self, arg: str) -> None:
        self.runtime = self._new_runtime()
        self.inputs.clear()
        print("reset: fresh variables, canvas and capabilities", file=self.out)

    def cmd_gas(self, arg: str) -> bool:
        limits = self.runtime.limits
        if arg:
            if arg == "unlimited":
                gas = None
            else:
                try:
                    gas = int(arg.replace("_", ""))
                except ValueError:
                    gas = 0
                if gas <= 0:
                    self.terminal.error(f':gas takes a positive integer or "unlimited", got {arg!r}')
                    return False
            self.runtime.limits = dataclasses.replace(limits, gas=gas)
        gas = self.runtime.limits.gas
        print(f"gas per input: {'unlimited' if gas is None else gas}", file=self.out)
        return True

    def cmd_json(self, arg: str) -> None:
        self.as_json = not self.as_json
        print(f"results print as {'JSON' if self.as_json else 'values'}", file=self.out)

    def cmd_show(self, arg: str) -> bool:
        if not self.terminal.saved:
            self.terminal.error("no image yet: images the session returns or outputs are saved and shown here")
            return False
        path = self.terminal.saved[-1][1]
        if not open_viewer(path):
            print(f"no image viewer found; the image is at {shown_path(path)}", file=self.out)
        return True

    def cmd_quit(self, arg: str) -> None:
        self.done = True


def open_viewer(path: Path) -> bool:
    """Open an image with the system viewer if one exists (no GUI: False)."""
    import os
    import shutil

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    if sys.platform.startswith("linux") and not shutil.which("xdg-open"):
        return False
    import click

    return click.launch(str(path)) == 0


def canvas_table(layers: Any, size: tuple[int, int]):
    from rich.table import Table

    table = Table(title=f"canvas {size[0]}×{size[1]}", box=None, header_style="bold", pad_edge=False,
                  title_justify="left")
    cols = ("id", "name", "type", "visible", "opacity", "locked")
    for c in cols:
        table.add_column(c)
    for layer in layers if isinstance(layers, list) else []:
        if isinstance(layer, dict):
            table.add_row(*(_cell(layer.get(c)) for c in cols))
    if not table.rows:
        table.caption = "no layers"
    return table


def _cell(v: Any) -> str:
    from .values import to_text

    return to_text(v)


def session_script(inputs: list[str], *, json_form: bool = False, registry: Registry | None = None) -> str:
    """The inputs that ran, as one script (text form; or the JSON form of the same tree)."""
    if not json_form:
        return "\n".join(inputs) + ("\n" if inputs else "")
    from .nodes import Array, Atom
    from .syntax import parse, to_json

    slots = registry.slot_kind if registry is not None else None
    forms = [parse(t, filename="<repl>", slots=slots) for t in inputs]
    flat = []
    for f in forms:  # one input of several forms is itself a top-level seq: splice it
        if isinstance(f, Array) and f.head == "std.seq" and len(f.items) > 2:
            flat.extend(f.args)
        else:
            flat.append(f)
    tree = flat[0] if len(flat) == 1 else Array((Atom("std.seq"), *flat))
    return to_json(tree) + "\n"


# --------------------------------------------------------------------------------------------------
# Front ends
# --------------------------------------------------------------------------------------------------


def run_plain(session: ReplSession, stdin: TextIO | None = None) -> int:
    """Read inputs line by line (no prompts): for pipes and files. Exit 1 if any input failed."""
    stdin = stdin or sys.stdin
    buf: list[str] = []
    for line in stdin:
        if not buf and line.lstrip().startswith(":"):
            session.handle(line.strip())
        else:
            buf.append(line)
            text = "".join(buf)
            if not is_complete(text, session.runtime.registry):
                continue
            buf.clear()
            session.handle(text)
        if session.done:
            break
    if buf and "".join(buf).strip() and not session.done:
        session.handle("".join(buf))  # reports the unclosed input
    return 1 if session.failures else 0


def default_history_file() -> Path:
    import platformdirs

    return platformdirs.user_state_path("viwoscript") / "repl_history"


def build_prompt_session(session: ReplSession, history: str | None = "", *, input=None, output=None):
    """The prompt_toolkit PromptSession (separate so tests can drive it with pipe input)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
    from prompt_toolkit.filters import has_completions
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.lexers import PygmentsLexer
    from prompt_toolkit.styles import Style

    from .repl_lexer import lexer_for

    if history is None:
        hist = InMemoryHistory()
    else:
        path = Path(history) if history else default_history_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        hist = FileHistory(str(path))

    kb = KeyBindings()

    @kb.add("enter", filter=~has_completions)
    def _enter(event):
        buf = event.current_buffer
        doc = buf.document
        if doc.text_after_cursor.strip() == "" and is_complete(buf.text, session.runtime.registry):
            buf.validate_and_handle()
        else:  # still open, or editing inside the input: a new line, indented by the open brackets
            buf.insert_text("\n" + "  " * _open_depth(doc.text_before_cursor))

    @kb.add("escape", "enter")
    def _newline(event):
        event.current_buffer.insert_text("\n")

    style = Style.from_dict({
        "pygments.comment": "italic #888888",
        "pygments.literal.string": "ansigreen",
        "pygments.literal.string.escape": "ansiyellow",
        "pygments.literal.number": "ansicyan",
        "pygments.keyword": "ansimagenta",
        "pygments.name.function": "bold ansiblue",
        "pygments.name.exception": "ansired",
        "pygments.error": "bg:ansired ansiwhite",
        "prompt": "bold",
        "bottom-toolbar": "noreverse bg:#222222 #aaaaaa",
        "signature": "#aaaaaa",
        "signature.current": "bold underline ansiwhite",
        "signature.doc": "#777777",
    })

    def toolbar():
        from prompt_toolkit.application import get_app

        doc = get_app().current_buffer.document
        return toolbar_fragments(doc.text_before_cursor, session.runtime.registry)

    return PromptSession(
        message=[("class:prompt", PROMPT)],
        multiline=True,
        prompt_continuation=lambda width, line_number, wrap_count: CONTINUATION.rjust(width),
        history=hist,
        auto_suggest=AutoSuggestFromHistory(),
        lexer=PygmentsLexer(lexer_for(session.runtime.registry.names())),
        completer=_make_completer(session),
        complete_while_typing=False,
        bottom_toolbar=toolbar,
        key_bindings=kb,
        style=style,
        include_default_pygments_style=False,
        input=input,
        output=output,
    )


def _open_depth(text: str) -> int:
    depth = 0
    in_str = False
    i = 0
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == ";":
            nl = text.find("\n", i)
            i = len(text) if nl == -1 else nl
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        i += 1
    return depth


def run_interactive(session: ReplSession, prompt_session) -> int:
    from . import __version__

    print(f"viwoscript {__version__} · :help for commands · Ctrl-D to quit", file=session.out)
    while not session.done:
        try:
            text = prompt_session.prompt()
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the input
        except EOFError:
            break
        try:
            session.handle(text)
        except KeyboardInterrupt:
            session.terminal.error("interrupted")
    return 0


def run_repl(cfg: Config, *, as_json: bool = False, quiet: bool = False, history: str | None = "",
             stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Start the REPL: prompt_toolkit on a terminal, the plain reader otherwise."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty() and stdout.isatty()
    session = ReplSession(cfg, as_json=as_json, quiet=quiet, stdout=stdout,
                          progress=None if interactive else False)
    if not interactive:
        return run_plain(session, stdin)
    return run_interactive(session, build_prompt_session(session, history))
