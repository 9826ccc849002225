// JSON-RPC 2.0 over the server's WebSocket (/rpc), with binary frames, and reconnecting by itself.
// The socket carries the auth cookie the server set when the page was opened with ?token=.

import { decodeFrame } from "./script.js";

export function clientId() {
  let id = sessionStorage.getItem("viwo.client_id");
  if (!id) {
    id = (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/[^A-Za-z0-9-]/g, "");
    sessionStorage.setItem("viwo.client_id", id);
  }
  return id;
}

export class RpcError extends Error {
  constructor(error) {
    super(error.message || "RPC error");
    this.code = error.code;
    this.data = error.data;
  }
}

export class Rpc {
  // handlers: onState(state), onNotify(method, params), onFrame(header, bytes), onOpen(firstTime)
  constructor(handlers = {}) {
    this.handlers = handlers;
    this.clientId = clientId();
    this.pending = new Map();
    this.nextId = 1;
    this.state = "connecting";
    this.opened = 0;
    this.retry = 0;
    this.closedByUs = false;
    this.connect();
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/rpc?client_id=${encodeURIComponent(this.clientId)}`;
  }

  setState(state) {
    this.state = state;
    this.handlers.onState?.(state);
  }

  connect() {
    this.setState(this.opened ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      this.setState("open");
      this.handlers.onOpen?.(this.opened++ === 0);
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") {
        const { header, bytes } = decodeFrame(ev.data);
        this.handlers.onFrame?.(header, bytes);
        return;
      }
      const msg = JSON.parse(ev.data);
      if (msg.id !== undefined && msg.id !== null && this.pending.has(msg.id)) {
        const { resolve, reject } = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) reject(new RpcError(msg.error));
        else resolve(msg.result);
      } else if (msg.method) {
        this.handlers.onNotify?.(msg.method, msg.params || {});
      }
    };
    ws.onclose = () => {
      for (const { reject } of this.pending.values()) reject(new RpcError({ code: -1, message: "connection lost" }));
      this.pending.clear();
      if (this.closedByUs) return this.setState("closed");
      this.setState("reconnecting");
      const delay = Math.min(5000, 250 * 2 ** this.retry++);
      setTimeout(() => this.connect(), delay);
    };
    ws.onerror = () => {}; // onclose follows
  }

  call(method, params = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RpcError({ code: -1, message: "not connected (reconnecting…)" }));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  close() {
    this.closedByUs = true;
    this.ws?.close();
  }
}

// Upload a file to /blobs (the cookie authenticates): {sha256, url, width, height}.
export async function uploadBlob(file) {
  const res = await fetch("/blobs", { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ? `${body.error}${body.hint ? ` — ${body.hint}` : ""}` : `upload failed (HTTP ${res.status})`);
  return body;
}
