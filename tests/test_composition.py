"""The composition root (viwoscript/runtime.py): what a Runtime is built from, what Runtimes share, and
what the library leaves alone (process-wide settings)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from viwoscript.opcodes import P, opcode
from viwoscript.runtime import Runtime, builtin_registry
from viwoscript.syntax import LANGUAGE_SLOTS, default_slots, parse


def test_the_readers_table_of_name_slots_matches_the_declarations():
    # The reader is given declarations by the Runtime; its own table (for callers that give none) is a
    # checked copy of the standard library's name slots.
    declared = {(spec.name, i): p.kind for spec in builtin_registry() for i, p in enumerate(spec.params)
                if p.kind in ("name", "names")}
    assert declared == LANGUAGE_SLOTS
    assert default_slots("std.let", 0) == "name" and default_slots("+", 0) is None


def test_parse_without_declarations_reads_the_binding_forms():
    rt = Runtime(plugins=False)
    for src in ("(std.let x 1) (std.set x 2) (std.for i [1] i) (std.try 1 e e) (std.lambda (a b) a)",):
        assert parse(src) == rt.parse(src)


def test_runtimes_share_the_standard_registry_until_one_registers():
    a, b = Runtime(plugins=False), Runtime(plugins=False)
    assert a.registry._specs is b.registry._specs  # nothing copied per Runtime

    @opcode("test.only_a", P("x"), into=[])
    def only_a(ev, x):
        return x

    a.register(only_a)
    assert a.registry.get("test.only_a") is not None
    assert b.registry.get("test.only_a") is None and Runtime(plugins=False).registry.get("test.only_a") is None
    assert builtin_registry().get("test.only_a") is None
    assert a.run("(test.only_a 5)") == 5
    b.registry.unregister("canvas.layers")  # taking one away is this Runtime's business too
    assert b.registry.get("canvas.layers") is None and a.registry.get("canvas.layers") is not None
    assert Runtime(plugins=False).registry.get("canvas.layers") is not None


def test_a_runtime_never_changes_the_process_recursion_limit():
    # A process-wide setting belongs to the application (the `viwo` command raises it); a library
    # that embeds viwoscript keeps its own. Deep scripts then stop with a DepthLimitError that says so.
    code = textwrap.dedent("""
        import sys
        from viwoscript.errors import DepthLimitError
        from viwoscript.limits import Limits
        from viwoscript.runtime import Runtime
        before = sys.getrecursionlimit()
        src = "(std.let f (std.lambda (n) (std.if (<= n 0) 0 (+ 1 (std.apply f (- n 1)))))) (std.apply f 5000)"
        for runner in ("compiled", "tree"):
            try:
                Runtime(runner=runner, limits=Limits(max_depth=6000)).run(src)
            except DepthLimitError as e:
                assert "sys.setrecursionlimit" in e.hint, e.hint
            else:
                raise AssertionError("ran 5000 deep under the default recursion limit")
        assert Runtime().run("(+ 1 2)") == 3
        assert sys.getrecursionlimit() == before, (before, sys.getrecursionlimit())
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
