"""The requests Layer Mode builds (web/js/script.js `generateScript`, run here with node) run to an image
on a real server with tiny random-weight models: text to image, inpaint from a mask layer, ControlNet from
a control layer, and outpaint past the canvas edge."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")
pytest.importorskip("diffusers")
sys.path.insert(0, str(Path(__file__).parent))
from server_helpers import Rpc, config, run, served  # noqa: E402

SCRIPT_JS = Path(__file__).parent.parent / "viwoscript" / "web" / "js" / "script.js"
NODE = shutil.which("node")


def build(opts: dict) -> list:
    """``generateScript(opts)`` of the page's own module."""
    if NODE is None:
        pytest.skip("node is not installed: the page's request builder cannot run here")
    code = (f"import({json.dumps(SCRIPT_JS.resolve().as_uri())}).then(m => "
            f"process.stdout.write(JSON.stringify(m.generateScript({json.dumps(opts)}))))")
    r = subprocess.run([NODE, "--input-type=module", "-e", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    import torch

    from viwoscript.capabilities import capabilities
    from viwoscript.models.config import ModelConfig
    from viwoscript.models.tiny import make_tiny

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("ui-models")
    for name, family in (("sd15", "sd15"), ("inp", "sd15-inpaint"), ("cn", "sd15-controlnet")):
        make_tiny(root / name, family)
    cfg = ModelConfig(aliases={"tiny": str(root / "sd15"), "inp": str(root / "inp")}, default="tiny",
                      inpaint="inp", controlnets={"scribble": [str(root / "cn")]})
    return capabilities(cfg)


CANVAS = [["canvas.layer.create", "layer-1", "Layer 1", "raster"],
          ["canvas.draw_stroke", "layer-1", [[8, 8], [56, 40]], "#3366ff", 12, "brush"]]


def test_the_pages_requests_run_to_images_with_tiny_models(tmp_path, models):
    mask = [["canvas.layer.create", "mask-1", "Mask 1", "mask"],
            ["canvas.draw_stroke", "mask-1", [[20, 20], [44, 44]], "#ff0000", 16, "brush"]]
    control = [["canvas.layer.create", "control-1", "Control 1", "control"],
               ["canvas.layer.update", "control-1", {"controlType": "scribble"}],
               ["canvas.draw_stroke", "control-1", [[10, 50], [54, 12]], "#ffffff", 4, "brush"]]
    common = {"prompt": "a blue line", "steps": 2, "guidance": 5, "seed": 7}
    requests = {
        "txt2img": build({**common, "width": 64, "height": 64}),
        "inpaint": build({**common, "mask": "mask-1", "canvas": CANVAS + mask}),
        "controlnet": build({**common, "width": 64, "height": 64, "canvas": CANVAS + control,
                             "controls": [{"layer": "control-1", "controlType": "scribble", "weight": 0.8,
                                           "start": 0, "end": 1}]}),
        "outpaint": build({**common, "outpaint": {"sides": ["right"], "pixels": 32}, "canvas": CANVAS}),
    }
    assert requests["inpaint"][-1][2] == "inpaint" and requests["controlnet"][-1][2] == "apply"
    assert requests["outpaint"][-1][2:6] == ["outpaint", ["canvas.composite", "white"], "right", 32]
    sizes = {"outpaint": (96, 64)}

    async def go():
        sc = config(tmp_path, canvas_size=(64, 64), runtime_kwargs={"capabilities": models},
                    grants=["diffusers.generate", "diffusers.inpaint", "controlnet.generate"])
        async with served(sc) as (client, _server):
            rpc = await Rpc.connect(client)
            for kind, script in requests.items():
                rec = await rpc.call("execute_script", script=script)
                assert rec["status"] == "done", (kind, rec.get("error"))
                result = rec["result"]
                im = rec["images"][0]
                assert (im["width"], im["height"]) == sizes.get(kind, (64, 64)), kind
                assert result["model_id"] in ("tiny", "inp") and not result.get("fake"), kind
            await rpc.close()

    run(go())
