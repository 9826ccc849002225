"""batch.run's save option: where results go is checked before any item is computed (issue 13 item 7)."""

from __future__ import annotations

import os

import pytest

from viwoscript.errors import ArgumentError, ScriptError
from viwoscript.runtime import Runtime

GEN = '(std.let gen (get_capability "diffusers.generate"))\n'
BASE = '{"prompt" "x" "width" 64 "height" 64 "steps" 1}'


def batch(tmp_path, options: str):
    events: list[dict] = []
    rt = Runtime(roots=[tmp_path], grants="default", on_event=events.append)
    try:
        return rt.run(f'(std.seq {GEN} (batch.run gen "textToImage" {BASE} [1 2 3] {options}))'), events
    finally:
        assert not [e for e in events if e.get("type") == "progress"], "an item was computed"


def test_a_save_prefix_in_a_missing_folder_fails_before_any_item(tmp_path):
    with pytest.raises(ScriptError, match="cannot save to nodir/s-001.png: the folder nodir does not exist") as e:
        batch(tmp_path, '{"save" "nodir/s"}')
    assert e.value.span is not None and e.value.span.line == 2  # located at the batch.run call


def test_save_format_and_roots_are_checked_before_any_item(tmp_path):
    with pytest.raises(ArgumentError, match="cannot tell the format"):
        batch(tmp_path, '{"save" "s" "format" "gif"}')
    with pytest.raises(ScriptError, match="outside the allowed folders"):
        batch(tmp_path, '{"save" "/etc/s"}')
    (tmp_path / "s-001.png").mkdir()
    with pytest.raises(ScriptError, match="it is a folder"):
        batch(tmp_path, '{"save" "s"}')


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_save_folder_fails_before_any_item(tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(ScriptError, match="is not writable"):
        batch(tmp_path, '{"save" "ro/s"}')


def test_a_good_save_prefix_saves_every_item(tmp_path):
    events: list[dict] = []
    rt = Runtime(roots=[tmp_path], grants="default", on_event=events.append)
    out = rt.run(f'(std.seq {GEN} (batch.run gen "textToImage" {BASE} [1 2] {{"save" "s"}}))')
    assert out["ok"] == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["s-001.png", "s-002.png"]
