"""Comparison (``== != < > <= >=``) and logic (``and or not guard nullish``)."""

from __future__ import annotations

from ..errors import ArgumentError
from ..opcodes import P
from ..opcodes import opcode as _opcode
from ..runners.emit import int_comparison
from ..runners.forms import logic
from ..values import strict_equal, truthy

OPCODES: list = []


def opcode(name, *params, **kw):
    kw.setdefault("category", "boolean")
    return _opcode(name, *params, into=OPCODES, **kw)


_SIG = (P("left"), P("right", variadic=True, at_least=1))


def _arity(op: str, args) -> None:
    if len(args) < 2:
        raise ArgumentError(f"{op}: expected at least 2 arguments, got {len(args)}")


@opcode("==", *_SIG, label="Equal", returns="boolean", validate=False, layout="infix")
def eq(ev, *args):
    """Strict equality of neighbours: no coercion; lists and objects by identity."""
    if len(args) == 2:
        return strict_equal(args[0], args[1])
    _arity("==", args)
    return all(strict_equal(args[i], args[i + 1]) for i in range(len(args) - 1))


@opcode("!=", *_SIG, label="Not equal", returns="boolean", validate=False, layout="infix")
def ne(ev, *args):
    """True when every neighbouring pair differs (strictly)."""
    if len(args) == 2:
        return not strict_equal(args[0], args[1])
    _arity("!=", args)
    return all(not strict_equal(args[i], args[i + 1]) for i in range(len(args) - 1))


def _ordered(op: str, test):
    def impl(ev, *args):
        if len(args) == 2:
            a, b = args
            ta, tb = type(a), type(b)
            if (ta is int or ta is float) and (tb is int or tb is float):
                return test(a, b)
        _arity(op, args)
        for i, v in enumerate(args):
            t = type(v)
            if t is not int and t is not float:
                raise ArgumentError(f"{op}: expected number for {'left' if i == 0 else 'right'}")
        return all(test(args[i], args[i + 1]) for i in range(len(args) - 1))

    return impl


_NUM_SIG = (P("left", "number"), P("right", "number", variadic=True, at_least=1))
for _op, _test, _label in (("<", lambda a, b: a < b, "Less than"), (">", lambda a, b: a > b, "Greater than"),
                           ("<=", lambda a, b: a <= b, "At most"), (">=", lambda a, b: a >= b, "At least")):
    _impl = _ordered(_op, _test)
    _impl.__doc__ = f"{_label}, for two or more numbers compared pairwise."
    _impl.emit = int_comparison  # the compiled runner's rule: Python's own comparison on two ints
    opcode(_op, *_NUM_SIG, label=_label, returns="boolean", validate=False, layout="infix")(_impl)


OPCODES.extend(logic.OPCODES)  # and, or, not: special forms (walk and emit rules in runners/forms/logic.py)


@opcode("guard", P("values", "block", kind="block", variadic=True), label="Guard", lazy=True)
def guard(ev, args, scope):
    """The first falsy operand, else the last operand."""
    value = None
    for node in args:
        value = ev.eval(node, scope)
        if not truthy(value):
            return value
    return value


@opcode("nullish", P("values", "block", kind="block", variadic=True), label="Nullish", lazy=True)
def nullish(ev, args, scope):
    """The first operand that is not null (else the last)."""
    value = None
    for node in args:
        value = ev.eval(node, scope)
        if value is not None:
            return value
    return value
