"""The embedding API (design §5): viwoscript.run, Runtime, run/check, Limits, ViwoError, metadata,
registration, isolation between Runtimes, and a cheap import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import viwoscript
from viwoscript import Limits, ViwoError
from viwoscript.opcodes import P, opcode
from viwoscript.runtime import Runtime


def test_run_text_json_text_and_python_list():
    assert viwoscript.run("(+ 1 2)") == 3
    assert viwoscript.run('["+", 1, 2]') == 3
    assert viwoscript.run(["+", 1, 2]) == 3
    assert viwoscript.run(["std.seq", ["std.let", "x", 2], ["*", ["std.var", "x"], 21]]) == 42


def test_run_with_args_and_gas():
    assert viwoscript.run("(std.args)", args=[1, "a"]) == [1, "a"]
    assert viwoscript.run("(std.arg 1)", args={"first": 1, "second": "b"}) == "b"
    with pytest.raises(ViwoError, match="gas"):
        viwoscript.run("(std.while true (+ 1 1))", gas=50)


def test_values_cross_the_boundary_as_python_values():
    value = viwoscript.run('{"n" 1.5 "i" 2 "l" [null true "s"] "nan" (/ 0 0)}')
    assert value["n"] == 1.5 and type(value["i"]) is int and value["l"] == [None, True, "s"]
    assert value["nan"] != value["nan"]
    lam = viwoscript.run("(std.lambda (x) x)")
    assert repr(lam).startswith("<lambda")


def test_runtime_check_returns_every_diagnostic():
    diags = Runtime().check("(std.seq (lst.map 1) (+ 1) (list.get 5))")
    kinds = [(d.severity, d.kind) for d in diags]
    assert ("error", "NameError") in kinds and ("error", "ArgumentError") in kinds
    assert len([d for d in diags if d.severity == "error"]) >= 3
    assert Runtime().check("(+ 1 2)") == []


def test_check_reports_syntax_errors_as_diagnostics():
    (d,) = Runtime().check("(+ 1 2")
    assert d.kind == "SyntaxError"


def test_run_with_check_refuses_before_running():
    events = []
    rt = Runtime(on_event=events.append)
    with pytest.raises(ViwoError, match="Unknown opcode"):
        rt.run('(std.seq (std.log "ran") (nope))', check=True)
    assert events == []


def test_opcodes_metadata_shape():
    meta = Runtime().opcodes_metadata()
    assert isinstance(meta, list)
    by_name = {m["opcode"]: m for m in meta}
    for name in ("std.let", "list.map", "obj.new", "str.concat", "time.offset", "+"):
        m = by_name[name]
        assert {"opcode", "label", "category", "description", "slots", "parameters", "returnType"} <= set(m)
        assert m["description"]
    assert by_name["std.seq"]["lazy"] is True
    assert by_name["list.map"]["parameters"][1]["type"] == "lambda"
    json.dumps(meta)


def test_register_and_isolation_between_runtimes():
    ops: list = []

    @opcode("host.double", P("n", "number"), into=ops, returns="number")
    def double(ev, n):
        """Twice n."""
        return n * 2

    a, b = Runtime(), Runtime()
    a.register(double)
    assert a.run("(host.double 21)") == 42
    with pytest.raises(ViwoError, match="Unknown opcode: host.double"):
        b.run("(host.double 21)")
    with pytest.raises(ValueError, match="already registered"):
        a.register(double)
    a.run("(std.let shared 1)", scope=a.globals)
    assert a.run("shared", scope=a.globals) == 1
    assert b.run("shared", scope=b.globals) is None


def test_registered_opcode_type_checks_come_from_its_declaration():
    ops: list = []

    @opcode("host.shout", P("text", "string"), into=ops, returns="string")
    def shout(ev, text):
        return text.upper()

    rt = Runtime(opcodes=ops)
    assert rt.run('(host.shout "hi")') == "HI"
    with pytest.raises(ViwoError, match="host.shout: expected string for text"):
        rt.run("(host.shout 1)")


def test_variables_do_not_leak_between_runs_by_default():
    rt = Runtime()
    rt.run("(std.let x 1)")
    assert rt.run("x") is None


def test_limits_per_runtime_and_per_run():
    rt = Runtime(limits=Limits(gas=100))
    with pytest.raises(ViwoError, match="gas"):
        rt.run("(std.while true (+ 1 1))")
    assert rt.run("(+ 1 1)", limits=Limits(gas=10)) == 2


def test_events_reach_the_host():
    events = []
    rt = Runtime(on_event=events.append)
    rt.run('(std.seq (std.log "a" 1) (std.warn "careful") (send "progress" {"p" 1}))')
    assert [e["type"] for e in events] == ["log", "warn", "send"]
    assert events[0]["message"] == "a 1"


def test_import_is_cheap_and_lazy():
    code = ("import sys, time; t = time.perf_counter(); import viwoscript; dt = time.perf_counter() - t; "
            "heavy = [m for m in ('torch', 'diffusers', 'pyvips', 'transformers', 'numpy', 'PIL', 'lark', "
            "'rich', 'prompt_toolkit') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_running_a_pure_script_loads_no_heavy_dependency():
    code = ("import sys, viwoscript; viwoscript.run('(list.map [1 2] (std.lambda (x) (* x 2)))'); "
            "print([m for m in ('torch', 'diffusers', 'pyvips', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_module_names_do_not_shadow_the_api():
    from viwoscript.runtime import Runtime as _Runtime

    _Runtime().check("(+ 1 2)")  # imports the static checker module
    assert callable(viwoscript.check) and callable(viwoscript.run) and callable(viwoscript.parse)


HOST_OPCODES: list = []


@opcode("plugin.twice", P("n", "number"), into=HOST_OPCODES, returns="number", category="plugin")
def _twice(ev, n):
    """Twice n (a test plugin)."""
    return n * 2


def test_opcode_plugins_register_through_entry_points(monkeypatch):
    from importlib.metadata import EntryPoint

    import viwoscript.plugins as plugins

    real = plugins.iter_entry_points

    def patched(group):
        extra = []
        if group == plugins.OPCODE_GROUP:
            extra = [EntryPoint("twice", f"{__name__}:_twice", group),
                     EntryPoint("broken", "no_such_module_for_viwo_tests", group)]
        return list(real(group)) + extra

    monkeypatch.setattr(plugins, "iter_entry_points", patched)
    rt = Runtime()
    assert rt.run("(plugin.twice 21)") == 42
    assert any("broken" in e for e in rt.plugin_errors)  # reported, skipped, never fatal
    assert Runtime(plugins=False).registry.get("plugin.twice") is None
