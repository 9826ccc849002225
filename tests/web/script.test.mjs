// node --test: web/js/script.js, the statements the page records.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Program, addLayerStatements, build, colorWithAlpha, decodeFrame, encodeFrame, freshLayerId,
  generateScript, generatedLayerStatements, preprocessScript, preprocessedLayerStatements, simplifyPoints,
  statementsOf, templateFilename, outpaintOf, outpaintedStatements, generationMode,
} from "../../viwoscript/web/js/script.js";
import { toText } from "../../viwoscript/web/js/sexpr.js";

test("every action appends to one program; undo/redo mirror the server", () => {
  const p = new Program();
  const a = addLayerStatements("raster", p.statements);
  assert.equal(a.id, "layer-1");
  p.apply(a.statements);
  p.apply([build.stroke(a.id, [[1, 1], [5.123, 6.789]], "#ff0000", 12)]);
  const c = addLayerStatements("control", p.statements, { controlType: "canny" });
  assert.deepEqual(c.statements, [["canvas.layer.create", "control-1", "Control 1", "control"],
    ["canvas.layer.update", "control-1", { controlType: "canny" }]]);
  p.apply(c.statements);
  assert.equal(p.version, 4);
  assert.equal(p.undo(2), 2);
  assert.equal(p.version, 2);
  assert.equal(p.redo(5), 2);
  assert.equal(p.version, 4);
  p.undo();
  p.apply([build.clear("layer-1")]);
  assert.equal(p.redo(), 0);
  assert.equal(toText(p.script()),
    '(canvas.layer.create "layer-1" "Layer 1" "raster")\n\n' +
    '(canvas.draw_stroke "layer-1" ((1 1) (5.12 6.79)) "#ff0000" 12 "brush")\n\n' +
    '(canvas.layer.create "control-1" "Control 1" "control")\n\n' +
    '(canvas.layer.clear "layer-1")\n');
});

test("layer ids are fresh across the program", () => {
  const st = [["canvas.layer.create", "layer-1", "x"], ["std.seq", ["canvas.layer.create", "layer-2", "y"]]];
  assert.equal(freshLayerId("layer", st), "layer-3");
  assert.equal(freshLayerId("mask", st), "mask-1");
});

test("strokes: rounded, simplified, eraser without colour", () => {
  assert.deepEqual(simplifyPoints([[0, 0], [0.1, 0.1], [0.2, 0.2], [3, 3]]), [[0, 0], [3, 3]]);
  assert.deepEqual(simplifyPoints([[0, 0], [0.1, 0]]), [[0, 0], [0.1, 0]]);
  assert.deepEqual(build.stroke("a", [[1, 2]], "#fff", 3, "eraser"), ["canvas.draw_stroke", "a", [[1, 2]], null, 3, "eraser"]);
  assert.equal(colorWithAlpha("#FF0000", 0.5), "#ff000080");
  assert.equal(colorWithAlpha("#00ff00", 1), "#00ff00");
  assert.equal(colorWithAlpha("bad", 1), "#000000");
});

test("generated results become locked layers loading their blob", () => {
  const sha = "a".repeat(64);
  const g = generatedLayerStatements(sha, []);
  assert.deepEqual(g.statements, [["canvas.layer.create", "generated-1", "generated", "raster"],
    ["canvas.layer.load_image", "generated-1", `blob:${sha}`, 0, 0],
    ["canvas.layer.update", "generated-1", { locked: true }]]);
});

test("generate script", () => {
  const s = generateScript({ prompt: "a fox", seed: 7, steps: 4, width: 256, height: 256, negative: "blur", batch: 2 });
  assert.equal(toText(s), '(std.let gen (get_capability "diffusers.generate"))\n\n' +
    '(std.call_method\n  gen\n  "textToImage"\n  "a fox"\n  {"width": 256, "height": 256, "steps": 4, "guidance_scale": 7.5, "seed": 7, "negative_prompt": "blur", "batch": 2})\n');
  assert.deepEqual(statementsOf(["std.seq", 1, 2]), [1, 2]);
  assert.deepEqual(statementsOf(["x"]), [["x"]]);
});

test("binary frames round trip", () => {
  const buf = encodeFrame({ kind: "tile", x: 64 }, new Uint8Array([1, 2, 3]));
  const { header, bytes } = decodeFrame(buf);
  assert.deepEqual(header, { kind: "tile", x: 64 });
  assert.deepEqual([...bytes], [1, 2, 3]);
  assert.equal(new DataView(buf).getUint32(0, false), JSON.stringify({ kind: "tile", x: 64 }).length);
});

test("image to image from the canvas replays the canvas first", () => {
  const canvas = [["canvas.layer.create", "layer-1", "Layer 1", "raster"]];
  const s = generateScript({ prompt: "p", seed: 1, steps: 4, fromCanvas: true, canvas, strength: 0.5 });
  assert.deepEqual(s.slice(0, 2), ["std.seq", canvas[0]]);
  assert.deepEqual(s[3], ["std.call_method", ["std.var", "gen"], "imageToImage", ["canvas.composite", "white"], "p",
    { steps: 4, guidance_scale: 7.5, seed: 1, strength: 0.5 }]);
});

test("the visible layers choose the request", async () => {
  const { generationMode } = await import("../../viwoscript/web/js/script.js");
  const L = (id, type, visible = true, controlType) => ({ id, name: id, type, visible, controlType });
  assert.equal(generationMode([L("a", "raster")]).kind, "txt2img");
  assert.equal(generationMode([L("a", "raster")], { fromCanvas: true }).kind, "img2img");
  const cn = generationMode([L("a", "raster"), L("c", "control", true, "canny")], { controlSettings: { c: { weight: 0.5 } } });
  assert.deepEqual(cn.controls, [{ layer: "c", controlType: "canny", weight: 0.5 }]);
  assert.equal(generationMode([L("c", "control", false), L("m", "mask")]).mask, "m");
  assert.equal(generationMode([L("m", "mask", false)]).kind, "txt2img");
});

test("inpaint and ControlNet scripts", () => {
  const canvas = [["canvas.layer.create", "m", "M", "mask"]];
  const ip = generateScript({ prompt: "p", seed: 2, steps: 3, mask: "m", canvas });
  assert.deepEqual(ip.slice(-1)[0], ["std.call_method", ["std.var", "ip"], "inpaint", ["canvas.composite", "white"], "m", "p",
    { steps: 3, guidance_scale: 7.5, seed: 2 }]);
  const cn = generateScript({ prompt: "p", seed: 2, steps: 3, width: 512, height: 512, canvas,
    controls: [{ layer: "c", controlType: "canny", weight: 0.5 }] });
  assert.deepEqual(cn.slice(-1)[0], ["std.call_method", ["std.var", "cn"], "apply",
    ["list.new", { image: "c", controlType: "canny", weight: 0.5, start: 0, end: 1 }], "p",
    { width: 512, height: 512, steps: 3, guidance_scale: 7.5, seed: 2 }]);
});

test("template export names keep letters and drop what file systems refuse (as templates.template_filename)", () => {
  assert.equal(templateFilename("Mon portrait ✨ v2"), "Mon portrait ✨ v2.viwo-template.json");
  assert.equal(templateFilename('a/b\\c:d*?"<>|e'), "a_b_c_d_e.viwo-template.json");
  assert.equal(templateFilename(".."), "template.viwo-template.json");
});

test("preprocess: a job replaying the canvas; its image replaces the layer's pixels", () => {
  const canvas = [["canvas.layer.create", "control-1", "C", "control"]];
  const s = preprocessScript(canvas, "control-1", "canny");
  assert.deepEqual(s.at(-1), ["std.call_method", ["std.var", "cn"], "preprocess", ["canvas.layer.image", "control-1"], "canny"]);
  assert.deepEqual(s[1], canvas[0]);
  assert.deepEqual(preprocessedLayerStatements("control-1", "ab", "invert"), [
    ["canvas.layer.clear", "control-1"], ["canvas.layer.load_image", "control-1", "blob:ab", 0, 0],
    ["canvas.layer.update", "control-1", { controlType: "scribble" }]]);
});

test("a generation box past the canvas edge asks for an outpaint of the sides it crosses", () => {
  assert.equal(outpaintOf({ x: 0, y: 0, w: 512, h: 512 }, 512, 512), null);
  assert.deepEqual(outpaintOf({ x: 256, y: 0, w: 320, h: 256 }, 512, 512), { sides: ["right"], pixels: 64 });
  assert.deepEqual(outpaintOf({ x: -40, y: 400, w: 200, h: 200 }, 512, 512), { sides: ["left", "bottom"], pixels: 88 });
  const m = generationMode([{ id: "m", type: "mask", visible: true, name: "M" }], { box: { x: 500, y: 0, w: 64, h: 64 }, width: 512, height: 512 });
  assert.equal(m.kind, "outpaint");  // the box wins over a mask layer
  const s = generateScript({ prompt: "more", outpaint: m.outpaint, steps: 3, canvas: [["canvas.layer.create", "a"]] });
  assert.deepEqual(s.at(-1).slice(0, 6), ["std.call_method", ["std.var", "ip"], "outpaint", ["canvas.composite", "white"], "right", 56]);
  assert.deepEqual(outpaintedStatements("ab", { right: 56 }, []), [
    ["canvas.extend", 0, 0, 56, 0], ["canvas.layer.create", "generated-1", "outpainted", "raster"],
    ["canvas.layer.load_image", "generated-1", "blob:ab", 0, 0], ["canvas.layer.update", "generated-1", { locked: true }]]);
});
