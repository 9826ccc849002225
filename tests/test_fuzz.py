"""Fuzzing: random nested JSON and random text never crash the interpreter.

Only ViwoError may escape, and every run ends within its limits. The example counts are large
(10k+ in total) because each run is cheap; set FUZZ_EXAMPLES to change them.
"""

from __future__ import annotations

import os
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viwoscript.errors import ViwoError
from viwoscript.limits import Limits
from viwoscript.runtime import Runtime, builtin_registry

N = int(os.environ.get("FUZZ_EXAMPLES", "6000"))
LIMITS = Limits(gas=3000, timeout=5, max_string=20_000, max_list=20_000, max_object=20_000, max_depth=60)
HEADS = sorted(builtin_registry().names())


def _runtime():
    return Runtime(limits=LIMITS, canvas_size=(32, 32))


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(), st.floats(),
    st.text(max_size=6), st.sampled_from(["x", "f", "e", "item", "acc", "", "0", "NaN"]),
)


def _json(children):
    return st.one_of(
        st.tuples(st.sampled_from(HEADS), st.lists(children, max_size=4)).map(lambda t: [t[0], *t[1]]),
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=4), children, max_size=3),
        st.tuples(st.just("std.lambda"), st.lists(st.sampled_from(["x", "y", "acc"]), max_size=2), children)
        .map(list),
        st.tuples(st.just("std.var"), st.sampled_from(["x", "y", "f", "acc"])).map(list),
    )


programs = st.recursive(scalars, _json, max_leaves=30)


def _run_bounded(program):
    rt = _runtime()
    start = time.monotonic()
    try:
        rt.run(program)
    except ViwoError:
        pass
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"run took {elapsed:.1f}s"


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs)
def test_random_json_programs_only_raise_viwo_errors(program):
    _run_bounded(program)


@settings(max_examples=N // 2, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(
    ["(", ")", "[", "]", "{", "}", '"', "\\", ";", ",", ":", " ", "\n", "1", "-", "x", "std.let", "+",
     "list.new", "std.lambda", "std.seq", "true", "null", '"s"', "1e309", "0.5", "std.while", "std.var"]),
    max_size=40).map("".join))
def test_random_text_only_raises_viwo_errors(text):
    _run_bounded(text)


@settings(max_examples=N // 3, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(max_size=60))
def test_arbitrary_unicode_text(text):
    _run_bounded(text)
