// The page's state is one ViwoScript program (JSON form). Every user action appends statements built
// here; the server applies them (canvas_apply) and rasterizes authoritatively. Pure: no DOM, no network.

export const LAYER_TYPES = ["raster", "control", "mask"];
export const CONTROL_TYPES = ["canny", "depth", "openpose", "scribble", "invert"];

// Coordinates are kept to 1/100 pixel: exact enough for the rasterizer, short in the script.
export function roundCoord(v) {
  return Math.round(v * 100) / 100;
}

// Drop points closer than `minStep` to the previous kept one (the last point is always kept).
export function simplifyPoints(points, minStep = 0.75) {
  const out = [];
  for (const p of points) {
    const q = [roundCoord(p[0]), roundCoord(p[1])];
    const last = out[out.length - 1];
    if (!last || Math.hypot(q[0] - last[0], q[1] - last[1]) >= minStep) out.push(q);
  }
  const end = points[points.length - 1];
  if (end && out.length) {
    const q = [roundCoord(end[0]), roundCoord(end[1])];
    const last = out[out.length - 1];
    if (last[0] !== q[0] || last[1] !== q[1]) out.push(q);
  }
  return out;
}

// A colour as the canvas opcodes read it: "#rrggbb" or "#rrggbbaa" (alpha 0..1).
export function colorWithAlpha(hex, alpha = 1) {
  const h = /^#[0-9a-fA-F]{6}$/.test(hex) ? hex.toLowerCase() : "#000000";
  const a = Math.max(0, Math.min(1, Number(alpha)));
  if (a >= 1) return h;
  return h + Math.round(a * 255).toString(16).padStart(2, "0");
}

function layerIdsOf(statements) {
  const ids = new Set();
  const walk = (n) => {
    if (!Array.isArray(n)) return;
    if (n[0] === "canvas.layer.create" && typeof n[1] === "string") ids.add(n[1]);
    for (const x of n) walk(x);
  };
  statements.forEach(walk);
  return ids;
}

// A fresh layer id: `prefix-N` not used by any statement (nor any undone one still redoable).
export function freshLayerId(prefix, statements, also = []) {
  const used = layerIdsOf([...statements, ...also]);
  for (let i = 1; ; i++) {
    const id = `${prefix}-${i}`;
    if (!used.has(id)) return id;
  }
}

export const build = {
  createLayer: (id, name, type = "raster") => ["canvas.layer.create", id, name, type],
  stroke: (layer, points, color, size, tool = "brush") =>
    ["canvas.draw_stroke", layer, simplifyPoints(points), tool === "eraser" ? null : color, roundCoord(size), tool],
  update: (layer, props) => ["canvas.layer.update", layer, props],
  remove: (layer) => ["canvas.layer.remove", layer],
  clear: (layer) => ["canvas.layer.clear", layer],
  setActive: (layer) => ["canvas.layer.set_active", layer],
  loadImage: (layer, sha256, x = 0, y = 0) => ["canvas.layer.load_image", layer, `blob:${sha256}`, x, y],
};

// The statements adding a layer of `type` ("raster" | "control" | "mask").
export function addLayerStatements(type, statements, { name, controlType } = {}) {
  const prefix = type === "raster" ? "layer" : type;
  const id = freshLayerId(prefix, statements);
  const kind = type === "raster" ? "Layer" : `${type[0].toUpperCase()}${type.slice(1)}`;
  const label = name || `${kind} ${id.split("-").pop()}`;
  const out = [build.createLayer(id, label, type)];
  if (type === "control") out.push(build.update(id, { controlType: controlType || "scribble" }));
  return { id, statements: out };
}

// A generated image as a locked "generated" layer: load_image of its blob, so a replay or an undo never
// re-runs the model (the blob's PNG carries the generating script in its metadata).
export function generatedLayerStatements(sha256, statements, { x = 0, y = 0, name = "generated" } = {}) {
  const id = freshLayerId("generated", statements);
  return {
    id,
    statements: [build.createLayer(id, name, "raster"), build.loadImage(id, sha256, x, y), build.update(id, { locked: true })],
  };
}

// The program the page holds, mirrored from the server's session: applied statements, and undone ones
// that redo can bring back (a new statement drops them, as on the server).
export class Program {
  constructor(statements = []) {
    this.statements = [...statements];
    this.undone = [];
  }

  get version() {
    return this.statements.length;
  }

  script() {
    return ["std.seq", ...this.statements];
  }

  apply(statements) {
    this.statements.push(...statements);
    if (statements.length) this.undone = [];
  }

  undo(steps = 1) {
    const n = Math.min(steps, this.statements.length);
    for (let i = 0; i < n; i++) this.undone.push(this.statements.pop());
    return n;
  }

  redo(steps = 1) {
    const n = Math.min(steps, this.undone.length);
    for (let i = 0; i < n; i++) this.statements.push(this.undone.pop());
    return n;
  }

  replace(statements) {
    this.statements = [...statements];
    this.undone = [];
  }
}

// A statements list from a script value in the JSON form: a std.seq's items, or one statement.
export function statementsOf(script) {
  if (Array.isArray(script) && script[0] === "std.seq") return script.slice(1);
  if (Array.isArray(script) && script.length === 0) return [];
  return [script];
}

// Which request the visible layers make: inpaint (a visible mask layer), ControlNet (visible control
// layers), image to image (asked for), else text to image.
export function generationMode(layers, { fromCanvas = false, controlSettings = {}, box = null, width = 0, height = 0 } = {}) {
  const out = box && width && height ? outpaintOf(box, width, height) : null;
  if (out) {
    return { kind: "outpaint", label: `Outpaint (${out.sides.join(", ")}: ${out.pixels} px)`, outpaint: out };
  }
  const mask = layers.find((l) => l.type === "mask" && l.visible);
  if (mask) return { kind: "inpaint", label: `Inpaint (mask “${mask.name}”)`, mask: mask.id };
  const controls = layers.filter((l) => l.type === "control" && l.visible)
    .map((l) => ({ layer: l.id, controlType: l.controlType, ...(controlSettings[l.id] || {}) }));
  if (controls.length) return { kind: "controlnet", label: `ControlNet (${controls.length} layer${controls.length > 1 ? "s" : ""})`, controls };
  if (fromCanvas && layers.some((l) => l.type === "raster" && l.visible)) return { kind: "img2img", label: "Image to image", fromCanvas: true };
  return { kind: "txt2img", label: "Text to image" };
}

// A generation box past the canvas edge asks for an outpaint: the sides it crosses, and how far (its
// furthest overshoot; diffusers.inpaint → outpaint grows each of those sides by that much).
export function outpaintOf(box, width, height) {
  const over = { left: -box.x, top: -box.y, right: box.x + box.w - width, bottom: box.y + box.h - height };
  const sides = ["left", "right", "top", "bottom"].filter((k) => over[k] > 0);
  if (!sides.length) return null;
  return { sides, pixels: Math.max(8, ...sides.map((k) => Math.ceil(over[k] / 8) * 8)) };
}

// The statements putting an outpaint's result on the canvas: the canvas grows by what the result says
// (`extended`), then the image (the whole new canvas) lands as a locked generated layer.
export function outpaintedStatements(sha256, extended, statements) {
  const e = extended || {};
  const g = generatedLayerStatements(sha256, statements, { x: 0, y: 0, name: "outpainted" });
  return [["canvas.extend", e.left || 0, e.top || 0, e.right || 0, e.bottom || 0], ...g.statements];
}

// The script submitted for a generation (JSON form). Options follow the capability's declared names.
export function generateScript(opts) {
  const o = {
    width: opts.width ?? 512,
    height: opts.height ?? 512,
    steps: opts.steps ?? 20,
    guidance_scale: opts.guidance ?? 7.5,
  };
  if (opts.seed !== undefined && opts.seed !== null && opts.seed !== "") o.seed = Number(opts.seed);
  if (opts.negative) o.negative_prompt = opts.negative;
  if (opts.model) o.model = opts.model;
  if (opts.scheduler) o.scheduler = opts.scheduler;
  if (opts.batch && opts.batch > 1) o.batch = opts.batch;
  const cap = opts.capability || "diffusers.generate";
  const canvas = opts.canvas || [];
  if (opts.outpaint) {
    // Outpaint: extend the composite of the visible raster layers (on white) past the canvas edge.
    delete o.width;
    delete o.height;
    return ["std.seq", ...canvas,
      ["std.let", "ip", ["get_capability", "diffusers.inpaint"]],
      ["std.call_method", ["std.var", "ip"], "outpaint", ["canvas.composite", "white"], opts.outpaint.sides.join(","),
        opts.outpaint.pixels, opts.prompt ?? "", o]];
  }
  if (opts.mask) {
    // Inpaint: repaint where the mask layer is painted, on the composite of the visible raster layers.
    delete o.width;
    delete o.height;
    if (opts.strength !== undefined) o.strength = opts.strength;
    return ["std.seq", ...canvas,
      ["std.let", "ip", ["get_capability", "diffusers.inpaint"]],
      ["std.call_method", ["std.var", "ip"], "inpaint", ["canvas.composite", "white"], opts.mask, opts.prompt ?? "", o]];
  }
  if (opts.controls && opts.controls.length) {
    // ControlNet: each visible control layer (by id: the capability reads its control image) with its
    // type, weight and start/end.
    const controls = opts.controls.map((c) => ({
      image: c.layer, controlType: c.controlType || "scribble", weight: c.weight ?? 1, start: c.start ?? 0, end: c.end ?? 1,
    }));
    return ["std.seq", ...canvas,
      ["std.let", "cn", ["get_capability", "controlnet.generate"]],
      ["std.call_method", ["std.var", "cn"], "apply", ["list.new", ...controls], opts.prompt ?? "", o]];
  }
  if (opts.fromCanvas) {
    // Image to image from the canvas: the job replays the page's canvas statements, then starts from
    // the composite of its visible raster layers (on white).
    delete o.width;
    delete o.height;
    o.strength = opts.strength ?? 0.6;
    return ["std.seq", ...canvas,
      ["std.let", "gen", ["get_capability", cap]],
      ["std.call_method", ["std.var", "gen"], "imageToImage", ["canvas.composite", "white"], opts.prompt ?? "", o]];
  }
  return ["std.seq",
    ["std.let", "gen", ["get_capability", cap]],
    ["std.call_method", ["std.var", "gen"], opts.method || "textToImage", opts.prompt ?? "", o]];
}

// A control layer's picture through a preprocessor (controlnet.generate → preprocess): the job replays
// the page's canvas statements and returns the control image (white features on black).
export function preprocessScript(statements, layer, type) {
  return ["std.seq", ...statements,
    ["std.let", "cn", ["get_capability", "controlnet.generate"]],
    ["std.call_method", ["std.var", "cn"], "preprocess", ["canvas.layer.image", layer], type]];
}

// The control type a preprocessor's image feeds (drawn lines inverted feed a scribble ControlNet).
export function controlTypeOf(preprocessor) {
  return preprocessor === "invert" ? "scribble" : preprocessor;
}

// The statements putting a preprocessed control image on its layer (a blob: replay never re-runs it).
export function preprocessedLayerStatements(layer, sha256, preprocessor) {
  return [build.clear(layer), build.loadImage(layer, sha256, 0, 0), build.update(layer, { controlType: controlTypeOf(preprocessor) })];
}

// A template's export file name, as the server's templates.template_filename makes it: characters file
// systems refuse become "_", leading and trailing dots and spaces go (a name is data, never a path).
export function templateFilename(name) {
  const base = String(name).replace(/[\\/:*?"<>|\x00-\x1f\x7f]+/g, "_").replace(/^[ .]+|[ .]+$/g, "") || "template";
  return `${base}.viwo-template.json`;
}

// Upscale an image file (blob) with the upscale capability's CPU resampling (no model needed).
export function upscaleScript(sha256, factor = 2, method = "lanczos") {
  return ["std.seq",
    ["std.let", "up", ["get_capability", "diffusers.upscale"]],
    ["std.call_method", ["std.var", "up"], "upscaleTraditional", ["image.load", `blob:${sha256}`], { factor, method }]];
}

// A binary frame of the server (design §15): 4-byte big-endian header length, JSON header, bytes.
export function decodeFrame(buffer) {
  const view = new DataView(buffer);
  const n = view.getUint32(0, false);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
  return { header, bytes: new Uint8Array(buffer, 4 + n) };
}

export function encodeFrame(header, bytes) {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(4 + head.length + bytes.length);
  new DataView(out.buffer).setUint32(0, head.length, false);
  out.set(head, 4);
  out.set(bytes, 4 + head.length);
  return out.buffer;
}

export function randomSeed() {
  return Math.floor(Math.random() * 2 ** 32);
}
