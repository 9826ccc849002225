"""The opcode fuzzer: every registered opcode of a default Runtime (capabilities granted) is called with
arguments of every type — null, booleans, NaN, ±Infinity, huge and tiny numbers, long and odd strings,
deep, shared and self-containing lists and objects, lambdas that throw or never end, images and
capability handles — in the positions its declaration names and beyond.

The only exceptions that may escape a run are ViwoError subclasses other than InternalError, each located
and worded in the language's names (no ``nan``, ``NoneType``, ``a integer``...). The sweep asserts that it
called every registered opcode (its function was entered, under the tree runner), then hypothesis draws
random calls under both runners.

Bounded for the default suite (a few tens of seconds). The long run::

    FUZZ_OPCODES=20000 pytest -m slow tests/test_fuzz_opcodes.py
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viwoscript import Limits
from viwoscript.errors import InternalError, ViwoError
from viwoscript.nodes import Array, Atom, Span
from viwoscript.runtime import Runtime
from viwoscript.scope import Scope

N = int(os.environ.get("FUZZ_OPCODES", "600"))
LIMITS = Limits(gas=20_000, timeout=10, max_string=200_000, max_list=50_000, max_object=50_000, max_depth=50,
                max_nodes=200_000)
CAPS = ("diffusers.generate", "diffusers.inpaint", "diffusers.upscale", "controlnet.generate", "sys.mint",
        "entity.control")

#: Python spellings that must never reach a message (the language says null, NaN, number, string...).
PYTHONISMS = re.compile(r"NoneType|\bnan\b|\binf\b|a integer|an? (?:int|float|str|dict|tuple|bool)\b"
                        r"|<class |Traceback|object of type|'\"|\"'|\bTrue\b|\bFalse\b|\bNone\b"
                        r"|\d\.0\b(?![\d.])")

SETUP = """
(std.let lam1 (std.lambda (x) x))
(std.let lam2 (std.lambda (a b) (+ a b)))
(std.let thrower (std.lambda (x) (std.throw "boom")))
(std.let forever (std.lambda (x) (std.while true 1)))
(std.let bomb [1]) (std.let i 0)
(std.while (< i 30) (std.seq (std.set bomb [bomb bomb]) (std.set i (+ i 1))))
(std.let img (image.new 4 3 "#ff000080"))
(std.let gray (image.convert (image.new 2 2 "#808080") "L"))
"""


def _values(rt: Runtime, scope: Scope, tmp) -> dict:
    rt.run(SETUP, scope=scope, limits=Limits(gas=None))
    cyc: list = [1]
    cyc.append(cyc)
    ocyc: dict = {"a": 1}
    ocyc["self"] = ocyc
    deep: list = []
    for _ in range(300):
        deep = [deep]
    vals = {
        "null": None, "true": True, "false": False, "zero": 0, "negzero": -0.0, "one": 1, "neg": -1,
        "half": 0.5, "pi": 3.14159, "nan": math.nan, "inf": math.inf, "ninf": -math.inf, "big": 1e300,
        "nbig": -1e300, "tiny": 5e-324, "unsafe": 2**53 + 1, "huge": 10**30, "s0": "", "sx": "x",
        "sabc": "abc", "color": "#ff0000", "unit": "years", "fmt": "png", "mode": "RGB", "layer": "sketch",
        "ctype": "canny", "captype": "diffusers.generate", "iso": "2024-01-02T03:04:05Z", "snum": "12",
        "snan": "NaN", "path": str(tmp / "out.png"), "escape": "../../etc/passwd", "long": "y" * 150_000,
        "nl": "a\nb", "emoji": "😀", "l0": [], "l3": [1, 2, 3], "lstr": ["a", "b"], "lnull": [None],
        "points": [[1, 1], [3, 2]], "pobj": [{"x": 1, "y": 1}], "deep": deep, "cyc": cyc, "lbig": list(range(40_000)),
        "o0": {}, "oa": {"a": 1}, "oxy": {"x": 1, "y": 2}, "ocyc": ocyc,
        "opts": {"steps": 1, "width": 16, "height": 16, "seed": 3, "prompt": "p"},
        "fakecap": {"type": "capability"}, "proto": {"__proto__": 1},
    }
    for name in ("lam1", "lam2", "thrower", "forever", "bomb", "img", "gray"):
        vals[name] = scope.vars[name]
    for cap in CAPS:
        vals["cap:" + cap] = rt.run(f'(get_capability "{cap}")', scope=scope)
    for meta in rt.capability_metadata():  # the declared method names, for std.call_method
        for m in meta.get("methods", []):
            vals["method:" + m["name"]] = m["name"]
    return vals


def _runtime(tmp, runner: str, counts: dict | None = None) -> tuple[Runtime, Scope, dict]:
    rt = Runtime(runner=runner, limits=LIMITS, canvas_size=(16, 16), roots=[tmp],
                 grants=[{"type": c} for c in CAPS[:-2]] + [{"type": "sys.mint", "params": {"namespace": "*"}},
                                                            {"type": "entity.control"}], store=tmp / "store")
    scope = Scope(rt.globals)
    values = _values(rt, scope, tmp)
    if counts is not None:  # count the calls each opcode's own function receives
        for spec in list(rt.registry):
            def counted(*a, _fn=spec.fn, _name=spec.name):
                counts[_name] = counts.get(_name, 0) + 1
                return _fn(*a)
            rt.registry.register(replace(spec, fn=counted), replace_existing=True)
    return rt, scope, values


def _call(op: str, names: list[str]) -> Array:
    """``(op v1 v2 ...)`` with each argument a variable of the pool, every node with its own place."""
    def at(col: int) -> Span:
        return Span(1, col, 1, col + 1, "<fuzz>")

    args = (Array((Atom("std.var", at(i + 2)), Atom(n, at(i + 2))), at(i + 2)) for i, n in enumerate(names))
    return Array((Atom(op, at(1)), *args), at(1))


def _check(rt: Runtime, scope: Scope, op: str, names: list[str], values: dict) -> None:
    try:  # fresh bindings each call: (std.set x ...) must not change the pool
        rt.run(_call(op, names), scope=Scope(Scope(scope, dict(values))))
    except InternalError as e:
        raise AssertionError(f"({op} {' '.join(names)}): {e.render()}") from e
    except ViwoError as e:
        assert e.span is not None, f"({op} {' '.join(names)}): unlocated {e!r}"
        shown = e.message + " " + (e.hint or "")
        bad = PYTHONISMS.search(shown.replace("`", ""))
        assert bad is None, f"({op} {' '.join(names)}): Python spelling {bad.group()!r} in: {shown}"
    # any other exception propagates: the test fails with its traceback


def _typed(values: dict, ptype: str) -> list[str]:
    """Names of pool values of the declared type (the call then gets past the type check)."""
    want = {
        "number": lambda v: type(v) in (int, float), "string": lambda v: type(v) is str,
        "boolean": lambda v: type(v) is bool, "array": lambda v: type(v) is list,
        "object": lambda v: type(v) is dict, "image": lambda v: getattr(v, "type_name", None) == "image",
        "capability": lambda v: getattr(v, "type_name", None) == "capability",
        "lambda": lambda v: type(v).__name__ == "Lambda",
    }.get(ptype)
    return sorted(n for n, v in values.items() if want is None or want(v))


def _sweep_args(spec, values: dict) -> list[list[str]]:
    """Argument lists for one opcode: none, all null, then each parameter in turn given each value of its
    declared type (and of every other type) while the others get a typical value of their type."""
    names = sorted(values)
    n = len(spec.params) + (1 if spec.params and spec.params[-1].variadic else 0)
    typical = []
    for i in range(max(n, 1)):
        p = spec.param_at(i)
        pool = _typed(values, p.type) if p is not None else names
        typical.append(pool[len(pool) // 2] if pool else "null")
    out = [[], ["null"] * n, typical[:n], typical[:n] + ["one"]]
    for i in range(n):
        p = spec.param_at(i)
        pool = _typed(values, p.type) if p is not None else names
        for name in pool[::max(1, len(pool) // 8)] + names[i::11]:
            out.append(typical[:i] + [name] + typical[i + 1:n])
    return out


def test_every_declared_capability_method_is_called(tmp_path):
    """std.call_method on each granted capability with each declared method and arguments of every type."""
    rt, scope, values = _runtime(tmp_path, "compiled")
    methods = sorted(n for n in values if n.startswith("method:"))
    caps = sorted(n for n in values if n.startswith("cap:"))
    assert len(methods) >= 10
    args = [[], ["img", "opts"], ["sabc", "opts"], ["img", "img", "opts"], ["nan"], ["bomb", "ocyc"]]
    for cap in caps:
        for method in methods:
            for rest in args:
                _check(rt, scope, "std.call_method", [cap, method, *rest], values)


def test_every_registered_opcode_is_called_with_every_type(tmp_path):
    counts: dict[str, int] = {}
    rt, scope, values = _runtime(tmp_path, "tree", counts)
    ops = rt.registry.names()
    for op in ops:
        for names in _sweep_args(rt.registry.get(op), values):
            _check(rt, scope, op, names, values)
    missing = sorted(set(ops) - set(counts))
    assert not missing, f"opcodes never entered: {missing}"


class _Runtimes(dict):
    def __repr__(self) -> str:  # hypothesis prints its arguments: never walk the pool's bombs
        return "<fuzz runtimes>"


@pytest.fixture(scope="module")
def fuzz_runtimes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    return _Runtimes({r: _runtime(tmp, r) for r in ("compiled", "tree")})


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_calls_only_raise_located_viwo_errors(fuzz_runtimes, data):
    runner = data.draw(st.sampled_from(["compiled", "tree"]))
    rt, scope, values = fuzz_runtimes[runner]
    op = data.draw(st.sampled_from(rt.registry.names()))
    names = data.draw(st.lists(st.sampled_from(sorted(values)), max_size=5))
    _check(rt, scope, op, names, values)
