"""The compiled runner (viwoscript/compiler.py): plumbing, caching, fallbacks and limits.

Its semantics are checked against the reference walker by tests/test_runner_parity.py (random programs)
and by the golden suite, which runs every tests/lang case under both runners.
"""

from __future__ import annotations

import sys
import threading
import time

import pytest
from click.testing import CliRunner

from viwoscript import Limits, Runtime, ViwoError
from viwoscript.cli import cli
from viwoscript.errors import GasExhaustedError, InterruptedError_, TimeoutLimitError
from viwoscript.opcodes import P, opcode
from viwoscript.runners.compiled import compile_program
from viwoscript.scope import Scope
from viwoscript.values import Lambda


def both(source, **kw):
    """Run under both runners; return the compiled result after checking the walker agrees."""
    out = []
    for runner in ("compiled", "tree"):
        try:
            out.append(("value", Runtime(runner=runner).run(source, **kw)))
        except ViwoError as e:
            out.append(("error", type(e).__name__, e.message, e.span and (e.span.line, e.span.col)))
    assert out[0] == out[1], out
    return out[0]


def test_runner_is_validated_and_compiled_is_the_default():
    assert Runtime().runner == "compiled"
    assert Runtime(runner="tree").runner == "tree"
    with pytest.raises(ValueError, match="runner must be one of compiled, tree"):
        Runtime(runner="fast")


def test_lambdas_made_by_the_compiled_runner_carry_their_compiled_body():
    src = "(std.lambda (x) (+ x 1))"
    assert isinstance(Runtime().run(src).code, type(lambda: 0))
    assert Runtime(runner="tree").run(src).code is None
    f = Runtime().run(src)
    assert isinstance(f, Lambda) and f.params == ("x",)


def test_the_tree_runner_never_enters_compiled_code():
    # A lambda made under the compiled runner, kept in the globals, then called after the Runtime switched
    # to the tree runner: the walker walks its body; it never calls the compiled code it carries.
    rt = Runtime()
    rt.run("(std.let f (std.lambda (x) (* x 10)))", scope=rt.globals)
    f = rt.globals.vars["f"]
    assert f.code is not None

    def trap(*a):
        raise AssertionError("the tree runner called compiled code")

    rt.globals.vars["f"] = Lambda(f.params, f.body, f.scope, None, None, trap)
    rt.runner = "tree"
    assert rt.run("[(std.apply f 4) (list.map [1 2] f)]", scope=rt.globals) == [40, [10, 20]]
    rt.runner = "compiled"
    with pytest.raises(ViwoError, match="the tree runner called compiled code"):
        rt.run("(std.apply f 4)", scope=rt.globals)  # (the compiled runner does call it)


def test_runners_are_objects_behind_one_protocol():
    from viwoscript.runners import RUNNERS, make_runner
    from viwoscript.runners.compiled import CompiledEvaluator, CompiledRunner
    from viwoscript.runners.tree import Evaluator, TreeRunner

    assert RUNNERS == ("compiled", "tree")
    assert isinstance(make_runner("compiled"), CompiledRunner) and isinstance(make_runner("tree"), TreeRunner)
    rt = Runtime()
    assert type(rt.evaluator()) is CompiledEvaluator
    rt.runner = "tree"
    assert type(rt.evaluator()) is Evaluator
    ev = rt.evaluator(Limits(gas=100))
    assert ev.run_program(rt.parse("(std.let i 0) (std.while (< i 3) (std.set i (+ i 1))) i"), Scope()) == 3
    assert ev.gas_used() > 0


def test_compiled_code_is_cached_per_tree_and_dropped_when_opcodes_change():
    rt = Runtime()
    tree = rt.parse("(std.let i 0) (std.while (< i 3) (std.set i (+ i 1))) i")
    first = rt.compiled(tree)
    assert first is not None and rt.compiled(tree) is first
    assert rt.run(tree) == 3

    @opcode("test.twice", P("x", "number"), returns="number", into=[])
    def twice(ev, x):
        """Double."""
        return 2 * x

    rt.register(twice)
    assert rt.compiled(tree) is not first  # compiled against the old opcode set: rebuilt
    assert rt.run("(std.let f (std.lambda (x) (test.twice x))) (std.apply f 21)") == 42


def test_a_replaced_builtin_is_called_not_inlined():
    @opcode("+", P("left"), P("right"), returns="number", validate=False, into=[])
    def plus(ev, a=None, b=None):
        """Subtract instead (a plugin that replaced +)."""
        return a - b

    for runner in ("compiled", "tree"):
        rt = Runtime(runner=runner)
        rt.register(plus, replace_existing=True)
        assert rt.run("(std.let f (std.lambda (a b) (+ a b))) (std.apply f 10 3)") == 7


def test_closures_capture_each_iteration():
    src = """
    (std.let fs (list.new))
    (std.for i [1 2 3] (list.push fs (std.lambda () i)))
    (std.let j 0)
    (std.while (< j 3) (std.seq (std.let k (* j 10)) (list.push fs (std.lambda () k)) (std.set j (+ j 1))))
    (list.map fs (std.lambda (f) (std.apply f)))
    """
    assert both(src) == ("value", [1, 2, 3, 0, 10, 20])


def test_variables_persist_between_runs_in_one_scope():
    rt = Runtime()
    rt.run("(std.let n 5) (std.let sq (std.lambda (x) (* x x)))", scope=rt.globals)
    assert rt.run("(std.let i 0) (std.let s 0) (std.while (< i n) (std.seq (std.set s (+ s (std.apply sq i))) "
                  "(std.set i (+ i 1)))) s", scope=rt.globals) == 30


@pytest.mark.parametrize("source, value", [
    ("(std.apply (std.lambda () " + "(+ 1 " * 300 + "0" + ")" * 300 + "))", 300),  # past the nesting budget
    ("(std.let c 0) " + "".join(f"(std.for v{i} [1 2] " for i in range(9)) + "(std.set c (+ c 1))" + ")" * 9 + " c",
     512),  # more nested loops than Python allows blocks in one function
    ("(std.let f (std.lambda () " + "(std.seq (std.let a 1) " * 120 + "a" + ")" * 120 + ")) (std.apply f)", 1),
    ("(std.let f (std.lambda (x) (and " + " ".join(["x"] * 12) + "))) (std.apply f 1)", True),
])
def test_deep_programs_fall_back_to_the_walker_where_python_would_refuse(source, value):
    rt = Runtime()
    assert rt.compiled(rt.parse(source)) is not None
    assert both(source) == ("value", value)


def test_programs_without_loops_or_lambdas_are_walked():
    rt = Runtime()
    assert rt.compiled(rt.parse("(std.let a 1) (+ a 2)")) is None
    assert both("(std.let a 1) (+ a 2)") == ("value", 3)


def test_huge_programs_are_walked_not_compiled():
    from viwoscript.runners.compiled import COMPILE_MAX_NODES

    src = "(std.let f (std.lambda (x) x)) " + " ".join(["(+ 1 2)"] * (COMPILE_MAX_NODES // 3 + 1)) + " 7"
    rt = Runtime()
    assert rt.compiled(rt.parse(src)) is None
    assert both(src) == ("value", 7)


def test_long_run_once_programs_compile_quickly_and_agree():
    src = "\n".join(f"(std.let x{i} (+ {i} 1))" for i in range(3000)) + "\n(std.apply (std.lambda () x2999))"
    rt = Runtime()
    assert compile_program(rt.registry, rt.parse(src)) is not None
    assert both(src) == ("value", 3000)


LOOPY = """
(std.let out (list.new))
(std.let f (std.lambda (n) (std.seq (list.push out n) (std.if (> n 0) (std.apply f (- n 1)) n))))
(std.let i 0)
(std.try
  (std.while true (std.seq (std.apply f 3) (std.set i (+ i 1))))
  e
  (list.push out e))
(list.push out i)
"""


TYPE_ERRORS = """
(std.let log (list.new))
(std.let k 0)
(std.for v [1 "x" 2 null 3]
  (std.try
    (list.push log (+ k (* (- v 1) (% v 3)) (< v 2)))
    e
    (list.push log e)))
(std.set k (+ k (std.apply (std.lambda (a b) (- (* a b) (+ a "b"))) 2 3)))
log
"""


@pytest.mark.parametrize("program", [LOOPY, TYPE_ERRORS], ids=["calls", "type-errors"])
def test_gas_is_charged_exactly_at_every_budget(program):
    """Batched charges must run out at the same node, with the same side effects, as the walker."""
    for gas in range(0, 160):
        results = []
        for runner in ("compiled", "tree"):
            rt = Runtime(runner=runner)
            ev = rt.evaluator(Limits(gas=gas))
            try:
                value = ev.run_program(rt.parse(program), Scope(rt.globals))
                results.append(("value", value, ev.gas_used()))
            except ViwoError as e:
                results.append(("error", e.message, (e.span.line, e.span.col), ev.gas_used()))
        assert results[0] == results[1], (gas, results)


def test_gas_exhaustion_in_a_compiled_loop_is_located():
    rt = Runtime()
    with pytest.raises(GasExhaustedError) as info:
        rt.run("(std.let i 0)\n(std.while true\n  (std.set i (+ i 1)))", limits=Limits(gas=1000))
    assert info.value.span.line in (2, 3)


def test_timeout_and_interrupt_stop_compiled_loops():
    rt = Runtime()
    with pytest.raises(TimeoutLimitError) as info:
        rt.run("(std.let i 0)\n(std.while true (std.set i (+ i 1)))", limits=Limits(gas=None, timeout=0.2))
    assert info.value.span is not None and info.value.span.line == 2

    rt = Runtime()
    threading.Timer(0.2, rt.interrupt).start()
    t = time.monotonic()
    with pytest.raises(InterruptedError_):
        rt.run("(std.let f (std.lambda (n) (+ n 1))) (std.let i 0) (std.while true (std.set i (std.apply f i)))",
               limits=Limits(gas=None))
    assert time.monotonic() - t < 5


def test_recursion_limit_is_the_same_error():
    src = "(std.let f (std.lambda (n) (+ 1 (std.apply f n)))) (std.apply f 0)"
    kind = both(src, limits=Limits(max_depth=60))
    assert kind[:2] == ("error", "DepthLimitError")


def test_cli_runner_flag_and_config(tmp_path):
    script = tmp_path / "loop.viwo"
    script.write_text("(std.let i 0) (std.while (< i 10) (std.set i (+ i 1))) i")
    runner = CliRunner()
    for choice in ("compiled", "tree"):
        result = runner.invoke(cli, ["run", "--runner", choice, str(script)])
        assert result.exit_code == 0 and result.output.strip() == "10", result.output
    bad = tmp_path / "viwo.toml"
    bad.write_text('[run]\nrunner = "jit"\n')
    result = runner.invoke(cli, ["run", "--config", str(bad), str(script)])
    assert result.exit_code == 2 and "run.runner must be one of" in result.output
    good = tmp_path / "good.toml"
    good.write_text('[run]\nrunner = "tree"\n')
    result = runner.invoke(cli, ["config", "--config", str(good)])
    assert "run.runner" in result.output and "tree" in result.output


def test_lambdas_kept_across_runs_follow_opcodes_registered_since():
    @opcode("my.op", returns="string", into=[])
    def my_op(ev):
        """A host opcode registered after the lambda was made."""
        return "mine"

    for runner in ("compiled", "tree"):
        rt = Runtime(runner=runner)
        rt.run("(std.let f (std.lambda (x) (list.new (+ x 1) (my.op))))", scope=rt.globals)
        rt.register(my_op)
        assert rt.run("(std.apply f 1)", scope=rt.globals) == [2, "mine"]


def test_a_replaced_top_level_seq_is_called_by_both_runners():
    from viwoscript.runners.forms.control import seq

    @opcode("std.seq", P("exprs", "block", kind="block", variadic=True), lazy=True, into=[])
    def logged_seq(ev, args, scope):
        """std.seq that logs first."""
        ev.runtime.emit({"type": "log", "message": "seq"})
        return seq(ev, args, scope)

    outcomes = []
    for runner in ("compiled", "tree"):
        events = []
        rt = Runtime(runner=runner, on_event=events.append)
        rt.register(logged_seq, replace_existing=True)
        value = rt.run("(std.seq (std.let x 1) (std.while false 0) x)", scope=rt.globals)
        outcomes.append((value, [e["message"] for e in events], dict(rt.globals.vars)))
    assert outcomes[0] == outcomes[1] == (1, ["seq"], {})


def test_an_uncatchable_error_through_a_compiled_try_keeps_its_cause():
    @opcode("bad.op", P("x"), into=[])
    def bad_op(ev, x=None):
        """Fails like a buggy plugin."""
        raise KeyError(x)

    for runner in ("compiled", "tree"):
        rt = Runtime(runner=runner)
        rt.register(bad_op)
        with pytest.raises(ViwoError) as info:
            rt.run("(std.apply (std.lambda () (std.try (bad.op 1) e 5)))")
        assert isinstance(info.value.__cause__, KeyError), runner


def test_host_trees_with_huge_integers_run():
    big = 10**5000
    assert Runtime().run(["std.apply", ["std.lambda", [], big]]) == big


def test_the_same_text_parses_to_the_same_tree_and_compiles_once():
    rt = Runtime()
    src = "(std.let f (std.lambda (x) (* x 2))) (std.apply f 21)"
    tree = rt.parse(src)
    assert rt.parse(src) is tree and rt.parse(src, filename="other.viwo") is not tree
    assert rt.run(src) == 42 and rt.compiled(tree) is rt.compiled(rt.parse(src))

    @opcode("test.x", returns="number", into=[])
    def x(ev):
        """One."""
        return 1

    rt.register(x)
    assert rt.parse(src) is not tree  # name slots may depend on the opcodes


def test_runner_can_be_changed_only_to_a_known_one():
    rt = Runtime()
    rt.runner = "tree"
    assert rt.run("(std.lambda () 1)").code is None
    with pytest.raises(ValueError, match="runner must be one of"):
        rt.runner = "bogus"


def _shipped_programs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for path in sorted([*root.glob("stdlib/*.viwo"), *root.glob("examples/**/*.viwo")]):
        yield pytest.param(path, id=str(path.relative_to(root)))


@pytest.mark.parametrize("path", list(_shipped_programs()))
def test_shipped_programs_with_loops_or_lambdas_compile(path):
    """A fallback is reported (CompileFallbackWarning, an error in this suite); real programs never take it."""
    from viwoscript.nodes import HOT_OPS, contains_call

    rt = Runtime()
    tree = rt.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if contains_call(tree, HOT_OPS):
        assert compile_program(rt.registry, tree) is not None
        assert compile_program(rt.registry, tree, charge_seq=False) is not None


def test_no_golden_case_falls_back_to_walking():
    """Every case of the golden suite (tests/lang) that the compiled runner compiles at all compiles
    without falling back, and its generated Python draws no SyntaxWarning; a fallback warns (and pyproject.toml turns that warning into an error in every
    test, so a golden case run under the compiled runner fails on it too)."""
    import warnings

    from conftest import LANG_DIR, split_golden

    from viwoscript.errors import ViwoSyntaxError
    from viwoscript.nodes import HOT_OPS, contains_call
    from viwoscript.runners.compiled import CompileFallbackWarning

    rt = Runtime()
    compiled = 0
    for path in sorted(LANG_DIR.glob("*.viwo")):
        for line, code, _ in split_golden(path.read_text(encoding="utf-8")):
            try:
                tree = rt.parse(code, filename=f"{path.name}:{line}")
            except ViwoSyntaxError:
                continue  # (cases of syntax errors)
            if not contains_call(tree, HOT_OPS):
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("error", CompileFallbackWarning)
                warnings.simplefilter("error", SyntaxWarning)  # (generated code never draws one)
                for seq in (True, False):
                    assert compile_program(rt.registry, tree, charge_seq=seq) is not None, f"{path.name}:{line}"
            compiled += 1
    assert compiled > 100


def test_a_fallback_to_walking_is_reported_and_still_runs(monkeypatch):
    from viwoscript.runners import compiled
    from viwoscript.runners.compiled import CompileFallbackWarning

    def inconsistent(self, node, *, charge_seq):
        raise AssertionError("compiler: scope representation changed between passes")

    monkeypatch.setattr(compiled.Compiler, "compile_program", inconsistent)
    src = "(std.let f (std.lambda (n) (* n 2))) (std.apply f 21)"
    rt = Runtime()
    with pytest.warns(CompileFallbackWarning, match="could not compile .*AssertionError: compiler: scope"):
        assert rt.compiled(rt.parse(src)) is None
    with pytest.warns(CompileFallbackWarning):
        assert Runtime().run(src) == 42  # walked, same answer


def test_benchmark_programs_compile():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "interp_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "interp.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # (its dataclasses look themselves up there)
    try:
        spec.loader.exec_module(bench)
    finally:
        del sys.modules[spec.name]
    rt = Runtime()
    for prog in bench.PROGRAMS:
        assert compile_program(rt.registry, rt.parse(prog.source)) is not None, prog.name
