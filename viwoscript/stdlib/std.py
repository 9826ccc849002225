"""``std.*``: errors, conversions, script arguments, host events, modules; the special forms (variables,
control flow, functions) are declared in ``viwoscript/runners/forms/`` and listed here."""

from __future__ import annotations

import json
import math
import re

from ..errors import ArgumentError, ScriptError
from ..limits import Meter
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..runners.forms import control, functions, variables
from ..values import LONE_SURROGATE, normalize_number, to_json_text, to_json_value, to_text, truthy, typeof

#: The special forms come first (declared with their walk and emit rules in viwoscript/runners/forms/),
#: then std.throw, the functions forms and the rest, in the order of docs/stdlib.md.
OPCODES: list = [*variables.OPCODES, *control.OPCODES]


def opcode(name, *params, **kw):
    kw.setdefault("category", "std" if name.startswith("std.") else name.split(".")[0])
    return _opcode(name, *params, into=OPCODES, **kw)


@opcode("std.throw", P("message", "string"), label="Throw", validate=False)
def throw(ev, message=None):
    """Raise an error with exactly this message."""
    if type(message) is not str:
        raise ArgumentError("std.throw: expected string for message")
    raise ScriptError(message)


OPCODES.extend(functions.OPCODES)


# --- script arguments and host -------------------------------------------------------------------

@opcode("std.arg", P("index", "number"), label="Argument", validate=False)
def arg(ev, index=None):
    """The index-th script argument, or null."""
    if type(index) is int and 0 <= index < len(ev.args):
        return ev.args[index]
    if type(index) is float and index.is_integer() and 0 <= index < len(ev.args):
        return ev.args[int(index)]
    return None


@opcode("std.args", label="Arguments", returns="array")
def args_(ev):
    """The list of script arguments."""
    return list(ev.args)


@opcode("std.log", P("values", variadic=True), label="Log", returns="null", validate=False, pure=False)
def log(ev, *values):
    """Report values to the host (the CLI prints them to stderr)."""
    m = Meter(ev, "std.log")
    message = " ".join([to_text(v, m) for v in values])
    m.done()
    ev.runtime.emit({"type": "log", "message": ev.check_string(message, "std.log"), "values": list(values)})
    return None


@opcode("std.warn", P("message"), label="Warn", returns="null", validate=False, pure=False)
def warn(ev, message=None):
    """Report a warning to the host."""
    ev.runtime.emit({"type": "warn", "message": ev.check_string(to_text(message, ev, "std.warn"), "std.warn")})
    return None


@opcode("send", P("type", "string"), P("payload", default=None), label="Send", returns="null", pure=False,
        category="std")
def send(ev, type_, payload=None):
    """Send an event to the host; the payload goes as JSON data (NaN and lambdas as null, images as
    their JSON form)."""
    try:
        data = to_json_value(payload, ev, "send")
    except ValueError:
        raise ScriptError("send: the payload contains itself and has no JSON form",
                          hint="send a part of it, or build it without the self-reference") from None
    ev.runtime.emit({"type": "send", "event": type_, "payload": data})
    return None


@opcode("std.this", label="This")
def this(ev):
    """The host's principal object, or null."""
    return ev.runtime.principal


@opcode("std.caller", label="Caller")
def caller(ev):
    """The host's caller object, or null."""
    return ev.runtime.caller


# --- conversions ---------------------------------------------------------------------------------

def parse_int(text, radix=None, budget=None) -> int | float:
    """JavaScript parseInt."""
    s = to_text(text, budget, "std.int").strip(" \t\n\r\v\f\u00a0\ufeff\u2028\u2029")
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    r = 0
    if radix is not None:
        rv = number_of(radix)
        r = 0 if rv != rv or math.isinf(rv) else int(rv)
    strip_prefix = r in (0, 16)
    if r == 0:
        r = 10
    elif not 2 <= r <= 36:
        return math.nan
    if strip_prefix and s[:2].lower() == "0x":
        s, r = s[2:], 16
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"[:r]
    end = 0
    while end < len(s) and s[end].lower() in digits:
        end += 1
    if end == 0:
        return math.nan
    value = int(s[:end], r)
    return -0.0 if value == 0 and sign < 0 else normalize_number(float(sign * value))


_FLOAT_RE = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


def parse_float(text, budget=None) -> int | float:
    """JavaScript parseFloat."""
    s = to_text(text, budget, "std.float").lstrip(" \t\n\r\v\f\u00a0\ufeff\u2028\u2029")
    m = _FLOAT_RE.match(s)
    if not m:
        return math.nan
    return normalize_number(float(m.group(0).replace("Infinity", "inf")))


_NUM_RE = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\Z")


def number_of(v, budget=None) -> int | float:
    """JavaScript Number(v)."""
    t = type(v)
    if t is int or t is float:
        return v
    if v is None or v is False:
        return 0
    if v is True:
        return 1
    if t is str:
        s = v.strip(" \t\n\r\v\f\u00a0\ufeff\u2028\u2029")
        if s == "":
            return 0
        low = s.lower()
        if low[:2] in ("0x", "0o", "0b"):
            digits = {"0x": "0123456789abcdef", "0o": "01234567", "0b": "01"}[low[:2]]
            body = low[2:]
            if not body or any(c not in digits for c in body):
                return math.nan
            return normalize_number(float(int(body, {"0x": 16, "0o": 8, "0b": 2}[low[:2]])))
        if _NUM_RE.match(s):
            return normalize_number(float(s.replace("Infinity", "inf")))
        return math.nan
    if t is list:
        if not v:
            return 0
        if len(v) == 1:
            return number_of(to_text(v[0], budget, "std.number") if v[0] is not None else "")
        return math.nan
    return math.nan


@opcode("std.int", P("text"), P("radix", "number", None), label="Parse integer", returns="number",
        validate=False)
def int_(ev, text=None, radix=None):
    """Parse an integer like JavaScript parseInt ("0x1F" → 31, "-12px" → -12, "abc" → NaN)."""
    return parse_int(text, radix, ev)


@opcode("std.float", P("text"), label="Parse number", returns="number", validate=False)
def float_(ev, text=None):
    """Parse a number like JavaScript parseFloat ("1e3" → 1000, "0x1F" → 0)."""
    return parse_float(text, ev)


@opcode("std.number", P("value"), label="To number", returns="number")
def number(ev, value=None):
    """Convert like JavaScript Number() ("" → 0, null → 0, "12px" → NaN, [5] → 5)."""
    return number_of(value, ev)


@opcode("std.string", P("value"), label="To string", returns="string")
def string(ev, value=None):
    """Convert a value to text (numbers as JavaScript prints them, objects as compact JSON)."""
    return ev.check_string(to_text(value, ev, "std.string"), "std.string")


@opcode("std.boolean", P("value"), label="To boolean", returns="boolean")
def boolean(ev, value=None):
    """Truthiness: false, 0, NaN, "" and null are false."""
    return truthy(value)


@opcode("std.typeof", P("value"), label="Type of", returns="string")
def typeof_(ev, value=None):
    """number, string, boolean, null, array or object (a lambda is object)."""
    return typeof(value)


@opcode("json.stringify", P("value"), label="To JSON", returns="string", category="json")
def stringify(ev, value=None):
    """Compact JSON text (NaN and Infinity become null)."""
    try:
        return ev.check_string(to_json_text(value, None, ev, "json.stringify"), "json.stringify")
    except ValueError as e:
        raise ScriptError(f"json.stringify: {e}") from None


@opcode("json.parse", P("text", "string"), label="From JSON", category="json")
def parse(ev, text):
    """Parse JSON text; an error on bad JSON."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=_json_int)
    except (ValueError, RecursionError) as e:
        raise ScriptError(f"json.parse: {getattr(e, 'msg', str(e))}", hint="pass valid JSON text") from None
    if "\\u" in text:  # an escape may stand for half of a surrogate pair: no text file can hold that
        bad = next(LONE_SURROGATE.finditer(json.dumps(value, ensure_ascii=False)), None)
        if bad:
            raise ScriptError(f"json.parse: the text has half of a UTF-16 surrogate pair (\\u{ord(bad.group()):04x}), "
                              "which no text file can hold",
                              hint="write the whole pair (e.g. \\ud83d\\ude00) or the character itself")
    return _normalize_json(value)


def _json_int(text: str) -> int | float:
    """JSON integers are doubles: beyond 2**53 they round, and -0 keeps its sign."""
    if text == "-0":
        return -0.0
    return normalize_number(float(text)) if len(text) > 15 else int(text)


def _reject_constant(name):
    raise ValueError(f"invalid JSON value {name}")


def _normalize_json(v):
    t = type(v)
    if t is float:
        return normalize_number(v)
    if t is list:
        return [_normalize_json(i) for i in v]
    if t is dict:
        return {k: _normalize_json(x) for k, x in v.items()}
    return v


__all__ = ["OPCODES", "number_of", "parse_float", "parse_int", "to_json_value"]


# --- modules -------------------------------------------------------------------------------------

@opcode("std.import", P("module", "string"), label="Import", pure=False)
def import_(ev, module):
    """Load a ViwoScript module and return what it exports (its last value, usually an object of
    lambdas). Bare names (`"lists"`) come from the shipped standard library; paths ending in `.viwo`
    or `.json` are looked up under the allowed folders. A module runs once per script run."""
    from ..modules import load_module

    return load_module(ev, module)
