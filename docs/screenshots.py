"""Screenshots of the web UI for docs/ui.md, taken from the real page.

Starts ``viwo serve`` on 127.0.0.1 (temporary data folder, the fake ``diffusers.generate``), drives the page
with Playwright on Debian's ``chromium-headless-shell`` at 1280×800 (dark and light), and writes
``docs/images/ui-*.png``::

    .venv/bin/python docs/screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

TOKEN = "screenshot-token-0123456789"
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from web_server import browser_missing, chromium, serve_process  # noqa: E402  (the tests' Chromium and server)


def draw(page, points):
    client = [page.evaluate(f"window.viwo.stage.toClient({x}, {y})") for x, y in points]
    page.mouse.move(*client[0])
    page.mouse.down()
    for x, y in client[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


def wait_version(page, n):
    page.wait_for_function(f"window.viwo.program.version >= {n}", timeout=20000)


def shoot(page, out: Path, scheme: str):
    page.goto(page.url_to_open)
    page.wait_for_selector(".conn-open", timeout=20000)
    page.wait_for_function("window.viwo && window.viwo.store.get().session")
    page.get_by_test_id("prompt").fill("a lighthouse on a cliff at dusk, watercolor")
    page.get_by_test_id("seed").fill("1234")
    page.get_by_role("checkbox", name="lock").check()
    page.get_by_label("Steps").fill("12")
    page.get_by_test_id("generate").click()
    page.get_by_test_id("result-image").first.wait_for(timeout=60000)
    wait_version(page, 3)
    page.get_by_test_id("layer-add").click()
    wait_version(page, 4)
    page.get_by_test_id("brush-size").fill("18")
    page.get_by_test_id("brush-color").evaluate(
        "(e) => { e.value = '#ffd166'; e.dispatchEvent(new Event('input', {bubbles: true})); }")
    draw(page, [(120, 700), (300, 620), (520, 640), (760, 560), (900, 600)])
    draw(page, [(640, 180), (700, 150), (760, 190)])
    wait_version(page, 6)
    page.get_by_role("button", name="+ Mask").click()
    wait_version(page, 7)
    page.get_by_test_id("brush-size").fill("60")
    draw(page, [(200, 300), (320, 340)])
    wait_version(page, 8)
    page.locator("li[data-layer=layer-1] .layer-name").click()
    wait_version(page, 9)
    page.wait_for_timeout(400)
    page.screenshot(path=str(out / f"ui-layer-mode-{scheme}.png"))
    if scheme == "dark":
        page.locator("section.layers").screenshot(path=str(out / "ui-layers.png"))
        page.locator("section.generate").screenshot(path=str(out / "ui-generate.png"))
        page.locator("section.gallery").screenshot(path=str(out / "ui-results.png"))
        page.locator("section.script").screenshot(path=str(out / "ui-script.png"))
        page.locator(".toolbar").screenshot(path=str(out / "ui-tools.png"))
        page.get_by_test_id("templates-toggle").click()
        page.get_by_test_id("template-save").click()
        page.get_by_test_id("template-name").fill("lighthouse-sketch")
        page.get_by_test_id("template-name").press("Enter")
        page.locator("[data-testid=template-item]").first.wait_for()
        page.locator("#templates-drawer").screenshot(path=str(out / "ui-templates.png"))
        page.get_by_role("button", name="Close templates").click()
        # a control layer: a scribble, then its canny control image (Preprocess)
        page.get_by_role("button", name="+ Control").click()
        wait_version(page, 11)
        page.get_by_test_id("brush-size").fill("14")
        page.get_by_test_id("brush-color").evaluate(
            "(e) => { e.value = '#202020'; e.dispatchEvent(new Event('input', {bubbles: true})); }")
        draw(page, [(560, 420), (700, 360), (840, 440), (760, 560)])
        wait_version(page, 12)
        page.get_by_label("Preprocessor for Control 1").select_option("canny")
        page.get_by_role("button", name="Preprocess", exact=True).click()
        wait_version(page, 15)
        page.wait_for_timeout(300)
        page.locator("section.layers").screenshot(path=str(out / "ui-control-layer.png"))


def shoot_blocks(page, out: Path, scheme: str):
    """Blocks Mode over the same script, then after a run of it."""
    page.evaluate("window.viwo.store.set({ templatesOpen: false, toasts: [] })")
    page.get_by_test_id("mode-blocks").click()
    page.wait_for_selector("[data-testid=blocks-workspace] .blocklySvg", timeout=30000)
    page.wait_for_function("window.viwo.blocks && window.viwo.blocks.ws")
    page.wait_for_timeout(400)
    page.screenshot(path=str(out / f"ui-blocks-mode-{scheme}.png"))
    if scheme == "dark":
        page.evaluate("""() => window.viwo.blocks.loadJson(JSON.stringify(["std.seq",
          ["std.let", "gen", ["get_capability", "diffusers.generate"]],
          ["std.call_method", ["std.var", "gen"], "textToImage", "a lighthouse on a cliff at dusk",
           ["obj.new", ["seed", 7], ["steps", 12], ["width", 256], ["height", 256]]]]))""")
        page.get_by_test_id("blocks-run").click()
        page.locator(".blocks-status", has_text="Done").wait_for(timeout=60000)
        page.wait_for_timeout(300)
        page.locator(".blocks-mode").screenshot(path=str(out / "ui-blocks-result.png"))


def compact(path: Path) -> None:
    """256-colour PNG: a third of the size, no visible change for UI chrome (the repo keeps them)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "images"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if why := browser_missing():
        raise SystemExit(why)
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "viwo.toml"
        conf.write_text('[server]\ngrants = [{ type = "diffusers.generate", provider = "fake" }, '
                        '{ type = "controlnet.generate" }]\n')
        with serve_process(TOKEN, Path(tmp) / "data", "--config", str(conf)) as port, chromium() as browser:
            for scheme in ("dark", "light"):
                ctx = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
                page = ctx.new_page()
                page.url_to_open = f"http://127.0.0.1:{port}/?token={TOKEN}"
                shoot(page, out, scheme)
                shoot_blocks(page, out, scheme)
                ctx.close()
    for path in out.glob("ui-*.png"):
        compact(path)
    print(f"wrote {', '.join(sorted(p.name for p in out.glob('ui-*.png')))} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
