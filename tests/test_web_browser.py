"""The Layer Mode page in a real browser (Playwright + Debian's chromium-headless-shell) against a real server.

Strokes are drawn with the mouse; the server's layer pixels are compared with a fresh replay of the
session's script (the rasterizer's expected pixels) and with what the page painted from the tiles. No
test may leave a console error. Without Chromium the suite skips, except under CI=true (then it fails).
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from web_server import ServedUI, browser_missing, chromium, ui_page  # noqa: E402

SIZE = 512

if why := browser_missing():
    pytest.skip(why, allow_module_level=True)
pytest.importorskip("aiohttp")
from playwright.sync_api import expect  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with ServedUI(tmp_path_factory.mktemp("ui-data"), canvas_size=(SIZE, SIZE)) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, served):
    with ui_page(browser, served.url, accept_downloads=True) as pg:
        yield pg


def session_id(pg) -> str:
    return pg.evaluate("window.viwo.store.get().session")


def version(pg) -> int:
    return pg.evaluate("window.viwo.program.version")


def wait_version(pg, n: int):
    pg.wait_for_function(f"window.viwo.program.version === {n}", timeout=15000)


def script_text(pg) -> str:
    """The script panel's text once the page has rendered its current script."""
    pg.wait_for_function("document.querySelector('[data-testid=script-text]').value === "
                         "window.viwo.store.get().scriptText")
    return pg.get_by_test_id("script-text").input_value()


def draw(pg, points, *, steps_between: int = 3):
    """Drag the mouse through canvas coordinates ``points``."""
    client = [pg.evaluate(f"window.viwo.stage.toClient({x}, {y})") for x, y in points]
    pg.mouse.move(*client[0])
    pg.mouse.down()
    for x, y in client[1:]:
        pg.mouse.move(x, y, steps=steps_between)
    pg.mouse.up()


def server_layers(served, sid) -> tuple[list, dict]:
    s = served.session(sid)
    with s.lock:
        return s.script(), {la.id: la.pixels.copy() for la in s.stack.layers}


def replayed(script):
    from viwoscript.runtime import Runtime

    rt = Runtime(canvas_size=(SIZE, SIZE))
    rt.run(script)
    return {la.id: la.pixels.copy() for la in rt.canvas.layers}


def client_pixels(pg, layer: str) -> np.ndarray:
    import base64

    from PIL import Image

    url = pg.evaluate(f"window.viwo.stage.canvases.get({layer!r}).toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA"))


def assert_client_matches(pg, layer: str, want: np.ndarray):
    """The page's canvas holds the server's pixels (a canvas stores premultiplied colour: colour channels
    are compared where alpha is not tiny, alpha exactly)."""
    got = client_pixels(pg, layer).astype(int)
    want = want.astype(int)
    assert np.array_equal(got[..., 3], want[..., 3])
    solid = want[..., 3] >= 64
    assert np.abs(got[..., :3] - want[..., :3])[solid].max(initial=0) <= 3


def test_every_layer_mode_test_id_is_on_one_element(page):
    for tid in ("mode-layer", "mode-blocks", "canvas-stage", "layer-add", "tool-brush", "tool-eraser", "brush-size",
                "brush-color", "prompt", "seed", "generate", "cancel", "script-text", "templates-toggle"):
        assert page.get_by_test_id(tid).count() == 1, tid
    page.get_by_test_id("templates-toggle").click()
    expect(page.get_by_test_id("template-save")).to_have_count(1)
    page.get_by_test_id("template-save").click()
    expect(page.get_by_test_id("template-name")).to_have_count(1)
    page.keyboard.press("Escape")
    # every control has an accessible name
    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, input, select, textarea')]
        .filter(e => !e.closest('[hidden]') && !(e.getAttribute('aria-label') || e.labels?.length || e.textContent.trim()
                     || e.getAttribute('title')))
        .map(e => e.outerHTML.slice(0, 80))""")
    assert unnamed == []


def test_mouse_strokes_match_the_rasterizer_and_the_page_shows_them(page, served):
    page.get_by_test_id("layer-add").click()
    page.get_by_test_id("layer-add").click()
    wait_version(page, 2)
    expect(page.get_by_test_id("layer-item")).to_have_count(2)
    expect(page.locator("[data-testid=layer-item].active")).to_have_attribute("data-layer", "layer-2")
    page.get_by_test_id("brush-size").fill("30")
    page.get_by_test_id("brush-color").evaluate("(e) => { e.value = '#3366ff'; e.dispatchEvent(new Event('input', {bubbles: true})); }")
    draw(page, [(60, 60), (200, 90), (300, 260)])
    wait_version(page, 3)
    page.keyboard.press("]")
    draw(page, [(400, 100), (380, 420)])
    wait_version(page, 4)
    page.keyboard.press("e")
    expect(page.get_by_test_id("tool-eraser")).to_have_attribute("aria-pressed", "true")
    draw(page, [(150, 40), (160, 200)])
    wait_version(page, 5)
    script, layers = server_layers(served, session_id(page))
    strokes = [s for s in script[1:] if s[0] == "canvas.draw_stroke"]
    assert [s[5] for s in strokes] == ["brush", "brush", "eraser"] and strokes[0][3] == "#3366ff"
    assert strokes[0][4] == 30 and strokes[1][4] > 30 and strokes[2][3] is None
    assert all(s[1] == "layer-2" for s in strokes) and len(strokes[0][2]) >= 3
    want = replayed(script)
    assert layers.keys() == want.keys()
    for k in want:
        assert np.array_equal(layers[k], want[k]), k
    assert layers["layer-2"][..., 3].any()
    assert_client_matches(page, "layer-2", layers["layer-2"])
    text = script_text(page)
    assert text.count("(canvas.draw_stroke") == 3 and '"eraser"' in text


def test_undo_redo_from_keyboard_and_buttons(page, served):
    page.get_by_test_id("layer-add").click()
    wait_version(page, 1)
    draw(page, [(50, 50), (250, 250)])
    wait_version(page, 2)
    draw(page, [(250, 50), (50, 250)])
    wait_version(page, 3)
    sid = session_id(page)
    _, before = server_layers(served, sid)
    page.locator("body").click(position={"x": 5, "y": 795})
    page.keyboard.press("Control+z")
    wait_version(page, 2)
    script, layers = server_layers(served, sid)
    assert len(script) == 3 and np.array_equal(layers["layer-1"], replayed(script)["layer-1"])
    assert_client_matches(page, "layer-1", layers["layer-1"])
    page.keyboard.press("Control+Shift+z")
    wait_version(page, 3)
    _, again = server_layers(served, sid)
    assert np.array_equal(again["layer-1"], before["layer-1"])
    assert_client_matches(page, "layer-1", again["layer-1"])
    page.get_by_role("button", name="Undo").click()
    page.get_by_role("button", name="Undo").click()
    wait_version(page, 1)
    assert script_text(page).count("draw_stroke") == 0


def test_generate_with_the_fake_lands_on_a_locked_layer(page, served):
    from PIL import Image

    page.get_by_test_id("prompt").fill("a lighthouse at dusk")
    page.get_by_test_id("seed").fill("1234")
    page.get_by_role("checkbox", name="lock").check()
    page.get_by_label("Steps").fill("3")
    page.get_by_label("Width").fill("256")
    page.get_by_label("Height").fill("192")
    page.get_by_test_id("generate").click()
    page.get_by_test_id("result-image").first.wait_for(timeout=30000)
    wait_version(page, 3)
    page.wait_for_function("(() => { const p = document.querySelector('[data-testid=progress]'); "
                           "return p && p.max > 0 && p.value === p.max; })()")
    script, layers = server_layers(served, session_id(page))
    create, load, lock = script[1:4]
    assert create == ["canvas.layer.create", "generated-1", "generated", "raster"]
    assert load[0] == "canvas.layer.load_image" and load[2].startswith("blob:")
    assert lock == ["canvas.layer.update", "generated-1", {"locked": True}]
    sha = load[2][5:]
    path, _ = served.server.blobs.find("painter", sha)
    img = np.asarray(Image.open(path).convert("RGBA"))
    assert img.shape == (192, 256, 4)
    assert np.array_equal(layers["generated-1"][:192, :256], img)
    assert not layers["generated-1"][192:].any()
    assert page.locator("li[data-layer=generated-1]").get_attribute("data-testid") == "layer-item"
    expect(page.get_by_role("button", name="Unlock generated")).to_have_count(1)
    # the seed was locked: the job used it
    src = page.get_by_test_id("result-image").first.get_attribute("alt")
    assert "seed 1234" in src
    # a locked layer refuses strokes in the page already
    draw(page, [(20, 20), (60, 60)])
    page.wait_for_selector(".toast")
    assert version(page) == 3
    # clicking a result puts it onto a new layer
    page.locator(".thumb").first.click()
    wait_version(page, 6)


def test_cancel_a_queued_generation(page, served):
    blocker = page.evaluate("window.viwo.rpc.call('submit_script', {script: '(std.while true null)'})")["job"]
    try:
        page.get_by_test_id("prompt").fill("never drawn")
        page.get_by_test_id("generate").click()
        page.wait_for_selector(".job-status")
        assert "queued" in page.locator(".job-status").inner_text()
        page.get_by_test_id("cancel").click()
        page.wait_for_function("document.querySelector('.job-status').textContent.startsWith('cancelled')", timeout=15000)
        assert page.get_by_test_id("cancel").is_disabled()
    finally:
        page.evaluate(f"window.viwo.rpc.call('cancel_job', {{job: {blocker!r}}})")
    assert page.get_by_test_id("result-image").count() == 0


def png_with_parameters() -> bytes:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    im = Image.new("RGBA", (64, 48), (200, 30, 90, 255))
    info = PngInfo()
    info.add_text("parameters", "a red square, flat\nNegative prompt: blurry\n"
                                "Steps: 17, Sampler: Euler a, CFG scale: 6.5, Seed: 98765, Size: 64x48")
    buf = io.BytesIO()
    im.save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def test_drop_a_png_made_by_a1111(page, served):
    data = list(png_with_parameters())
    page.evaluate("""(bytes) => {
        const file = new File([new Uint8Array(bytes)], 'a1111.png', {type: 'image/png'});
        const dt = new DataTransfer();
        dt.items.add(file);
        const target = document.querySelector('[data-testid=canvas-stage]');
        for (const type of ['dragover', 'drop']) target.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", data)
    wait_version(page, 2)
    page.wait_for_function("document.querySelector('[data-testid=prompt]').value === 'a red square, flat'")
    assert page.get_by_test_id("seed").input_value() == "98765"
    assert page.get_by_label("Steps").input_value() == "17"
    script, layers = server_layers(served, session_id(page))
    assert script[1][:2] == ["canvas.layer.create", "layer-1"] and script[2][2].startswith("blob:")
    assert layers["layer-1"][0, 0].tolist() == [200, 30, 90, 255] and layers["layer-1"][48, 0, 3] == 0


def test_templates_round_trip_and_script_editing(page, served):
    page.get_by_test_id("layer-add").click()
    wait_version(page, 1)
    draw(page, [(100, 100), (200, 150)])
    wait_version(page, 2)
    saved_text = script_text(page)
    page.get_by_test_id("templates-toggle").click()
    page.get_by_test_id("template-save").click()
    name = "Mon portrait ✨ v2"  # free text: spaces, any letters
    page.get_by_test_id("template-name").fill(name)
    page.get_by_test_id("template-name").press("Enter")
    item = page.locator("[data-testid=template-item]").filter(has_text=name)
    item.wait_for()
    assert item.get_attribute("data-name") == name
    # change the canvas by editing the script text
    area = page.get_by_test_id("script-text")
    area.fill('(canvas.layer.create "x" "From text")\n(canvas.draw_stroke "x" [[10 10] [90 90]] "#00ff00" 8)\n')
    page.get_by_role("button", name="Apply script").click()
    page.wait_for_function("window.viwo.store.get().layers.map(l => l.id).join() === 'x'")
    script, layers = server_layers(served, session_id(page))
    assert np.array_equal(layers["x"], replayed(script)["x"])
    assert_client_matches(page, "x", layers["x"])
    # load the template back
    item.get_by_role("button", name="Load").click()
    page.wait_for_function("window.viwo.store.get().layers.map(l => l.id).join() === 'layer-1'")
    expect(page.get_by_test_id("script-text")).to_have_value(saved_text)
    with page.expect_download() as dl:
        item.get_by_role("button", name="Export").click()
    assert dl.value.suggested_filename == f"{name}.viwo-template.json"
    exported = Path(dl.value.path()).read_bytes()
    item.get_by_role("button", name="Delete").click()
    item.wait_for(state="detached")
    assert served.server.user_store("painter").list_templates() == []
    # import the exported file: the same name and script come back
    page.locator(".drawer input[type=file]").set_input_files(
        files=[{"name": dl.value.suggested_filename, "mimeType": "application/json", "buffer": exported}])
    item.wait_for()
    (stored,) = served.server.user_store("painter").list_templates()
    assert stored["name"] == name and stored["script"] == json.loads(exported)["script"]
    item.get_by_role("button", name="Delete").click()
    item.wait_for(state="detached")


def test_reconnects_after_a_server_restart_and_restores_the_canvas(page, served):
    page.get_by_test_id("layer-add").click()
    wait_version(page, 1)
    draw(page, [(30, 30), (300, 300)])
    wait_version(page, 2)
    before = script_text(page)
    page.allowed_problems = ("WebSocket connection", "ERR_CONNECTION_REFUSED")
    old = session_id(page)
    served.restart()
    page.wait_for_function(f"window.viwo.store.get().conn === 'open' && window.viwo.store.get().session !== {old!r}",
                           timeout=20000)
    page.wait_for_function("window.viwo.program.version === 2")
    sid = session_id(page)
    script, layers = server_layers(served, sid)
    expect(page.get_by_test_id("script-text")).to_have_value(before)
    assert np.array_equal(layers["layer-1"], replayed(script)["layer-1"])
    assert_client_matches(page, "layer-1", layers["layer-1"])
    draw(page, [(300, 30), (30, 300)])
    wait_version(page, 3)


def test_layers_panel_edits_are_statements(page, served):
    page.get_by_test_id("layer-add").click()
    page.get_by_role("button", name="+ Mask").click()
    page.get_by_role("button", name="+ Control").click()
    wait_version(page, 4)
    page.get_by_role("button", name="Hide Layer 1").click()
    page.get_by_role("button", name="Lock Mask 1").click()
    page.get_by_role("button", name="Move Control 1 down").click()
    wait_version(page, 7)
    script, _ = server_layers(served, session_id(page))
    assert script[5:] == [["canvas.layer.update", "layer-1", {"visible": False}],
                          ["canvas.layer.update", "mask-1", {"locked": True}],
                          ["canvas.layer.update", "control-1", {"index": 1}]]
    assert page.evaluate("window.viwo.store.get().layers.map(l => l.id)") == ["layer-1", "control-1", "mask-1"]
    page.get_by_role("button", name="Delete Layer 1").click()
    wait_version(page, 8)
    expect(page.get_by_test_id("layer-item")).to_have_count(2)


def test_image_to_image_from_the_canvas(page, served):
    page.get_by_test_id("layer-add").click()
    wait_version(page, 1)
    draw(page, [(100, 100), (400, 300)])
    wait_version(page, 2)
    page.get_by_test_id("prompt").fill("make it a river")
    page.get_by_label("Steps").fill("4")
    page.get_by_text("Start from the canvas").click()
    page.get_by_label("Strength").fill("0.5")
    page.get_by_test_id("generate").click()
    page.get_by_test_id("result-image").first.wait_for(timeout=30000)
    wait_version(page, 5)
    job = page.evaluate("window.viwo.store.get().job")
    rec = page.evaluate(f"window.viwo.rpc.call('get_job', {{job: {job!r}}})")
    assert rec["status"] == "done" and rec["images"][0]["width"] == SIZE
    script, layers = server_layers(served, session_id(page))
    assert script[3][0] == "canvas.layer.create" and layers["generated-1"].shape == (SIZE, SIZE, 4)
    assert layers["generated-1"][..., 3].all()


def test_save_a_result_and_load_it_from_the_entity_browser(page, served):
    page.get_by_test_id("prompt").fill("a blue door")
    page.get_by_label("Steps").fill("2")
    page.get_by_test_id("generate").click()
    page.get_by_test_id("result-image").first.wait_for(timeout=30000)
    wait_version(page, 3)
    page.locator(".gallery").get_by_role("button", name="Save").click()
    page.get_by_label("Name to save as").fill("blue-door")
    page.get_by_label("Name to save as").press("Enter")
    page.wait_for_selector(".toast:has-text('Saved')")
    page.get_by_role("tab", name="Saved").click()
    page.get_by_alt_text("Saved image blue-door").click()
    wait_version(page, 5)
    script, layers = server_layers(served, session_id(page))
    assert script[4][:3] == ["canvas.layer.create", "layer-1", "blue-door"]
    assert script[5][2].startswith("blob:")  # the store keeps its own copy (its metadata added)
    assert np.array_equal(layers["layer-1"], layers["generated-1"])


def test_generation_box_sets_size_and_place_and_a_dropped_viwo_png_offers_its_script(page, served):
    from PIL import Image

    page.locator("[data-testid=canvas-stage]").click(position={"x": 5, "y": 5})
    page.keyboard.press("m")
    draw(page, [(64, 128), (64 + 256, 128 + 192)])
    page.wait_for_function("window.viwo.store.get().box !== null")
    assert page.evaluate("window.viwo.store.get().box") == {"x": 64, "y": 128, "w": 256, "h": 192}
    page.get_by_test_id("prompt").fill("in the box")
    page.get_by_label("Steps").fill("2")
    page.get_by_test_id("generate").click()
    wait_version(page, 3)
    script, layers = server_layers(served, session_id(page))
    assert script[2][3:] == [64, 128]
    px = layers["generated-1"]
    assert px[128:320, 64:320, 3].all() and not px[:128].any() and not px[:, :64].any()
    # that result's PNG (a viwo image) dropped on the page offers the script that made it
    sha = script[2][2][5:]
    data = list(served.server.blobs.find("painter", sha)[0].read_bytes())
    page.evaluate("""(bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'viwo.png', {type: 'image/png'}));
        document.querySelector('[data-testid=canvas-stage]').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", data)
    page.get_by_role("button", name="Load its script").click()
    page.wait_for_function("window.viwo.program.statements.some(s => s[0] === 'std.call_method')")
    assert Image.open(served.server.blobs.find("painter", sha)[0]).size == (256, 192)
    assert any(la["locked"] and la["id"].startswith("op") for la in page.evaluate("window.viwo.store.get().layers"))


def test_upscale_a_result(page, served):
    from PIL import Image

    page.get_by_test_id("prompt").fill("small")
    page.get_by_label("Steps").fill("2")
    page.get_by_label("Width").fill("128")
    page.get_by_label("Height").fill("64")
    page.get_by_test_id("generate").click()
    page.get_by_test_id("result-image").first.wait_for(timeout=30000)
    wait_version(page, 3)
    page.get_by_role("button", name="Upscale small ×2").click()
    page.wait_for_function("document.querySelectorAll('[data-testid=result-image]').length === 2", timeout=30000)
    url = page.get_by_test_id("result-image").first.get_attribute("src")
    sha = url.split("/")[-1].split(".")[0]
    assert Image.open(served.server.blobs.find("painter", sha)[0]).size == (256, 128)
    assert "upscaled" in page.get_by_test_id("result-image").first.get_attribute("alt")
    assert version(page) == 3  # an upscale does not land on the canvas by itself


def test_a_visible_mask_layer_makes_an_inpaint_request(page, served):
    page.get_by_test_id("layer-add").click()
    page.get_by_role("button", name="+ Mask").click()
    wait_version(page, 2)
    expect(page.locator(".gen-mode")).to_have_text(re.compile("^Inpaint"))
    draw(page, [(100, 100), (200, 200)])
    wait_version(page, 3)
    page.get_by_test_id("prompt").fill("a window")
    page.get_by_test_id("generate").click()
    page.wait_for_selector(".generate .error", timeout=30000)
    job = page.evaluate("window.viwo.store.get().job")
    rec = page.evaluate(f"window.viwo.rpc.call('get_job', {{job: {job!r}}})")
    # no inpaint model on a test machine: the job fails with the capability's message, shown in the panel
    assert rec["status"] == "error" and rec["error"]["message"] in page.locator(".generate .error").inner_text()
    assert "diffusers.inpaint.inpaint" in rec["error"]["message"]
    page.get_by_role("button", name="Hide Mask 1").click()
    page.wait_for_function("document.querySelector('.gen-mode').textContent === 'Text to image'")


def test_preprocess_a_control_layer_with_canny(page, served):
    from viwoscript.capabilities.controlnet import canny
    from viwoscript.models.images import to_rgb

    page.get_by_role("button", name="+ Control").click()
    wait_version(page, 2)
    page.get_by_test_id("brush-color").evaluate("(e) => { e.value = '#202020'; e.dispatchEvent(new Event('input', {bubbles: true})); }")
    draw(page, [(80, 80), (300, 120), (260, 400)])
    wait_version(page, 3)
    _, before = server_layers(served, session_id(page))
    # the server offers the preprocessors it can run; those needing weights are disabled with the reason
    select = page.get_by_label("Preprocessor for Control 1")
    expect(select.locator("option[value=canny]")).to_be_enabled()
    depth = select.locator("option[value=depth]")
    expect(depth).to_be_disabled()
    assert "Annotators" in depth.get_attribute("title")
    select.select_option("canny")
    page.get_by_role("button", name="Preprocess", exact=True).click()
    wait_version(page, 6)
    script, layers = server_layers(served, session_id(page))
    assert script[4][0] == "canvas.layer.clear" and script[5][2].startswith("blob:")
    assert script[6] == ["canvas.layer.update", "control-1", {"controlType": "canny"}]
    want = canny(to_rgb(before["control-1"]))
    got = layers["control-1"]
    assert (got[..., 3] == 255).all() and np.array_equal(got[..., :3], want) and want.any()
    # the page shows the control image (tinted: the tint is display only)
    assert client_pixels(page, "control-1")[..., 3].all()


def test_queue_position_beside_the_progress_bar(page, served):
    call = "window.viwo.rpc.call('submit_script', {script: %r})"
    blocker = page.evaluate(call % "(std.while true null)")["job"]
    page.wait_for_function(f"window.viwo.store.get().jobs[{blocker!r}]?.status === 'running'")
    ahead = page.evaluate(call % "(+ 1 2)")["job"]
    try:
        page.get_by_test_id("prompt").fill("wait your turn")
        page.get_by_label("Steps").fill("2")
        page.get_by_test_id("generate").click()
        expect(page.locator(".job-status")).to_have_text("queued, 2nd")
        page.evaluate(f"window.viwo.rpc.call('cancel_job', {{job: {ahead!r}}})")
        expect(page.locator(".job-status")).to_have_text("queued, 1st")
    finally:
        page.evaluate(f"window.viwo.rpc.call('cancel_job', {{job: {blocker!r}}})")
    page.get_by_test_id("result-image").first.wait_for(timeout=30000)
    expect(page.locator(".job-status")).to_have_text("done")


def test_statements_replay_does_not_run_show_as_hatched_placeholders(page, served):
    area = page.get_by_test_id("script-text")
    area.fill('(canvas.layer.create "a" "A")\n(my.plugin.sparkle 1 2)\n(std.log "hello")\n')
    page.get_by_role("button", name="Apply script").click()
    page.wait_for_function("window.viwo.store.get().layers.length === 3")
    layers = page.evaluate("window.viwo.store.get().layers")
    assert [(la["id"], la.get("placeholder"), la["locked"]) for la in layers] == [
        ("a", None, False), ("op1", "my.plugin.sparkle", True), ("op2", "std.log", True)]
    script, server_px = server_layers(served, session_id(page))
    assert script == ["std.seq", ["canvas.layer.create", "a", "A"], ["my.plugin.sparkle", 1, 2], ["std.log", "hello"]]
    assert not server_px["op1"].any()  # display only: the server's layer stays empty
    shown = client_pixels(page, "op1")
    assert shown[..., 3].all() and len(np.unique(shown.reshape(-1, 4), axis=0)) > 2  # hatched, with a label
    assert not client_pixels(page, "a")[..., 3].any()
    expect(page.locator("li[data-layer=op1]")).to_contain_text("placeholder")
    # hidden like any layer; the script does not change
    page.get_by_role("button", name="Hide my.plugin.sparkle").click()
    wait_version(page, 4)
    assert page.evaluate("window.viwo.stage.canvases.get('op1').hidden")


def test_drag_a_layer_to_reorder_the_stack(page, served):
    for _ in range(3):
        page.get_by_test_id("layer-add").click()
    wait_version(page, 3)
    draw(page, [(100, 100), (300, 300)])  # on layer-3, the active one
    wait_version(page, 4)
    # the list shows the top layer first; drag the bottom one onto the top one
    page.locator("li[data-layer=layer-1]").drag_to(page.locator("li[data-layer=layer-3]"))
    wait_version(page, 5)
    script, layers = server_layers(served, session_id(page))
    assert script[-1] == ["canvas.layer.update", "layer-1", {"index": 2}]
    assert page.evaluate("window.viwo.store.get().layers.map(l => l.id)") == ["layer-2", "layer-3", "layer-1"]
    assert [el.get_attribute("data-layer") for el in page.get_by_test_id("layer-item").all()] == [
        "layer-1", "layer-3", "layer-2"]
    assert page.evaluate("[...document.querySelectorAll('.stage-layers canvas')].map(c => c.dataset.layer)") == [
        "layer-2", "layer-3", "layer-1"]
    # and back down: layer-1 dropped on the bottom one
    page.locator("li[data-layer=layer-1]").drag_to(page.locator("li[data-layer=layer-2]"))
    wait_version(page, 6)
    assert page.evaluate("window.viwo.store.get().layers.map(l => l.id)") == ["layer-1", "layer-2", "layer-3"]
    assert "(canvas.layer.update \"layer-1\" {\"index\": 0})" in script_text(page)
    assert np.array_equal(server_layers(served, session_id(page))[1]["layer-3"], layers["layer-3"])
