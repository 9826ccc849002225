"""The REPL's pieces as functions, its session and meta commands, and one run in a real pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pexpect
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from prompt_toolkit.document import Document
from pygments.token import Comment, Name

from viwoscript.config import Config
from viwoscript.opcodes import P, opcode
from viwoscript.repl import (
    ReplSession,
    build_prompt_session,
    call_context,
    completion_word,
    completions,
    is_complete,
    make_completer,
    run_plain,
    session_script,
    signature_fragments,
    toolbar_fragments,
)
from viwoscript.runtime import builtin_registry
from viwoscript.terminal.lexer import ViwoLexer, count_comments, lexer_for
from viwoscript.values import Image

REG = builtin_registry()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def session(**kw) -> tuple[ReplSession, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    s = ReplSession(Config(), stdout=out, stderr=err, **kw)
    return s, out, err


def take(stream: io.StringIO) -> str:
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    return text


# --- continuation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, complete", [
    ("", True),
    ("   \n", True),
    ("(+ 1 2)", True),
    ("(+ 1", False),
    ("(std.let x\n  [1 2", False),
    ('(str.len "abc', False),
    ('(str.len "a(b")', True),
    ("(+ 1 2) ; (", True),
    ("(+ 1 2))", True),  # an error more lines cannot fix: submit it and show the error
    ('["std.seq",', False),
    (":help", True),
    ("{", False),
])
def test_is_complete(text, complete):
    assert is_complete(text, REG) is complete


# --- signature help --------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("(+ 1 ", ("+", 1)),
    ("(+ 1", ("+", 0)),
    ("(+ ", ("+", 0)),
    ("(std.le", ("std.le", -1)),
    ('(str.upper "ab', ("str.upper", 0)),
    ('(str.concat "a b" ', ("str.concat", 1)),
    ("(list.map [1 2", ("list.map", 0)),
    ("(list.map [1 2] ", ("list.map", 1)),
    ("(list.map xs (std.lambda (x) ", ("std.lambda", 1)),
    ("(a (b 1) ", ("a", 1)),
    ("(+ 1 2)", None),
    ("; (+ 1\n", None),
    ("(+ 1 ; comment (\n  2 ", ("+", 2)),
    ("", None),
    ("[1 2 ", None),
    ("((", None),
])
def test_call_context(text, expected):
    assert call_context(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='()[]{}" ;\\\nab1.+:,', max_size=40))
def test_call_context_never_fails(text):
    ctx = call_context(text)
    assert ctx is None or (isinstance(ctx[0], str) and ctx[1] >= -1)


def test_signature_fragments_highlight_the_current_parameter():
    spec = REG.get("list.slice")
    frags = signature_fragments(spec, 1)
    current = [text for style, text in frags if style == "class:signature.current"]
    assert current == ["start: number"]
    assert "".join(t for s, t in frags if s != "class:signature.doc") == spec.signature()
    variadic = signature_fragments(REG.get("+"), 5)
    assert [t for s, t in variadic if s == "class:signature.current"] == ["right...: number"]


def test_toolbar_fragments():
    assert "math.sqrt" in "".join(t for _, t in toolbar_fragments("(math.sq", REG))
    assert "list.map" in "".join(t for _, t in toolbar_fragments("(list.map ", REG))
    assert "unknown opcode nope" in "".join(t for _, t in toolbar_fragments("(nope ", REG))
    assert "Tab completes" in "".join(t for _, t in toolbar_fragments("", REG))


# --- completion ------------------------------------------------------------------------------------


def test_completes_opcodes_in_call_heads():
    got = [c for c, kind, _ in completions("(std.l", REG, {})]
    assert {"std.let", "std.lambda", "std.log"} <= set(got)
    assert all(c.startswith("std.l") for c in got)
    meta = dict((c, m) for c, _, m in completions("(math.sqr", REG, {}))
    assert meta == {"math.sqrt": REG.get("math.sqrt").signature()}
    assert [c for c, _, _ in completions("(sqrt", REG, {})] == ["math.sqrt"]  # substring fallback
    assert {c for c, _, _ in completions("( ", REG, {})} == set(REG.names())


def test_completes_variables_and_keywords_in_arguments():
    variables = {"total": 3, "tag": "x", "other": []}
    got = completions("(+ t", REG, variables)
    assert [(c, k, m) for c, k, m in got] == [("tag", "variable", "string"), ("total", "variable", "number"),
                                               ("true", "keyword", "")]
    assert completions('(str.len "t', REG, variables) == []  # inside a string
    assert [c for c, _, _ in completions("[1 o", REG, variables)] == ["other"]


def test_completes_meta_commands():
    assert [c for c, _, _ in completions(":d", REG, {})] == [":doc"]
    assert [c for c, _, _ in completions(":doc str.up", REG, {})] == ["str.upper"]
    assert completion_word(":doc str.up") == "str.up"
    assert completion_word(":sh") == ":sh"
    assert completion_word("(+ 1 ab") == "ab"


def test_prompt_toolkit_completer_uses_the_live_runtime(tmp_path):
    s, _, _ = session()
    s.handle("(std.let velocity 3)")
    completer = make_completer(s)
    got = [(c.text, c.start_position) for c in completer.get_completions(Document("(+ vel"), None)]
    assert got == [("velocity", -3)]
    (tmp_path / "script.viwo").write_text("1")
    files = [c.text for c in completer.get_completions(Document(":load scr"), None)]
    assert files == ["ipt.viwo"]


# --- highlighting ----------------------------------------------------------------------------------


def test_lexer_tokens():
    lexer = lexer_for(["+", "std.let"])()
    toks = [(t, v) for t, v in lexer.get_tokens('(std.let x (nope "s\\n" 1.5 true)) ; done') if v.strip()]
    assert (Name.Function, "std.let") in toks
    assert (Name.Exception, "nope") in toks
    assert (Name.Variable, "x") in toks
    assert any(t in Comment for t, _ in toks)
    plain = [(t, v) for t, v in ViwoLexer().get_tokens("(nope)") if v.strip()]
    assert (Name.Function, "nope") in plain


def test_count_comments():
    assert count_comments('; one\n(+ 1 2) ; two\n(str.len ";no")') == 2
    assert count_comments("(+ 1 2)") == 0


# --- the session -----------------------------------------------------------------------------------


def test_state_persists_and_errors_do_not_end_the_session():
    s, out, err = session()
    assert s.handle("(std.let x 40)")
    assert not s.handle('(+ x "a")')
    assert "expected number" in take(err)
    assert s.handle("(std.set x (+ x 2))")
    assert s.handle("x")
    assert take(out) == "40\n42\n42\n"
    assert s.inputs == ["(std.let x 40)", "(std.set x (+ x 2))", "x"]
    assert s.failures == 1


def test_static_check_runs_first_with_session_variables_known():
    s, out, err = session()
    s.handle("(std.let x 1)")
    assert not s.handle('(std.seq (std.set x 5) (+ x "a"))')
    text = take(err)
    assert "<repl>:1:29" in text and "expected number" in text  # the literal argument, not the call
    assert s.runtime.globals.lookup("x") == 1  # nothing ran
    assert not s.handle("(std.lett y 2)")
    assert "did you mean" in take(err)
    assert s.handle("(+ x 1)") and take(err) == ""  # x is known: no undeclared-variable warning
    assert s.handle("(list.len [zz])")
    assert "variable 'zz' is never declared" in take(err)  # warnings print, the input still runs
    assert take(out) == "1\n2\n1\n"


def test_failures_while_printing_do_not_end_the_session(tmp_path, monkeypatch):
    s, out, err = session()
    s.handle(":json")
    assert not s.handle("(std.let a (list.new 1)) (list.push a a) a")
    assert "contains itself" in take(err)
    assert s.inputs == ["(std.let a (list.new 1)) (list.push a a) a"]  # it did run
    monkeypatch.setattr(s.terminal, "result", lambda *a, **k: 1 / 0)
    assert not s.handle("1")
    assert "internal error: ZeroDivisionError" in take(err)
    monkeypatch.undo()
    assert s.handle("(list.len a)") and take(out).endswith("2\n")


def test_located_errors_show_the_input():
    s, _, err = session()
    s.handle("(std.seq\n  (std.throw \"nope\"))")
    text = err.getvalue()
    assert "<repl>:2:3" in text and ' 2 |   (std.throw "nope")' in text


def test_json_toggle_and_gas():
    s, out, err = session()
    s.handle(":json")
    s.handle('{"a" [1 2]}')
    assert take(out) == 'results print as JSON\n{"a": [1, 2]}\n'
    s.handle(":gas 100")
    assert take(out) == "gas per input: 100\n"
    assert not s.handle("(std.seq (std.let i 0) (std.while true (std.set i (+ i 1))))")
    assert "ran out of gas" in take(err)
    s.handle(":gas unlimited")
    assert s.runtime.limits.gas is None
    assert not s.handle(":gas lots")
    assert "positive integer" in take(err)


def test_help_ops_doc_and_unknown_commands():
    s, out, err = session()
    s.handle(":help")
    text = take(out)
    assert all(cmd in text for cmd in (":ops", ":doc", ":canvas", ":save", ":gas", ":quit"))
    s.handle(":ops str.up")
    assert "(str.upper string: string) -> string" in take(out)
    s.handle(":doc list.slice")
    assert "list.slice" in take(out)
    assert not s.handle(":doc nope.op")
    assert not s.handle(":doc")
    assert not s.handle(":ops zzzz")
    assert not s.handle(":sav x")
    assert "did you mean :save?" in take(err)
    s.handle(":caps")
    assert take(out)


def test_save_and_load_round_trip(tmp_path):
    s, out, _ = session()
    s.handle("(std.let x 2)")
    s.handle("(std.let y\n  (* x 3))")
    s.handle('(+ x "oops")')  # failed inputs are not saved
    s.handle("(std.let a 1) (std.let b 2)")
    s.handle(":save session.viwo")
    s.handle(":save session.json")
    assert (tmp_path / "session.viwo").read_text() == "(std.let x 2)\n(std.let y\n  (* x 3))\n(std.let a 1) (std.let b 2)\n"
    data = json.loads((tmp_path / "session.json").read_text())
    assert data == ["std.seq", ["std.let", "x", 2], ["std.let", "y", ["*", ["std.var", "x"], 3]],
                    ["std.let", "a", 1], ["std.let", "b", 2]]
    s.handle(":reset")
    assert s.inputs == [] and s.runtime.globals.lookup("y") is None
    take(out)
    s.handle(":load session.json")
    s.handle("y")
    assert take(out) == "2\n6\n"
    assert not s.handle(":load missing.viwo")


def test_session_script_single_form():
    assert session_script(["(+ 1 2)"], json_form=True) == '["+", 1, 2]\n'
    assert session_script([]) == ""


def test_quit_and_plain_reader():
    s, out, err = session()
    code = run_plain(s, io.StringIO("(std.let x\n  1)\n:json\n[x]\n:quit\n(+ 1 1)\n"))
    assert code == 0 and s.done
    assert out.getvalue() == "1\nresults print as JSON\n[1]\n"
    s, out, err = session()
    assert run_plain(s, io.StringIO("(+ 1 2)\n(list.new 1\n")) == 1
    assert out.getvalue() == "3\n" and "unexpected end of input" in err.getvalue()


IMG_OPS: list = []


@opcode("test.image", P("w", "number"), into=IMG_OPS, returns="image")
def _image(ev, w):
    """A grey square."""
    return Image(np.full((int(w), int(w), 3), 128, np.uint8), {"seed": 3})


@opcode("canvas.layers", into=IMG_OPS, returns="array")
def _layers(ev):
    """Stand-in for the canvas helper's opcode."""
    return [{"id": "bg", "name": "Background", "type": "raster", "visible": True, "opacity": 1, "locked": False},
            {"id": "m", "name": "Mask", "type": "mask", "visible": False, "opacity": 0.5, "locked": True}]


def test_images_show_a_summary_and_are_saved(tmp_path):
    s, out, err = session()
    assert not s.handle(":show")
    assert "no image yet" in take(err)
    for spec in IMG_OPS:
        s.runtime.register(spec, replace_existing=True)
    s.handle("(test.image 4)")
    path = tmp_path / "viwo-out" / "repl-001.png"
    assert take(out) == "<image 4×4 RGB seed=3> → viwo-out/repl-001.png\n"
    assert np.asarray(PILImage.open(path)).tolist() == np.full((4, 4, 3), 128).tolist()
    s.handle("(std.let img (test.image 4))")
    s.handle("[img img]")  # the same image is saved once
    assert take(out) == ("<image 4×4 RGB seed=3> → viwo-out/repl-002.png\n"
                         "[<image 4×4 RGB seed=3>, <image 4×4 RGB seed=3>]\n"
                         "<image 4×4 RGB seed=3> → viwo-out/repl-002.png\n")
    assert sorted(p.name for p in path.parent.iterdir()) == ["repl-001.png", "repl-002.png"]
    s.handle(":show")  # no display here: says where the image is
    assert take(out) == "no image viewer found; the image is at viwo-out/repl-002.png\n"


def test_canvas_layer_table():
    s, out, err = session()
    s.handle('(canvas.size 64 32)')
    s.handle('(canvas.layer.create "sketch" "Sketch" "raster")')
    s.handle('(canvas.layer.create "m" "Mask" "mask")')
    s.handle('(canvas.layer.update "m" {"visible" false "opacity" 0.5})')
    take(out)
    assert s.handle(":canvas"), err.getvalue()
    lines = take(out).splitlines()
    assert lines[0].strip() == "canvas 64×32"
    assert lines[1].split() == ["id", "name", "type", "visible", "opacity", "locked"]
    assert lines[2].split() == ["sketch", "Sketch", "raster", "true", "1", "false"]
    assert lines[3].split() == ["m", "Mask", "mask", "false", "0.5", "false"]


def test_canvas_command_without_canvas_opcodes():
    s, _, err = session()
    s.runtime.registry.unregister("canvas.layers")
    assert not s.handle(":canvas")
    assert "not installed" in err.getvalue()


def test_prompt_session_multiline_with_pipe_input():
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    s, _, _ = session()
    with create_pipe_input() as inp:
        ps = build_prompt_session(s, None, input=inp, output=DummyOutput())
        inp.send_text("(std.let x\r(+ 1 2))\r")
        text = ps.prompt()
    assert text == "(std.let x\n  (+ 1 2))"
    assert s.handle(text) and s.runtime.globals.lookup("x") == 3
    with create_pipe_input() as inp:  # Enter inside a complete input splits the line instead
        ps = build_prompt_session(s, None, input=inp, output=DummyOutput())
        inp.send_text("(+ 1 2)\x1b[D\r\x1b[F\r")  # ←, Enter, End, Enter
        text = ps.prompt()
    assert text == "(+ 1 2\n  )"


def test_history_file(tmp_path):
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    s, _, _ = session()
    with create_pipe_input() as inp:
        ps = build_prompt_session(s, str(tmp_path / "hist"), input=inp, output=DummyOutput())
        inp.send_text("(+ 1 2)\r")
        ps.prompt()
    assert "+(+ 1 2)" in (tmp_path / "hist").read_text()
    with create_pipe_input() as inp:
        build_prompt_session(s, "", input=inp, output=DummyOutput())
    assert (tmp_path / "xdg-state" / "viwoscript").is_dir()  # the file appears with the first input


# --- end to end in a pseudo-terminal ---------------------------------------------------------------

_CPR = re.escape("\x1b[6n")


def test_repl_in_a_pseudo_terminal(tmp_path):
    env = {**os.environ, "TERM": "xterm-256color", "XDG_STATE_HOME": str(tmp_path / "state")}
    env.pop("PROMPT_TOOLKIT_NO_CPR", None)
    child = pexpect.spawn(sys.executable, ["-m", "viwoscript", "repl"], env=env, cwd=str(tmp_path),
                          encoding="utf-8", timeout=20, dimensions=(30, 100))

    def expect(pattern):
        while child.expect([_CPR, pattern]) == 0:
            child.send("\x1b[5;1R")  # answer prompt_toolkit's cursor position request

    try:
        expect("viwo>")
        child.send("(std.let total\r")  # incomplete: the REPL asks for more
        expect(r"\.\.\.")
        child.send("(* 1234 2))\r")
        expect("2468")
        expect("viwo>")
        child.send("(math.sqr\t")  # Tab completes the opcode name
        expect("math.sqrt")
        child.send(" ")
        expect("num: number")  # the signature in the bottom toolbar
        child.send("15129)\r")
        expect(r"123(\x1b\[0m)?\r\n")
        expect("viwo>")
        child.send('(+ total "a")\r')
        expect("expected number for right")
        expect("viwo>")
        child.send("(std.while true 1)\r")
        time.sleep(0.5)
        child.sendintr()  # Ctrl-C stops the evaluation, not the REPL
        expect("interrupted")
        expect("viwo>")
        child.send('(str.concat "ab" "cd" (std.string total))\r')
        expect('"abcd2468"')
        expect("viwo>")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "(std.let total" in (tmp_path / "state" / "viwoscript" / "repl_history").read_text()


def test_viwo_with_no_arguments_on_a_terminal_starts_the_repl(tmp_path):
    env = {**os.environ, "TERM": "dumb", "PROMPT_TOOLKIT_NO_CPR": "1", "XDG_STATE_HOME": str(tmp_path)}
    child = pexpect.spawn(sys.executable, ["-m", "viwoscript"], env=env, encoding="utf-8", timeout=20)
    try:
        child.expect("viwo>")
        child.send(":quit\r")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_completer_type_hints_from_values():
    s, _, _ = session()
    s.handle('(std.let name "x")')
    got = list(make_completer(s).get_completions(Document("(str.len na"), None))
    assert [(c.text, c.display_meta_text) for c in got] == [("name", "string")]


def test_out_dir_is_created_lazily(tmp_path):
    s, _, _ = session()
    s.handle("(+ 1 2)")
    assert not Path(tmp_path / "viwo-out").exists()


def test_typed_indentation_replaces_the_automatic_one():
    # Issue 13 item 25: auto-indent doubled indentation the user typed (or pasted without bracketed paste).
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    s, _, _ = session()
    with create_pipe_input() as inp:
        ps = build_prompt_session(s, None, input=inp, output=DummyOutput())
        inp.send_text("(std.seq\r  (std.let x\r    [1 2])\r  (+ x 1) 2)\r")
        text = ps.prompt()
    assert text == "(std.seq\n  (std.let x\n    [1 2])\n  (+ x 1) 2)"
    with create_pipe_input() as inp:  # without typed indentation the automatic one stays
        ps = build_prompt_session(s, None, input=inp, output=DummyOutput())
        inp.send_text("(std.seq\r(+ 1 2)\r)\r")
        text = ps.prompt()
    assert text == "(std.seq\n  (+ 1 2)\n  )"


def test_history_in_a_missing_folder_warns_and_creates_nothing(tmp_path):
    from prompt_toolkit.history import InMemoryHistory
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    s, _, err = session()
    with create_pipe_input() as inp:
        ps = build_prompt_session(s, str(tmp_path / "no" / "such" / "hist"), input=inp, output=DummyOutput())
    assert isinstance(ps.history, InMemoryHistory) and not (tmp_path / "no").exists()
    assert "warning: --history: the folder" in err.getvalue() and "does not exist" in err.getvalue()


def test_an_image_saved_by_an_input_carries_the_whole_session(tmp_path):
    from viwoscript.io.metadata import read_metadata

    s, out, err = session()
    for spec in IMG_OPS:
        s.runtime.register(spec, replace_existing=True)
    assert s.handle("(std.let side 4)"), err.getvalue()
    assert s.handle("(std.let img (test.image side))"), err.getvalue()
    assert s.handle('(image.save img "saved.png")'), err.getvalue()
    script = read_metadata(tmp_path / "saved.png")["script"]
    text = str(script)
    assert "side" in text and "test.image" in text and "image.save" in text, script
