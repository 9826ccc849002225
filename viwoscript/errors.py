"""Every error a script can cause, and the one renderer that shows them.

``ViwoError.message`` is the text a script sees when it catches the error with ``std.try`` (kept
identical to the original interpreter's texts); ``hint`` is one sentence on what to do; ``span``
points at the node that failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .nodes import Span


class ViwoError(Exception):
    """Base of every error a script can cause."""

    kind = "Error"
    #: Whether ``std.try`` may catch it. Timeouts and interrupts must always reach the host.
    catchable = True

    def __init__(self, message: str, span: Span | None = None, *, hint: str | None = None,
                 source: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span if span else None
        self.hint = hint
        self.source = source

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.message}"

    def located(self, span: Span | None) -> ViwoError:
        if self.span is None and span:
            self.span = span
        return self

    def render(self, source: str | None = None, *, color: bool = False) -> str:
        return render(self.kind, self.message, self.span, self.hint, source or self.source, color=color)

    def to_diagnostic(self) -> Diagnostic:
        return Diagnostic("error", self.kind, self.message, self.span, self.hint)


class ViwoSyntaxError(ViwoError):
    kind = "SyntaxError"


class IncompleteInputError(ViwoSyntaxError):
    """The source ends inside an unclosed list, object or string: a REPL should ask for more lines."""


class ViwoNameError(ViwoError):
    kind = "NameError"


class UnknownOpcodeError(ViwoNameError):
    pass


class ArgumentError(ViwoError):
    """Wrong number or type of arguments."""

    kind = "ArgumentError"


class ScriptError(ViwoError):
    """A runtime failure: std.throw, a bad operation, a failed conversion."""

    kind = "RuntimeError"


class LimitError(ViwoError):
    kind = "LimitError"


class GasExhaustedError(LimitError):
    pass


class DepthLimitError(LimitError):
    pass


class SizeLimitError(LimitError):
    pass


class MemoryLimitError(LimitError):
    """A run's values would take more memory than ``Limits.max_memory``."""


class TimeoutLimitError(LimitError):
    catchable = False


class InterruptedError_(LimitError):
    catchable = False


class CapabilityError(ViwoError):
    kind = "CapabilityError"


class InternalError(ViwoError):
    """A bug in viwoscript or a plugin, reported with the location of the script node that hit it."""

    kind = "InternalError"
    catchable = False


@dataclass(frozen=True)
class Diagnostic:
    severity: str  # "error" | "warning"
    kind: str
    message: str
    span: Span | None = None
    hint: str | None = None

    def render(self, source: str | None = None, *, color: bool = False) -> str:
        return render(self.kind, self.message, self.span, self.hint, source, severity=self.severity,
                      color=color)

    def to_dict(self) -> dict:
        d = {"severity": self.severity, "kind": self.kind, "message": self.message, "hint": self.hint}
        if self.span:
            d.update(file=self.span.file, line=self.span.line, col=self.span.col,
                     end_line=self.span.end_line, end_col=self.span.end_col)
        return d


_STYLES = {"error": "\x1b[1;31m", "warning": "\x1b[1;33m", "blue": "\x1b[1;34m", "reset": "\x1b[0m"}


#: Longest source line shown in full under an error; longer ones are cut around the caret.
MAX_SHOWN = 120


def render(kind: str, message: str, span: Span | None, hint: str | None, source: str | None, *,
           severity: str = "error", color: bool = False) -> str:
    """``error[Kind]: message`` then ``--> file:line:col``, the source line, a caret and the hint."""

    def paint(text: str, style: str) -> str:
        return f"{_STYLES[style]}{text}{_STYLES['reset']}" if color else text

    out = [paint(f"{severity}[{kind}]", severity) + f": {message}"]
    if span:
        out.append(paint("  --> ", "blue") + str(span))
        lines = source.splitlines() if source else []
        if 0 < span.line <= len(lines):
            text = lines[span.line - 1].expandtabs(1)
            gutter = str(span.line)
            pad = " " * len(gutter)
            if span.end_line == span.line and span.end_col > span.col:
                width = span.end_col - span.col
            else:
                width = max(1, len(text) - span.col + 1) if span.end_line > span.line else 1
            width = max(1, min(width, len(text) - span.col + 2))
            col = span.col
            if len(text) > MAX_SHOWN:  # a very long line: show a window around the caret
                start = max(0, min(col - 1 - MAX_SHOWN // 3, len(text) - MAX_SHOWN))
                text = ("…" if start else "") + text[start:start + MAX_SHOWN] + (
                    "…" if start + MAX_SHOWN < len(text) else "")
                col = col - start + (1 if start else 0)
                width = max(1, min(width, MAX_SHOWN - (col - 1)))
            out.append(paint(f" {pad} |", "blue"))
            out.append(paint(f" {gutter} | ", "blue") + text)
            out.append(paint(f" {pad} | ", "blue") + " " * (col - 1) + paint("^" * width, severity))
    if hint:
        out.append(paint("  = help: ", "blue") + hint)
    return "\n".join(out)
