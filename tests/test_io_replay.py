"""`viwo run image.png` re-runs the script embedded in the image, bit-exactly, with the fake capability
(no diffusion extra needed); the tiny-model variant is in tests/test_cli_wiring.py."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from PIL import Image

from viwoscript.capabilities.fake import render
from viwoscript.cli import cli
from viwoscript.io import read_metadata

CONFIG = '[[grants]]\ntype = "diffusers.generate"\nprovider = "fake"\n'


def test_replaying_an_image_through_the_cli_is_bit_exact_with_its_args(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "viwo.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "t.viwo").write_text(
        '(obj.get (std.call_method (get_capability "diffusers.generate") "textToImage" (std.arg 0)'
        ' {"width" 96 "height" 64 "steps" 3 "seed" (std.arg 1)}) "image")', encoding="utf-8")
    runner = CliRunner()
    first = runner.invoke(cli, ["run", "t.viwo", "--arg", "a red comet", "--arg", "11", "--quiet"])
    assert first.exit_code == 0, first.output
    saved = tmp_path / "viwo-out" / "t-001.png"
    info = read_metadata(saved)
    assert info["args"] == ["a red comet", 11] and info["seed"] == 11 and info["prompt"] == "a red comet"
    again = runner.invoke(cli, ["run", str(saved.relative_to(tmp_path)), "--quiet"])  # its args come along
    assert again.exit_code == 0, again.output
    a = np.asarray(Image.open(saved))
    b = np.asarray(Image.open(tmp_path / "viwo-out" / "t-002.png"))
    assert a.shape == (64, 96, 3) and np.array_equal(a, b)
    assert np.array_equal(a, render("a red comet", 11, 96, 64))
    # explicit arguments replace the embedded ones
    other = runner.invoke(cli, ["run", "viwo-out/t-002.png", "--arg", "a red comet", "--arg", "12", "--quiet"])
    assert other.exit_code == 0, other.output
    c = np.asarray(Image.open(tmp_path / "viwo-out" / "t-003.png"))
    assert np.array_equal(c, render("a red comet", 12, 96, 64)) and not np.array_equal(a, c)


def test_replaying_a_batch_item_reruns_the_whole_batch_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "viwo.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "b.viwo").write_text(
        '(obj.get (batch.run (get_capability "diffusers.generate") "textToImage"'
        ' {"prompt" "a kite" "width" 64 "height" 64 "steps" 1} (batch.seeds 3 2) {"save" "out/k"}) "ok")',
        encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "b.viwo", "--quiet", "--root", "."]).exit_code == 0
    first = np.asarray(Image.open(tmp_path / "out/k-002.png"))
    assert read_metadata(tmp_path / "out/k-002.png")["viwo"]["batch"]["index"] == 1
    (tmp_path / "out/k-002.png").rename(tmp_path / "keep.png")
    replay = runner.invoke(cli, ["run", "keep.png", "--quiet", "--root", "."])
    assert replay.exit_code == 0, replay.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out/k-002.png")), first)
    assert np.array_equal(first, render("a kite", 4, 64, 64))
