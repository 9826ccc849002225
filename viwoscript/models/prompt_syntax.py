"""A1111's prompt syntax, parsed as AUTOMATIC1111's stable-diffusion-webui parses it (pure Python, no torch).

- :func:`parse_prompt_attention` turns a prompt into ``[text, weight]`` fragments: ``(word:1.2)`` sets a
  weight, ``(word)`` multiplies by 1.1, ``[word]`` divides by 1.1, brackets nest and multiply, ``\\(``,
  ``\\)``, ``\\[``, ``\\]`` and ``\\\\`` are literal characters, an unclosed bracket runs to the end of
  the prompt, and ``BREAK`` (upper case, a word of its own) becomes the fragment ``["BREAK", -1]`` that
  starts a new 75-token chunk. Same algorithm and the same results, fragment for fragment, as
  ``modules/prompt_parser.py: parse_prompt_attention`` (its quirks included: a ``BREAK`` inside brackets
  has its weight multiplied and is then read as the word "BREAK").
- :func:`extract_tags` removes extra-network tags (``<lora:name:0.8>``, ``<hypernet:...>``) from a prompt,
  as A1111 does before parsing attention, and returns them; the LoRA code reads the ``lora`` ones.
- :func:`unsupported_syntax` names A1111 syntax this parser does not implement (prompt editing
  ``[from:to:when]`` and alternation ``[a|b]``), which is then read as text, so callers can say so.

``tests/test_prompt_syntax.py`` holds golden tables of prompts and fragments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BREAK", "ROUND", "SQUARE", "Tag", "extract_tags", "parse_prompt_attention", "unsupported_syntax"]

#: Multiplier of ``(...)`` and of ``[...]``.
ROUND = 1.1
SQUARE = 1 / 1.1
#: The fragment ``BREAK`` becomes: ``[BREAK, -1.0]``.
BREAK = "BREAK"

_ATTENTION = re.compile(r"""
\\\(|
\\\)|
\\\[|
\\]|
\\\\|
\\|
\(|
\[|
:\s*([+-]?[.\d]+)\s*\)|
\)|
]|
[^\\()\[\]:]+|
:
""", re.X)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
_TAG = re.compile(r"<(\w+):([^>]+)>")


def parse_prompt_attention(text: str) -> list[list]:
    """``[[text, weight], ...]``: the prompt split into runs of equal attention weight (adjacent runs
    of the same weight merged); ``["BREAK", -1.0]`` marks a ``BREAK``. An empty prompt is
    ``[["", 1.0]]``. Never raises: any text parses (unbalanced brackets are closed at the end)."""
    res: list[list] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []

    def multiply_range(start: int, multiplier: float) -> None:
        for p in range(start, len(res)):
            res[p][1] *= multiplier

    for m in _ATTENTION.finditer(text):
        part = m.group(0)
        weight = m.group(1)
        if part.startswith("\\"):
            res.append([part[1:], 1.0])
        elif part == "(":
            round_brackets.append(len(res))
        elif part == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            multiply_range(round_brackets.pop(), _number(weight))
        elif part == ")" and round_brackets:
            multiply_range(round_brackets.pop(), ROUND)
        elif part == "]" and square_brackets:
            multiply_range(square_brackets.pop(), SQUARE)
        else:
            for i, piece in enumerate(_BREAK.split(part)):
                if i > 0:
                    res.append([BREAK, -1.0])
                res.append([piece, 1.0])

    for pos in round_brackets:
        multiply_range(pos, ROUND)
    for pos in square_brackets:
        multiply_range(pos, SQUARE)
    if not res:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):  # merge runs of identical weights
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    return res


def _number(text: str) -> float:
    """A weight as Python's ``float`` reads it; A1111 raises on ``(x:1.2.3)`` and ``(x:.)``, this reads the
    longest number at the start (``1.2``) and 1.0 when there is none, so that no prompt is an error."""
    try:
        return float(text)
    except ValueError:
        m = re.match(r"[+-]?(\d+\.?\d*|\.\d+)", text)
        return float(m.group(0)) if m else 1.0


@dataclass(frozen=True)
class Tag:
    """An extra-network tag ``<kind:arg1:arg2...>`` (``<lora:name:0.8>`` → kind ``lora``, args
    ``("name", "0.8")``), and the text it was written as."""

    kind: str
    args: tuple[str, ...]
    text: str


def extract_tags(text: str, kinds: tuple[str, ...] | None = None) -> tuple[str, list[Tag]]:
    """The prompt without its extra-network tags, and the tags in order. A1111's rule: a tag is
    ``<word:anything but '>'>``, removed with nothing put in its place, before attention is parsed.
    ``kinds`` limits what is removed (``("lora",)``); ``None`` removes every kind, as A1111 does."""
    tags: list[Tag] = []

    def found(m: re.Match) -> str:
        if kinds is not None and m.group(1) not in kinds:
            return m.group(0)
        tags.append(Tag(m.group(1), tuple(m.group(2).split(":")), m.group(0)))
        return ""

    return _TAG.sub(found, text), tags


_EDITING = re.compile(r"\[[^\[\]]*:[^\[\]]*:\s*[\d.]+\s*\]|\[[^\[\]:]*:\s*[\d.]+\s*\]")
_ALTERNATION = re.compile(r"(?<!\\)\[[^\[\]]*(?<!\\)\|[^\[\]]*\]")


def unsupported_syntax(text: str) -> list[str]:
    """Descriptions of A1111 syntax in ``text`` that this parser reads as plain text: prompt editing
    (``[from:to:when]``, ``[to:when]``) and alternation (``[a|b]``)."""
    out = []
    m = _EDITING.search(text)
    if m:
        out.append(f"prompt editing {m.group(0)} is not supported: it was read as text (weight 1/1.1)")
    m = _ALTERNATION.search(text)
    if m:
        out.append(f"alternation {m.group(0)} is not supported: it was read as text (weight 1/1.1)")
    return out
