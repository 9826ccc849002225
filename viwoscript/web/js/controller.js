// What the page does: connects the server (rpc.js), the stage (stage.js), the program (script.js) and the
// page's state (store.js). Views call these functions; nothing here renders.

import { Rpc, uploadBlob } from "./rpc.js";
import {
  Program, addLayerStatements, build, colorWithAlpha, generateScript, generatedLayerStatements, randomSeed,
  generationMode, outpaintedStatements, preprocessScript, preprocessedLayerStatements, statementsOf, templateFilename, upscaleScript,
} from "./script.js";
import { slotsFromOpcodes, toText } from "./sexpr.js";
import { isTyping } from "./stage.js";
import { createStore } from "./store.js";

export const store = createStore({
  conn: "connecting",
  mode: "layer",
  session: null,
  layers: [],
  active: null,
  width: 1024,
  height: 1024,
  canUndo: false,
  canRedo: false,
  scriptText: "",
  tool: "brush",
  brush: { size: 24, color: "#e8553e", alpha: 1 },
  gen: { prompt: "", negative: "", seed: 42, seedLocked: false, steps: 20, guidance: 7.5, width: 512, height: 512,
         model: "", scheduler: "", batch: 1, fromCanvas: false, strength: 0.6 },
  genParams: {},
  box: null,
  job: null,
  jobs: {},
  gallery: [],
  saved: [],
  controlSettings: {},
  preprocessors: [],
  galleryTab: "session",
  templatesOpen: false,
  templates: [],
  errors: {},
  toasts: [],
  zoom: 1,
});

export const program = new Program();
let slots = undefined;
let stage = null;
let rpc = null;
// Calls that change the canvas run one after another, so the program mirrors the server's order.
let chain = Promise.resolve();

function serial(fn) {
  const p = chain.then(fn, fn);
  chain = p.catch(() => {});
  return p;
}

export function toast(message, kind = "error") {
  const id = Math.random();
  store.set((s) => ({ toasts: [...s.toasts, { id, message, kind }] }));
  setTimeout(() => store.set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) })), kind === "error" ? 8000 : 4000);
}

function setError(field, message) {
  store.set((s) => ({ errors: { ...s.errors, [field]: message } }));
}

function refreshScript() {
  store.set({ scriptText: toText(program.script(), slots) });
}

function takeUpdate(u) {
  store.set({
    layers: u.layers, active: u.active, width: u.width, height: u.height,
    canUndo: u.can_undo, canRedo: u.can_redo,
  });
  stage?.setSize(u.width, u.height);
  stage?.setLayers(u.layers);
}

export function start(stageInstance) {
  stage = stageInstance;
  rpc = new Rpc({
    onState: (conn) => store.set({ conn }),
    onOpen: (first) => onOpen(first),
    onNotify: onNotify,
    onFrame: (header, bytes) => {
      if (header.kind === "tile" && header.session === store.get().session) stage.paintTile(header, bytes);
    },
  });
  store.set({ clientId: rpc.clientId });
  window.addEventListener("keydown", onKey);
  return rpc;
}

async function onOpen(first) {
  try {
    await openSession();
  } catch (e) {
    toast(`Could not open the canvas: ${e.message}`);
  }
  if (first) {
    loadMetadata();
    loadPreprocessors();
    refreshTemplates();
  }
  resumeJobs();
}

async function openSession() {
  const known = sessionStorage.getItem("viwo.session");
  const params = {};
  if (known) params.session = known;
  // After a server restart the session is gone: the page still holds the script and sends it back.
  if (program.statements.length) Object.assign(params, { script: program.script(), width: store.get().width, height: store.get().height });
  const r = await serial(() => rpc.call("canvas_open", params));
  sessionStorage.setItem("viwo.session", r.session);
  store.set({ session: r.session });
  program.replace(statementsOf(r.script));
  takeUpdate(r);
  refreshScript();
}

function onNotify(method, p) {
  if (method === "canvas.update") {
    if (p.session !== store.get().session) return;
    takeUpdate(p);
    for (const id of p.reset || []) stage.resetLayer(id);
    return;
  }
  if (method.startsWith("job.")) {
    if (!blocksJobs.has(p.job)) onJobEvent(method, p);
    for (const fn of jobListeners) fn(method, p);
  }
}

// --- Blocks Mode (web/blocks/mode.js) --------------------------------------------------------------

const jobListeners = new Set();
const blocksJobs = new Set(); // jobs Blocks Mode runs: Layer Mode's job handling leaves them alone
let blocksTimer = null;

// The script as Blocks Mode loads it: canonical JSON text of the statements ("" when there are none).
function scriptJson(printJson, fromData) {
  const st = program.statements;
  if (!st.length) return "";
  return printJson(fromData(st.length === 1 ? st[0] : ["std.seq", ...st]));
}

// Blocks changed the script: replay it as layers (debounced) and show the server's text form of it.
function blocksSetScript(json) {
  clearTimeout(blocksTimer);
  blocksTimer = setTimeout(async () => {
    if (await replaceScript(json || '["std.seq"]')) {
      const r = await rpc.call("canvas_script", { session: store.get().session }).catch(() => null);
      if (r?.text !== undefined) store.set({ scriptText: r.text });
    }
  }, 400);
}

export function blocksApi({ printJson, fromData }) {
  return {
    call: async (method, params) => {
      const r = await rpc.call(method, params);
      if (method === "submit_script" && r?.job) blocksJobs.add(r.job);
      return r;
    },
    onEvent: (fn) => {
      jobListeners.add(fn);
      return () => jobListeners.delete(fn);
    },
    scriptJson: async () => scriptJson(printJson, fromData),
    setScript: blocksSetScript,
    toLayers: async (json) => {
      clearTimeout(blocksTimer);
      if (await replaceScript(json || '["std.seq"]')) store.set({ mode: "layer" });
    },
    imageToLayer: async (img) => {
      await galleryToLayer(img);
      toast("The image is on a new layer in Layer Mode.", "info");
    },
  };
}

async function loadMetadata() {
  try {
    const [caps, ops] = await Promise.all([rpc.call("get_capability_metadata"), rpc.call("get_opcodes")]);
    slots = slotsFromOpcodes(ops);
    const gen = (caps || []).find((c) => c.type === "diffusers.generate");
    const t2i = gen?.methods?.find((m) => m.name === "textToImage");
    const params = {};
    for (const p of t2i?.parameters || []) params[p.name] = p;
    store.set({ genParams: params, capLabel: gen?.label || null });
    refreshScript();
  } catch (e) {
    toast(`Could not load the capability metadata: ${e.message}`);
  }
}

// What a control layer's "preprocess" can do on this server: [{type, available, reason, weights}].
async function loadPreprocessors() {
  try {
    const r = await rpc.call("canvas_preprocessors", {});
    store.set({ preprocessors: r.types || [] });
  } catch (e) {
    toast(`Could not ask which preprocessors the server has: ${e.message}`);
  }
}

// --- canvas actions -------------------------------------------------------------------------------

// Statements sent but not answered yet: new layer ids avoid theirs too (two quick "+ Layer" clicks).
const inFlight = new Set();

function idSpace() {
  return [...program.statements, ...inFlight];
}

export function apply(statements, { fromStroke = false } = {}) {
  for (const st of statements) inFlight.add(st);
  const done = () => { for (const st of statements) inFlight.delete(st); };
  return serial(async () => {
    const session = store.get().session;
    try {
      const u = await rpc.call("canvas_apply", { session, statements });
      program.apply(statements);
      takeUpdate(u);
      refreshScript();
      return u;
    } catch (e) {
      toast(e.message);
      throw e;
    } finally {
      done();
      if (fromStroke) stage.strokeDone();
    }
  });
}

export function undo() {
  return serial(async () => {
    const u = await rpc.call("canvas_undo", { session: store.get().session, steps: 1 });
    if (u.version < program.version) program.undo(program.version - u.version);
    takeUpdate(u);
    refreshScript();
  }).catch((e) => toast(e.message));
}

export function redo() {
  return serial(async () => {
    const u = await rpc.call("canvas_redo", { session: store.get().session, steps: 1 });
    if (u.version > program.version) program.redo(u.version - program.version);
    takeUpdate(u);
    refreshScript();
  }).catch((e) => toast(e.message));
}

export function replaceScript(text) {
  return serial(async () => {
    try {
      const u = await rpc.call("canvas_replace", { session: store.get().session, script: text });
      program.replace(statementsOf(u.script));
      takeUpdate(u);
      refreshScript();
      setError("script", null);
      return true;
    } catch (e) {
      setError("script", e.data?.message || e.message);
      return false;
    }
  });
}

export function addLayer(type, opts = {}) {
  const { statements } = addLayerStatements(type, idSpace(), opts);
  return apply(statements).catch(() => {});
}

export function strokeFromStage(points, tool, size) {
  const s = store.get();
  const layer = s.active;
  const color = colorWithAlpha(s.brush.color, s.brush.alpha);
  apply([build.stroke(layer, points, color, size, tool)], { fromStroke: true }).catch(() => {});
}

export function canDraw() {
  const s = store.get();
  const layer = s.layers.find((l) => l.id === s.active);
  if (!s.session || s.conn !== "open") return "Not connected: strokes wait for the server.";
  if (!layer) return "Add a layer first (Layers → Add layer).";
  if (layer.locked) return `Layer “${layer.name}” is locked: unlock it to paint.`;
  if (!layer.visible) return `Layer “${layer.name}” is hidden: show it to paint.`;
  return true;
}

export const layerOps = {
  select: (id) => id !== store.get().active && apply([build.setActive(id)]).catch(() => {}),
  update: (id, props) => apply([build.update(id, props)]).catch(() => {}),
  remove: (id) => apply([build.remove(id)]).catch(() => {}),
  clear: (id) => apply([build.clear(id)]).catch(() => {}),
  moveTo: (id, index) => apply([build.update(id, { index })]).catch(() => {}),
};

export async function placeFile(file, { newLayer = true } = {}) {
  try {
    const blob = await uploadBlob(file);
    const s = store.get();
    const x = s.box ? s.box.x : 0;
    const y = s.box ? s.box.y : 0;
    let statements;
    if (newLayer || !s.active) {
      const a = addLayerStatements("raster", idSpace(), { name: file.name || "image" });
      statements = [...a.statements, build.loadImage(a.id, blob.sha256, x, y)];
    } else {
      statements = [build.loadImage(s.active, blob.sha256, x, y)];
    }
    await apply(statements);
    readImageInfo(blob.sha256);
  } catch (e) {
    toast(`Could not place ${file.name || "the image"}: ${e.message}`);
  }
}

// Settings embedded in a dropped image (viwo, A1111, ComfyUI): prompt, seed, ... into the prompt panel.
async function readImageInfo(sha256) {
  try {
    const info = await rpc.call("canvas_image_info", { sha256 });
    const p = info?.parameters || {};
    const gen = { ...store.get().gen };
    if (p.prompt) gen.prompt = p.prompt;
    if (p.negative_prompt) gen.negative = p.negative_prompt;
    if (Number.isInteger(p.seed)) gen.seed = p.seed;
    if (Number.isInteger(p.steps)) gen.steps = p.steps;
    if (typeof p.guidance_scale === "number") gen.guidance = p.guidance_scale;
    store.set({ gen, droppedScript: info.script ? { script: info.script, source: info.source } : null });
    if (p.prompt) toast(`Loaded the settings of the dropped image (${info.source || "metadata"}).`, "info");
  } catch {
    // no metadata: nothing to load
  }
}

// --- generation -----------------------------------------------------------------------------------

export function setControl(layer, patch) {
  store.set((s) => ({ controlSettings: { ...s.controlSettings, [layer]: { ...(s.controlSettings[layer] || {}), ...patch } } }));
}

export function setGen(patch) {
  store.set((s) => ({ gen: { ...s.gen, ...patch }, errors: { ...s.errors, generate: null } }));
}

export async function generate() {
  const s = store.get();
  const gen = { ...s.gen };
  if (!gen.prompt.trim()) {
    setError("prompt", "Write a prompt first.");
    return;
  }
  setError("prompt", null);
  if (!gen.seedLocked) gen.seed = randomSeed();
  store.set({ gen });
  const size = s.box ? { width: s.box.w, height: s.box.h } : { width: gen.width, height: gen.height };
  const mode = generationMode(s.layers, { fromCanvas: gen.fromCanvas, controlSettings: s.controlSettings,
                                          box: s.box, width: s.width, height: s.height });
  const fromCanvas = ["img2img", "inpaint", "outpaint"].includes(mode.kind); // results cover the whole canvas
  const script = generateScript({ ...gen, ...size, ...mode, strength: mode.kind === "img2img" ? gen.strength : undefined,
                                  canvas: program.statements });
  try {
    const rec = await rpc.call("submit_script", { script });
    const job = { id: rec.job, status: rec.status, step: 0, total: gen.steps, prompt: gen.prompt, seed: gen.seed,
                  kind: mode.kind === "outpaint" ? "outpaint" : undefined,
                  place: s.box && !fromCanvas ? { x: s.box.x, y: s.box.y } : { x: 0, y: 0 }, queue: rec.queue_position ?? null };
    store.set((st) => ({ job: rec.job, jobs: { ...st.jobs, [rec.job]: job } }));
    rememberJob(job);
  } catch (e) {
    setError("generate", e.message);
  }
}

export async function cancel() {
  const id = store.get().job;
  if (!id) return;
  try {
    await rpc.call("cancel_job", { job: id });
  } catch (e) {
    setError("generate", e.message);
  }
}

// A control layer's picture through a preprocessor, as a job; the control image replaces the layer's
// pixels (recorded as load_image of its blob) when the job is done.
export async function preprocess(layer, type) {
  const l = store.get().layers.find((x) => x.id === layer);
  if (l?.locked) {
    setError("preprocess", `Layer “${l.name}” is locked: unlock it to preprocess.`);
    return;
  }
  setError("preprocess", null);
  try {
    const rec = await rpc.call("submit_script", { script: preprocessScript(program.statements, layer, type) });
    const job = { id: rec.job, status: rec.status, step: 0, total: 1, kind: "preprocess", layer, preprocessor: type,
                  prompt: `${type} of ${l?.name || layer}` };
    store.set((st) => ({ jobs: { ...st.jobs, [rec.job]: job } }));
    rememberJob(job);
  } catch (e) {
    setError("preprocess", e.message);
  }
}

function rememberJob(job) {
  const all = JSON.parse(sessionStorage.getItem("viwo.jobs") || "{}");
  all[job.id] = { prompt: job.prompt, seed: job.seed, place: job.place, kind: job.kind, layer: job.layer,
                  preprocessor: job.preprocessor };
  sessionStorage.setItem("viwo.jobs", JSON.stringify(all));
}

function patchJob(id, patch) {
  store.set((s) => {
    const job = s.jobs[id] || { id, ...(JSON.parse(sessionStorage.getItem("viwo.jobs") || "{}")[id] || {}) };
    return { jobs: { ...s.jobs, [id]: { ...job, ...patch } } };
  });
}

function onJobEvent(method, p) {
  if (method === "job.progress") patchJob(p.job, { step: p.step, total: p.total, task: p.task, status: "running" });
  else if (method === "job.queue") patchJob(p.job, { queue: p.queue_position ?? null });
  else if (method === "job.status") {
    patchJob(p.job, p.queue_position != null ? { status: p.status, queue: p.queue_position } : { status: p.status });
    if (["done", "error", "cancelled", "interrupted"].includes(p.status)) finishJob(p.job);
  }
}

const finished = new Set();

async function finishJob(id) {
  if (finished.has(id)) return;
  finished.add(id);
  let rec;
  try {
    rec = await rpc.call("get_job", { job: id });
  } catch (e) {
    toast(e.message);
    return;
  }
  const job = { ...(store.get().jobs[id] || {}), status: rec.status };
  patchJob(id, { status: rec.status, error: rec.error || null });
  if (rec.status === "error") {
    setError(job.kind === "preprocess" ? "preprocess" : "generate",
      rec.error ? `${rec.error.message}${rec.error.hint ? ` — ${rec.error.hint}` : ""}` : "the job failed");
    return;
  }
  if (rec.status !== "done") return;
  const images = rec.images || [];
  if (job.kind === "preprocess") {
    if (images.length) await apply(preprocessedLayerStatements(job.layer, images[0].sha256, job.preprocessor)).catch(() => {});
    return;
  }
  const seed = job.kind === "upscale" ? job.seed : rec.result?.seed ?? job.seed;
  store.set((s) => ({
    gallery: [...images.map((im, i) => ({ ...im, seed: Number.isInteger(seed) ? seed + i : seed, prompt: job.prompt, job: id })), ...s.gallery],
  }));
  if (images.length && job.kind === "outpaint") {
    await apply(outpaintedStatements(images[0].sha256, rec.result?.extended, idSpace())).catch(() => {});
    store.set({ box: null });
    stage?.showBox(null);
  } else if (images.length && job.kind !== "upscale") {
    const place = job.place || { x: 0, y: 0 };
    const g = generatedLayerStatements(images[0].sha256, idSpace(), place);
    await apply(g.statements).catch(() => {});
  }
}

async function resumeJobs() {
  try {
    const list = await rpc.call("list_jobs", {});
    for (const rec of list.jobs || list || []) {
      const known = JSON.parse(sessionStorage.getItem("viwo.jobs") || "{}");
      if (!known[rec.job]) continue;
      patchJob(rec.job, { status: rec.status });
      if (rec.status === "queued") {
        const full = await rpc.call("get_job", { job: rec.job }).catch(() => null);
        if (full?.queue_position != null) patchJob(rec.job, { queue: full.queue_position });
      }
      if (["queued", "running"].includes(rec.status)) store.set({ job: rec.job });
      else finishJob(rec.job);
    }
  } catch {
    // list_jobs is optional for the canvas
  }
}

// A dropped viwo image carries the script that made it: the script panel offers to load it.
export async function loadDroppedScript() {
  const d = store.get().droppedScript;
  if (!d) return;
  const ok = await replaceScript(d.script);
  if (ok) store.set({ droppedScript: null });
}

// Upscale a result (×2, CPU resampling): a job whose image joins the results.
export async function upscale(item, factor = 2) {
  try {
    const rec = await rpc.call("submit_script", { script: upscaleScript(item.sha256, factor) });
    const job = { id: rec.job, status: rec.status, step: 0, total: 1, kind: "upscale",
                  prompt: `${item.prompt} (upscaled ×${factor})`, seed: item.seed };
    store.set((st) => ({ job: rec.job, jobs: { ...st.jobs, [rec.job]: job } }));
    rememberJob(job);
  } catch (e) {
    setError("generate", e.message);
  }
}

export function galleryToLayer(item) {
  const g = generatedLayerStatements(item.sha256, idSpace(), { name: "generated" });
  return apply(g.statements).catch(() => {});
}

export async function saveToEntities(item, name) {
  try {
    await rpc.call("save_image", { name, image: item.sha256, metadata: { prompt: item.prompt, seed: item.seed } });
    toast(`Saved “${name}”.`, "info");
    refreshSaved();
  } catch (e) {
    toast(`Could not save: ${e.message}`);
  }
}

// The entity browser: images saved in this user's store.
export async function refreshSaved() {
  try {
    const list = await rpc.call("list_images", { limit: 200 });
    store.set({ saved: list.filter((r) => r.url).reverse() });
  } catch (e) {
    toast(`Could not list saved images: ${e.message}`);
  }
}

export function savedToLayer(rec) {
  const a = addLayerStatements("raster", idSpace(), { name: rec.name });
  return apply([...a.statements, build.loadImage(a.id, rec.sha256, 0, 0)]).catch(() => {});
}

// --- templates ------------------------------------------------------------------------------------

export async function refreshTemplates() {
  try {
    const r = await rpc.call("list_templates", {});
    store.set({ templates: Array.isArray(r) ? r : r.templates || [] });
  } catch (e) {
    setError("templates", e.message);
  }
}

export async function saveTemplate(name, description = "") {
  try {
    await rpc.call("save_template", { template: { name, description, script: program.script() } });
    setError("templates", null);
    await refreshTemplates();
    toast(`Template “${name}” saved.`, "info");
    return true;
  } catch (e) {
    setError("templates", e.data?.hint ? `${e.message} — ${e.data.hint}` : e.message);
    return false;
  }
}

export async function loadTemplate(name) {
  try {
    const t = await rpc.call("get_template", { name });
    const ok = await replaceScript(t.script);
    if (ok) toast(`Template “${name}” loaded.`, "info");
  } catch (e) {
    setError("templates", e.message);
  }
}

export async function deleteTemplate(name) {
  try {
    await rpc.call("delete_template", { name });
    await refreshTemplates();
  } catch (e) {
    setError("templates", e.message);
  }
}

export async function exportTemplate(name) {
  try {
    const t = await rpc.call("get_template", { name });
    download(templateFilename(name),
      new Blob([JSON.stringify(t, null, 2)], { type: "application/json" }));
  } catch (e) {
    setError("templates", e.message);
  }
}

export async function importTemplate(file) {
  try {
    const doc = JSON.parse(await file.text());
    if (!doc || typeof doc.name !== "string" || doc.script === undefined) throw new Error("not a .viwo-template.json file");
    await rpc.call("save_template", { template: doc });
    await refreshTemplates();
    toast(`Template “${doc.name}” imported.`, "info");
  } catch (e) {
    setError("templates", `Import failed: ${e.message}`);
  }
}

export async function downloadPng() {
  try {
    const r = await rpc.call("canvas_export", { session: store.get().session });
    const res = await fetch(r.url);
    download("canvas.png", await res.blob());
  } catch (e) {
    toast(`Could not export: ${e.message}`);
  }
}

function download(name, blob) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// --- keyboard -------------------------------------------------------------------------------------

function onKey(e) {
  if (isTyping(e)) return;
  const s = store.get();
  if (s.mode !== "layer") return;
  const mod = e.ctrlKey || e.metaKey;
  if (mod && e.key.toLowerCase() === "z") {
    e.preventDefault();
    if (e.shiftKey) redo();
    else undo();
  } else if (mod && e.key.toLowerCase() === "y") {
    e.preventDefault();
    redo();
  } else if (!mod && !e.altKey) {
    const k = e.key.toLowerCase();
    if (k === "b") store.set({ tool: "brush" });
    else if (k === "e") store.set({ tool: "eraser" });
    else if (k === "v" || k === "h") store.set({ tool: "pan" });
    else if (k === "m") store.set({ tool: "box" });
    else if (e.key === "[") store.set({ brush: { ...s.brush, size: Math.max(1, Math.round(s.brush.size / 1.2)) } });
    else if (e.key === "]") store.set({ brush: { ...s.brush, size: Math.min(500, Math.round(s.brush.size * 1.2) + 1) } });
  }
}
