"""`viwo run FILE --arg-sets SETS.json`: one whole job per argument set (issue 19's first unit of work).

Here with the local executor; tests/test_ray.py runs the same sets on Ray workers and compares the files."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image as PILImage

from viwoscript.cli import cli

GEN = ('(obj.get (std.call_method (get_capability "diffusers.generate") "textToImage" (std.arg 0) '
       '{"width" 64 "height" 64 "steps" 2 "seed" (std.arg 1)}) "image")')


def run(tmp_path, *args):
    return CliRunner().invoke(cli, ["run", *args, "--out", str(tmp_path / "out")], catch_exceptions=False)


def test_each_set_runs_and_saves_its_images_under_its_own_name(tmp_path):
    script = tmp_path / "gen.viwo"
    script.write_text(GEN, encoding="utf-8")
    sets = tmp_path / "sets.json"
    sets.write_text(json.dumps([["a comet", 1], {"prompt": "a cat", "seed": 2}]), encoding="utf-8")
    result = run(tmp_path, str(script), "--arg-sets", str(sets))
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["gen-set001-001.png", "gen-set002-001.png"]
    # each file is what a single run with that set's arguments saves, and re-runs with them
    single = run(tmp_path / "single", str(script), "--args-json", '["a cat", 2]')
    assert single.exit_code == 0, single.output
    a = np.asarray(PILImage.open(tmp_path / "out" / "gen-set002-001.png"))
    b = np.asarray(PILImage.open(tmp_path / "single" / "out" / "gen-001.png"))
    assert np.array_equal(a, b)
    meta = json.loads(PILImage.open(tmp_path / "out" / "gen-set002-001.png").text["viwo"])
    assert meta["args"] == ["a cat", 2] and "executor" not in meta["metadata"]


def test_a_failing_set_is_reported_and_the_others_go_on(tmp_path):
    script = tmp_path / "add.viwo"
    script.write_text("(+ (std.arg 0) 1)", encoding="utf-8")
    sets = tmp_path / "sets.json"
    sets.write_text('[[1], ["x"], [3]]', encoding="utf-8")
    result = run(tmp_path, str(script), "--arg-sets", str(sets), "--json")
    assert result.exit_code == 1
    assert "set 2/3" in result.output and "add.viwo:1:1" in result.output and result.output.count("\n4\n") == 1


def test_templates_are_bound_with_each_set_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    body = tmp_path / "greet.viwo"
    body.write_text('(std.seq (std.log "ran") (str.concat "hello " (std.arg 0)))', encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["template", "save", "greet", str(body), "--param", "who:string=you"]).exit_code == 0
    sets = tmp_path / "sets.json"
    sets.write_text('[{"who": "Ada"}, {}]', encoding="utf-8")
    result = run(tmp_path, "template:greet", "--arg-sets", str(sets), "--json")
    assert result.exit_code == 0, result.output
    assert '"hello Ada"' in result.output and '"hello you"' in result.output
    sets.write_text('[{"who": "Ada"}, {"nobody": 1}]', encoding="utf-8")
    result = run(tmp_path, "template:greet", "--arg-sets", str(sets))
    assert result.exit_code != 0 and "argument set #2" in result.output and "nobody" in result.output
    assert "ran" not in result.output  # the bad set stopped everything before the first ran


def test_bad_sets_files_are_usage_errors(tmp_path):
    script = tmp_path / "one.viwo"
    script.write_text("1", encoding="utf-8")
    for text, words in (("{}", "non-empty JSON list"), ("[1]", "set #1 is 1"), ("[", "not JSON")):
        sets = tmp_path / "sets.json"
        sets.write_text(text, encoding="utf-8")
        result = run(tmp_path, str(script), "--arg-sets", str(sets))
        assert result.exit_code == 2 and words in result.output, result.output
    result = run(tmp_path, str(script), "--arg-sets", str(tmp_path / "missing.json"))
    assert result.exit_code == 2 and "cannot read" in result.output
    result = run(tmp_path, str(script), "--arg-sets", str(sets), "--arg", "x=1")
    assert result.exit_code == 2 and "--arg-sets gives every run its arguments" in result.output


def test_a_static_error_stops_every_set_before_the_first_runs(tmp_path):
    script = tmp_path / "bad.viwo"
    script.write_text('(std.seq (std.log "ran") (std.lett x 1))', encoding="utf-8")
    sets = tmp_path / "sets.json"
    sets.write_text("[[1], [2]]", encoding="utf-8")
    result = run(tmp_path, str(script), "--arg-sets", str(sets))
    assert result.exit_code == 1 and "std.lett" in result.output
    assert "ran" not in result.output.splitlines() and "set 1/2" not in result.output
