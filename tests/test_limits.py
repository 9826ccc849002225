"""Limits: gas, call depth, value sizes, wall-clock time and cooperative interrupts. A runaway script
always ends with a LimitError, never a Python RecursionError, a hang or a memory bomb."""

from __future__ import annotations

import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import viwoscript
from viwoscript import Limits
from viwoscript.errors import (
    DepthLimitError,
    GasExhaustedError,
    InterruptedError_,
    SizeLimitError,
    TimeoutLimitError,
    ViwoError,
    ViwoSyntaxError,
)
from viwoscript.limits import CLI_DEFAULTS, EMBED_DEFAULTS
from viwoscript.runtime import Runtime


def run(source, **limits):
    return Runtime().run(source, limits=Limits(**limits) if limits else None)


def test_defaults_are_documented_values():
    assert EMBED_DEFAULTS.gas == 1_000_000
    assert CLI_DEFAULTS.gas == 100_000_000


@given(st.integers(1, 60))
@settings(max_examples=30, deadline=None)
def test_gas_counts_every_opcode_evaluation(n):
    # (+ 1 (+ 1 ... )) with n additions costs exactly n units.
    source = "1"
    for _ in range(n):
        source = f"(+ 1 {source})"
    assert run(source, gas=n) == n + 1
    with pytest.raises(GasExhaustedError, match="Script ran out of gas!"):
        run(source, gas=n - 1) if n > 1 else run(source, gas=0)


def test_gas_counts_inside_lambdas_called_by_library_opcodes():
    src = "(list.map [1 2 3 4 5] (std.lambda (x) (* x 2)))"
    # list.map + list.new (literal list sugar) + std.lambda + five times (* (std.var x) 2)
    assert run(src, gas=13) == [2, 4, 6, 8, 10]
    with pytest.raises(GasExhaustedError):
        run(src, gas=12)


def test_gas_exhaustion_is_catchable_as_in_the_original_but_stays_exhausted():
    assert run('(std.try (std.while true (+ 1 1)) e "caught")', gas=1000) == "caught"
    with pytest.raises(GasExhaustedError):  # the budget is still spent: the catch body cannot go on
        run('(std.try (std.while true (+ 1 1)) e (str.concat "caught: " e))', gas=1000)


def test_timeouts_and_interrupts_cannot_be_caught():
    with pytest.raises(TimeoutLimitError):
        run('(std.try (std.while true (+ 1 1)) e "caught")', gas=None, timeout=0.1)


def test_literal_only_loop_still_runs_out_of_gas():
    with pytest.raises(GasExhaustedError):
        run("(std.while true 1)", gas=10_000)


def test_depth_limit_is_a_viwo_error():
    src = "(std.seq (std.let f (std.lambda (n) (+ 1 (std.apply f n)))) (std.apply f 0))"
    with pytest.raises(DepthLimitError, match="Maximum call depth of 50 exceeded"):
        run(src, max_depth=50, gas=None)
    with pytest.raises(DepthLimitError):
        run(src)  # default depth


def test_deep_recursion_within_the_limit_works():
    src = ("(std.seq (std.let f (std.lambda (n) (std.if (<= n 0) 0 (+ 1 (std.apply f (- n 1))))))"
           " (std.apply f 700))")
    assert run(src) == 700


def test_deeply_nested_source_is_a_syntax_error_not_a_crash():
    with pytest.raises(ViwoSyntaxError):
        viwoscript.run("(list.new " * 5000 + ")" * 5000)
    with pytest.raises(ViwoSyntaxError):
        viwoscript.run('["list.new", ' * 3000 + "1" + "]" * 3000)


def test_deeply_nested_python_data_is_refused_cleanly():
    deep: list = ["list.new"]
    cur = deep
    for _ in range(50_000):
        nxt = ["list.new"]
        cur.append(nxt)
        cur = nxt
    with pytest.raises(ViwoError):
        viwoscript.run(deep)


@pytest.mark.parametrize("source, op", [
    ('(std.seq (std.let s "ab") (std.while true (std.set s (str.concat s s))))', "str.concat"),
    ("(std.seq (std.let l [1]) (std.while true (std.set l (list.concat l l))))", "list.concat"),
    ("(list.set [] 1e9 1)", "list.set"),
    ('(std.seq (std.let s "ab") (std.while true (std.set s (str.join [s s s] ""))))', "str.join"),
    ("(std.seq (std.let l [1]) (std.while true (std.set l (list.flatMap l (std.lambda (x) [x x])))))",
     "list.flatMap"),
])
def test_memory_bombs_hit_the_size_limits(source, op):
    with pytest.raises(SizeLimitError, match=op):
        run(source, gas=None, max_string=1_000_000, max_list=100_000)


def test_size_limit_errors_are_catchable_and_allocate_nothing():
    assert run('(std.try (list.set [] 1e9 1) e e)') == (
        "list.set: list of 1000000001 items exceeds the limit of 1000000")


def test_timeout():
    start = time.monotonic()
    with pytest.raises(TimeoutLimitError, match="timed out"):
        run("(std.while true (+ 1 1))", gas=None, timeout=0.2)
    assert time.monotonic() - start < 5


def test_interrupt_from_another_thread():
    rt = Runtime()
    timer = threading.Timer(0.2, rt.interrupt)
    timer.start()
    try:
        with pytest.raises(InterruptedError_):
            rt.run("(std.while true (+ 1 1))", limits=Limits(gas=None))
    finally:
        timer.cancel()
    assert rt.run("(+ 1 2)") == 3  # the Runtime is usable again


_tokens = st.sampled_from(["(", ")", "[", "]", "std.while", "true", "std.let", "x", "(+ x 1)", "(std.apply f)",
                           "(std.lambda (f) (std.apply f f))", "\"s\"", "(str.concat x x)", "1e9"])


@given(st.lists(_tokens, max_size=30))
@settings(max_examples=300, deadline=None)
def test_random_programs_end_within_limits(tokens):
    source = "(std.seq (std.let f (std.lambda (f) (std.apply f f))) " + " ".join(tokens) + ")"
    start = time.monotonic()
    try:
        Runtime(plugins=False).run(source, limits=Limits(gas=20_000, max_string=100_000, timeout=5))
    except ViwoError:
        pass
    assert time.monotonic() - start < 6


@pytest.mark.parametrize("kw", [dict(gas=-1), dict(gas="abc"), dict(gas=True), dict(max_depth=0),
                                dict(max_depth=10**8), dict(max_string=0), dict(timeout=0), dict(timeout="1")])
def test_limits_refuse_nonsense(kw):
    with pytest.raises(ValueError, match="Limits: "):
        Limits(**kw)


def test_deepest_allowed_recursion_works_without_a_python_recursion_error():
    src = ("(std.seq (std.let f (std.lambda (n) (std.if (<= n 0) 0 (+ 1 (std.apply f (- n 1))))))"
           " (std.apply f 9990))")
    assert run(src, gas=None, max_depth=10_000) == 9990


def test_run_refuses_a_string_as_args():
    with pytest.raises(TypeError, match="args must be a list"):
        viwoscript.run("(std.args)", args="abc")
