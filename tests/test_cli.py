"""Every `viwo` command through click's CliRunner: output, error paths and exit codes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from viwoscript.cli import cli
from viwoscript.cli import options as cli_mod
from viwoscript.opcodes import P, opcode
from viwoscript.terminal.console import ImageSaver, Terminal, display, json_result
from viwoscript.terminal.loader import image_script
from viwoscript.values import Image

# --- test opcodes standing in for canvas/capabilities: images, image events, progress --------------
TEST_OPS: list = []


@opcode("test.image", P("w", "number"), P("h", "number"), into=TEST_OPS, returns="image")
def _image(ev, w, h):
    """A red image with a seed."""
    px = np.zeros((int(h), int(w), 3), np.uint8)
    px[..., 0] = 255
    return Image(px, {"seed": 7})


@opcode("test.output", P("name", "string"), into=TEST_OPS, returns="null", pure=False)
def _output(ev, name):
    """Send an image to the host as an image event."""
    ev.runtime.emit({"type": "image", "image": Image(np.full((2, 3, 4), 9, np.uint8)), "name": name})


@opcode("test.progress", P("total", "number"), into=TEST_OPS, returns="null", pure=False)
def _progress(ev, total):
    """Emit progress events."""
    for i in range(1, int(total) + 1):
        ev.runtime.emit({"type": "progress", "task": "denoise", "step": i, "total": int(total)})


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    original = cli_mod.make_runtime

    def make_runtime(cfg, terminal=None):
        rt = original(cfg, terminal)
        for spec in TEST_OPS:
            rt.register(spec)
        return rt

    monkeypatch.setattr(cli_mod, "make_runtime", make_runtime)
    return tmp_path


def viwo(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def script(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


# --- run ---------------------------------------------------------------------------------------------


def test_run_text_file_prints_result_and_logs_to_stderr(tmp_path):
    f = script(tmp_path / "a.viwo", '(std.log "hello" 1)\n(+ 1 2)\n')
    r = viwo("run", f)
    assert r.exit_code == 0
    assert r.stdout == "3\n"
    assert r.stderr == "hello 1\n"


def test_run_json_file_and_stdin(tmp_path):
    f = script(tmp_path / "a.json", '["str.upper", "hi"]')
    assert viwo("run", f).stdout == '"HI"\n'
    r = viwo("run", "-", input='["+", 40, 2]')
    assert (r.exit_code, r.stdout) == (0, "42\n")


def test_run_null_result_prints_nothing_unless_json(tmp_path):
    f = script(tmp_path / "a.viwo", "(std.let x null)")
    assert viwo("run", f).stdout == ""
    assert viwo("run", f, "--json").stdout == "null\n"


def test_run_quiet_hides_logs_not_warnings(tmp_path):
    f = script(tmp_path / "a.viwo", '(std.log "chatty") (std.warn "careful") 1')
    r = viwo("run", f, "--quiet")
    assert r.stdout == "1\n"
    assert r.stderr == "warning: careful\n"


def test_run_pretty_breaks_long_values_and_json_is_one_document(tmp_path):
    f = script(tmp_path / "a.viwo", '(list.map [1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30]'
               ' (std.lambda (x) {"n" x}))')
    pretty = viwo("run", f).stdout
    assert pretty.startswith('[\n  {"n": 1},\n  {"n": 2},')
    data = json.loads(viwo("run", f, "--json").stdout)
    assert data[29] == {"n": 30}


def test_run_args(tmp_path):
    f = script(tmp_path / "a.viwo", "(std.args)")
    r = viwo("run", f, "--json", "--args-json", '["a", 1]', "--arg", "n=2", "--arg", "s=text", "--arg",
             'q="7"', "--arg", "bare")
    assert json.loads(r.stdout) == ["a", 1, 2, "text", "7", "bare"]
    r = viwo("run", f, "--json", "--args-json", '{"x": [1], "y": null}')
    assert json.loads(r.stdout) == [[1], None]
    assert viwo("run", f, "--args-json", "{bad").exit_code == 2
    assert viwo("run", f, "--args-json", "3").exit_code == 2


def test_run_error_is_located_and_exits_1(tmp_path):
    f = script(tmp_path / "bad.viwo", '(std.let x 1)\n(+ x (str.concat "a"))\n')
    r = viwo("run", f)
    assert r.exit_code == 1
    assert r.stdout == ""
    assert "error[ArgumentError]: +: expected number for right" in r.stderr
    assert f"--> {f}:2:1" in r.stderr
    assert ' 2 | (+ x (str.concat "a"))' in r.stderr and "^^^" in r.stderr
    assert "Traceback" not in r.stderr
    assert "Traceback" in viwo("run", f, "--debug").stderr


def test_run_checks_before_running(tmp_path):
    f = script(tmp_path / "bad.viwo", '(std.log "side effect")\n(std.lett x 1)\n(list.get)\n')
    r = viwo("run", f)
    assert r.exit_code == 1
    assert "side effect" not in r.stderr  # nothing ran
    assert "Unknown opcode: std.lett" in r.stderr and "did you mean" in r.stderr
    assert "list.get" in r.stderr  # every problem, not just the first
    r = viwo("run", f, "--no-check")
    assert r.exit_code == 1 and "side effect" in r.stderr


def test_run_syntax_error(tmp_path):
    f = script(tmp_path / "a.viwo", "(+ 1 2")
    r = viwo("run", f)
    assert r.exit_code == 1 and "unexpected end of input" in r.stderr


def test_run_limits_from_flags(tmp_path):
    loop = script(tmp_path / "loop.viwo", "(std.let i 0)\n(std.while true (std.set i (+ i 1)))")
    r = viwo("run", loop, "--gas", "1000")
    assert r.exit_code == 1 and "Script ran out of gas!" in r.stderr
    start = time.monotonic()
    r = viwo("run", loop, "--timeout", "0.3", "--gas", "unlimited")
    assert r.exit_code == 1 and "timed out after 0.3 s" in r.stderr
    assert time.monotonic() - start < 10


def test_run_limits_from_config_and_flag_wins(tmp_path):
    (tmp_path / "viwo.toml").write_text("[limits]\ngas = 500\n")
    loop = script(tmp_path / "loop.viwo", "(std.let i 0)\n(std.while (< i 1000) (std.set i (+ i 1)))\ni")
    assert "out of gas" in viwo("run", loop).stderr
    assert viwo("run", loop, "--gas", "100000").stdout == "1000\n"


def test_run_bad_config_is_a_usage_error(tmp_path):
    (tmp_path / "viwo.toml").write_text("[canvas]\nwidth = -3\n")
    f = script(tmp_path / "a.viwo", "1")
    r = viwo("run", f)
    assert r.exit_code == 2
    assert "canvas.width must be an integer" in r.stderr and "viwo.toml:2:1" in r.stderr


def test_run_usage_errors_exit_2(tmp_path):
    assert viwo("run", "missing.viwo").exit_code == 2
    f = script(tmp_path / "a.viwo", "1")
    assert viwo("run", f, "--size", "big").exit_code == 2
    assert viwo("run", f, "--gas", "0").exit_code == 2
    assert viwo("run", f, "--nope").exit_code == 2
    assert viwo("run").exit_code == 2


def test_run_rejects_binary_files(tmp_path):
    (tmp_path / "a.viwo").write_bytes(b"(+ 1 \xff)")
    r = viwo("run", str(tmp_path / "a.viwo"))
    assert r.exit_code == 1 and "not UTF-8" in r.stderr


def test_run_saves_returned_images(tmp_path):
    f = script(tmp_path / "pic.viwo", "(test.image 4 3)")
    r = viwo("run", f, "--out", "renders")
    assert r.exit_code == 0
    path = tmp_path / "renders" / "pic-001.png"
    assert r.stdout == "<image 4×3 RGB seed=7> → renders/pic-001.png\n"
    saved = np.asarray(PILImage.open(path))
    assert saved.shape == (3, 4, 3) and (saved[..., 0] == 255).all() and (saved[..., 1:] == 0).all()
    # a second run never overwrites
    viwo("run", f, "--out", "renders")
    assert (tmp_path / "renders" / "pic-002.png").is_file()
    # the PNG carries the script: running the image runs it again
    assert image_script(path) == (["test.image", 4, 3], [])
    r = viwo("run", str(path), "--out", "again")
    assert r.exit_code == 0 and (tmp_path / "again" / "pic-001.png").is_file(), r.stderr


def test_run_json_result_with_images_lists_their_paths(tmp_path):
    f = script(tmp_path / "two.viwo", '{"a" (test.image 1 1) "b" [(test.image 2 2)]}')
    data = json.loads(viwo("run", f, "--json").stdout)
    assert data["a"] == {"type": "image", "width": 1, "height": 1, "mode": "RGB", "seed": 7,
                         "path": str(tmp_path / "viwo-out" / "two-001.png")}
    assert data["b"][0]["path"].endswith("two-002.png")


def test_run_image_events_are_saved_by_name(tmp_path):
    f = script(tmp_path / "ev.viwo", '(test.output "final")\n(test.output "../../etc/x")\n1')
    r = viwo("run", f)
    assert r.stdout == "1\n"
    assert (tmp_path / "viwo-out" / "final.png").is_file()
    assert "→ viwo-out/final.png" in r.stderr
    assert (tmp_path / "viwo-out" / "etc-x.png").is_file()  # never outside the out dir
    assert np.asarray(PILImage.open(tmp_path / "viwo-out" / "final.png")).shape == (2, 3, 4)


def test_run_image_without_script_metadata(tmp_path):
    PILImage.new("RGB", (2, 2)).save(tmp_path / "plain.png")
    r = viwo("run", str(tmp_path / "plain.png"))
    assert r.exit_code == 1 and "plain.png carries no script: it has no viwoscript metadata" in r.stderr
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    r = viwo("run", str(tmp_path / "broken.png"))
    assert r.exit_code == 1 and "not an image" in r.stderr


def test_rerunning_an_image_reuses_its_arguments(tmp_path):
    f = script(tmp_path / "sized.viwo", "(test.image (std.arg 0) 2)")
    assert viwo("run", f, "--arg", "w=3").exit_code == 0
    first = tmp_path / "viwo-out" / "sized-001.png"
    assert image_script(first) == (["test.image", ["std.arg", 0], 2], [3])
    r = viwo("run", str(first))
    assert r.stdout == "<image 3×2 RGB seed=7> → viwo-out/sized-002.png\n"
    r = viwo("run", str(first), "--arg", "5")  # arguments given on the command line win
    assert r.stdout == "<image 5×2 RGB seed=7> → viwo-out/sized-003.png\n"


@pytest.mark.parametrize("suffix", ["jpg", "webp"])
def test_run_jpeg_and_webp_written_by_viwoscript(tmp_path, suffix):
    from viwoscript.io.codec import write_image

    path = write_image(Image(np.zeros((4, 4, 3), np.uint8)), tmp_path / f"s.{suffix}", script="(+ 2 3)")
    r = viwo("run", str(path))
    assert (r.exit_code, r.stdout) == (0, "5\n")


def test_run_progress_events_without_a_tty_show_no_bar(tmp_path):
    f = script(tmp_path / "p.viwo", "(test.progress 5) 1")
    r = viwo("run", f)
    assert (r.stdout, r.stderr) == ("1\n", "")


def test_ctrl_c_interrupts_with_exit_130(tmp_path):
    loop = script(tmp_path / "loop.viwo", "(std.let i 0)\n(std.while true (std.set i (+ i 1)))")
    proc = subprocess.Popen([sys.executable, "-m", "viwoscript", "run", loop, "--gas", "unlimited"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert err.strip().endswith("interrupted")
    assert "Traceback" not in err


# --- eval --------------------------------------------------------------------------------------------


def test_eval():
    assert viwo("eval", "(+ 1 2)").stdout == "3\n"
    assert viwo("eval", '["std.if", false, 1]').stdout == "null\n"
    assert viwo("eval", "(/ 1 0)").stdout == "Infinity\n"
    assert viwo("eval", "(/ 1 0)", "--json").stdout == "null\n"
    assert viwo("eval", '(str.concat "a" "é")', "--json").stdout == '"aé"\n'
    r = viwo("eval", "(std.throw \"boom\")")
    assert r.exit_code == 1 and "boom" in r.stderr and "<eval>:1:1" in r.stderr
    assert viwo("eval").exit_code == 2


def test_eval_cyclic_value(tmp_path):
    src = "(std.let a (list.new 1)) (list.push a a) a"
    assert viwo("eval", src).stdout == "[1, [...]]\n"
    r = viwo("eval", src, "--json")
    assert r.exit_code == 1 and "contains itself" in r.stderr


# --- check -------------------------------------------------------------------------------------------


def test_check_clean_and_broken_files(tmp_path):
    good = script(tmp_path / "good.viwo", "(std.let x 1)\n(+ x 1)\n")
    bad = script(tmp_path / "bad.json", '["std.seq", ["nope"], ["+", 1]]')
    r = viwo("check", good)
    assert r.exit_code == 0 and r.stdout == "" and "no problems" in r.stderr
    r = viwo("check", good, bad)
    assert r.exit_code == 1
    assert "Unknown opcode: nope" in r.stdout and "+: expected at least 2 arguments" in r.stdout
    assert "2 errors and 0 warnings in 2 files" in r.stderr


def test_check_warnings_count_and_json(tmp_path):
    f = script(tmp_path / "w.viwo", "(+ y 1)")
    r = viwo("check", f, "--json")
    assert r.exit_code == 1
    diags = json.loads(r.stdout)
    assert diags == [{"file": f, "severity": "warning", "kind": "NameError",
                      "message": "variable 'y' is never declared, so it reads as null",
                      "hint": "declare it with std.let, or check the spelling",
                      "line": 1, "col": 4, "end_line": 1, "end_col": 5}]


def test_check_syntax_errors_and_missing_files(tmp_path):
    f = script(tmp_path / "s.viwo", "(+ 1 2))")
    r = viwo("check", f)
    assert r.exit_code == 1 and "SyntaxError" in r.stdout
    assert viwo("check", "missing.viwo").exit_code == 2
    assert viwo("check").exit_code == 2


# --- fmt ---------------------------------------------------------------------------------------------


def test_fmt_prints_canonical_text(tmp_path):
    f = script(tmp_path / "a.viwo", "(std.let   x\n 1)   (+  x 2)")
    r = viwo("fmt", f)
    assert r.exit_code == 0
    assert r.stdout == "(std.let x 1)\n\n(+ x 2)\n"


def test_fmt_check_and_write(tmp_path):
    messy = script(tmp_path / "messy.viwo", "(+  1 2)")
    tidy = script(tmp_path / "tidy.viwo", "(+ 1 2)\n")
    r = viwo("fmt", "--check", messy, tidy)
    assert r.exit_code == 1 and f"would reformat {messy}" in r.stderr and tidy not in r.stderr
    assert viwo("fmt", "--check", tidy).exit_code == 0
    r = viwo("fmt", "--write", messy, tidy)
    assert r.exit_code == 0 and f"wrote {messy}" in r.stderr and f"wrote {tidy}" not in r.stderr
    assert Path(messy).read_text() == "(+ 1 2)\n"
    assert viwo("fmt", "--check", messy).exit_code == 0


def test_fmt_converts_both_ways(tmp_path):
    f = script(tmp_path / "a.viwo", '(std.let x [1 "a" true])')
    r = viwo("fmt", "--to", "json", f)
    assert json.loads(r.stdout) == ["std.let", "x", ["list.new", 1, "a", True]]
    r = viwo("fmt", "--to", "json", "--write", f)
    assert r.exit_code == 0
    converted = tmp_path / "a.json"
    assert json.loads(converted.read_text()) == ["std.let", "x", ["list.new", 1, "a", True]]
    Path(f).unlink()
    assert viwo("fmt", "--to", "text", "--write", str(converted)).exit_code == 0
    assert Path(f).read_text() == '(std.let x [1 "a" true])\n'
    assert viwo("fmt", "-", input='["+", 1, 2]').stdout == '["+", 1, 2]\n'
    assert viwo("fmt", "--to", "text", "-", input='["+", 1, 2]').stdout == "(+ 1 2)\n"


def test_fmt_of_an_empty_script_prints_nothing(tmp_path):
    for i, text in enumerate(("", "  \n", "; only a comment\n")):
        f = script(tmp_path / f"e{i}.viwo", text)
        r = viwo("fmt", f)
        assert r.exit_code == 0 and r.stdout == ""


def test_fmt_converting_never_overwrites_another_file(tmp_path):
    f = script(tmp_path / "a.viwo", "(+ 1 2)")
    other = tmp_path / "a.json"
    other.write_text('{"keep": 1}\n')
    r = viwo("fmt", "--to", "json", "--write", f)
    assert r.exit_code == 1 and "already exists; not overwritten" in r.stderr
    assert other.read_text() == '{"keep": 1}\n'
    other.write_text('["+", 1, 2]\n')  # already the converted text: nothing to do
    assert viwo("fmt", "--to", "json", "--write", f).exit_code == 0


def test_info_of_a_missing_file_is_a_usage_error(tmp_path):
    r = viwo("info", str(tmp_path / "missing.png"))
    assert r.exit_code == 2 and "no such file" in r.stderr


def test_fmt_will_not_silently_drop_comments(tmp_path):
    f = script(tmp_path / "c.viwo", '; a comment\n(+  1 2) ; another\n(str.len ";not a comment")')
    r = viwo("fmt", "--write", f)
    assert r.exit_code == 1 and "would drop 2 comments" in r.stderr
    assert Path(f).read_text().startswith("; a comment")
    r = viwo("fmt", f)
    assert r.exit_code == 0 and "2 comments not kept" in r.stderr
    r = viwo("fmt", "--check", f)  # never a false "would reformat" for comments alone
    assert r.exit_code == 0 and f"skipped {f}: it has comments" in r.stderr and "1 skipped" in r.stderr
    assert viwo("fmt", "--write", "--drop-comments", f).exit_code == 0
    assert Path(f).read_text() == '(+ 1 2)\n\n(str.len ";not a comment")\n'


def test_fmt_usage_errors(tmp_path):
    a = script(tmp_path / "a.viwo", "1")
    b = script(tmp_path / "b.viwo", "2")
    assert viwo("fmt", a, b).exit_code == 2
    assert viwo("fmt", "--check", "--to", "json", a).exit_code == 2
    assert viwo("fmt", "--write", "-", input="1").exit_code == 2
    PILImage.new("RGB", (1, 1)).save(tmp_path / "i.png")
    assert viwo("fmt", str(tmp_path / "i.png")).exit_code == 2
    bad = script(tmp_path / "bad.viwo", "(+ 1")
    r = viwo("fmt", bad)
    assert r.exit_code == 1 and "unexpected end of input" in r.stderr


# --- ops, caps, config -------------------------------------------------------------------------------


def test_ops_list_pattern_and_describe():
    r = viwo("ops")
    assert r.exit_code == 0
    assert "(std.let name: string value) -> any" in r.stdout
    assert "\nmath\n" in r.stdout  # category headings
    r = viwo("ops", "str.")
    assert "str.upper" in r.stdout and "std.let" not in r.stdout
    r = viwo("ops", "math.s*")
    assert "math.sqrt" in r.stdout and "math.floor" not in r.stdout
    r = viwo("ops", "std.let")
    assert "Declare a variable" in r.stdout and "parameter" in r.stdout and "returns any" in r.stdout
    r = viwo("ops", "std.lett")
    assert r.exit_code == 1 and "did you mean std.let" in r.stderr


def test_ops_json_is_get_opcodes_metadata():
    data = json.loads(viwo("ops", "--json").stdout)
    names = {d["opcode"] for d in data}
    assert {"std.let", "+", "list.map"} <= names
    entry = next(d for d in data if d["opcode"] == "std.let")
    assert set(entry) >= {"opcode", "label", "category", "description", "slots", "parameters", "returnType"}
    assert [d["opcode"] for d in json.loads(viwo("ops", "str.up", "--json").stdout)] == ["str.upper"]


def test_caps_lists_capabilities():
    r = viwo("caps", "--json")
    assert r.exit_code == 0
    entries = json.loads(r.stdout)
    assert isinstance(entries, list)
    for e in entries:
        assert isinstance(e["methods"], list) and isinstance(e["available"], bool)
        assert e["type"] is None or len(e["methods"]) == len(e["signatures"])
    r = viwo("caps")
    assert r.exit_code == 0
    if not entries:
        assert "no capabilities installed" in r.stdout
    else:
        assert all(e["type"] in r.stdout for e in entries if e["type"])


def test_config_shows_values_and_sources(tmp_path):
    r = viwo("config")
    assert r.exit_code == 0
    assert "config file: none" in r.stdout
    assert "limits.gas" in r.stdout and "100000000" in r.stdout and "default" in r.stdout
    (tmp_path / "viwo.toml").write_text('[canvas]\nwidth = 512\n[models]\nsd = "org/sd"\n')
    data = json.loads(viwo("config", "--json").stdout)
    conf = str(tmp_path / "viwo.toml")
    assert data["file"] == conf
    assert data["settings"]["canvas.width"] == {"value": 512, "source": conf}
    assert data["settings"]["models.sd"] == {"value": "org/sd", "source": conf}
    assert data["settings"]["canvas.height"]["source"] == "default"
    r = viwo("config")
    assert f"config file: {conf}" in r.stdout and "org/sd" in r.stdout
    assert viwo("config", "--path").stdout == conf + "\n"
    data = json.loads(viwo("config", "--json", "--gas", "unlimited", "--size", "64x48").stdout)["settings"]
    assert data["limits.gas"] == {"value": None, "source": "--gas"}
    assert data["canvas.height"] == {"value": 48, "source": "--size"}


def test_config_shows_conventional_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "secret")
    r = viwo("config")
    assert "HF_HUB_OFFLINE=1" in r.stdout and "secret" not in r.stdout
    assert json.loads(viwo("config", "--json").stdout)["environment"]["HF_HUB_OFFLINE"] == "1"


def test_config_reports_grants_the_capabilities_reject(tmp_path):
    (tmp_path / "viwo.toml").write_text('[[grants]]\ntype = "no.such.cap"\n')
    r = viwo("config")
    assert r.exit_code == 2
    assert "no.such.cap" in r.stdout and "cannot grant unknown capability type 'no.such.cap'" in r.stderr
    (tmp_path / "viwo.toml").write_text('[[grants]]\ntype = "diffusers.generate"\nparams = { max_steps = 5 }\n')
    assert viwo("config").exit_code == 0


def test_config_errors_and_explicit_file(tmp_path):
    assert viwo("config", "--path").exit_code == 1
    r = viwo("config", "--config", "nope.toml")
    assert r.exit_code == 2 and "no such file" in r.stderr
    other = tmp_path / "o.toml"
    other.write_text("[limits]\ngas = 7\n")
    assert json.loads(viwo("config", "--config", str(other), "--json").stdout)["settings"]["limits.gas"] == {
        "value": 7, "source": str(other)}


# --- group, repl, module -----------------------------------------------------------------------------


def test_group_help_version_and_no_command_off_a_tty():
    r = viwo()
    assert r.exit_code == 0 and "Exit codes" in r.stdout and "repl" in r.stdout
    assert viwo("--version").stdout.startswith("viwo, version ")
    assert viwo("nope").exit_code == 2
    for command in ("run", "eval", "check", "fmt", "ops", "caps", "config", "repl"):
        r = viwo(command, "--help")
        assert r.exit_code == 0 and "Usage: " in r.stdout, command


def test_repl_reads_plain_lines_off_a_tty(tmp_path):
    r = viwo("repl", input="(std.let x\n  (+ 1 2))\n(* x 2)\n")
    assert (r.exit_code, r.stdout) == (0, "3\n6\n")
    r = viwo("repl", input='(+ 1 "a")\n7\n')
    assert r.exit_code == 1 and r.stdout == "7\n" and "expected number" in r.stderr


def test_python_dash_m(tmp_path):
    out = subprocess.run([sys.executable, "-m", "viwoscript", "eval", "(+ 1 2)"], capture_output=True, text=True,
                         env={**os.environ, "NO_COLOR": "1"})
    assert (out.returncode, out.stdout) == (0, "3\n")


# --- the terminal pieces -----------------------------------------------------------------------------


def test_display_layout():
    assert display([1, 2.5, "a", None, True, {"k": float("nan")}]) == '[1, 2.5, "a", null, true, {"k": NaN}]'
    long = display({"key": list(range(40))}, width=40)
    assert long.startswith('{\n  "key": [\n    0,\n    1,')
    assert display([]) == "[]" and display({}) == "{}"


def test_json_result_conversion():
    img = Image(np.zeros((1, 2, 1), np.uint8))
    assert json.loads(json_result([img, 1.5], {id(img): Path("/o/x.png")})) == [
        {"type": "image", "width": 2, "height": 1, "mode": "L", "path": "/o/x.png"}, 1.5]


def test_progress_bar_on_a_terminal(tmp_path):
    err = io.StringIO()
    t = Terminal(ImageSaver(tmp_path), progress=True, stderr=err, stdout=io.StringIO())
    for i in range(1, 4):
        t.on_event({"type": "progress", "task": "denoise", "step": i, "total": 3})
    assert t._tasks == {} and t._progress is None  # finished: the bars go away
    t.on_event({"type": "progress", "task": "batch", "step": 1, "total": 4})
    t.on_event({"type": "progress", "task": "denoise", "step": 1, "total": 2})
    assert set(t._tasks) == {"batch", "denoise"} and t._progress is not None
    t.on_event({"type": "log", "message": "between bars"})
    t.on_event({"type": "progress", "task": "denoise", "step": 2, "total": 2})
    assert set(t._tasks) == {"batch"}
    t.stop_progress()
    assert "between bars" in err.getvalue()
    assert t._progress is None


def test_image_saver_names(tmp_path):
    saver = ImageSaver(tmp_path / "out", "my script!")
    img = Image(np.zeros((1, 1, 3), np.uint8))
    assert saver.save(img).name == "my-script-001.png"
    assert saver.save(img).name == "my-script-002.png"
    assert saver.save(img, "a/b.png").name == "a-b.png"
    assert saver.save(img, "...").name == "my-script.png"


def test_roots_decide_which_files_a_script_may_read(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "other").mkdir()
    PILImage.new("RGB", (2, 2), (0, 255, 0)).save(tmp_path / "imgs" / "a.png")
    f = script(tmp_path / "load.viwo", '(canvas.size 4 4)\n(canvas.layer.create "l")\n'
               '(canvas.layer.load_image "l" "imgs/a.png")\n(canvas.composite)')
    r = viwo("run", f, "--json")
    assert r.exit_code == 0
    out = np.asarray(PILImage.open(json.loads(r.stdout)["path"]))
    assert out[0, 0].tolist() == [0, 255, 0, 255] and out[3, 3].tolist()[3] == 0
    r = viwo("run", f, "--root", str(tmp_path / "other"))
    assert r.exit_code == 1 and "file not found: imgs/a.png" in r.stderr and "other" in r.stderr


# --- properties of the printers ------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(_json_values)
def test_display_matches_the_language_printer_and_json_round_trips(v):
    from viwoscript.values import to_display, to_json_value

    assert display(v, width=10**9) == to_display(v)
    assert "".join(display(v, width=10).split()) == "".join(to_display(v).split())  # only layout differs
    assert json.loads(json_result(v)) == to_json_value(v)


def _modules_after(argv: list[str], cwd: Path) -> set[str]:
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print(' '.join(sorted(m for m in sys.modules if '.' not in m)), file=sys.stderr))\n"
            "from viwoscript.cli import main\n"
            f"main({argv!r})\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                         env={**os.environ, "NO_COLOR": "1"})
    return set(out.stderr.split())


def test_the_cli_loads_heavy_libraries_only_when_a_command_needs_them(tmp_path):
    f = script(tmp_path / "a.viwo", "(+ 1 2)")
    ui = {"rich", "prompt_toolkit", "pygments", "PIL", "torch", "diffusers", "pyvips"}
    assert not _modules_after(["--help"], tmp_path) & (ui | {"numpy", "lark"})
    assert not _modules_after(["run", f], tmp_path) & ui
    assert not _modules_after(["eval", "(+ 1 2)"], tmp_path) & ui


def test_an_image_that_cannot_be_saved_is_an_error_not_a_traceback(tmp_path):
    (tmp_path / "afile").write_text("")
    f = script(tmp_path / "pic.viwo", "(test.image 1 1)")
    r = viwo("run", f, "--out", str(tmp_path / "afile" / "sub"))
    # refused before the run (a usage error), never a traceback after it
    assert r.exit_code == 2 and "--out" in r.stderr and "Traceback" not in r.stderr


def test_an_unusable_output_folder_stops_a_script_that_makes_images_before_it_runs(tmp_path):
    # Issue 13 item 7: `[paths] out` somewhere unwritable — the script ran, then failed saving.
    (tmp_path / "blocker").write_text("a file, not a folder")
    (tmp_path / "viwo.toml").write_text('[paths]\nout = "blocker/out"\n')
    f = script(tmp_path / "pic.viwo", '(std.log "computing")\n(test.image 4 3)')
    r = viwo("run", f)
    assert r.exit_code == 2 and "computing" not in r.stderr
    assert "[paths] out: images cannot be saved:" in r.stderr and "blocker is a file" in r.stderr
    assert "nothing was run" in r.stderr
    # a script that makes no image runs as before
    assert viwo("run", script(tmp_path / "n.viwo", "(+ 1 2)")).stdout == "3\n"
    # the REPL says so when it starts
    r = viwo("repl", input="(+ 1 2)\n")
    assert "warning: images made in this session cannot be saved" in r.stderr and r.stdout == "3\n"


def test_eval_runs_the_static_check_and_takes_arguments():
    # Issue 13 item 24: `viwo eval` showed no check warnings; docs/cli.md promised run's options.
    r = viwo("eval", "(list.len [zz])")
    assert "variable 'zz' is never declared" in r.stderr and r.stdout == "1\n"
    r = viwo("eval", '(+ 1 "a")')
    assert r.exit_code == 1 and "expected number" in r.stderr
    assert viwo("eval", "(* (std.arg 0) 2)", "--arg", "n=21").stdout == "42\n"
    assert viwo("eval", "(std.args)", "--args-json", "[1, 2]").stdout == "[1, 2]\n"
    assert viwo("eval", "--no-check", "(list.len [zz])").stderr == ""


def test_template_commands_label_their_errors_and_name_replace(tmp_path):
    # Issue 13 item 25: `template import` said "template save: ...", the hint said "or replace it".
    f = script(tmp_path / "t.viwo", "(+ (std.arg 0) 1)")
    store = ["--store", str(tmp_path / "st")]
    assert viwo("template", "save", *store, "inc", f).exit_code == 0
    r = viwo("template", "save", *store, "inc", f)
    assert r.exit_code == 1 and "error: template save: a template named 'inc' already exists" in r.stderr
    assert "pass --replace" in r.stderr
    assert viwo("template", "save", *store, "inc", f, "--replace").exit_code == 0
    (tmp_path / "inc.json").write_text(viwo("template", "export", *store, "inc").stdout)
    r = viwo("template", "import", *store, str(tmp_path / "inc.json"))
    assert r.exit_code == 1 and "error: template import: a template named 'inc' already exists" in r.stderr
    assert "pass --replace" in r.stderr and "template save" not in r.stderr
    assert viwo("template", "import", *store, str(tmp_path / "inc.json"), "--replace").exit_code == 0
    assert "error: template export: no template named 'zz'" in viwo("template", "export", *store, "zz").stderr
    assert "error: template rm: no template named 'zz'" in viwo("template", "rm", *store, "zz").stderr
    r = viwo("template", "save", *store, "x", f, "--param", "n:numbr")
    assert r.exit_code == 2 and "--param" in r.stderr and "numbr" in r.stderr
