"""Layer Mode with tiny random-weight diffusers models (viwoscript/models/tiny.py) behind a real server:
generate with a real pipeline, and outpaint by dragging the generation box past the canvas edge. Same
rules as tests/test_web_browser.py (Playwright on Debian's chromium-headless-shell; no console errors)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from web_server import ServedUI, browser_missing, chromium, ui_page  # noqa: E402

if why := browser_missing():
    pytest.skip(why, allow_module_level=True)
pytest.importorskip("aiohttp")
pytest.importorskip("diffusers")
from playwright.sync_api import expect  # noqa: E402
from test_web_browser import draw, server_layers, session_id, wait_version  # noqa: E402

SIZE = 128


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import torch

    from viwoscript.capabilities import capabilities
    from viwoscript.models.config import ModelConfig
    from viwoscript.models.tiny import make_tiny

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ui-tiny-models")
    make_tiny(root / "sd15", "sd15")
    make_tiny(root / "inp", "sd15-inpaint")
    cfg = ModelConfig(aliases={"tiny": str(root / "sd15"), "inp": str(root / "inp")}, default="tiny", inpaint="inp")
    with ServedUI(tmp_path_factory.mktemp("ui-models-data"), canvas_size=(SIZE, SIZE),
                  grants=["diffusers.generate", "diffusers.inpaint"],
                  runtime_kwargs={"capabilities": capabilities(cfg)}) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, served):
    with ui_page(browser, served.url) as pg:
        yield pg


def job_record(page) -> dict:
    job = page.evaluate("window.viwo.store.get().job")
    return page.evaluate(f"window.viwo.rpc.call('get_job', {{job: {job!r}}})")


def test_generate_with_a_tiny_real_model(page, served):
    expect(page.locator(".generate h2 .badge")).to_have_count(0)  # a real capability: no "fake" badge
    page.get_by_test_id("prompt").fill("a tiny red fox")
    page.get_by_test_id("seed").fill("5")
    page.get_by_role("checkbox", name="lock").check()
    page.get_by_label("Steps").fill("2")
    page.get_by_label("Width").fill("64")
    page.get_by_label("Height").fill("64")
    page.get_by_test_id("generate").click()
    page.get_by_test_id("result-image").first.wait_for(timeout=120000)
    wait_version(page, 3)
    rec = job_record(page)
    assert rec["status"] == "done" and rec["result"]["model_id"] == "tiny" and rec["result"]["seed"] == 5
    assert not rec["result"].get("fake")
    _, layers = server_layers(served, session_id(page))
    assert layers["generated-1"][:64, :64, 3].all() and not layers["generated-1"][64:].any()


def test_outpaint_by_dragging_the_box_past_the_canvas_edge(page, served):
    page.get_by_test_id("layer-add").click()
    wait_version(page, 1)
    draw(page, [(20, 20), (100, 100)])
    wait_version(page, 2)
    _, before = server_layers(served, session_id(page))
    page.evaluate("window.viwo.stage.zoomBy(0.5)")  # room around the canvas to drag into
    page.locator("[data-testid=canvas-stage]").focus()
    page.keyboard.press("m")
    draw(page, [(64, 16), (SIZE + 64, 112)])  # 64 px past the right edge
    page.wait_for_function("window.viwo.store.get().box !== null")
    expect(page.locator(".gen-mode")).to_have_text("Outpaint (right: 64 px)")
    page.get_by_test_id("prompt").fill("more of the same")
    page.get_by_label("Steps").fill("2")
    page.get_by_test_id("generate").click()
    page.get_by_test_id("result-image").first.wait_for(timeout=120000)
    wait_version(page, 6)
    rec = job_record(page)
    assert rec["status"] == "done" and rec["result"]["extended"] == {"right": 64}
    script, layers = server_layers(served, session_id(page))
    assert script[3] == ["canvas.extend", 0, 0, 64, 0]
    assert script[4] == ["canvas.layer.create", "generated-1", "outpainted", "raster"]
    assert script[5][0] == "canvas.layer.load_image" and script[5][2].startswith("blob:")
    assert page.evaluate("[window.viwo.store.get().width, window.viwo.store.get().height]") == [SIZE + 64, SIZE]
    # the painted layer kept its place; the outpainted picture covers the grown canvas
    assert np.array_equal(layers["layer-1"][:, :SIZE], before["layer-1"]) and not layers["layer-1"][:, SIZE:].any()
    assert layers["generated-1"].shape == (SIZE, SIZE + 64, 4) and layers["generated-1"][..., 3].all()
    assert page.evaluate("window.viwo.store.get().box") is None
