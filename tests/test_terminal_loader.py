"""The one script loader of the faces (viwoscript/terminal/loader.py), shared by `viwo run/check` and the
REPL's :load; the scripts REPL images carry; what a missing script's message says."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from viwoscript.cli import cli
from viwoscript.config import Config
from viwoscript.errors import ScriptError
from viwoscript.io.codec import write_image
from viwoscript.nodes import to_data
from viwoscript.repl import ReplSession, run_plain
from viwoscript.runtime import Runtime
from viwoscript.syntax import from_python
from viwoscript.terminal.loader import SourceError, image_script, load_script
from viwoscript.values import Image


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("NO_COLOR", "1")


def viwo(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def session() -> tuple[ReplSession, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return ReplSession(Config(), stdout=out, stderr=err), out, err


def small_image() -> Image:
    return Image(np.zeros((2, 2, 4), np.uint8))


def test_every_source_loads_to_nodes(tmp_path):
    rt = Runtime()
    (tmp_path / "a.viwo").write_text("(+ 1 2)")
    (tmp_path / "b.json").write_text('["+", 1, 2]')
    text = load_script("a.viwo", rt.parse)
    assert (text.kind, text.text, text.stem, to_data(text.tree)) == ("file", "(+ 1 2)", "a", ["+", 1, 2])
    assert to_data(load_script("b.json", rt.parse).tree) == ["+", 1, 2]
    stdin = load_script("-", rt.parse, stdin=io.StringIO("(* 2 3)"))
    assert (stdin.kind, stdin.filename, stdin.stem, to_data(stdin.tree)) == ("stdin", "<stdin>", "stdin", ["*", 2, 3])
    # an image: its JSON data becomes nodes directly (no text to render, no JSON text round trip)
    write_image(small_image(), tmp_path / "pic-007.png", script=["+", ["std.arg", 0], 1], args=[4])
    img = load_script("pic-007.png", rt.parse)
    assert (img.kind, img.text, img.args, img.stem) == ("image", None, [4], "pic")
    assert img.tree == from_python(["+", ["std.arg", 0], 1])
    # a template, with its parameters bound by name
    (tmp_path / "t.viwo").write_text("(* (std.arg 0) 10)")
    assert viwo("template", "save", "times", "t.viwo", "--param", "n:number=2").exit_code == 0
    t = load_script("template:times", rt.parse, template_args={"n": 5})
    assert (t.kind, t.args, t.stem, to_data(t.tree)) == ("template", [5], "times", ["*", ["std.arg", 0], 10])
    assert rt.run(t.tree, args=t.args) == 50
    with pytest.raises(SourceError, match="cannot read nope.viwo"):
        load_script("nope.viwo", rt.parse)
    with pytest.raises(SourceError, match="is a folder"):
        load_script(str(tmp_path), rt.parse)


def test_a_file_named_as_an_image_is_read_as_an_image(tmp_path):
    # Issue 13 item 9: x.png holding script text is not run as a script.
    (tmp_path / "x.png").write_text('(std.log "ran")\n(+ 1 2)')
    with pytest.raises(ScriptError, match="x.png is named as an image but is text"):
        load_script("x.png", Runtime().parse)
    r = viwo("run", "x.png")
    assert r.exit_code == 1 and r.stdout == "" and "ran" not in r.stderr
    assert "named as an image but is text" in r.stderr and "rename it" in r.stderr
    assert viwo("check", "x.png").exit_code == 1
    (tmp_path / "y.jpg").write_bytes(b"\x00\x01binary")
    assert "y.jpg is named as an image but is not an image" in viwo("run", "y.jpg").stderr


def test_repl_images_carry_the_session_script_and_replay(tmp_path):
    # Issue 13 item 8: `viwo run rr/repl-001.png` ran into "carries no script".
    s, out, err = session()
    assert s.handle("(std.let w 3)")
    assert not s.handle('(+ w "x")')  # failed inputs are not part of the script
    assert s.handle('(std.let c "#ff0000")')
    assert s.handle("(image.new w 2 c)")
    path = tmp_path / "viwo-out" / "repl-001.png"
    assert path.is_file(), err.getvalue()
    script, args = image_script(path)
    assert script == ["std.seq", ["std.let", "w", 3], ["std.let", "c", "#ff0000"],
                      ["image.new", ["std.var", "w"], 2, ["std.var", "c"]]]
    assert args == []
    r = viwo("run", str(path), "--out", "again")
    assert r.exit_code == 0, r.stderr
    assert "<image 3×2" in r.stdout and (tmp_path / "again" / "repl-001.png").is_file()
    # :load of the image in a fresh session runs the same script there
    s2, out2, err2 = session()
    assert s2.handle(f":load {path}"), err2.getvalue()
    assert s2.runtime.globals.lookup("w") == 3
    assert s2.inputs[-1] == '(std.let w 3)\n\n(std.let c "#ff0000")\n\n(image.new w 2 c)'  # text, for :save
    assert s2.handle(":load template:nope") is False and "template" in err2.getvalue()


def test_a_jpeg_whose_script_was_left_out_says_so(tmp_path):
    long_script = ["std.seq", *[["+", 1, "x" * 200] for _ in range(600)]]
    write_image(small_image(), tmp_path / "big.jpg", script=long_script, format="JPEG")
    r = viwo("run", "big.jpg")
    assert r.exit_code == 1
    assert "big.jpg carries no script: viwoscript left the script out: too large for a JPEG" in r.stderr
    assert "save as PNG" in r.stderr
    info = viwo("info", "big.jpg")
    assert "script: none — viwoscript left the script out: too large for a JPEG" in info.stdout
    write_image(small_image(), tmp_path / "bare.png")
    assert "wrote it without a script" in viwo("run", "bare.png").stderr
    assert "script: none — viwoscript wrote it without a script" in viwo("info", "bare.png").stdout
    s, _, err = session()
    assert not s.handle(":load big.jpg") and "left the script out" in err.getvalue()


def test_failed_meta_commands_fail_the_plain_reader():
    # Issue 13 item 25: `:gas abc` exits like other errors.
    s, out, err = session()
    assert run_plain(s, io.StringIO(":gas abc\n(+ 1 2)\n")) == 1
    assert 'positive integer or "unlimited"' in err.getvalue() and out.getvalue() == "3\n"
    s, _, _ = session()
    assert run_plain(s, io.StringIO(":doc nope.op\n")) == 1
    s, _, _ = session()
    assert run_plain(s, io.StringIO(":gas 100\n(+ 1 2)\n")) == 0


def test_check_reads_images_and_templates(tmp_path):
    write_image(small_image(), tmp_path / "ok.png", script=["+", 1, 2])
    r = viwo("check", "ok.png")
    assert r.exit_code == 0, r.stdout
    write_image(small_image(), tmp_path / "bad.png", script=["nope.op", 1])
    r = viwo("check", "--json", "bad.png")
    assert r.exit_code == 1 and json.loads(r.stdout)[0]["message"].startswith("Unknown opcode: nope.op")


def test_load_runs_an_image_with_its_recorded_arguments(tmp_path):
    write_image(small_image(), tmp_path / "a.png", script=["std.let", "doubled", ["*", ["std.arg", 0], 2]], args=[21])
    s, _, err = session()
    assert s.handle(":load a.png"), err.getvalue()
    assert s.runtime.globals.lookup("doubled") == 42


def test_the_command_line_raises_the_recursion_limit_the_runtime_expects():
    # Issue 14 item 7: the library never sets it; `viwo` does, to what the Runtime documents.
    import subprocess
    import sys

    from viwoscript.cli.app import RECURSION_LIMIT
    from viwoscript.runtime import EVAL_RECURSION_LIMIT

    assert RECURSION_LIMIT == EVAL_RECURSION_LIMIT
    deep = ("(std.seq (std.let f (std.lambda (n) (std.if (== n 0) 0 (+ 1 (std.apply f (- n 1))))))"
            " (std.apply f 700))")
    r = subprocess.run([sys.executable, "-m", "viwoscript", "eval", "--runner", "tree", deep],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout == "700\n", r.stderr
    code = "import sys, viwoscript; before = sys.getrecursionlimit(); viwoscript.run('(+ 1 2)'); " \
           "print(sys.getrecursionlimit() == before)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout == "True\n"
