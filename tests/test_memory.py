"""The memory budget (``Limits.max_memory``): images count while the run holds them, big strings and lists
as they are made; going past it is a located MemoryLimitError (a LimitError), under both runners."""

from __future__ import annotations

import pytest

from viwoscript import Limits
from viwoscript.errors import LimitError, MemoryLimitError
from viwoscript.limits import CLI_DEFAULTS, EMBED_DEFAULTS
from viwoscript.runtime import Runtime

MiB = 1024**2
HOLD = ('(std.let l []) (std.let i 0)\n'
        '(std.while (< i 40) (std.seq (list.push l (image.new 500 500 "#f00")) (std.set i (+ i 1))))\n'
        '(list.len l)')


@pytest.mark.parametrize("runner", ["compiled", "tree"])
def test_images_held_at_once_are_bounded(runner):
    with pytest.raises(MemoryLimitError) as info:
        Runtime(runner=runner).run(HOLD, limits=Limits(max_memory=10 * MiB))
    err = info.value
    assert isinstance(err, LimitError) and err.kind == "LimitError"
    assert "image.new: a 500×500 image (976.6 KiB) would take the run past its memory budget of 10.0 MiB" in err.message
    assert (err.span.line, err.span.col) == (2, 43) and "max_memory" in err.hint
    assert Runtime(runner=runner).run(HOLD, limits=Limits(max_memory=50 * MiB)) == 40


@pytest.mark.parametrize("runner", ["compiled", "tree"])
def test_images_let_go_give_their_memory_back(runner):
    src = '(std.let i 0) (std.while (< i 60) (std.seq (image.new 500 500 "#f00") (std.set i (+ i 1)))) i'
    assert Runtime(runner=runner).run(src, limits=Limits(max_memory=5 * MiB)) == 60


def test_the_same_pixels_count_once():
    src = ('(std.let a (image.new 800 800 "#f00")) (std.let l []) (std.let i 0)\n'
           '(std.while (< i 30) (std.seq (list.push l (image.with_metadata a {"i" i})) (std.set i (+ i 1)))) 1')
    assert Runtime().run(src, limits=Limits(max_memory=3 * MiB)) == 1


def test_big_strings_and_lists_count_as_they_are_made():
    doubling = '(std.let s "0123456789abcdef") (std.while true (std.set s (str.concat s s)))'
    with pytest.raises(MemoryLimitError, match=r"str.concat: a string of 4,194,304 characters"):
        Runtime().run(doubling, limits=Limits(max_memory=3 * MiB))
    split = '(std.let s "0123456789abcdef") (std.while (< (str.len s) 300000) (std.set s (str.concat s s))) (str.split s "")'
    with pytest.raises(MemoryLimitError, match=r"str.split: a list of 524,288 items"):
        Runtime().run(split, limits=Limits(max_memory=3 * MiB))
    push = '(std.let l []) (std.while true (list.push l 1))'
    with pytest.raises(MemoryLimitError, match=r"list.push: a list of 196,608 items"):
        Runtime().run(push, limits=Limits(max_memory=1 * MiB, gas=None, timeout=60))


def test_defaults_and_validation():
    assert EMBED_DEFAULTS.max_memory == 4 * 1024**3 and CLI_DEFAULTS.max_memory == 4 * 1024**3
    assert Runtime().run(HOLD, limits=Limits(max_memory=None)) == 40
    for bad in (0, -1, 1.5, True, "1G"):
        with pytest.raises(ValueError, match="max_memory"):
            Limits(max_memory=bad)


def test_generated_images_count_too():
    rt = Runtime(grants=[{"type": "diffusers.generate", "provider": "fake"}])
    src = ('(std.let g (get_capability "diffusers.generate")) (std.let l []) (std.let i 0)\n'
           '(std.while (< i 20) (std.seq (list.push l (std.call_method g "textToImage" "a cat" '
           '{"width" 256 "height" 256 "steps" 1 "seed" i})) (std.set i (+ i 1))))')
    with pytest.raises(MemoryLimitError, match="std.call_method: a 256×256 image"):
        rt.run(src, limits=Limits(max_memory=1 * MiB))
