"""A Pygments lexer for the ViwoScript text form (REPL highlighting, comment detection for ``viwo fmt``).

The head symbol of a list is an opcode (``Name.Function``; ``Name.Exception`` when the lexer knows the
registry and the name is not in it), other bare symbols read variables (``Name.Variable``).
"""

from __future__ import annotations

from collections.abc import Iterable

from pygments.lexer import RegexLexer, bygroups
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Punctuation,
    String,
    Whitespace,
)

_END = r"(?=[\s()\[\]{},:;]|$)"
SYMBOL = r"(?!-?[0-9])[^\s()\[\]{}\",;:]+"


class ViwoLexer(RegexLexer):
    name = "ViwoScript"
    aliases = ["viwo", "viwoscript"]
    filenames = ["*.viwo"]

    #: Opcode names; when set, heads not in it are marked ``Name.Exception``.
    known: frozenset[str] | None = None

    tokens = {
        "root": [
            (r";[^\n]*", Comment.Single),
            (r"\s+", Whitespace),
            (r'"', String.Double, "string"),
            (r"(\()(\s*)(" + SYMBOL + ")", bygroups(Punctuation, Whitespace, Name.Function)),
            (r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?" + _END, Number),
            (r"(?:true|false|null)" + _END, Keyword.Constant),
            (r"[()\[\]{}]", Punctuation),
            (r"[,:]", Punctuation),
            (SYMBOL, Name.Variable),
            (r".", Error),
        ],
        "string": [
            (r'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})', String.Escape),
            (r"\\.", Error),
            (r'[^"\\\n]+', String.Double),
            (r'"', String.Double, "#pop"),
            (r"\n", Error, "#pop"),
        ],
    }

    def get_tokens_unprocessed(self, text, stack=("root",)):
        known = self.known
        for index, token, value in super().get_tokens_unprocessed(text, stack):
            if known is not None and token is Name.Function and value not in known:
                token = Name.Exception
            yield index, token, value


def lexer_for(names: Iterable[str]) -> type[ViwoLexer]:
    """A lexer class that knows these opcode names (prompt_toolkit's PygmentsLexer takes a class)."""
    return type("ViwoRegistryLexer", (ViwoLexer,), {"known": frozenset(names)})


def count_comments(text: str) -> int:
    """How many ``;`` comments a text-form source holds (strings are skipped)."""
    return sum(1 for tok, _ in ViwoLexer().get_tokens(text) if tok in Comment)


def has_code(text: str, syntax: str = "text") -> bool:
    """Whether a source holds anything but whitespace (and, in the text form, ``;`` comments)."""
    if syntax != "text":
        return bool(text.strip())
    return any(tok not in Comment and tok not in Whitespace and value.strip()
               for tok, value in ViwoLexer().get_tokens(text))
