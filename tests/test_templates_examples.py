"""examples/sweep.viwo-template.json: imported like `viwo template import`, run with its parameters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from viwoscript.capabilities.fake import render
from viwoscript.cli import cli
from viwoscript.runtime import Runtime
from viwoscript.templates import load_template_file

TEMPLATE = Path(__file__).resolve().parent.parent / "examples" / "sweep.viwo-template.json"


def test_the_example_template_imports_and_runs_with_defaults_and_named_arguments():
    t = load_template_file(TEMPLATE, runtime=Runtime())  # schema + static check, as import does
    assert [p.name for p in t.parameters] == ["prompt", "start", "count", "steps", "size"]
    events: list[dict] = []
    rt = Runtime(grants="default", on_event=events.append)
    sheet = rt.run(t.script, args=t.bind({"count": 2, "size": 64, "steps": 2}))
    assert sheet.metadata["contact_sheet"] and sheet.metadata["items"] == 2
    assert [e["message"] for e in events if e["type"] == "log"] == ["2 ok, 0 failed seeds 1,2"]
    # the first cell holds seed 1's image (64 px, centred in a 256 px cell at x = y = 4 + 96)
    cell = sheet.pixels[100:164, 100:164]
    assert np.array_equal(cell, render("a comet over a sleeping town", 1, 64, 64))


def test_the_example_template_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    done = runner.invoke(cli, ["template", "import", str(TEMPLATE)])
    assert done.exit_code == 0 and "imported template sweep" in done.output
    listed = runner.invoke(cli, ["template", "list"])
    assert "sweep" in listed.output
    exported = runner.invoke(cli, ["template", "export", "sweep", "-o", str(tmp_path)])
    assert exported.exit_code == 0, exported.output
    assert load_template_file(tmp_path / "sweep.viwo-template.json", check=False).to_json() == load_template_file(TEMPLATE, check=False).to_json()
    ran = runner.invoke(cli, ["run", "template:sweep", "--args-json", '["a kite", 3, 2, 1, 64]', "--out", "out"])
    assert ran.exit_code == 0, ran.output
    assert len(list((tmp_path / "out").glob("*.png"))) == 1


def test_the_example_template_refuses_to_run_without_the_capability():
    t = load_template_file(TEMPLATE, check=False)
    with pytest.raises(Exception, match="needs the diffusers.generate capability"):
        Runtime().run(t.script, args=t.bind([]))
