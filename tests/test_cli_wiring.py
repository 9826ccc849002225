"""The workflow commands are attached to `viwo`, and `viwo run template:NAME` runs a stored template."""

from __future__ import annotations

from click.testing import CliRunner

from viwoscript.cli import cli


def test_workflow_commands_are_attached():
    out = CliRunner().invoke(cli, ["--help"]).output
    for name in ("info", "images", "template"):
        assert f"  {name} " in out


def test_run_a_stored_template(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    script = tmp_path / "greet.viwo"
    script.write_text('(str.concat "hello " (nullish (std.arg 0) "you"))', encoding="utf-8")
    runner = CliRunner()
    saved = runner.invoke(cli, ["template", "save", "greet", str(script), "--param", "who:string=you",
                                "--param", "times:number=1"])
    assert saved.exit_code == 0, saved.output
    result = runner.invoke(cli, ["run", "template:greet", "--json"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == '"hello you"'
    # by name, whatever the order; defaults fill the rest
    result = runner.invoke(cli, ["run", "template:greet", "--arg", "times=2", "--arg", "who=Ada", "--json"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == '"hello Ada"'
    result = runner.invoke(cli, ["run", "template:greet", "--arg", "nobody=1"])
    assert result.exit_code != 0 and "nobody" in result.output
    result = runner.invoke(cli, ["run", "template:greet", "--arg", "Ada"])
    assert result.exit_code == 2 and "NAME=VALUE" in result.output
    assert (tmp_path / "data" / "viwoscript" / "store").is_dir()


def test_make_tiny_then_generate_and_replay_from_the_image_bit_exactly(tmp_path, monkeypatch):
    """The real diffusers path end to end: a tiny model, a run, and `viwo run image.png` reproducing it."""
    import numpy as np
    import pytest

    pytest.importorskip("diffusers")
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    made = runner.invoke(cli, ["models", "make-tiny", "tiny"])
    assert made.exit_code == 0, made.output
    (tmp_path / "viwo.toml").write_text('[models]\ndefault = "tiny"\n', encoding="utf-8")
    (tmp_path / "t.viwo").write_text(
        '(obj.get (std.call_method (get_capability "diffusers.generate") "textToImage" "a cat"'
        ' {"width" 64 "height" 64 "steps" 2 "seed" 5}) "image")', encoding="utf-8")
    first = runner.invoke(cli, ["run", "t.viwo", "--quiet"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, ["run", "viwo-out/t-001.png", "--quiet"])
    assert again.exit_code == 0, again.output
    a = np.asarray(Image.open(tmp_path / "viwo-out" / "t-001.png"))
    b = np.asarray(Image.open(tmp_path / "viwo-out" / "t-002.png"))
    assert a.shape == (64, 64, 3) and (a == b).all()


def test_bad_grant_in_config_is_a_config_error_before_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "viwo.toml").write_text('[[grants]]\ntype = "nope.cap"\n', encoding="utf-8")
    (tmp_path / "x.viwo").write_text('(std.log "RAN-MARKER")', encoding="utf-8")
    r = CliRunner().invoke(cli, ["run", "x.viwo"])
    assert r.exit_code == 2
    assert "nope.cap" in r.output and "RAN-MARKER" not in r.output


def test_deeply_nested_result_is_refused_not_a_traceback(tmp_path):
    src = tmp_path / "deep.viwo"
    src.write_text("(std.seq (std.let l []) (std.let i 0)"
                   " (std.while (< i 3000) (std.seq (std.set l [l]) (std.set i (+ i 1)))) l)", encoding="utf-8")
    r = CliRunner().invoke(cli, ["run", str(src)])
    assert r.exit_code == 1 and "levels deep" in r.output and "Traceback" not in r.output


def test_repl_save_to_an_unwritable_path_keeps_the_session(tmp_path):
    r = CliRunner().invoke(cli, ["repl"], input=f":save {tmp_path}\n(+ 1 2)\n")
    assert "cannot write" in r.output and "3" in r.output


def test_size_beyond_the_canvas_limit_is_a_usage_error(tmp_path):
    from viwoscript.canvas.layers import MAX_PIXELS
    from viwoscript.cli import CANVAS_MAX_PIXELS

    assert CANVAS_MAX_PIXELS == MAX_PIXELS
    r = CliRunner().invoke(cli, ["eval", "(+ 1 2)", "--size", "16384x16384"])
    assert r.exit_code == 2 and "at most" in r.output
