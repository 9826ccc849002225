"""Arithmetic (``+ - * / % ^``) and ``math.*``, with JavaScript's double semantics."""

from __future__ import annotations

import math

from ..errors import ArgumentError
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..runners.emit import int_arithmetic
from ..values import normalize_number

OPCODES: list = []
INF = math.inf
NAN = math.nan


def opcode(name, *params, **kw):
    kw.setdefault("category", "math")
    return _opcode(name, *params, into=OPCODES, **kw)


def _num(op: str, v, side: str):
    t = type(v)
    if t is int or t is float:
        return v
    raise ArgumentError(f"{op}: expected number for {side}")


def _operands(op: str, args) -> None:
    if len(args) < 2:
        raise ArgumentError(f"{op}: expected at least 2 arguments, got {len(args)}")


def _fold(op: str, args, f):
    _operands(op, args)
    acc = _num(op, args[0], "left")
    for v in args[1:]:
        acc = f(float(acc), float(_num(op, v, "right")))
    return normalize_number(acc)


def _add(a, b):
    return a + b


def _sub(a, b):
    return a - b


def _mul(a, b):
    return a * b


def div(a: float, b: float) -> float:
    if b == 0:
        if a != a or a == 0:
            return NAN
        return INF if (a > 0) == (math.copysign(1, b) > 0) else -INF
    return a / b


def pow_(a: float, b: float) -> float:
    """JavaScript's ** (Math.pow)."""
    if b != b:
        return NAN
    if b == 0:
        return 1.0
    if a != a:
        return NAN
    if abs(a) == 1 and math.isinf(b):
        return NAN
    try:
        r = a ** b
    except OverflowError:
        if a < 0 and b.is_integer() and int(b) % 2:
            return -INF
        return INF
    except ZeroDivisionError:
        if a == 0 and math.copysign(1, a) < 0 and b.is_integer() and int(b) % 2:
            return -INF
        return INF
    if isinstance(r, complex):
        return NAN
    return r


def mod(a: float, b: float) -> float:
    """Remainder with the sign of the dividend; x % 0 is NaN."""
    if b == 0 or a != a or b != b or math.isinf(a):
        return NAN
    if math.isinf(b):
        return a
    return math.fmod(a, b)


_SIG = (P("left", "number"), P("right", "number", variadic=True, at_least=1))


@opcode("+", *_SIG, label="Add", returns="number", validate=False, layout="infix")
def add(ev, *args):
    """Sum of two or more numbers, folded left."""
    if len(args) == 2:
        a, b = args
        ta, tb = type(a), type(b)
        if ta is int and tb is int:
            r = a + b
            if -9007199254740992 <= r <= 9007199254740992:
                return r
    return _fold("+", args, _add)


add.emit = int_arithmetic  # the compiled runner's rule: Python's own operator on safe ints


@opcode("-", *_SIG, label="Subtract", returns="number", validate=False, layout="infix")
def sub(ev, *args):
    """Difference, folded left."""
    if len(args) == 2:
        a, b = args
        if type(a) is int and type(b) is int:
            r = a - b
            if -9007199254740992 <= r <= 9007199254740992:
                return r
    return _fold("-", args, _sub)


sub.emit = int_arithmetic  # the compiled runner's rule: Python's own operator on safe ints


@opcode("*", *_SIG, label="Multiply", returns="number", validate=False, layout="infix")
def mul(ev, *args):
    """Product, folded left."""
    if len(args) == 2:
        a, b = args
        if type(a) is int and type(b) is int:
            r = a * b
            if r and -9007199254740992 <= r <= 9007199254740992:  # 0 may need to be -0
                return r
    return _fold("*", args, _mul)


mul.emit = int_arithmetic  # the compiled runner's rule: Python's own operator on safe ints


@opcode("/", *_SIG, label="Divide", returns="number", validate=False, layout="infix")
def divide(ev, *args):
    """Quotient, folded left; division by zero gives ±Infinity or NaN."""
    return _fold("/", args, div)


@opcode("%", P("left", "number"), P("right", "number"), label="Remainder", returns="number", validate=False,
        layout="infix")
def remainder(ev, *args):
    """Remainder with the sign of the dividend; x % 0 is NaN."""
    if len(args) != 2:
        raise ArgumentError(f"%: expected 2 arguments, got {len(args)}")
    a, b = args
    if type(a) is int and type(b) is int and a >= 0 and b > 0:
        return a % b
    return normalize_number(mod(float(_num("%", args[0], "left")), float(_num("%", args[1], "right"))))


remainder.emit = int_arithmetic  # the compiled runner's rule: Python's own operator on safe ints


@opcode("^", *_SIG, label="Power", returns="number", validate=False, layout="infix")
def power(ev, *args):
    """Exponentiation, folded right: (^ 2 3 2) is 2^(3^2)."""
    _operands("^", args)
    nums = [_num("^", a, "left" if i == 0 else "right") for i, a in enumerate(args)]
    acc = float(nums[-1])
    for v in reversed(nums[:-1]):
        acc = pow_(float(v), acc)
    return normalize_number(acc)


def _unary(name: str, f, label: str, doc: str):
    def impl(ev, x=None):
        x = _num(f"math.{name}", x, "num")
        try:
            r = f(float(x))
        except (ValueError, OverflowError):
            r = _domain_fallback(name, float(x))
        return normalize_number(r)

    impl.__doc__ = doc
    impl.__name__ = name
    return opcode(f"math.{name}", P("num", "number"), label=label, returns="number", validate=False)(impl)


def _domain_fallback(name: str, x: float) -> float:
    if name == "exp":
        return INF if x > 0 else 0.0
    if name in ("log", "log2", "log10"):
        if x == 0:
            return -INF
        return NAN
    if name == "sqrt" and x == 0:
        return x
    return NAN


def _round(x: float) -> float:
    """JavaScript Math.round: the nearest integer, halves toward +∞, keeping the sign of zero."""
    if not math.isfinite(x) or abs(x) >= 2**52:
        return x
    r = float(math.floor(x))
    if x - r >= 0.5:
        r += 1.0
    return math.copysign(0.0, x) if r == 0 else r


def _sign(x: float) -> float:
    if x != x or x == 0:
        return x
    return 1.0 if x > 0 else -1.0


def _inf_safe(f):
    def g(x):
        if not math.isfinite(x):
            return x
        r = float(f(x))
        return math.copysign(0.0, x) if r == 0 else r  # -0.5 → -0, as JavaScript

    return g


_UNARY = [
    ("floor", _inf_safe(math.floor), "Floor", "Largest integer ≤ num."),
    ("ceil", _inf_safe(math.ceil), "Ceiling", "Smallest integer ≥ num."),
    ("trunc", _inf_safe(math.trunc), "Truncate", "Integer part of num."),
    ("round", _round, "Round", "Nearest integer; halves round toward +∞ (-1.5 → -1, 1.5 → 2)."),
    ("abs", abs, "Absolute value", "Absolute value."),
    ("sign", _sign, "Sign", "-1, 0 or 1 (NaN stays NaN)."),
    ("sqrt", math.sqrt, "Square root", "Square root (negative → NaN)."),
    ("exp", math.exp, "Exponential", "e to the power num."),
    ("log", math.log, "Natural log", "Natural logarithm (0 → -Infinity, negative → NaN)."),
    ("log2", math.log2, "Log base 2", "Base-2 logarithm."),
    ("log10", math.log10, "Log base 10", "Base-10 logarithm."),
    ("sin", math.sin, "Sine", "Sine of an angle in radians."),
    ("cos", math.cos, "Cosine", "Cosine of an angle in radians."),
    ("tan", math.tan, "Tangent", "Tangent of an angle in radians."),
    ("asin", math.asin, "Arc sine", "Arc sine in radians (out of [-1, 1] → NaN)."),
    ("acos", math.acos, "Arc cosine", "Arc cosine in radians (out of [-1, 1] → NaN)."),
    ("atan", math.atan, "Arc tangent", "Arc tangent in radians."),
]

for _name, _f, _label, _doc in _UNARY:
    _unary(_name, _f, _label, _doc)


@opcode("math.atan2", P("y", "number"), P("x", "number"), label="Arc tangent of y/x", returns="number",
        validate=False)
def atan2(ev, y=None, x=None):
    """Angle of the point (x, y) in radians."""
    return normalize_number(math.atan2(float(_num("math.atan2", y, "y")), float(_num("math.atan2", x, "x"))))


def _extreme(name: str, pick):
    def impl(ev, *args):
        if not args:
            raise ArgumentError(f"math.{name}: expected at least 1 argument, got 0")
        nums = [float(_num(f"math.{name}", a, "num")) for a in args]
        if any(n != n for n in nums):
            return NAN
        return normalize_number(pick(nums))

    return impl


def _js_min(nums):
    out = nums[0]
    for n in nums[1:]:
        if n < out or (n == out == 0 and math.copysign(1, n) < 0):
            out = n
    return out


def _js_max(nums):
    out = nums[0]
    for n in nums[1:]:
        if n > out or (n == out == 0 and math.copysign(1, n) > 0):
            out = n
    return out


_min = _extreme("min", _js_min)
_min.__doc__ = "Smallest of one or more numbers (NaN if any is NaN)."
_max = _extreme("max", _js_max)
_max.__doc__ = "Largest of one or more numbers (NaN if any is NaN)."
opcode("math.min", P("nums", "number", variadic=True, at_least=1), label="Minimum", returns="number", validate=False)(_min)
opcode("math.max", P("nums", "number", variadic=True, at_least=1), label="Maximum", returns="number", validate=False)(_max)


@opcode("math.clamp", P("num", "number"), P("min", "number"), P("max", "number"), label="Clamp",
        returns="number", validate=False)
def clamp(ev, v=None, lo=None, hi=None):
    """min(max(num, min), max)."""
    v, lo, hi = (float(_num("math.clamp", a, n)) for a, n in ((v, "num"), (lo, "min"), (hi, "max")))
    if v != v or lo != lo or hi != hi:
        return NAN
    return normalize_number(min(max(v, lo), hi))
