// Blocks Mode: a Blockly workspace over the page's one script. Blocks come from the server's metadata
// (get_opcodes, get_capability_metadata): a new opcode or capability plugin is a new block with no UI
// code. Plain DOM (no framework), mounted into an element the page gives.
//
// The page passes an `api`:
//   call(method, params)      JSON-RPC to the server
//   onEvent(fn) -> off()      job.* notifications (method, params)
//   scriptJson()              Promise of the current script as canonical JSON text ("" when empty)
//   setScript(jsonText)       the blocks changed the script (the page updates its text view)
//   toLayers(jsonText)        "Visualize as Layers": replay the script as layers and switch mode
//   imageToLayer(image)       put a result image on a new layer in Layer Mode

import { parse, print, toData } from "./sjson.js";
import { Saver, buildSpecs, treeToState } from "./spec.js";
import { PLUGINS, defineBlocks, loadState, saveState, toolbox } from "./workspace.js";

const MEDIA = new URL("../vendor/blockly/media/", import.meta.url).href;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "testid") e.dataset.testid = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function loadStyle() {
  const href = new URL("./blocks.css", import.meta.url).href;
  if ([...document.styleSheets].some((s) => s.href === href)) return;
  document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href }));
}

function loadBlockly() {
  if (globalThis.Blockly) return Promise.resolve(globalThis.Blockly);
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = new URL("../vendor/blockly/blockly.min.js", import.meta.url).href;
    s.onload = () => resolve(globalThis.Blockly);
    s.onerror = () => reject(new Error("could not load Blockly (vendor/blockly/blockly.min.js)"));
    document.head.append(s);
  });
}

// Blockly's classic block colours on the page's dark background.
function darkTheme(Blockly) {
  return Blockly.registry.hasItem?.(Blockly.registry.Type.THEME, "viwo-dark")
    ? Blockly.registry.getObject(Blockly.registry.Type.THEME, "viwo-dark")
    : Blockly.Theme.defineTheme("viwo-dark", {
      base: Blockly.Themes.Classic,
      componentStyles: {
        workspaceBackgroundColour: "#17181d",
        toolboxBackgroundColour: "#20222a",
        toolboxForegroundColour: "#d8dae0",
        flyoutBackgroundColour: "#262832",
        flyoutForegroundColour: "#d8dae0",
        flyoutOpacity: 0.96,
        scrollbarColour: "#6b6f7a",
        scrollbarOpacity: 0.5,
        insertionMarkerColour: "#ffffff",
        insertionMarkerOpacity: 0.3,
        cursorColour: "#d0d0d0",
      },
    });
}

// The block a diagnostic's node path points at: the deepest block whose path is a prefix of it.
export function blockForPath(paths, path) {
  let best = null;
  let bestLen = -1;
  for (const [id, p] of paths) {
    if (p.length > bestLen && p.length <= path.length && p.every((x, i) => x === path[i])) {
      best = id;
      bestLen = p.length;
    }
  }
  return best;
}

// Whether two scripts (JSON text) hold the same statements, numbers compared by value (the page's
// program keeps JavaScript numbers; the blocks keep the text a person typed).
export function sameScript(a, b) {
  const norm = (text) => {
    if (!text.trim()) return "[]";
    const d = toData(parse(text));
    return JSON.stringify(Array.isArray(d) && d[0] === "std.seq" ? d.slice(1) : [d]);
  };
  try {
    return norm(a) === norm(b);
  } catch {
    return false;
  }
}

export class BlocksMode {
  constructor(root, api) {
    this.root = root;
    this.api = api;
    this.job = null;
    this.lastJson = null;
    this.suppress = 0;
    this.checkTimer = null;
    this.build();
  }

  build() {
    loadStyle();
    this.root.classList.add("blocks-mode");
    this.status = el("span", { class: "blocks-status", role: "status", "aria-live": "polite" });
    this.progress = el("progress", { class: "blocks-progress", max: 1, value: 0, hidden: true, "aria-label": "Run progress" });
    this.runBtn = el("button", { type: "button", testid: "blocks-run", class: "primary", onclick: () => this.run() }, "Run");
    this.cancelBtn = el("button", { type: "button", class: "blocks-cancel", hidden: true, onclick: () => this.cancel() }, "Cancel");
    this.layersBtn = el("button", { type: "button", testid: "visualize-layers", onclick: () => this.visualize() },
      "Visualize as Layers");
    this.area = el("div", { testid: "blocks-workspace", class: "blocks-workspace", role: "application",
      "aria-label": "Blocks workspace" });
    this.help = el("aside", { class: "blocks-help", hidden: true, role: "dialog", "aria-label": "Opcode help" });
    this.result = el("section", { class: "blocks-result", "aria-label": "Run result" });
    this.root.replaceChildren(
      el("div", { class: "blocks-toolbar" }, this.runBtn, this.cancelBtn, this.progress, this.status, this.layersBtn),
      el("div", { class: "blocks-main" }, this.area, this.help,
        el("div", { class: "blocks-side" }, el("h3", {}, "Result"), this.result)),
    );
  }

  async start() {
    this.setStatus("Loading blocks…");
    const [Blockly, opcodes, capabilities] = await Promise.all([
      loadBlockly(),
      this.api.call("get_opcodes", {}),
      this.api.call("get_capability_metadata", {}),
    ]);
    this.opcodes = opcodes;
    this.capabilities = capabilities;
    this.model = buildSpecs(opcodes, capabilities);
    defineBlocks(this.model, { onHelp: (spec) => this.showHelp(spec) });
    const dark = matchMedia?.("(prefers-color-scheme: dark)").matches;
    this.ws = Blockly.inject(this.area, {
      toolbox: toolbox(this.model, opcodes, capabilities),
      media: MEDIA,
      plugins: PLUGINS,
      trashcan: true,
      zoom: { controls: true, wheel: true, startScale: 0.8, maxScale: 2, minScale: 0.3 },
      move: { scrollbars: true, drag: true, wheel: false },
      grid: { spacing: 24, length: 2, colour: dark ? "#333" : "#ddd", snap: false },
      renderer: "thrasos",
      theme: dark ? darkTheme(Blockly) : Blockly.Themes.Classic,
      sounds: false,
    });
    this.ws.addChangeListener((e) => this.onChange(e));
    this.offEvents = this.api.onEvent((method, params) => this.onJobEvent(method, params));
    await this.refresh();
    this.setStatus("");
  }

  // Load the page's current script into the workspace (when the mode opens or the text changed).
  async refresh() {
    const json = await this.api.scriptJson();
    if (this.lastJson !== null && (json === this.lastJson || sameScript(json, this.lastJson))) {
      this.editedUntil = 0;
      return;
    }
    // The page's script lags a blocks edit until the server has replayed it: don't undo the edit.
    if (Date.now() < (this.editedUntil ?? 0)) return;
    this.loadJson(json);
  }

  loadJson(json) {
    const tree = json.trim() ? parse(json) : undefined;
    this.suppress++;
    try {
      loadState(this.ws, treeToState(this.model, tree));
    } finally {
      this.suppress--;
    }
    this.lastJson = json;
    this.scheduleCheck();
  }

  // The workspace's script as canonical JSON text, and which block sits at which node path.
  currentJson() {
    const saver = new Saver(this.model);
    const tree = saver.workspace(saveState(this.ws));
    this.paths = saver.paths;
    return tree === undefined ? "" : print(tree);
  }

  onChange(e) {
    if (this.suppress || e.isUiEvent) return;
    let json;
    try {
      json = this.currentJson();
    } catch (err) {
      this.setStatus(err.message);
      return;
    }
    if (json === this.lastJson) return;
    this.lastJson = json;
    this.editedUntil = Date.now() + 3000;
    this.api.setScript(json);
    this.scheduleCheck();
  }

  scheduleCheck() {
    clearTimeout(this.checkTimer);
    this.checkTimer = setTimeout(() => this.check(), 300);
  }

  // Diagnostics of check_script on the blocks they belong to (by the error's node path).
  async check() {
    const json = this.lastJson ?? this.currentJson();
    if (this.paths === undefined) this.currentJson();
    for (const b of this.ws.getAllBlocks(false)) b.setWarningText(null);
    if (!json) return [];
    let diags;
    try {
      const r = await this.api.call("check_script", { script: json });
      diags = Array.isArray(r) ? r : (r?.diagnostics ?? []);
    } catch {
      return [];
    }
    this.currentJson();
    const marked = [];
    for (const d of diags) {
      const id = d.path ? blockForPath(this.paths, d.path) : null;
      const block = id ? this.ws.getBlockById(id) : null;
      if (block) {
        block.setWarningText(`${d.kind ?? d.type ?? d.severity ?? "error"}: ${d.message}${d.hint ? `\n${d.hint}` : ""}`);
        marked.push({ id, ...d });
      }
    }
    this.diagnostics = marked;
    this.root.dataset.diagnostics = String(marked.length);
    return marked;
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  async run() {
    const json = this.currentJson();
    if (!json) {
      this.setStatus("Nothing to run: drag blocks from the toolbox first.");
      return;
    }
    this.result.replaceChildren();
    this.progress.hidden = false;
    this.progress.removeAttribute("value");
    this.cancelBtn.hidden = false;
    this.runBtn.disabled = true;
    this.setStatus("Queued…");
    try {
      const { job } = await this.api.call("submit_script", { script: json });
      this.job = job;
    } catch (e) {
      this.finish();
      this.setStatus(`Could not run: ${e.message}`);
    }
  }

  async cancel() {
    if (!this.job) return;
    try {
      await this.api.call("cancel_job", { job: this.job });
    } catch (e) {
      this.setStatus(`Could not cancel: ${e.message}`);
    }
  }

  finish() {
    this.progress.hidden = true;
    this.cancelBtn.hidden = true;
    this.runBtn.disabled = false;
  }

  async onJobEvent(method, p) {
    if (!this.job || p.job !== this.job) return;
    if (method === "job.progress") {
      this.progress.max = p.total || 1;
      this.progress.value = p.step ?? 0;
      this.setStatus(`${p.task ?? "Running"}: step ${p.step}/${p.total}`);
    } else if (method === "job.log") {
      this.result.append(el("div", { class: `log log-${p.level ?? "info"}` }, p.message));
    } else if (method === "job.status") {
      if (p.status === "running") this.setStatus("Running…");
      if (["done", "error", "cancelled", "interrupted"].includes(p.status)) {
        const record = await this.api.call("get_job", { job: this.job }).catch(() => null);
        this.job = null;
        this.finish();
        this.showResult(record ?? p);
      }
    }
  }

  showResult(r) {
    this.setStatus(r.status === "done" ? "Done." : r.status === "error" ? "The script failed." : `Job ${r.status}.`);
    const parts = [];
    if (r.error) {
      const e = r.error;
      parts.push(el("pre", { class: "blocks-error" }, `${e.type ?? "Error"}: ${e.message}${e.line ? ` (line ${e.line}:${e.col})` : ""}${e.hint ? `\n${e.hint}` : ""}`));
      if (e.path && this.paths) {
        const id = blockForPath(this.paths, e.path);
        this.ws.getBlockById(id ?? "")?.setWarningText(`${e.type}: ${e.message}`);
      }
    }
    if (r.status === "done" && "result" in r) {
      parts.push(el("pre", { class: "blocks-value", "aria-label": "Value" }, JSON.stringify(r.result, null, 2)));
    }
    for (const img of r.images ?? []) {
      const fig = el("figure", { class: "blocks-image" },
        el("img", { testid: "result-image", src: img.url, alt: `result ${img.width}×${img.height}`, width: Math.min(256, img.width) }),
        el("button", { type: "button", onclick: () => this.api.imageToLayer(img) }, "To a layer"));
      parts.push(fig);
    }
    this.result.append(...parts);
  }

  async visualize() {
    const json = this.currentJson();
    await this.api.toLayers(json);
  }

  showHelp(spec) {
    const params = (spec.args ?? []).map((a) =>
      el("li", {}, el("code", {}, a.name), ` (${a.type}${a.optional ? ", optional" : ""}${a.variadic ? ", repeats" : ""})${a.description ? `: ${a.description}` : ""}`));
    this.help.replaceChildren(
      el("h3", {}, spec.opcode === "std.call_method" && spec.method ? spec.label : spec.opcode),
      el("p", {}, spec.description || ""),
      params.length ? el("ul", {}, ...params) : null,
      el("button", { type: "button", onclick: () => (this.help.hidden = true) }, "Close"),
    );
    this.help.hidden = false;
  }

  resize() {
    if (this.ws) globalThis.Blockly.svgResize(this.ws);
  }

  dispose() {
    this.offEvents?.();
    clearTimeout(this.checkTimer);
    this.ws?.dispose();
  }
}

export async function mountBlocks(root, api) {
  const mode = new BlocksMode(root, api);
  await mode.start();
  return mode;
}
