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
    saved = runner.invoke(cli, ["template", "save", "greet", str(script)])
    assert saved.exit_code == 0, saved.output
    result = runner.invoke(cli, ["run", "template:greet", "--json"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == '"hello you"'
    result = runner.invoke(cli, ["run", "template:greet", "--arg", "x=Ada", "--json"])
    assert result.output.strip() == '"hello Ada"'
    assert (tmp_path / "data" / "viwoscript" / "store").is_dir()
