"""One REPL session: its Runtime, the inputs that ran, evaluation and output."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO

from ..errors import InterruptedError_, ViwoError
from ..terminal.console import ImageSaver, Terminal, out_dir_problem, sigint_interrupts, use_color
from .commands import MetaCommands
from .completion import all_vars
from .transcript import session_tree

if TYPE_CHECKING:
    from ..config import Config
    from ..nodes import Node


class ReplSession(MetaCommands):
    """One REPL's state: its Runtime, output, the inputs that ran (for ``:save`` and for the script embedded in
    the images the session saves) and the options. The ``:`` commands are in :class:`MetaCommands`."""

    def __init__(self, cfg: Config, *, as_json: bool = False, quiet: bool = False, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, progress: bool | None = None):
        self.cfg = cfg
        self.as_json = as_json
        self.terminal = Terminal(ImageSaver(cfg.out_dir, "repl"), quiet=quiet, progress=progress,
                                 stdout=stdout, stderr=stderr)
        self.inputs: list[str] = []  # the text of each input that ran
        self.trees: list[Node] = []  # and its tree
        self.failures = 0
        self.done = False
        self.runtime = self._new_runtime()
        problem = out_dir_problem(cfg.out_dir)
        if problem is not None:  # said at the start, not after an input computed an image
            self.terminal.err(f"warning: images made in this session cannot be saved: {problem}", style="yellow")

    def _new_runtime(self):
        from ..runtime import Runtime

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

    def evaluate(self, text: str | None, *, filename: str = "<repl>", record: bool = True,
                 tree: Node | None = None, args: list | None = None) -> bool:
        """Check and run one input: ``text``, or an already loaded ``tree`` (``:load`` of an image), with the
        script arguments ``args`` (``std.arg``) if given."""
        from ..checker import check_tree

        t = self.terminal
        color = use_color(t.stderr)
        try:
            if tree is None:
                tree = self.runtime.parse(text, filename=filename)
            # The static check first (with the session's variables known): nothing runs if it fails.
            diagnostics = check_tree(tree, self.runtime.registry, known_names=set(all_vars(self.runtime)))
            for d in diagnostics:
                t.error(d.render(text, color=color))
            if any(d.severity == "error" for d in diagnostics):
                return self._failed()
            # Images this input saves carry the session's script: every input that ran, then this one.
            t.saver.script = lambda: self.script_data(tree)
            with sigint_interrupts(self.runtime):
                value = self.runtime.run(tree, scope=self.runtime.globals, filename=filename, args=args,
                                         record=self.script_data(tree))
            t.stop_progress()
            if record:  # it ran: part of the session for :save, whatever happens when printing it
                self.record(text, tree)
                t.saver.script = lambda: self.script_data()
            t.result(value, as_json=self.as_json, limits=self.runtime.limits)
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

    def record(self, text: str | None, tree: Node) -> None:
        """Keep an input that ran (its text; the text form of its tree when it came without text)."""
        if text is None:
            from ..syntax import to_text

            text = to_text(tree, slots=self.runtime.registry.slot_kind)
        self.inputs.append(text.strip("\n"))
        self.trees.append(tree)

    def script_data(self, current: Node | None = None) -> Any:
        """The session as one script (JSON data): the inputs that ran, and ``current`` if given."""
        from ..nodes import to_data

        return to_data(session_tree([*self.trees, *([current] if current is not None else [])]))

    def _failed(self) -> bool:
        self.failures += 1
        return False
