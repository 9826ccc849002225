// The page's views (preact + htm, no build step). Modes: Layer Mode here; Blocks Mode plugs into MODES.

import { html, render, useEffect, useRef, useState } from "../vendor/preact-htm-standalone.module.js";
import * as C from "./controller.js";
import { CONTROL_TYPES, generationMode, randomSeed } from "./script.js";
import { Stage } from "./stage.js";
import { useStore } from "./store.js";

const { store } = C;

const CONN_LABEL = { connecting: "Connecting…", open: "Connected", reconnecting: "Reconnecting…", closed: "Disconnected" };

function Header({ s }) {
  return html`
    <header class="app-header">
      <div class="brand" aria-label="viwo">viwo<span>script</span></div>
      <nav class="mode-switch" aria-label="Mode">
        ${Object.entries(MODES).map(([key, m]) => html`
          <button type="button" data-testid=${`mode-${key}`} aria-pressed=${s.mode === key}
                  class=${s.mode === key ? "on" : ""} onClick=${() => store.set({ mode: key })}>${m.label}</button>`)}
      </nav>
      <div class="header-right">
        <button type="button" class="ghost" onClick=${C.downloadPng} title="Download the composite as a PNG carrying the script">Download PNG</button>
        <button type="button" data-testid="templates-toggle" aria-expanded=${s.templatesOpen} aria-controls="templates-drawer"
                onClick=${() => { store.set({ templatesOpen: !s.templatesOpen }); if (!s.templatesOpen) C.refreshTemplates(); }}>Templates</button>
        <span class=${`conn conn-${s.conn}`} role="status" aria-live="polite" title=${`client_id ${s.clientId || ""}`}>
          <span class="dot" aria-hidden="true"></span>${CONN_LABEL[s.conn] || s.conn}
        </span>
      </div>
    </header>`;
}

const TOOLS = [
  { id: "brush", label: "Brush", key: "B", icon: "✎" },
  { id: "eraser", label: "Eraser", key: "E", icon: "⌫" },
  { id: "box", label: "Generation box", key: "M", icon: "⬚" },
  { id: "pan", label: "Pan (or hold Space)", key: "V", icon: "✥" },
];

const ICONS = {
  dice: html`<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true"><rect x="3" y="3" width="18" height="18" rx="4" fill="none" stroke="currentColor" stroke-width="2"/><circle cx="8" cy="8" r="1.6" fill="currentColor"/><circle cx="16" cy="16" r="1.6" fill="currentColor"/><circle cx="12" cy="12" r="1.6" fill="currentColor"/><circle cx="16" cy="8" r="1.6" fill="currentColor"/><circle cx="8" cy="16" r="1.6" fill="currentColor"/></svg>`,
  lock: html`<svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true"><rect x="5" y="11" width="14" height="10" rx="2" fill="currentColor"/><path d="M8 11V8a4 4 0 0 1 8 0v3" fill="none" stroke="currentColor" stroke-width="2"/></svg>`,
  unlock: html`<svg viewBox="0 0 24 24" width="14" height="14" aria-hidden="true"><rect x="5" y="11" width="14" height="10" rx="2" fill="none" stroke="currentColor" stroke-width="2"/><path d="M8 11V8a4 4 0 0 1 7.5-2" fill="none" stroke="currentColor" stroke-width="2"/></svg>`,
  eye: html`<svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true"><path d="M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12z" fill="none" stroke="currentColor" stroke-width="2"/><circle cx="12" cy="12" r="3" fill="currentColor"/></svg>`,
  eyeOff: html`<svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true"><path d="M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12z" fill="none" stroke="currentColor" stroke-width="2" opacity="0.4"/><path d="M4 4l16 16" stroke="currentColor" stroke-width="2"/></svg>`,
};

function Tools({ s }) {
  const b = s.brush;
  const setBrush = (patch) => store.set({ brush: { ...b, ...patch } });
  return html`
    <div class="toolbar panel" role="toolbar" aria-label="Tools">
      <div class="tool-buttons">
        ${TOOLS.map((t) => html`
          <button type="button" data-testid=${t.id === "brush" || t.id === "eraser" ? `tool-${t.id}` : null}
                  class=${`tool ${s.tool === t.id ? "on" : ""}`} aria-pressed=${s.tool === t.id}
                  title=${`${t.label} (${t.key})`} aria-label=${t.label} onClick=${() => store.set({ tool: t.id })}>
            <span aria-hidden="true">${t.icon}</span></button>`)}
      </div>
      <label class="field inline">Size
        <input type="range" min="1" max="300" value=${b.size} data-testid="brush-size" aria-label="Brush size"
               onInput=${(e) => setBrush({ size: Number(e.target.value) })} /><output>${b.size}px</output></label>
      <label class="field inline">Colour
        <input type="color" value=${b.color} data-testid="brush-color" aria-label="Brush colour"
               onInput=${(e) => setBrush({ color: e.target.value })} /></label>
      <label class="field inline">Alpha
        <input type="range" min="0" max="1" step="0.01" value=${b.alpha} aria-label="Brush alpha"
               onInput=${(e) => setBrush({ alpha: Number(e.target.value) })} /><output>${Math.round(b.alpha * 100)}%</output></label>
      <span class="row tight">
        <button type="button" class="icon" onClick=${C.undo} disabled=${!s.canUndo} title="Undo (Ctrl+Z)" aria-label="Undo">↶</button>
        <button type="button" class="icon" onClick=${C.redo} disabled=${!s.canRedo} title="Redo (Ctrl+Shift+Z)" aria-label="Redo">↷</button>
      </span>
      <span class="zoom" title="Zoom: mouse wheel; pan: Space-drag or the pan tool">${Math.round(s.zoom * 100)}%
        <button type="button" class="ghost small" onClick=${() => stageRef.stage?.fit()} aria-label="Fit the canvas to the view">Fit</button></span>
      ${s.box && html`<span class="box-info">Box ${s.box.w}×${s.box.h} at ${s.box.x},${s.box.y}
        <button type="button" class="ghost small" onClick=${() => { store.set({ box: null }); stageRef.stage?.showBox(null); }}>clear</button></span>`}
    </div>`;
}

const stageRef = { stage: null };

function StageView({ s }) {
  const ref = useRef();
  const [over, setOver] = useState(false);
  useEffect(() => {
    const stage = new Stage(ref.current, {
      tool: () => store.get().tool,
      brush: () => store.get().brush,
      canDraw: C.canDraw,
      onRefuse: (why) => C.toast(why),
      onStroke: C.strokeFromStage,
      onBox: (box) => store.set({ box }),
      onView: (zoom) => store.set({ zoom }),
    });
    stageRef.stage = stage;
    const rpc = C.start(stage);
    window.viwo = { stage, store, program: C.program, rpc };
  }, []);
  const drop = (e) => {
    e.preventDefault();
    setOver(false);
    for (const f of e.dataTransfer.files) if (f.type.startsWith("image/")) C.placeFile(f);
  };
  return html`
    <section class=${`stage ${over ? "drop" : ""} tool-${s.tool}`} aria-label="Canvas">
      <div class="stage-viewport" ref=${ref} data-testid="canvas-stage" tabindex="0"
           aria-label=${`Canvas ${s.width}×${s.height}; active layer ${s.active || "none"}`}
           onDragOver=${(e) => { e.preventDefault(); setOver(true); }} onDragLeave=${() => setOver(false)} onDrop=${drop}></div>
      ${!s.layers.length && html`<p class="stage-hint">Add a layer, then paint — or drop an image here.</p>`}
    </section>`;
}

function LayerItem({ l, s, index, count }) {
  const [renaming, setRenaming] = useState(false);
  const active = s.active === l.id;
  const drag = {
    draggable: true,
    onDragStart: (e) => { e.dataTransfer.setData("text/x-viwo-layer", l.id); e.dataTransfer.effectAllowed = "move"; },
    onDragOver: (e) => { if (e.dataTransfer.types.includes("text/x-viwo-layer")) e.preventDefault(); },
    onDrop: (e) => {
      const id = e.dataTransfer.getData("text/x-viwo-layer");
      if (id && id !== l.id) { e.preventDefault(); C.layerOps.moveTo(id, index); }
    },
  };
  return html`
    <li data-testid="layer-item" data-layer=${l.id} class=${`layer ${active ? "active" : ""} type-${l.type}`}
        aria-current=${active ? "true" : null} ...${drag}>
      <button type="button" class="icon" aria-label=${l.visible ? `Hide ${l.name}` : `Show ${l.name}`} aria-pressed=${l.visible}
              onClick=${() => C.layerOps.update(l.id, { visible: !l.visible })}>${l.visible ? ICONS.eye : ICONS.eyeOff}</button>
      ${renaming
        ? html`<input class="rename" aria-label="Layer name" value=${l.name} autofocus
                      onKeyDown=${(e) => { if (e.key === "Enter") { C.layerOps.update(l.id, { name: e.target.value }); setRenaming(false); } if (e.key === "Escape") setRenaming(false); }}
                      onBlur=${() => setRenaming(false)} />`
        : html`<button type="button" class="layer-name" onClick=${() => C.layerOps.select(l.id)}
                       onDblClick=${() => setRenaming(true)} title="Select (double-click to rename)">
                 ${l.name}<small title=${l.placeholder ? `Placeholder: the statement ${l.placeholder} is kept in the script but not run on the canvas` : null}>${l.placeholder ? "placeholder" : l.type}${l.controlType ? ` · ${l.controlType}` : ""}</small></button>`}
      <span class="layer-actions">
        <button type="button" class="icon" aria-label=${l.locked ? `Unlock ${l.name}` : `Lock ${l.name}`} aria-pressed=${l.locked}
                onClick=${() => C.layerOps.update(l.id, { locked: !l.locked })}>${l.locked ? ICONS.lock : ICONS.unlock}</button>
        <button type="button" class="icon" aria-label=${`Move ${l.name} up`} disabled=${index >= count - 1}
                onClick=${() => C.layerOps.moveTo(l.id, index + 1)}>▲</button>
        <button type="button" class="icon" aria-label=${`Move ${l.name} down`} disabled=${index <= 0}
                onClick=${() => C.layerOps.moveTo(l.id, index - 1)}>▼</button>
        <button type="button" class="icon" aria-label=${`Rename ${l.name}`} onClick=${() => setRenaming(true)}>✎</button>
        <button type="button" class="icon danger" aria-label=${`Delete ${l.name}`} onClick=${() => C.layerOps.remove(l.id)}>✕</button>
      </span>
      ${active && html`<div class="layer-detail">
        <label class="field inline">Opacity
          <input type="range" min="0" max="1" step="0.05" value=${l.opacity} aria-label=${`Opacity of ${l.name}`}
                 onChange=${(e) => C.layerOps.update(l.id, { opacity: Number(e.target.value) })} /></label>
        ${l.type === "control" && html`<label class="field inline">Control type
          <select aria-label="Control type" value=${l.controlType || "scribble"}
                  onChange=${(e) => C.layerOps.update(l.id, { controlType: e.target.value })}>
            ${[...CONTROL_TYPES, ...(CONTROL_TYPES.includes(l.controlType) || !l.controlType ? [] : [l.controlType])]
              .map((t) => html`<option value=${t}>${t}</option>`)}</select></label>
          <${ControlSettings} id=${l.id} c=${s.controlSettings[l.id] || {}} />
          <${Preprocess} l=${l} s=${s} />`}
        <span class="row">
          <label class="button ghost small">Put image…<input type="file" accept="image/*" class="visually-hidden"
                 onChange=${(e) => { const f = e.target.files[0]; if (f) C.placeFile(f, { newLayer: false }); e.target.value = ""; }} /></label>
          <button type="button" class="ghost small" onClick=${() => C.layerOps.clear(l.id)} disabled=${l.locked}>Clear</button>
        </span>
      </div>`}
    </li>`;
}

// A control layer's ControlNet settings (used when generating; not canvas state).
function ControlSettings({ id, c }) {
  const num = (k) => (e) => C.setControl(id, { [k]: Number(e.target.value) });
  return html`<div class="grid3">
    <label class="field">Weight <input type="number" min="0" max="2" step="0.05" value=${c.weight ?? 1} onInput=${num("weight")} /></label>
    <label class="field">Start <input type="number" min="0" max="1" step="0.05" value=${c.start ?? 0} onInput=${num("start")} /></label>
    <label class="field">End <input type="number" min="0" max="1" step="0.05" value=${c.end ?? 1} onInput=${num("end")} /></label>
  </div>`;
}

// A control layer's "preprocess": its picture through one of the preprocessors the server offers
// (those it cannot run are disabled, the reason as their tooltip); the control image replaces the layer.
function Preprocess({ l, s }) {
  const types = s.preprocessors;
  const usable = types.filter((t) => t.available);
  const [choice, setChoice] = useState(null);
  const picked = types.find((t) => t.type === choice) || usable[0] || null;
  const busy = Object.values(s.jobs).some((j) => j.kind === "preprocess" && j.layer === l.id && ["queued", "running"].includes(j.status));
  return html`<div class="preprocess">
    <span class="row tight">
      <label class="field inline">Preprocess
        <select class="preprocess-type" aria-label=${`Preprocessor for ${l.name}`} value=${picked?.type || ""}
                onChange=${(e) => setChoice(e.target.value)} disabled=${!types.length}>
          ${types.map((t) => html`<option value=${t.type} disabled=${!t.available}
                                          title=${t.available ? `${t.type}: make a control image of the layer` : t.reason}>
              ${t.type}${t.available ? "" : " (unavailable)"}</option>`)}</select></label>
      <button type="button" class="small" disabled=${!picked?.available || busy || l.locked}
              title=${picked && !picked.available ? picked.reason : "Replace the layer's picture by its control image"}
              onClick=${() => C.preprocess(l.id, picked.type)}>${busy ? "Preprocessing…" : "Preprocess"}</button>
    </span>
    ${!usable.length && types.length ? html`<p class="muted small-note">${types[0].reason}</p>` : null}
    ${s.errors.preprocess && html`<p class="error" role="alert">${s.errors.preprocess}</p>`}
  </div>`;
}

function Layers({ s }) {
  const ordered = s.layers.map((l, i) => [l, i]).reverse();
  return html`
    <section class="panel layers" aria-label="Layers">
      <h2>Layers</h2>
      <div class="row">
        <button type="button" data-testid="layer-add" onClick=${() => C.addLayer("raster")}>+ Layer</button>
        <button type="button" class="ghost" onClick=${() => C.addLayer("control")}>+ Control</button>
        <button type="button" class="ghost" onClick=${() => C.addLayer("mask")}>+ Mask</button>
      </div>
      <ul class="layer-list">
        ${ordered.map(([l, i]) => html`<${LayerItem} key=${l.id} l=${l} s=${s} index=${i} count=${s.layers.length} />`)}
      </ul>
    </section>`;
}

function choicesOf(p) {
  return p && Array.isArray(p.choices) && p.choices.length ? p.choices : null;
}

function Generate({ s }) {
  const g = s.gen;
  const job = s.job ? s.jobs[s.job] : null;
  const running = job && ["queued", "running"].includes(job.status);
  const pm = s.genParams || {};
  const models = choicesOf(pm.model);
  const schedulers = choicesOf(pm.scheduler);
  const num = (k) => (e) => C.setGen({ [k]: e.target.value === "" ? "" : Number(e.target.value) });
  return html`
    <section class="panel generate" aria-label="Generate">
      <h2>Generate ${s.capLabel && /fake/i.test(s.capLabel) ? html`<small class="badge" title=${s.capLabel}>fake</small>` : null}</h2>
      <label class="field">Prompt
        <textarea data-testid="prompt" rows="3" value=${g.prompt} placeholder="a watercolor fox in the snow"
                  aria-invalid=${!!s.errors.prompt} onInput=${(e) => C.setGen({ prompt: e.target.value })}
                  onKeyDown=${(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) C.generate(); }}></textarea></label>
      ${s.errors.prompt && html`<p class="error" role="alert">${s.errors.prompt}</p>`}
      <label class="field">Negative prompt
        <textarea rows="1" value=${g.negative} onInput=${(e) => C.setGen({ negative: e.target.value })}></textarea></label>
      <div class="grid2">
        <label class="field wide">Seed
          <span class="row tight">
            <input type="number" data-testid="seed" min="0" max="4294967295" value=${g.seed} onInput=${num("seed")} />
            <button type="button" class="icon" aria-label="Random seed" title="Random seed" onClick=${() => C.setGen({ seed: randomSeed() })}>${ICONS.dice}</button>
            <label class="check" title="Keep this seed for the next generation"><input type="checkbox" checked=${g.seedLocked}
                   onChange=${(e) => C.setGen({ seedLocked: e.target.checked })} /> lock</label>
          </span></label>
        <label class="field">Steps <input type="number" min=${pm.steps?.min ?? 1} max=${pm.steps?.max ?? 150} value=${g.steps} onInput=${num("steps")} /></label>
        <label class="field">Guidance <input type="number" step="0.5" min="0" max="50" value=${g.guidance} onInput=${num("guidance")} /></label>
        <label class="field">Batch <input type="number" min="1" max="16" value=${g.batch} onInput=${num("batch")} /></label>
        <label class="field">Width <input type="number" step="8" min="64" max="4096" value=${s.box ? s.box.w : g.width} disabled=${!!s.box} onInput=${num("width")} /></label>
        <label class="field">Height <input type="number" step="8" min="64" max="4096" value=${s.box ? s.box.h : g.height} disabled=${!!s.box} onInput=${num("height")} /></label>
      </div>
      ${pm.model && html`<label class="field">Model
        ${models ? html`<select value=${g.model} onChange=${(e) => C.setGen({ model: e.target.value })}>
            <option value="">default</option>${models.map((m) => html`<option value=${m}>${m}</option>`)}</select>`
          : html`<input value=${g.model} placeholder="default" onInput=${(e) => C.setGen({ model: e.target.value })} />`}</label>`}
      ${pm.scheduler && html`<label class="field">Scheduler
        ${schedulers ? html`<select value=${g.scheduler} onChange=${(e) => C.setGen({ scheduler: e.target.value })}>
            <option value="">default</option>${schedulers.map((m) => html`<option value=${m}>${m}</option>`)}</select>`
          : html`<input value=${g.scheduler} placeholder="default" onInput=${(e) => C.setGen({ scheduler: e.target.value })} />`}</label>`}
      <p class="muted mode-line" aria-live="polite">Request: <strong class="gen-mode">${generationMode(s.layers, { fromCanvas: g.fromCanvas, box: s.box, width: s.width, height: s.height }).label}</strong>
        <span title="A generation box past the canvas edge makes an outpaint request; else a visible mask layer makes an inpaint request, visible control layers a ControlNet one; hide a layer to leave it out."> (from the box and the visible layers)</span></p>
      <label class="check from-canvas" title="Image to image: start from the visible raster layers (the job replays the canvas script)">
        <input type="checkbox" checked=${g.fromCanvas} onChange=${(e) => C.setGen({ fromCanvas: e.target.checked })} /> Start from the canvas</label>
      ${g.fromCanvas && html`<label class="field inline">Strength
        <input type="range" min="0.05" max="1" step="0.05" value=${g.strength} aria-label="Strength"
               onInput=${(e) => C.setGen({ strength: Number(e.target.value) })} /><output>${g.strength}</output></label>`}
      <div class="row">
        <button type="button" class="primary" data-testid="generate" onClick=${C.generate} disabled=${s.conn !== "open"}>Generate</button>
        <button type="button" data-testid="cancel" onClick=${C.cancel} disabled=${!running}>Cancel</button>
      </div>
      ${s.errors.generate && html`<p class="error" role="alert">${s.errors.generate}</p>`}
      ${job && html`<div class="job" aria-live="polite">
        <progress data-testid="progress" max=${job.total || 1} value=${job.status === "done" ? job.total || 1 : job.step || 0}
                  aria-label="Generation progress"></progress>
        <span class="job-status">${job.status}${job.status === "running" && job.total ? ` · step ${job.step || 0}/${job.total}` : ""}${job.status === "queued" && job.queue != null ? `, ${ordinal(job.queue)}` : ""}</span>
      </div>`}
    </section>`;
}

// 1 → "1st", 2 → "2nd", 3 → "3rd", 11 → "11th", 22 → "22nd".
export function ordinal(n) {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  return `${n}${teen ? "th" : ["th", "st", "nd", "rd"][n % 10] || "th"}`;
}

function Gallery({ s }) {
  const [saving, setSaving] = useState(null);
  return html`
    <section class="panel gallery" aria-label="Results">
      <div class="row spread"><h2>Results</h2>
        <span class="tabs" role="tablist" aria-label="Which images">
          <button type="button" role="tab" class="small ghost" aria-selected=${s.galleryTab === "session"}
                  onClick=${() => store.set({ galleryTab: "session" })}>This session</button>
          <button type="button" role="tab" class="small ghost" aria-selected=${s.galleryTab === "saved"}
                  onClick=${() => { store.set({ galleryTab: "saved" }); C.refreshSaved(); }}>Saved</button>
        </span></div>
      ${s.galleryTab === "saved" ? html`
        ${!s.saved.length && html`<p class="muted">Nothing saved yet: use Save under a result.</p>`}
        <ul class="thumbs">
          ${s.saved.map((r) => html`<li key=${r.id}>
            <button type="button" class="thumb" onClick=${() => C.savedToLayer(r)} title=${`${r.name}\nClick: onto a new layer`}>
              <img src=${r.url} alt=${`Saved image ${r.name}`} width="96" height="96" /></button>
            <span class="muted saved-name">${r.name}</span></li>`)}
        </ul>` : html`
      ${!s.gallery.length && html`<p class="muted">Generated images appear here. Click one to put it on a new layer.</p>`}
      <ul class="thumbs">
        ${s.gallery.map((im) => html`
          <li key=${im.sha256 + im.job}>
            <button type="button" class="thumb" onClick=${() => C.galleryToLayer(im)}
                    title=${`seed ${im.seed} — ${im.prompt}\nClick: onto a new layer`}>
              <img data-testid="result-image" src=${im.url} alt=${`Result: ${im.prompt} (seed ${im.seed})`} width="96" height="96" /></button>
            <span class="row tight">
              <a class="button ghost small" href=${im.url} download=${`viwo-${im.seed}.png`}>PNG</a>
              <button type="button" class="ghost small" onClick=${() => C.upscale(im)} title="Upscale ×2 (Lanczos)"
                      aria-label=${`Upscale ${im.prompt} ×2`}>×2</button>
              ${saving === im.sha256
                ? html`<input class="small" aria-label="Name to save as" autofocus placeholder="name"
                              onKeyDown=${(e) => { if (e.key === "Enter" && e.target.value.trim()) { C.saveToEntities(im, e.target.value.trim()); setSaving(null); } if (e.key === "Escape") setSaving(null); }} />`
                : html`<button type="button" class="ghost small" onClick=${() => setSaving(im.sha256)}>Save</button>`}
            </span>
          </li>`)}
      </ul>`}
    </section>`;
}

function ScriptPanel({ s }) {
  const [text, setText] = useState(null); // null: showing the live script
  const editing = text !== null && text !== s.scriptText;
  return html`
    <section class="panel script" aria-label="Script">
      <div class="row spread">
        <h2>Script <small class="muted">${s.scriptText.split("\n").length - 1} lines · text form</small></h2>
        <span class="row tight">
          ${editing && html`<button type="button" class="ghost small" onClick=${() => setText(null)}>Revert</button>`}
          <button type="button" class="small" disabled=${!editing}
                  onClick=${async () => { if (await C.replaceScript(text)) setText(null); }}>Apply script</button>
        </span>
      </div>
      <textarea data-testid="script-text" spellcheck="false" aria-label="Script (text form, editable; Ctrl+Enter applies)"
                value=${text ?? s.scriptText} onInput=${(e) => setText(e.target.value)}
                onKeyDown=${async (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && editing) { e.preventDefault(); if (await C.replaceScript(text)) setText(null); } }}></textarea>
      ${s.errors.script && html`<p class="error" role="alert">${s.errors.script}</p>`}
      ${s.droppedScript && html`<div class="notice row" role="status">
        The dropped image carries the script that made it.
        <button type="button" class="small" onClick=${C.loadDroppedScript}>Load its script</button>
        <button type="button" class="ghost small" onClick=${() => store.set({ droppedScript: null })}>Dismiss</button></div>`}
    </section>`;
}

function TemplatesDrawer({ s }) {
  const [naming, setNaming] = useState(false);
  const [desc, setDesc] = useState("");
  if (!s.templatesOpen) return null;
  return html`
    <aside class="drawer panel" id="templates-drawer" aria-label="Templates">
      <div class="row spread"><h2>Templates</h2>
        <button type="button" class="icon" aria-label="Close templates" onClick=${() => store.set({ templatesOpen: false })}>✕</button></div>
      ${naming
        ? html`<div class="save-form">
            <label class="field">Name <input data-testid="template-name" autofocus maxlength="100" placeholder="Mon portrait ✨ v2"
                   onKeyDown=${async (e) => { if (e.key === "Enter" && e.target.value.trim()) { if (await C.saveTemplate(e.target.value.trim(), desc)) { setNaming(false); setDesc(""); } } if (e.key === "Escape") setNaming(false); }} /></label>
            <label class="field">Description <input value=${desc} onInput=${(e) => setDesc(e.target.value)} /></label>
            <p class="muted">Enter saves.</p></div>`
        : html`<div class="row">
            <button type="button" data-testid="template-save" onClick=${() => setNaming(true)}>Save current script…</button>
            <label class="button ghost">Import…<input type="file" accept=".json,application/json" class="visually-hidden"
                   onChange=${(e) => { const f = e.target.files[0]; if (f) C.importTemplate(f); e.target.value = ""; }} /></label></div>`}
      ${s.errors.templates && html`<p class="error" role="alert">${s.errors.templates}</p>`}
      <ul class="template-list">
        ${s.templates.map((t) => html`
          <li data-testid="template-item" data-name=${t.name}>
            <div><strong>${t.name}</strong>${t.description && html`<small>${t.description}</small>`}</div>
            <span class="row tight">
              <button type="button" class="small" onClick=${() => C.loadTemplate(t.name)} aria-label=${`Load ${t.name}`}>Load</button>
              <button type="button" class="ghost small" onClick=${() => C.exportTemplate(t.name)} aria-label=${`Export ${t.name}`}>Export</button>
              <button type="button" class="ghost small danger" onClick=${() => C.deleteTemplate(t.name)} aria-label=${`Delete ${t.name}`}>Delete</button>
            </span>
          </li>`)}
        ${!s.templates.length && html`<li class="muted">No templates yet.</li>`}
      </ul>
    </aside>`;
}

function LayerMode({ s }) {
  return html`
    <div class="layer-mode">
      <div class="side left"><${Generate} s=${s} /></div>
      <div class="center"><${Tools} s=${s} /><${StageView} s=${s} /></div>
      <div class="side right">
        <${Layers} s=${s} />
        <${Gallery} s=${s} />
      </div>
    </div>`;
}

// Blocks Mode (web/blocks/): Blockly, loaded when the mode first opens.
function BlocksMode({ s }) {
  const host = useRef(null);
  const mode = useRef(null);
  useEffect(() => {
    let alive = true;
    Promise.all([import("../blocks/mode.js"), import("../blocks/sjson.js")])
      .then(async ([{ mountBlocks }, sj]) => {
        const m = await mountBlocks(host.current, C.blocksApi({ printJson: sj.print, fromData: sj.fromData }));
        if (!alive) return m.dispose();
        mode.current = m;
        if (window.viwo) window.viwo.blocks = m;
      })
      .catch((e) => C.toast(`Blocks Mode could not start: ${e.message}`));
    return () => {
      alive = false;
      mode.current?.dispose();
      mode.current = null;
      if (window.viwo) window.viwo.blocks = null;
    };
  }, []);
  useEffect(() => {
    mode.current?.refresh();
  }, [s.scriptText]);
  return html`<section class="panel blocks-host" aria-label="Blocks Mode" ref=${host}></section>`;
}

// A mode: a label and a view; the script panel below is shared by every mode.
export const MODES = {
  layer: { label: "Layers", view: LayerMode },
  blocks: { label: "Blocks", view: BlocksMode },
};

function Toasts({ s }) {
  return html`<div class="toasts" role="status" aria-live="polite">
    ${s.toasts.map((t) => html`<div class=${`toast ${t.kind}`} key=${t.id}>${t.message}</div>`)}</div>`;
}

function App() {
  const s = useStore(store);
  return html`
    <${Header} s=${s} />
    <main class=${`mode-${s.mode}`}>
      <div class="mode-view" hidden=${s.mode !== "layer"}><${LayerMode} s=${s} /></div>
      ${s.mode !== "layer" && html`<${MODES[s.mode].view} s=${s} />`}
      <${ScriptPanel} s=${s} />
    </main>
    <${TemplatesDrawer} s=${s} />
    <${Toasts} s=${s} />`;
}

export function mount(el) {
  render(html`<${App} />`, el);
}
