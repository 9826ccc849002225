"""docs/canvas.md: every example with a picture runs, and its picture is exactly what it produces.

Regenerate the pictures after changing an example:  python tests/test_canvas_docs.py
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "canvas.md"
IMAGES = ROOT / "docs" / "images"
BLOCK = re.compile(r"```lisp\n(; picture: (\S+\.png)(?: scale=(\d+))?\n.*?)```", re.DOTALL)
MAX_BYTES = 50 * 1024


def examples() -> list[tuple[str, str, int]]:
    return [(m.group(2), m.group(1), int(m.group(3) or 1)) for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def render(source: str, scale: int) -> np.ndarray:
    from PIL import Image as PILImage

    from viwoscript.runtime import Runtime
    from viwoscript.values import Image

    value = Runtime(roots=[IMAGES]).run(source, filename=str(DOC))
    assert isinstance(value, Image), "a pictured example must end with an image"
    pil = value.to_pil()
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), PILImage.NEAREST)
    return np.asarray(pil)


def test_doc_has_pictures():
    names = [name for name, _, _ in examples()]
    assert len(names) >= 8 and len(set(names)) == len(names)
    assert all(name.startswith("canvas_") for name in names)


@pytest.mark.parametrize("name,source,scale", examples(), ids=lambda v: v if isinstance(v, str) and v.endswith(".png") else "")
def test_picture_is_what_the_example_draws(name, source, scale):
    from PIL import Image as PILImage

    path = IMAGES / name
    assert path.stat().st_size < MAX_BYTES
    stored = np.asarray(PILImage.open(path))
    assert np.array_equal(stored, render(source, scale)), f"{name} is stale: run python tests/test_canvas_docs.py"


def write_pictures() -> None:
    from PIL import Image as PILImage

    IMAGES.mkdir(parents=True, exist_ok=True)
    for name, source, scale in examples():
        arr = render(source, scale)
        buf = io.BytesIO()
        PILImage.fromarray(arr).save(buf, format="PNG", optimize=True)
        (IMAGES / name).write_bytes(buf.getvalue())
        print(f"{name}: {len(buf.getvalue())} bytes")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    write_pictures()
