"""The REPL's ``:`` commands (``:help``, ``:load``, ``:save``, ``:gas``...), as methods of the session."""

from __future__ import annotations

import dataclasses
import difflib
import sys
from pathlib import Path
from typing import Any

from ..errors import ViwoError
from ..terminal.console import shown_path, use_color

META_COMMANDS = {
    ":help": "this help",
    ":ops": "[PATTERN]  list opcodes (names, glob or substring)",
    ":doc": "NAME  describe an opcode",
    ":caps": "capabilities and whether they are available",
    ":canvas": "the canvas layers",
    ":save": "FILE  write this session's inputs as a script (.viwo, or .json)",
    ":load": "FILE  run a script (a file, template:NAME, or an image viwo saved) in this session",
    ":reset": "forget variables, canvas and capabilities",
    ":gas": "[N|unlimited]  show or set the gas budget per input",
    ":json": "toggle printing results as JSON",
    ":show": "open the latest image with the system viewer",
    ":quit": "leave (also Ctrl-D)",
}
ALIASES = {":q": ":quit", ":exit": ":quit", ":h": ":help", ":?": ":help"}


class MetaCommands:
    """``cmd_NAME(arg)`` runs ``:NAME arg``; it returns False (after printing why) when it failed."""

    def meta(self, line: str) -> bool:
        cmd, _, arg = line.partition(" ")
        cmd = ALIASES.get(cmd, cmd)
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
        if result is False:  # it said why; it counts as a failed input (the plain reader exits 1)
            return self._failed()
        return True

    def _print(self, renderable) -> None:
        from ..terminal.describe import console

        console(self.out).print(renderable)

    def cmd_help(self, arg: str) -> None:
        lines = ["Type an expression (text or JSON form); Enter runs it once it is complete.",
                 "Tab completes opcodes and variables; the bottom bar shows the signature of the call.", ""]
        lines += [f"  {c:<8} {d}" for c, d in META_COMMANDS.items()]
        lines += ["", "Ctrl-C cancels the running input, Ctrl-D leaves. Esc Enter inserts a newline."]
        print("\n".join(lines), file=self.out)

    def cmd_ops(self, arg: str) -> bool:
        from ..terminal.describe import match_ops, op_list, suggest

        specs = match_ops(self.runtime.registry, arg or None)
        if not specs:
            self.terminal.error(f"no opcode matches {arg!r}{suggest(self.runtime.registry, arg)}")
            return False
        self._print(op_list(specs))
        return True

    def cmd_doc(self, arg: str) -> bool:
        from ..terminal.describe import describe_op, suggest

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
        from ..terminal.describe import capabilities, caps_view

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
        from .transcript import session_script

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
        from ..terminal.loader import load_script

        if not arg:
            self.terminal.error(":load needs a file name (or template:NAME)")
            return False
        source = arg if arg.startswith("template:") else str(Path(arg).expanduser())
        script = load_script(source, self.runtime.parse)  # a ViwoError is reported by meta()
        # an image's recorded arguments, a template's parameter defaults
        return self.evaluate(script.text, filename=script.filename, tree=script.tree, args=script.args)

    def cmd_reset(self, arg: str) -> None:
        self.runtime = self._new_runtime()
        self.inputs.clear()
        self.trees.clear()
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
    from ..values import to_text

    return to_text(v)
