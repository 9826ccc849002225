"""Source text → node tree (both forms), and node tree → source text (both forms).

The grammar (``grammar.lark``) knows only lists, atoms and comments. What a bare symbol means is
decided here, after parsing, from the opcode declarations: in a *name* slot (the bound name of
``std.let``, the parameters of ``std.lambda``, ...) it is that name as a string; anywhere else it
reads a variable (``x`` ≡ ``["std.var", "x"]``).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import IncompleteInputError, ViwoSyntaxError
from .nodes import Array, Atom, Node, Object, Span, from_data
from .values import LONE_SURROGATE

#: (opcode, argument index) -> "name" | "names" | None
SlotKinds = Callable[[str, int], str | None]

MAX_NESTING = 400
_KEYWORDS = {"true": True, "false": False, "null": None}
_SYMBOL_RE = re.compile(r"(?!-?[0-9])[^\s()\[\]{}\",;:\x00-\x1f\x7f]+\Z")
#: Symbols that look like numbers JavaScript writes but the language does not read as numbers.
_NOT_NUMBERS = {"NaN": "(/ 0 0) or (std.number \"NaN\")", "Infinity": "(/ 1 0) or (std.number \"Infinity\")",
                "-Infinity": "(/ -1 0) or (std.number \"-Infinity\")",
                "+Infinity": "(/ 1 0) or (std.number \"Infinity\")"}
_NUMBERISH = re.compile(r"[+-]?(?:\.[0-9]|[0-9])")



@lru_cache(maxsize=1)
def _parser():
    from lark import Lark  # noqa: PLC0415  (lazy: keep `import viwoscript` cheap)

    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, start=["text", "json"], parser="lalr", lexer="contextual",
                propagate_positions=True, maybe_placeholders=False, cache=_cache_file(grammar))


def _cache_file(grammar: str) -> str | bool:
    """Where lark keeps the built LALR tables: the user's own cache dir (never a shared temp dir, whose
    files another user could plant), keyed by grammar and lark version. False when it is not writable."""
    import hashlib

    import lark
    from platformdirs import user_cache_dir

    key = hashlib.sha256(f"{lark.__version__}\0{grammar}".encode()).hexdigest()[:16]
    folder = Path(user_cache_dir("viwoscript", appauthor=False))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    path = folder / f"grammar-{key}.lark-cache"
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return str(path)


#: The name slots of the language's binding forms, for callers that give the reader no declarations
#: (``slots=``). A Runtime always passes its own registry's (``Registry.slot_kind``), which also knows
#: the plugins' and host's opcodes; tests/test_syntax.py checks this table against the standard ones.
LANGUAGE_SLOTS: dict[tuple[str, int], str] = {
    ("std.let", 0): "name", ("std.var", 0): "name", ("std.set", 0): "name", ("std.for", 0): "name",
    ("std.try", 1): "name", ("std.lambda", 0): "names",
}


def default_slots(op: str, index: int) -> str | None:
    """The slot kind of argument ``index`` of ``op`` among the language's binding forms."""
    return LANGUAGE_SLOTS.get((op, index))


def detect_syntax(source: str, filename: str | None = None) -> str:
    """``json`` for ``.json`` files and sources whose first token is an array with a string head."""
    if filename and filename.lower().endswith(".json"):
        return "json"
    stripped = _strip_leading_comments(source)
    if stripped.startswith("["):
        rest = stripped[1:].lstrip()
        if rest.startswith('"'):
            # `["a" "b"]` is a text-form vector; JSON needs a comma or `]` after the string.
            end = _string_end(rest)
            if end is not None and rest[end:].lstrip()[:1] in (",", "]"):
                return "json"
    return "text"


def _strip_leading_comments(source: str) -> str:
    text = source.lstrip("\ufeff \t\r\n")
    while text.startswith(";"):
        text = text.split("\n", 1)[1].lstrip() if "\n" in text else ""
    return text


def _string_end(s: str) -> int | None:
    i = 1
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == '"':
            return i + 1
        i += 1
    return None


def parse(source: str, *, filename: str | None = None, syntax: str | None = None,
          slots: SlotKinds | None = None) -> Node:
    """Parse a script (text or JSON form) into a node tree with spans.

    Several top-level forms in the text form are wrapped in one ``std.seq``; an empty source is
    ``null``. Raises :class:`ViwoSyntaxError` (or :class:`IncompleteInputError` when the source
    just stops early).
    """
    if not isinstance(source, str):
        raise TypeError("parse() takes source text; use nodes.from_data for Python lists")
    syntax = syntax or detect_syntax(source, filename)
    if syntax not in ("text", "json"):
        raise ValueError(f"unknown syntax {syntax!r}: expected 'text' or 'json'")
    tree = _lark_parse(source, syntax, filename)
    builder = _Builder(filename, slots or default_slots)
    if syntax == "json":
        return builder.json(tree.children[0], 0)
    forms = [builder.form(child, 0) for child in tree.children]
    if not forms:
        return Atom(None, Span(1, 1, 1, 1, filename))
    if len(forms) == 1:
        return forms[0]
    first, last = forms[0].span, forms[-1].span
    span = Span(first.line, first.col, last.end_line, last.end_col, filename)
    return Array((Atom("std.seq", span), *forms), span)


def _lark_parse(source: str, syntax: str, filename: str | None):
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    try:
        return _parser().parse(source, start=syntax)
    except UnexpectedEOF:
        raise _incomplete(source, filename) from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            raise _incomplete(source, filename) from None
        span = Span(e.line, e.column, e.line, e.column + max(1, len(str(e.token))), filename)
        expected = _describe_expected(e.expected)
        raise ViwoSyntaxError(f"unexpected {_describe_token(e.token)}", span,
                              hint=f"expected {expected}" if expected else None, source=source) from None
    except UnexpectedCharacters as e:
        char = source[e.pos_in_stream] if e.pos_in_stream < len(source) else ""
        span = Span(e.line, e.column, e.line, e.column + 1, filename)
        if char == '"' and _unclosed_string(source, e.pos_in_stream):
            raise _incomplete(source, filename, "unclosed string") from None
        if char == '"':
            msg, hint = "invalid string", "strings use JSON escapes (\\n, \\t, \\\", \\\\, \\uXXXX) and no raw newlines"
        elif char in ",:" and syntax == "text":
            msg, hint = f"unexpected {char!r}", "text form separates items with spaces; use {\"key\": value} only for raw JSON objects"
        elif char.isdigit() or (char == "-" and source[e.pos_in_stream + 1:e.pos_in_stream + 2].isdigit()):
            at, msg, hint = _number_problem(source, e.pos_in_stream)
            span = Span(e.line, e.column + at, e.line, e.column + at + 1, filename)
        elif char < " " or char == "\x7f":
            msg, hint = f"unexpected control character U+{ord(char):04X}", "remove it (is the file text?)"
        else:
            msg, hint = f"unexpected character {char!r}", None
        raise ViwoSyntaxError(msg, span, hint=hint, source=source) from None
    except UnexpectedInput as e:  # pragma: no cover - other lark errors
        raise ViwoSyntaxError(str(e), Span(getattr(e, "line", 0), getattr(e, "column", 0), file=filename),
                              source=source) from None


def _number_problem(source: str, pos: int) -> tuple[int, str, str | None]:
    """Where a number that the lexer refused goes wrong: (offset of the character to blame, message, hint)."""
    m = re.compile(r"-?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]*)?").match(source, pos)
    text = m.group() if m else source[pos]
    end = pos + len(text)
    nxt = source[end:end + 1]
    if m and m.group(1) == ".":
        return end - 1 - pos, f"the number {text} needs a digit after its decimal point", f"write {text}0 or {text[:-1]}"
    if m and m.group(2) is not None and not m.group(2)[-1:].isdigit():
        return end - 1 - pos, f"the number {text} needs digits in its exponent", f"write e.g. {text.rstrip('eE+-')}e3"
    digits = text.lstrip("-")
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        at = text.index("0") + 1
        return at, "a number does not start with 0", f"write {text[:at - 1]}{digits.lstrip('0') or '0'}"
    if text in ("0", "-0") and nxt in ("x", "X", "o", "O", "b", "B"):
        base = {"x": 16, "o": 8, "b": 2}[nxt.lower()]
        word = re.compile(r"[0-9a-zA-Z_]*").match(source, end + 1).group()
        try:
            hint = f"write the decimal number {int(word, base) * (-1 if text == '-0' else 1)}"
        except ValueError:
            hint = "write numbers in decimal"
        return end - pos, f"numbers are decimal: no 0{nxt} prefix", hint
    shown = repr(nxt) if nxt >= " " else f"U+{ord(nxt):04X}" if nxt else "the end"
    return end - pos, f"unexpected {shown} after the number {text}", "separate items with spaces"


def _unclosed_string(source: str, pos: int) -> bool:
    """True when the string starting at pos runs to the end of the input without closing."""
    return _string_end(source[pos:].split("\n", 1)[0]) is None and "\n" not in source[pos:].rstrip("\n")


def _incomplete(source: str, filename: str | None, what: str | None = None) -> IncompleteInputError:
    lines = source.splitlines() or [""]
    span = Span(len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 1, filename)
    if what is None:
        depth = _open_brackets(source)
        what = f"{depth} unclosed bracket{'s' if depth != 1 else ''}" if depth else "incomplete input"
    return IncompleteInputError(f"unexpected end of input ({what})", span,
                                hint="close every (, [ and { and finish the last string", source=source)


def _open_brackets(source: str) -> int:
    depth, i, n = 0, 0, len(source)
    while i < n:
        c = source[i]
        if c == '"':
            end = _string_end(source[i:])
            if end is None:
                break
            i += end
            continue
        if c == ";":
            nl = source.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        i += 1
    return max(depth, 0)


def _describe_token(tok) -> str:
    names = {"RPAR": "')'", "RSQB": "']'", "RBRACE": "'}'", "COMMA": "','", "COLON": "':'"}
    return names.get(tok.type, repr(str(tok)))


def _describe_expected(expected) -> str:
    names = {"RPAR": "')'", "RSQB": "']'", "RBRACE": "'}'", "COMMA": "','", "COLON": "':'",
             "STRING": "a string", "NUMBER": "a number", "SYMBOL": "a symbol", "LPAR": "'('",
             "LSQB": "'['", "LBRACE": "'{'", "JTRUE": "true", "JFALSE": "false", "JNULL": "null",
             "$END": "the end of the input"}
    items = sorted({names.get(t, t) for t in expected})
    return ", ".join(items[:6])


class _Sym:
    __slots__ = ("name", "span")

    def __init__(self, name: str, span: Span):
        self.name, self.span = name, span


def _string(tok, span: Span) -> str:
    s = json.loads(tok)
    bad = LONE_SURROGATE.search(s)
    if bad:
        raise ViwoSyntaxError(f"the string has half of a UTF-16 surrogate pair (\\u{ord(bad.group()):04x}), which "
                              "no text file can hold", span,
                              hint="write the whole pair (e.g. \\ud83d\\ude00) or the character itself")
    return s


def _not_a_number(name: str, span: Span) -> ViwoSyntaxError:
    if name in _NOT_NUMBERS:
        return ViwoSyntaxError(f"{name} is not a number literal (it would read an undeclared variable)", span,
                               hint=f"write {_NOT_NUMBERS[name]}")
    sign, rest = (name[0], name[1:]) if name[0] in "+-" else ("", name)
    fixed = ("-" if sign == "-" else "") + ("0" + rest if rest.startswith(".") else rest)
    what = "needs a digit before its decimal point" if rest.startswith(".") else "has no leading +"
    return ViwoSyntaxError(f"the number {name} {what}", span, hint=f"write {fixed}")


class _Builder:
    """Turns the lark tree into nodes, resolving bare symbols by slot."""

    def __init__(self, filename: str | None, slots: SlotKinds):
        self.file = filename
        self.slots = slots

    def span(self, meta) -> Span:
        return Span(meta.line, meta.column, meta.end_line, meta.end_column, self.file)

    def tok_span(self, tok) -> Span:
        return Span(tok.line, tok.column, tok.end_line, tok.end_column, self.file)

    def _check_depth(self, depth: int, span: Span) -> None:
        if depth >= MAX_NESTING:  # depth counts from 0: at most MAX_NESTING levels of brackets
            raise ViwoSyntaxError(f"nesting deeper than {MAX_NESTING} levels", span,
                                  hint="flatten the script: bind inner parts to variables with std.let")

    # --- text form -------------------------------------------------------------------------------
    def form(self, item, depth: int, slot: str | None = None) -> Node:
        from lark import Token

        if isinstance(item, Token):
            if item.type == "SYMBOL":
                name = str(item)
                span = self.tok_span(item)
                if name in _KEYWORDS:
                    return Atom(_KEYWORDS[name], span)
                if slot in ("name", "names"):
                    return Atom(name, span)
                if name in _NOT_NUMBERS or _NUMBERISH.match(name):
                    raise _not_a_number(name, span)
                return Array((Atom("std.var", span), Atom(name, span)), span)
            return self.token_atom(item)
        span = self.span(item.meta)
        self._check_depth(depth, span)
        kind = item.data
        if kind == "plist":
            children = item.children
            if slot == "names":
                return Array(tuple(self.form(c, depth + 1, "name") for c in children), span)
            if not children:
                return Array((), span)
            head = self.form(children[0], depth + 1, "name")
            op = head.value if isinstance(head, Atom) and isinstance(head.value, str) else None
            args = tuple(
                self.form(c, depth + 1, self.slots(op, i) if op is not None else None)
                for i, c in enumerate(children[1:])
            )
            return Array((head, *args), span)
        if kind == "vector":
            if slot == "names":
                return Array(tuple(self.form(c, depth + 1, "name") for c in item.children), span)
            return Array((Atom("list.new", span), *(self.form(c, depth + 1) for c in item.children)), span)
        if kind == "map":
            children = item.children
            if len(children) % 2:
                last = children[-1]
                where = self.span(last.meta) if hasattr(last, "meta") else self.tok_span(last)
                raise ViwoSyntaxError("object literal has a key without a value", where,
                                      hint="write {key value key value ...}", source=None)
            pairs = []
            for k, v in zip(children[::2], children[1::2], strict=True):
                key, value = self.form(k, depth + 1, "name"), self.form(v, depth + 1)
                pairs.append(Array((key, value), Span(key.span.line, key.span.col, value.span.end_line,
                                                      value.span.end_col, self.file)))
            return Array((Atom("obj.new", span), *pairs), span)
        if kind == "jobject":
            return self.json(item, depth)
        raise AssertionError(kind)  # pragma: no cover

    # --- JSON -------------------------------------------------------------------------------------
    def token_atom(self, tok) -> Atom:
        span = self.tok_span(tok)
        t = tok.type
        if t == "STRING":
            return Atom(_string(tok, span), span)
        if t == "NUMBER":
            text = str(tok)
            if any(c in text for c in ".eE"):
                value = float(text)
                if math.isinf(value):
                    raise ViwoSyntaxError(f"number {text} is out of range", span)
                return Atom(value, span)
            value = int(text)
            if value == 0 and text.startswith("-"):
                return Atom(-0.0, span)
            if abs(value) > 2**53:  # numbers are doubles: round as JavaScript would
                return Atom(float(value), span)
            return Atom(value, span)
        if t == "JTRUE":
            return Atom(True, span)
        if t == "JFALSE":
            return Atom(False, span)
        if t == "JNULL":
            return Atom(None, span)
        raise AssertionError(t)  # pragma: no cover

    def json(self, item, depth: int) -> Node:
        from lark import Token

        if isinstance(item, Token):
            return self.token_atom(item)
        span = self.span(item.meta)
        self._check_depth(depth, span)
        if item.data == "jarray":
            return Array(tuple(self.json(c, depth + 1) for c in item.children if c is not None), span)
        entries = []
        for pair in item.children:
            if pair is None:
                continue
            key_tok, value = pair.children
            entries.append((_string(key_tok, self.tok_span(key_tok)), self.json(value, depth + 1)))
        return Object(tuple(entries), span)


# ------------------------------------------------------------------------------------------------
# Printing
# ------------------------------------------------------------------------------------------------

WIDTH = 88


def is_symbol(name: str) -> bool:
    return bool(_SYMBOL_RE.match(name)) and name not in _KEYWORDS


def _atom_text(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no literal form; write (/ 1 0) or (/ 0 0) instead")
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def to_json(node: Node, *, indent: int | None = 2) -> str:
    """The JSON form. Short arrays stay on one line; long ones put each argument on its own line."""
    if indent is None:
        return _json_flat(node)
    return _json_pretty(node, 0, indent)


def _json_flat(node: Node) -> str:
    if isinstance(node, Atom):
        return _atom_text(node.value)
    if isinstance(node, Array):
        return "[" + ", ".join(_json_flat(i) for i in node.items) + "]"
    return "{" + ", ".join(f"{_atom_text(k)}: {_json_flat(v)}" for k, v in node.entries) + "}"


def _json_pretty(node: Node, level: int, indent: int) -> str:
    flat = _json_flat(node)
    if isinstance(node, Atom) or len(flat) + level * indent <= WIDTH:
        return flat
    pad = " " * ((level + 1) * indent)
    end = " " * (level * indent)
    if isinstance(node, Array):
        items = node.items
        if items and isinstance(items[0], Atom) and isinstance(items[0].value, str):
            first = _atom_text(items[0].value)
            rest = [pad + _json_pretty(i, level + 1, indent) for i in items[1:]]
            if not rest:
                return f"[{first}]"
            return f"[{first},\n" + ",\n".join(rest) + f"\n{end}]"
        return "[\n" + ",\n".join(pad + _json_pretty(i, level + 1, indent) for i in items) + f"\n{end}]"
    parts = [f"{pad}{_atom_text(k)}: {_json_pretty(v, level + 1, indent)}" for k, v in node.entries]
    return "{\n" + ",\n".join(parts) + f"\n{end}}}"


def to_text(node: Node, *, slots: SlotKinds | None = None, top_level: bool = True) -> str:
    """The text form. A top-level ``std.seq`` is written as a sequence of forms."""
    p = _TextPrinter(slots or default_slots)
    if top_level and isinstance(node, Array) and node.head == "std.seq" and len(node.items) > 2:
        return "\n\n".join(p.pretty(item, 0) for item in node.args) + "\n"
    if top_level and isinstance(node, Array) and node.head == "std.seq":
        # Zero or one form: keep the explicit seq (it would otherwise read back differently).
        return p.pretty(node, 0) + "\n"
    return p.pretty(node, 0) + "\n"


class _TextPrinter:
    def __init__(self, slots: SlotKinds):
        self.slots = slots

    def flat(self, node: Node, slot: str | None = None) -> str:
        if isinstance(node, Atom):
            v = node.value
            if slot in ("name", "names") and isinstance(v, str) and is_symbol(v):
                return v
            return _atom_text(v)
        if isinstance(node, Object):
            return "{" + ", ".join(f"{_atom_text(k)}: {_json_flat(v)}" for k, v in node.entries) + "}"
        return self._array(node, slot, None)

    def _array(self, node: Array, slot: str | None, level: int | None) -> str:
        items = node.items
        sub = self.flat if level is None else (lambda n, s=None: self.pretty(n, level + 1, s))
        if slot == "names":  # the reader takes every item of a names list in a name slot
            return "(" + " ".join(sub(i, "name") for i in items) + ")"
        head = node.head
        if head is None:
            # The first item of a list is read as a name: a variable there must be written out.
            return "(" + " ".join([sub(items[0], "name"), *(sub(i) for i in items[1:])]) + ")" if items else "()"
        args = items[1:]
        if (head == "std.var" and len(args) == 1 and isinstance(args[0], Atom)
                and isinstance(args[0].value, str) and is_symbol(args[0].value) and slot not in ("name", "names")):
            return args[0].value
        if head == "list.new" and slot not in ("name", "names"):
            return "[" + " ".join(sub(a) for a in args) + "]"
        if head == "obj.new" and args and slot not in ("name", "names") and all(
            isinstance(a, Array) and len(a.items) == 2 and self._key_ok(a.items[0]) for a in args
        ):
            return "{" + " ".join(f"{self.flat(a.items[0], 'name')} {sub(a.items[1])}" for a in args) + "}"
        head_text = head if is_symbol(head) else _atom_text(head)
        parts = [head_text] + [sub(a, self.slots(head, i)) for i, a in enumerate(args)]
        return "(" + " ".join(parts) + ")"

    @staticmethod
    def _key_ok(key: Node) -> bool:
        # {k v} reads k in a name slot: a bare symbol is a string key, so any node round-trips except
        # a variable reference, which would print as a bare symbol and read back as a string.
        return not (isinstance(key, Array) and key.head == "std.var")

    def pretty(self, node: Node, level: int, slot: str | None = None) -> str:
        flat = self.flat(node, slot)
        if len(flat) + level * 2 <= WIDTH or not isinstance(node, Array) or len(node.items) < 2:
            return flat
        head = node.head
        pad = "  " * (level + 1)
        if head is None or slot == "names":
            return flat
        if head == "list.new" and flat.startswith("["):
            inner = [pad + self.pretty(a, level + 1) for a in node.args]
            return "[\n" + "\n".join(inner) + "]"
        if flat.startswith("{") or not flat.startswith("("):
            return flat
        head_text = head if is_symbol(head) else _atom_text(head)
        args = [pad + self.pretty(a, level + 1, self.slots(head, i)) for i, a in enumerate(node.args)]
        return f"({head_text}\n" + "\n".join(args) + ")"


def from_python(data: Any) -> Node:
    """A node tree from an already-parsed JSON script (a Python list), without positions."""
    _check_depth(data)
    try:
        return from_data(data)
    except TypeError as e:
        raise ViwoSyntaxError(str(e), hint="scripts are JSON data: lists, dicts, strings, numbers, booleans, None") from None


def _check_depth(data: Any) -> None:
    """Refuse data nested deeper than the parser allows (iteratively: never a RecursionError)."""
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= MAX_NESTING and isinstance(item, list | tuple | dict):  # as the parser: brackets count
            raise ViwoSyntaxError(f"nesting deeper than {MAX_NESTING} levels",
                                  hint="flatten the script; deeply nested data cannot be a sensible script")
        if isinstance(item, list | tuple):
            stack.extend((x, depth + 1) for x in item)
        elif isinstance(item, dict):
            stack.extend((x, depth + 1) for x in item.values())
