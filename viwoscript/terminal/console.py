"""The terminal side of ``viwo run`` and ``viwo repl``: results, runtime events, progress bars, images.

A :class:`Terminal` is the ``on_event`` callback of the Runtime the command line builds. Events arrive
on the evaluation thread; everything printed goes through one lock. Rich is imported only when a
terminal wants colour or a progress bar, so ``viwo run`` in a pipe stays quick.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from ..values import Image, to_json_text, to_json_value
from ..values import display as values_display

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
WIDTH = 88
#: Images a Terminal remembers (to save an image shown twice only once, and for the REPL's :show).
RECENT_IMAGES = 64


def use_color(stream: TextIO) -> bool:
    """Colour on a terminal; ``NO_COLOR`` turns it off and ``FORCE_COLOR`` on (both conventional)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class sigint_interrupts:  # noqa: N801 - used as a context manager
    """While a script runs, Ctrl-C asks the Runtime to stop cooperatively instead of raising.

    The script then raises ``InterruptedError_`` at its next poll and unwinds normally. A second
    Ctrl-C (a script stuck in a long host call) raises ``KeyboardInterrupt`` to give control back.
    Off the main thread this does nothing (signal handlers live on the main thread).
    """

    def __init__(self, runtime):
        self.runtime = runtime
        self.count = 0
        self.old = None

    def _handler(self, signum, frame):
        self.count += 1
        if self.count > 1 or getattr(self.runtime, "_current", None) is None:
            raise KeyboardInterrupt
        self.runtime.interrupt()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
            self.old = None
        return False


# --------------------------------------------------------------------------------------------------
# Values as text
# --------------------------------------------------------------------------------------------------


def display(v: Any, width: int = WIDTH, budget: Any = None) -> str:
    """A result as the REPL and ``viwo run`` print it (``viwoscript.values.display``)."""
    return values_display(v, width, budget, "printing the result")


def find_images(v: Any) -> list[Image]:
    """Every Image inside a result (lists and objects walked, each image once, in order)."""
    out: list[Image] = []
    seen: set[int] = set()
    stack = [v]  # iterative: a result nested 100,000 deep must not overflow the stack
    while stack:
        x = stack.pop()
        if isinstance(x, Image):
            if id(x) not in seen:
                seen.add(id(x))
                out.append(x)
        elif isinstance(x, list | dict) and id(x) not in seen:
            seen.add(id(x))
            items = list(x.values() if isinstance(x, dict) else x)
            stack.extend(reversed(items))
    return out


#: Results nested deeper than this are refused rather than printed (printing would recurse that deep).
MAX_PRINT_DEPTH = 200


def nesting_depth(v: Any, limit: int) -> int:
    """How deeply lists and objects nest in ``v`` (counting stops past ``limit``)."""
    deepest = 0
    seen: set[int] = set()  # a value that contains itself is printed as [...] once, not followed
    stack = [(v, 0)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, list | dict) and id(x) not in seen:
            seen.add(id(x))
            if d + 1 > deepest:
                deepest = d + 1
                if deepest > limit:
                    return deepest
            stack.extend((i, d + 1) for i in (x.values() if isinstance(x, dict) else x))
    return deepest


def json_result(v: Any, paths: dict[int, Path] | None = None, budget: Any = None) -> str:
    """``--json`` output: the value as JSON; an image is ``{"type": "image", ..., "path": ...}``."""
    paths = paths or {}

    def host(x: Any) -> Any:
        d = x.to_json()
        if isinstance(x, Image) and id(x) in paths:
            d["path"] = str(paths[id(x)])
        return d

    try:
        return to_json_text(v, None, budget, "printing the result", host_json=host, number=repr,
                            separators=(", ", ": "))
    except ValueError:
        raise ValueError("the result contains itself and has no JSON form") from None


def image_summary(image: Image) -> str:
    return repr(image)


def shown_path(path: Path) -> str:
    """A saved file's path as printed: relative to the working directory when inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------------------------------
# Saving images
# --------------------------------------------------------------------------------------------------


def save_png(image: Image, path: Path, script: Any = None, args: Any = None) -> Path:
    """Write ``image`` as PNG with the script that made it embedded (``viwoscript.io``'s ``viwo`` payload)."""
    from ..io.codec import write_image

    return write_image(image, path, script=script, args=args, format="PNG", op="save")


def out_dir_problem(out_dir: Path) -> str | None:
    """Why images cannot be saved into ``out_dir`` (made when the first image is saved), or None. Nothing is
    created: the folder, or the nearest folder above it that exists, must be a writable folder."""
    path = Path(out_dir)
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a folder" if probe == path else f"{probe} is a file, so {path} cannot be made"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable" if probe == path else f"{path} cannot be made: {probe} is not writable"
    return None


def may_make_images(tree: Any, registry: Any) -> bool:
    """Whether a script can make images to save: it calls an opcode returning an image, a capability method,
    a batch or an imported module (which may do either)."""
    from ..nodes import contains_call

    ops = {s.name for s in registry if s.returns == "image"} | {"std.call_method", "std.import", "batch.run"}
    return contains_call(tree, ops)


class ImageSaver:
    """Saves images into one folder: ``NAME.png`` for named images, else ``STEM-001.png``, ``-002``..."""

    def __init__(self, out_dir: Path, stem: str = "viwo"):
        self.out_dir = Path(out_dir)
        self.stem = _SAFE_NAME.sub("-", stem).strip("-.") or "viwo"
        #: JSON data of the running script, embedded in every PNG (or a function returning it, called per image:
        #: the REPL's script grows with the session)
        self.script: Any = None
        self.args: list | None = None  # and its arguments
        #: Where the run happened (``{"executor": "ray", "worker": "driver"}``), recorded in images that do not
        #: say already (images made on a worker name theirs; design §17)
        self.where: dict | None = None
        self._lock = threading.Lock()

    def save(self, image: Image, name: str | None = None) -> Path:
        with self._lock:
            if name:
                base = _SAFE_NAME.sub("-", name.removesuffix(".png")).strip("-.") or self.stem
                path = self.out_dir / f"{base}.png"
            else:
                path = self._next_free()
            script = self.script() if callable(self.script) else self.script
            if self.where and "executor" not in image.metadata:
                image = Image(image.pixels, {**image.metadata, **self.where})
            return save_png(image, path, script, self.args)

    def _next_free(self) -> Path:
        n = 1
        if self.out_dir.is_dir():
            pat = re.compile(re.escape(self.stem) + r"-(\d+)\.png\Z")
            used = [int(m.group(1)) for p in self.out_dir.iterdir() if (m := pat.match(p.name))]
            n = max(used, default=0) + 1
        return self.out_dir / f"{self.stem}-{n:03d}.png"


# --------------------------------------------------------------------------------------------------
# The terminal
# --------------------------------------------------------------------------------------------------


class Terminal:
    """Prints results and events for the command line; ``on_event`` is the Runtime's callback."""

    def __init__(self, saver: ImageSaver, *, quiet: bool = False, progress: bool | None = None,
                 stdout: TextIO | None = None, stderr: TextIO | None = None):
        self.saver = saver
        self.quiet = quiet
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.color = use_color(self.stdout)
        self.err_color = use_color(self.stderr)
        self.show_progress = (not quiet and self._isatty(self.stderr)) if progress is None else progress
        self.saved: list[tuple[Image, Path]] = []
        self._lock = threading.RLock()
        self._progress = None
        self._tasks: dict[str, Any] = {}
        self._refreshed = 0.0
        self._rich_err = None

    @staticmethod
    def _isatty(stream: TextIO) -> bool:
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False

    # --- output ------------------------------------------------------------------------------------
    def out(self, text: str, *, style: str | None = None, highlight: bool = False) -> None:
        with self._lock:
            if self.color and (style or highlight):
                from rich.console import Console
                from rich.highlighter import JSONHighlighter
                from rich.text import Text

                t = Text(text, style=style or "")
                if highlight:
                    JSONHighlighter().highlight(t)
                Console(file=self.stdout, force_terminal=True, soft_wrap=True, highlight=False).print(t)
            else:
                print(text, file=self.stdout, flush=True)

    def err(self, text: str, *, style: str | None = None) -> None:
        """A line on stderr (above any progress bars)."""
        with self._lock:
            if self._progress is not None:
                from rich.text import Text

                self._progress.console.print(Text(text, style=style or ""), soft_wrap=True)
            elif self.err_color and style:
                print(f"{_ANSI.get(style, '')}{text}\x1b[0m", file=self.stderr, flush=True)
            else:
                print(text, file=self.stderr, flush=True)

    def error(self, rendered: str) -> None:
        """An already rendered error (``ViwoError.render``)."""
        with self._lock:
            self.stop_progress()
            print(rendered, file=self.stderr, flush=True)

    # --- results -----------------------------------------------------------------------------------
    def save_images(self, value: Any) -> dict[int, Path]:
        """Save each image of a result once: an image shown again (the REPL) keeps its first path."""
        paths: dict[int, Path] = {}
        recent = {id(img): path for img, path in self.saved[-RECENT_IMAGES:]}
        for image in find_images(value):
            if id(image) in recent:
                paths[id(image)] = recent[id(image)]
                continue
            paths[id(image)] = self.saver.save(image)
            self.saved.append((image, paths[id(image)]))
        del self.saved[:-RECENT_IMAGES]  # keep memory bounded in long sessions
        return paths

    def result(self, value: Any, *, as_json: bool = False, show_null: bool = True, limits: Any = None) -> None:
        """Save the images in ``value`` and print it (pretty, or one JSON document), within ``limits``
        (the Runtime's: size, memory and a fresh ``timeout``)."""
        from ..limits import Budget

        budget = Budget(limits, "printing the result")
        depth = nesting_depth(value, MAX_PRINT_DEPTH)
        if depth > MAX_PRINT_DEPTH:
            from ..errors import ScriptError

            raise ScriptError(f"the result nests lists/objects more than {MAX_PRINT_DEPTH} levels deep; "
                              "it is not printed", hint="return a flatter value, or json.stringify it yourself")
        paths = self.save_images(value)
        if as_json:
            self.out(json_result(value, paths, budget))
            return
        if isinstance(value, Image):
            self.out(f"{image_summary(value)} → {shown_path(paths[id(value)])}", style="green")
            return
        if value is None and not show_null:
            return
        self.out(display(value, budget=budget), highlight=True, style="dim" if value is None else None)
        for image in find_images(value):
            self.out(f"{image_summary(image)} → {shown_path(paths[id(image)])}", style="green")

    # --- runtime events (called on the evaluation thread) -----------------------------------------
    def on_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "progress":
            self.progress(event)
        elif kind == "log":
            if not self.quiet:
                self.err(str(event.get("message", "")))
        elif kind == "warn":
            self.err(f"warning: {event.get('message', '')}", style="yellow")
        elif kind == "image":
            image = event.get("image")
            if isinstance(image, Image):
                path = self.saver.save(image, event.get("name"))
                self.saved.append((image, path))
                del self.saved[:-RECENT_IMAGES]
                self.err(f"{image_summary(image)} → {shown_path(path)}", style="green")
        elif kind == "send":
            if not self.quiet:
                payload = json.dumps(to_json_value(event.get("payload")), ensure_ascii=False)
                self.err(f"send {event.get('event')}: {payload}", style="dim")

    def progress(self, event: dict) -> None:
        if not self.show_progress:
            return
        task = str(event.get("task") or "working")
        total = event.get("total")
        step = event.get("step") or 0
        with self._lock:
            if self._progress is None:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                )

                console = Console(file=self.stderr, force_terminal=self._isatty(self.stderr) or None)
                self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                          TimeRemainingColumn(), console=console, transient=True)
                self._progress.start()
            p = self._progress
            tid = self._tasks.get(task)
            if tid is None:
                tid = self._tasks[task] = p.add_task(task, total=total)
            p.update(tid, completed=step, total=total)
            if total is not None and step >= total:
                p.remove_task(tid)
                del self._tasks[task]
            if self._tasks:
                now = time.monotonic()
                if now - self._refreshed > 0.05:  # rich also refreshes on its own; this keeps steps exact
                    self._refreshed = now
                    p.refresh()
            else:
                self.stop_progress()  # every task finished: the bars go away until the next one

    def stop_progress(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
                self._tasks.clear()


_ANSI = {"yellow": "\x1b[33m", "green": "\x1b[32m", "dim": "\x1b[2m", "red": "\x1b[31m", "bold": "\x1b[1m"}
