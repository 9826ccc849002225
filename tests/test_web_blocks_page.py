"""Blocks Mode in the real page (Playwright + Debian's chromium-headless-shell) against a real `viwo serve`:
a block built by drag and drop from the toolbox runs with the fake capability and shows its image; a
script with an unknown opcode loads and comes back unchanged; a check error sits on its block; the
script goes to Layer Mode and back; a capability plugin registered on the server is a block with its
declared parameters, with no UI change. No test may leave a console error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from web_server import ServedUI, browser_missing, chromium, ui_page  # noqa: E402

from viwoscript.capabilities import Capability, ParamSpec, method  # noqa: E402

if why := browser_missing():
    pytest.skip(why, allow_module_level=True)
pytest.importorskip("aiohttp")


class Echo(Capability):
    """A plugin the UI has never heard of: its block must appear from the metadata alone."""

    type = "demo.echo"
    provider = "demo"
    label = "Echo (test plugin)"
    description = "Says back what it is told."

    @method("shout", ParamSpec("words", "string", description="What to say"),
            ParamSpec("times", "integer", 2, "How often", min=1, max=5),
            positional=2, returns="string", label="Shout")
    def shout(self, ctx, words, times):
        """Repeat the words in capitals."""
        return " ".join([words.upper()] * times)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    grants = [{"type": "diffusers.generate", "provider": "fake"}, {"type": "demo.echo"}]
    with ServedUI(tmp_path_factory.mktemp("blocks-data"), canvas_size=(256, 256), grants=grants,
                  runtime_kwargs={"capabilities": [Echo()]}) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, served):
    with ui_page(browser, served.url) as pg:
        yield pg


def set_script(pg, text: str, marker: str):
    box = pg.get_by_test_id("script-text")
    box.fill(text)
    box.press("Control+Enter")
    pg.wait_for_function("m => JSON.stringify(window.viwo.program.statements).includes(m)", arg=marker)


def open_blocks(pg):
    pg.get_by_test_id("mode-blocks").click()
    pg.wait_for_selector("[data-testid=blocks-workspace] .blocklySvg", timeout=20000)
    pg.wait_for_function("window.viwo.blocks && window.viwo.blocks.ws")


def blocks_json(pg) -> str:
    return pg.evaluate("window.viwo.blocks.currentJson()")


def test_every_blocks_mode_test_id_is_on_one_element(page):
    open_blocks(page)
    for tid in ("mode-layer", "mode-blocks", "blocks-workspace", "blocks-run", "visualize-layers", "script-text"):
        assert page.get_by_test_id(tid).count() == 1, tid


def drag_from_toolbox(pg, category: str, text: str, to=(600, 220)):
    pg.locator(".blocklyToolboxCategory", has_text=category).first.click()
    blk = pg.locator(".blocklyFlyout .blocklyDraggable", has_text=text).first
    blk.wait_for()
    box = blk.bounding_box()
    ws = pg.get_by_test_id("blocks-workspace").bounding_box()
    pg.mouse.move(box["x"] + 8, box["y"] + 8)
    pg.mouse.down()
    pg.mouse.move(box["x"] + 120, box["y"] + 40, steps=5)
    pg.mouse.move(ws["x"] + to[0], ws["y"] + to[1], steps=10)
    pg.mouse.up()


def test_build_text_to_image_by_drag_and_drop_and_run_it(page):
    open_blocks(page)
    drag_from_toolbox(page, "Generate images", "textToImage")
    page.wait_for_function("window.viwo.blocks.currentJson().includes('textToImage')")
    # the prompt: the empty text field the toolbox put in the block
    fields = page.locator("[data-testid=blocks-workspace] .blocklyWorkspace > .blocklyBlockCanvas .blocklyEditableField")
    fields.nth(fields.count() - 1).click()
    page.wait_for_selector(".blocklyHtmlInput")
    page.keyboard.type("a red fox")
    page.keyboard.press("Enter")
    page.wait_for_function("window.viwo.blocks.currentJson().includes('a red fox')")
    assert json.loads(blocks_json(page)) == [
        "std.call_method", ["get_capability", "diffusers.generate"], "textToImage", "a red fox"]
    # the text view follows the blocks
    page.wait_for_function("document.querySelector('[data-testid=script-text]').value.includes('\"a red fox\"')")
    page.get_by_test_id("blocks-run").click()
    img = page.get_by_test_id("result-image")
    img.wait_for(timeout=60000)
    assert img.get_attribute("src").startswith("/blobs/")
    page.wait_for_function("document.querySelector('[data-testid=result-image]').naturalWidth > 0")
    assert "Done" in page.locator(".blocks-status").inner_text()


def test_unknown_opcode_loads_as_a_generic_block_and_survives(page):
    set_script(page, '(canvas.layer.create "a" "A")\n(no.such.op 1 "two" [3])', "no.such.op")
    open_blocks(page)
    generic = page.evaluate("window.viwo.blocks.ws.getAllBlocks(false).filter(b => b.type === 'vw_generic')"
                            ".map(b => b.getFieldValue('OP'))")
    assert generic == ["no.such.op"]
    assert blocks_json(page) == ('["std.seq",\n  ["canvas.layer.create", "a", "A"],\n'
                                 '  ["no.such.op", 1, "two", ["list.new", 3]]\n]')


def test_a_check_error_is_shown_on_its_block(page):
    set_script(page, '(canvas.layer.create "a" "A")\n(math.sqrt "nine")', "math.sqrt")
    open_blocks(page)
    page.wait_for_function("Number(document.querySelector('[data-testid=blocks-workspace]').closest('.blocks-mode')"
                           ".dataset.diagnostics || 0) > 0", timeout=15000)
    marked = page.evaluate("window.viwo.blocks.diagnostics.map(d => [window.viwo.blocks.ws.getBlockById(d.id).type, d.message])")
    assert len(marked) == 1 and marked[0][0] == "vw_str" and "number" in marked[0][1], marked
    icons = page.locator("[data-testid=blocks-workspace] .blocklyWarningIcon, [data-testid=blocks-workspace] .blocklyIconGroup")
    assert icons.count() >= 1


def test_visualize_as_layers_and_back(page):
    open_blocks(page)
    page.evaluate("""() => window.viwo.blocks.loadJson('["std.seq", ["canvas.layer.create", "sky", "Sky"], '
      + '["canvas.draw_stroke", "sky", [[10, 10], [120, 90]], "#3366ff", 12]]')""")
    page.evaluate("window.viwo.blocks.api.setScript(window.viwo.blocks.currentJson())")
    page.get_by_test_id("visualize-layers").click()
    page.wait_for_function("window.viwo.store.get().mode === 'layer'")
    page.wait_for_function("window.viwo.store.get().layers.some(l => l.id === 'sky')")
    assert page.get_by_test_id("layer-item").count() >= 1
    open_blocks(page)
    assert blocks_json(page) == ('["std.seq",\n  ["canvas.layer.create", "sky", "Sky"],\n'
                                 '  ["canvas.draw_stroke", "sky", [[10, 10], [120, 90]], "#3366ff", 12]\n]')


def test_a_capability_plugin_is_a_block_with_its_declared_parameters(page):
    open_blocks(page)
    info = page.evaluate("""() => {
      const m = window.viwo.blocks;
      const spec = m.model.specs.get('vw_cap:demo.echo:shout');
      const ws = m.ws;
      const b = ws.newBlock('vw_cap:demo.echo:shout');
      b.loadExtraState({n: 2});
      const out = {label: spec.label, inputs: b.inputList.map(i => i.name),
                   checks: ['ARG0', 'ARG1'].map(n => b.getInput(n).connection.getCheck())};
      b.dispose();
      return out;
    }""")
    assert info["label"] == "demo.echo › shout"
    assert info["checks"] == [["String"], ["Number"]]
    page.locator(".blocklyToolboxCategory", has_text="Echo (test plugin)").first.click()
    page.locator(".blocklyFlyout .blocklyDraggable", has_text="shout").first.wait_for()


def test_right_click_help_shows_the_opcode_doc(page):
    set_script(page, '(canvas.layer.create "a" "A")', "canvas.layer.create")
    open_blocks(page)
    block = page.locator("[data-testid=blocks-workspace] .blocklyBlockCanvas .blocklyDraggable").first
    block.click(button="right", position={"x": 20, "y": 8})
    page.locator(".blocklyContextMenu .blocklyMenuItem", has_text="Help: canvas.layer.create").click()
    help_panel = page.locator(".blocks-help")
    help_panel.wait_for()
    assert "canvas.layer.create" in help_panel.inner_text()
    assert "type" in help_panel.inner_text()  # the declared parameters are listed
