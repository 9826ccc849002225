"""The model examples under examples/models/ run on tiny random-weight models (no download, CPU).

The tiny models are built once per session into a temp folder and configured the way a host (or
``viwo.toml [models]``) would; each example runs at a small size through script arguments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from viwoscript import Runtime  # noqa: E402
from viwoscript.capabilities import capabilities  # noqa: E402
from viwoscript.models import ModelConfig  # noqa: E402
from viwoscript.models.manager import ModelManager  # noqa: E402
from viwoscript.models.tiny import make_tiny  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "models"
SIZE, STEPS = 64, 2


@pytest.fixture(scope="session")
def models_config(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("example-models")
    base = make_tiny(root / "sd15", "sd15")
    scribble = make_tiny(root / "cn-scribble", "sd15-controlnet", seed=2)
    return ModelConfig(aliases={"tiny": str(base)}, default="tiny", controlnets={"scribble": str(scribble)})


@pytest.fixture(scope="session")
def manager():
    return ModelManager()


def run_example(name, config, manager, args, events=None):
    path = EXAMPLES / name
    rt = Runtime(capabilities=capabilities(config), grants="default", roots=[EXAMPLES], canvas_size=(256, 256),
                 on_event=(events.append if events is not None else None))
    rt.models = manager
    return rt, rt.run(path.read_text(encoding="utf-8"), filename=str(path), args=args)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.viwo")), ids=lambda p: p.name)
def test_model_example_checks_and_documents_real_models(path):
    text = path.read_text(encoding="utf-8")
    assert [d for d in Runtime().check(text, filename=str(path)) if d.severity == "error"] == []
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith(";"))
    assert "viwo.toml" in header and "[models]" in header and f"viwo run examples/models/{path.name}" in header
    assert "make-tiny" in header


def test_sketch_to_scribble_to_controlnet(models_config, manager):
    events = []
    rt, r = run_example("sketch_to_image.viwo", models_config, manager, [SIZE, STEPS], events)
    sketch, scribble, image = r["sketch"], r["scribble"], r["image"]
    assert (image.width, image.height) == (SIZE, SIZE) and r["seed"] == 7
    # the scribble is the sketch's ink: white exactly where the sketch layer is painted dark enough
    ink = scribble.pixels[:, :, 0]
    assert set(np.unique(ink)) <= {0, 255} and scribble.metadata["controlType"] == "scribble"
    assert ink.any() and (sketch.pixels[:, :, 3][ink > 0] > 0).all()
    assert image.metadata["controls"][0]["controlType"] == "scribble"
    assert [e["type"] for e in events].count("progress") == STEPS
    layers = {layer["id"]: layer for layer in rt.run("(canvas.layers)")}
    assert layers["control"]["type"] == "control" and layers["control"]["controlType"] == "scribble"
    assert np.array_equal(rt.canvas.control_image("control").pixels[:, :, 0], ink)
    # same seed, same picture
    _, again = run_example("sketch_to_image.viwo", models_config, manager, [SIZE, STEPS])
    assert np.array_equal(again["image"].pixels, image.pixels)


def test_inpaint_region_keeps_everything_outside_the_mask(models_config, manager):
    _, r = run_example("inpaint_region.viwo", models_config, manager, [SIZE, STEPS])
    before, after, mask = r["before"].pixels, r["image"].pixels, r["mask"].pixels[:, :, 0]
    assert after.shape == before.shape == (SIZE, SIZE, 3) and mask.shape == (SIZE, SIZE)
    assert 0 < (mask > 0).mean() < 0.5
    assert np.array_equal(after[mask == 0], before[mask == 0])
    assert (after[mask == 255] != before[mask == 255]).any(axis=1).mean() > 0.5


def test_outpaint_right_extends_only_the_right_side(models_config, manager):
    pixels = 64
    rt, r = run_example("outpaint_right.viwo", models_config, manager, [SIZE, pixels, STEPS])
    before, after = r["before"].pixels, r["image"].pixels
    assert (r["width"], r["height"]) == (SIZE + pixels, SIZE) and after.shape == (SIZE, SIZE + pixels, 3)
    assert r["offset"] == [0, 0]
    overlap = SIZE // 16
    assert np.array_equal(after[:, :SIZE - overlap], before[:, :SIZE - overlap])
    assert after[:, SIZE:].std() > 1.0  # the new strip is not flat
    assert rt.canvas.width == SIZE + pixels
    # a width that is not a multiple of 8: the right side grows to the next multiple, the height stays
    _, odd = run_example("outpaint_right.viwo", models_config, manager, [SIZE, 20, STEPS])
    assert (odd["width"], odd["height"]) == (88, SIZE) and odd["offset"] == [0, 0]


def test_every_model_example_is_exercised():
    tested = {"sketch_to_image.viwo", "inpaint_region.viwo", "outpaint_right.viwo"}
    # upscale_*.viwo are run by tests/test_upscale_examples.py
    assert {p.name for p in EXAMPLES.glob("*.viwo") if not p.name.startswith("upscale_")} == tested
