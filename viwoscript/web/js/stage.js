// The canvas stage: one <canvas> per layer (painted only from the server's tiles), a preview canvas for the
// stroke in progress, the generation box, pan and zoom. The server's raster is the truth; the preview is
// drawn with Canvas 2D while the pointer moves and dropped when the stroke's tiles arrive.

const TINTS = { control: "rgba(40, 120, 255, 0.5)", mask: "rgba(255, 40, 40, 0.55)" };

export class Stage {
  constructor(viewport, hooks) {
    this.viewport = viewport;
    this.hooks = hooks; // {tool(), brush() -> {size, color, alpha}, canDraw() -> bool|string, onStroke(points, tool, size), onBox(box), onPick?}
    this.width = 1024;
    this.height = 1024;
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.canvases = new Map();
    this.layerTypes = new Map();
    this.world = document.createElement("div");
    this.world.className = "stage-world";
    this.layersEl = document.createElement("div");
    this.layersEl.className = "stage-layers";
    this.checker = document.createElement("div");
    this.checker.className = "stage-checker";
    this.preview = document.createElement("canvas");
    this.preview.className = "stage-preview";
    this.preview.setAttribute("aria-hidden", "true");
    this.boxEl = document.createElement("div");
    this.boxEl.className = "stage-box";
    this.boxEl.hidden = true;
    this.world.append(this.checker, this.layersEl, this.preview, this.boxEl);
    viewport.append(this.world);
    this.stroke = null;
    this.pan = null;
    this.spaceDown = false;
    this.pendingPreviews = 0;
    this.bind();
    this.setSize(1024, 1024);
  }

  bind() {
    const v = this.viewport;
    v.addEventListener("pointerdown", (e) => this.down(e));
    v.addEventListener("pointermove", (e) => this.move(e));
    v.addEventListener("pointerup", (e) => this.up(e));
    v.addEventListener("pointercancel", () => this.cancel());
    v.addEventListener("wheel", (e) => this.wheel(e), { passive: false });
    v.addEventListener("contextmenu", (e) => e.preventDefault());
    window.addEventListener("keydown", (e) => {
      if (e.code === "Space" && !isTyping(e)) {
        this.spaceDown = true;
        v.classList.add("panning");
        e.preventDefault();
      }
    });
    window.addEventListener("keyup", (e) => {
      if (e.code === "Space") {
        this.spaceDown = false;
        v.classList.remove("panning");
      }
    });
    new ResizeObserver(() => { if (!this.fitted) this.fit(); }).observe(v);
  }

  setSize(w, h) {
    if (w === this.width && h === this.height && this.fitted) return;
    this.width = w;
    this.height = h;
    for (const el of [this.world, this.layersEl, this.checker]) {
      el.style.width = `${w}px`;
      el.style.height = `${h}px`;
    }
    this.preview.width = w;
    this.preview.height = h;
    this.preview.style.width = `${w}px`;
    this.preview.style.height = `${h}px`;
    for (const c of this.canvases.values()) {
      c.width = w;
      c.height = h;
      if (c.dataset.placeholder) paintPlaceholder(c, c.dataset.placeholder);
    }
    this.fitted = false;
    this.fit();
  }

  fit() {
    const r = this.viewport.getBoundingClientRect();
    if (!r.width || !r.height) return;
    this.scale = Math.min(r.width / this.width, r.height / this.height) * 0.94;
    this.tx = (r.width - this.width * this.scale) / 2;
    this.ty = (r.height - this.height * this.scale) / 2;
    this.fitted = true;
    this.apply();
  }

  apply() {
    this.world.style.transform = `translate(${this.tx}px, ${this.ty}px) scale(${this.scale})`;
    this.hooks.onView?.(this.scale);
  }

  zoomBy(factor, cx, cy) {
    const r = this.viewport.getBoundingClientRect();
    const px = cx ?? r.width / 2;
    const py = cy ?? r.height / 2;
    const s = Math.max(0.05, Math.min(32, this.scale * factor));
    this.tx = px - (px - this.tx) * (s / this.scale);
    this.ty = py - (py - this.ty) * (s / this.scale);
    this.scale = s;
    this.fitted = true;
    this.apply();
  }

  // Layers: create, drop and order canvases; visibility and opacity as CSS; tints for control/mask.
  setLayers(layers) {
    const ids = new Set(layers.map((l) => l.id));
    for (const [id, c] of this.canvases) {
      if (!ids.has(id)) {
        c.remove();
        this.canvases.delete(id);
      }
    }
    for (const l of layers) {
      let c = this.canvases.get(l.id);
      if (!c) {
        c = document.createElement("canvas");
        c.width = this.width;
        c.height = this.height;
        c.dataset.layer = l.id;
        c.setAttribute("aria-hidden", "true");
        this.canvases.set(l.id, c);
      }
      this.layerTypes.set(l.id, l.type);
      if ((l.placeholder || "") !== (c.dataset.placeholder || "")) {
        if (l.placeholder) c.dataset.placeholder = l.placeholder;
        else delete c.dataset.placeholder;
        this.resetLayer(l.id);
      }
      c.style.opacity = String(l.opacity);
      c.hidden = !l.visible;
      c.dataset.type = l.type;
      this.layersEl.append(c); // bottom first: append in order
    }
  }

  resetLayer(id) {
    const c = this.canvases.get(id);
    if (!c) return;
    c.getContext("2d").clearRect(0, 0, c.width, c.height);
    if (c.dataset.placeholder) paintPlaceholder(c, c.dataset.placeholder);
  }

  paintTile(h, bytes) {
    let c = this.canvases.get(h.layer);
    if (!c) {
      this.setLayers([...this.canvases.keys()].map((id) => ({ id, type: this.layerTypes.get(id), opacity: 1, visible: true })).concat([{ id: h.layer, type: "raster", opacity: 1, visible: true }]));
      c = this.canvases.get(h.layer);
    }
    const ctx = c.getContext("2d");
    const data = new ImageData(new Uint8ClampedArray(bytes.buffer, bytes.byteOffset, h.w * h.h * 4), h.w, h.h);
    ctx.putImageData(data, h.x, h.y);
    const tint = TINTS[this.layerTypes.get(h.layer)];
    if (tint) {
      ctx.save();
      ctx.globalCompositeOperation = "source-atop";
      ctx.fillStyle = tint;
      ctx.fillRect(h.x, h.y, h.w, h.h);
      ctx.restore();
    }
  }

  // Client pixels of a layer (tests and the PNG download use them).
  layerPixels(id) {
    const c = this.canvases.get(id);
    return c ? c.getContext("2d").getImageData(0, 0, c.width, c.height).data : null;
  }

  // Canvas coordinates of a pointer event (pixel centres at +0.5, as on the server).
  toCanvas(e) {
    const r = this.world.getBoundingClientRect();
    return [(e.clientX - r.left) * (this.width / r.width), (e.clientY - r.top) * (this.height / r.height)];
  }

  // Client (page) coordinates of a canvas point: what a test moves the mouse to.
  toClient(x, y) {
    const r = this.world.getBoundingClientRect();
    return [r.left + (x * r.width) / this.width, r.top + (y * r.height) / this.height];
  }

  down(e) {
    this.viewport.focus({ preventScroll: true }); // keyboard shortcuts go to the canvas after a click
    if (e.button === 1 || e.button === 2 || this.spaceDown || this.hooks.tool() === "pan") {
      this.pan = { x: e.clientX, y: e.clientY, tx: this.tx, ty: this.ty };
      this.viewport.setPointerCapture(e.pointerId);
      e.preventDefault();
      return;
    }
    if (e.button !== 0) return;
    const tool = this.hooks.tool();
    const p = this.toCanvas(e);
    if (tool === "box") {
      this.boxDrag = { x0: p[0], y0: p[1] };
      this.viewport.setPointerCapture(e.pointerId);
      this.showBox(this.boxFrom(p));
      return;
    }
    const why = this.hooks.canDraw();
    if (why !== true) {
      this.hooks.onRefuse?.(why);
      return;
    }
    this.viewport.setPointerCapture(e.pointerId);
    this.stroke = { tool, points: [p], pressures: [e.pressure || 0.5], pen: e.pointerType === "pen", brush: this.hooks.brush() };
    this.drawPreview();
    e.preventDefault();
  }

  move(e) {
    if (this.pan) {
      this.tx = this.pan.tx + e.clientX - this.pan.x;
      this.ty = this.pan.ty + e.clientY - this.pan.y;
      this.fitted = true;
      this.apply();
      return;
    }
    if (this.boxDrag) {
      this.showBox(this.boxFrom(this.toCanvas(e)));
      return;
    }
    if (!this.stroke) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) {
      this.stroke.points.push(this.toCanvas(ev));
      this.stroke.pressures.push(ev.pressure || 0.5);
    }
    this.drawPreview();
  }

  up(e) {
    if (this.pan) {
      this.pan = null;
      return;
    }
    if (this.boxDrag) {
      const box = this.boxFrom(this.toCanvas(e));
      this.boxDrag = null;
      if (box.w >= 8 && box.h >= 8) this.hooks.onBox(box);
      return;
    }
    if (!this.stroke) return;
    const s = this.stroke;
    this.stroke = null;
    let size = s.brush.size;
    if (s.pen) size = Math.max(1, size * (s.pressures.reduce((a, b) => a + b, 0) / s.pressures.length) * 2);
    this.pendingPreviews++;
    this.hooks.onStroke(s.points, s.tool, size);
  }

  cancel() {
    this.stroke = null;
    this.pan = null;
    this.boxDrag = null;
    this.clearPreview();
  }

  // The server answered a stroke: its tiles are painted, the preview can go.
  strokeDone() {
    this.pendingPreviews = Math.max(0, this.pendingPreviews - 1);
    if (!this.pendingPreviews && !this.stroke) this.clearPreview();
  }

  clearPreview() {
    this.preview.getContext("2d").clearRect(0, 0, this.preview.width, this.preview.height);
  }

  drawPreview() {
    const s = this.stroke;
    const ctx = this.preview.getContext("2d");
    if (!this.pendingPreviews) ctx.clearRect(0, 0, this.preview.width, this.preview.height);
    ctx.save();
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = s.brush.size;
    const color = s.tool === "eraser" ? "rgba(128,128,128,0.6)" : hexToRgba(s.brush.color, s.brush.alpha);
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.beginPath();
    const [x0, y0] = s.points[0];
    if (s.points.length === 1) {
      ctx.arc(x0, y0, s.brush.size / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.moveTo(x0, y0);
      for (const [x, y] of s.points.slice(1)) ctx.lineTo(x, y);
      ctx.stroke();
    }
    ctx.restore();
  }

  boxFrom(p) {
    const d = this.boxDrag;
    const snap = (v) => Math.round(v / 8) * 8;
    const x = snap(Math.min(d.x0, p[0]));
    const y = snap(Math.min(d.y0, p[1]));
    return { x, y, w: Math.max(0, snap(Math.max(d.x0, p[0])) - x), h: Math.max(0, snap(Math.max(d.y0, p[1])) - y) };
  }

  showBox(box) {
    if (!box) {
      this.boxEl.hidden = true;
      return;
    }
    Object.assign(this.boxEl.style, { left: `${box.x}px`, top: `${box.y}px`, width: `${box.w}px`, height: `${box.h}px` });
    this.boxEl.hidden = false;
  }

  wheel(e) {
    e.preventDefault();
    const r = this.viewport.getBoundingClientRect();
    this.zoomBy(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }
}

// A placeholder layer (a statement replay does not run: a capability call, an unknown opcode) is shown
// hatched grey with the statement's opcode; display only: its pixels on the server stay empty.
export function paintPlaceholder(c, op) {
  const ctx = c.getContext("2d");
  const { width: w, height: h } = c;
  ctx.save();
  ctx.fillStyle = "rgba(120, 124, 132, 0.45)";
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = "rgba(40, 42, 48, 0.5)";
  ctx.lineWidth = Math.max(2, w / 256);
  const step = Math.max(12, Math.round(w / 32));
  ctx.beginPath();
  for (let x = -h; x < w; x += step) {
    ctx.moveTo(x, h);
    ctx.lineTo(x + h, 0);
  }
  ctx.stroke();
  const size = Math.max(12, Math.round(Math.min(w, h) / 16));
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  const label = String(op).slice(0, 60);
  const tw = ctx.measureText(label).width;
  ctx.fillStyle = "rgba(20, 22, 26, 0.8)";
  ctx.fillRect((w - tw) / 2 - size * 0.6, h / 2 - size, tw + size * 1.2, size * 2);
  ctx.fillStyle = "#fff";
  ctx.fillText(label, w / 2, h / 2);
  ctx.restore();
}

export function hexToRgba(hex, alpha = 1) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
  if (!m) return `rgba(0,0,0,${alpha})`;
  return `rgba(${parseInt(m[1], 16)},${parseInt(m[2], 16)},${parseInt(m[3], 16)},${alpha})`;
}

const TEXT_INPUTS = new Set(["text", "number", "search", "email", "password", "url", "tel", ""]);

// Whether a key event is typing into a field (shortcuts stay out of the way; sliders and colour pickers
// do not count).
export function isTyping(e) {
  const t = e.target;
  if (!t) return false;
  if (t.tagName === "INPUT") return TEXT_INPUTS.has((t.getAttribute("type") || "").toLowerCase());
  return t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable;
}
