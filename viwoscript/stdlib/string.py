"""``str.*``: text operations (language §10). Lengths and indexes count Unicode code points
(deviation 2); ``str.replace`` replaces the first occurrence literally (deviation 5)."""

from __future__ import annotations

from ..limits import BIG_LIST, made_list
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..values import join_text, to_text
from .list import relative_index

OPCODES: list = []

#: What JavaScript's String.prototype.trim removes (WhiteSpace and LineTerminator).
JS_WHITESPACE = ("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
                 "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")


def opcode(name, *params, **kw):
    kw.setdefault("category", "string")
    return _opcode(name, *params, into=OPCODES, **kw)


STR = P("string", "string")


@opcode("str.len", STR, label="Length", returns="number")
def len_(ev, s):
    """The number of characters (code points)."""
    return len(s)


@opcode("str.concat", P("values", variadic=True), label="Concat", returns="string")
def concat(ev, *values):
    """Join values as text (numbers as JavaScript prints them, null as `null`, lists comma-joined)."""
    # each list or object argument is walked under its own Meter (scalars need none); the whole is held to
    # max_string by check_string
    return ev.check_string("".join([to_text(v, ev, "str.concat") for v in values]), "str.concat")


@opcode("str.split", STR, P("separator", "string"), label="Split", returns="array")
def split(ev, s, sep):
    """Split at every occurrence of the separator; an empty separator splits into characters."""
    if sep == "":
        parts = list(s)
    else:
        parts = s.split(sep)
    ev.check_size(len(parts), "str.split")
    if len(parts) >= BIG_LIST:
        made_list(ev, len(parts), "str.split", len(parts) // BIG_LIST)
    return parts


@opcode("str.slice", STR, P("start", "number"), P("end", "number", None), label="Slice", returns="string")
def slice_(ev, s, start, end=None):
    """The characters from start up to (not including) end; negative indexes count from the end."""
    n = len(s)
    return s[relative_index(start, n, 0):relative_index(end, n, n)]


@opcode("str.upper", STR, label="To upper", returns="string")
def upper(ev, s):
    """Upper-case text."""
    return s.upper()


@opcode("str.lower", STR, label="To lower", returns="string")
def lower(ev, s):
    """Lower-case text."""
    return s.lower()


@opcode("str.trim", STR, label="Trim", returns="string")
def trim(ev, s):
    """The text without leading and trailing whitespace."""
    return s.strip(JS_WHITESPACE)


@opcode("str.replace", STR, P("search", "string"), P("replacement", "string"), label="Replace",
        returns="string")
def replace(ev, s, search, replacement):
    """Replace the first occurrence of `search` with `replacement` (taken literally)."""
    return ev.check_string(s.replace(search, replacement, 1), "str.replace")


@opcode("str.includes", STR, P("search", "string"), label="Includes", returns="boolean")
def includes(ev, s, search):
    """Whether `search` occurs in the text."""
    return search in s


@opcode("str.join", P("list", "array"), P("separator", "string", ","), label="Join", returns="string")
def join(ev, lst, sep=","):
    """Join a list's items as text with a separator (null items become empty text)."""
    if sep is None:
        sep = ","
    return ev.check_string(join_text(lst, sep, ev, "str.join"), "str.join")
