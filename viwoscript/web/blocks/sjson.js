// The JSON form of a script with its number literals kept as written, and the canonical printer of
// `viwo fmt --to json` (viwoscript/syntax.py: to_json). Pure: no DOM, no Blockly.
//
// A tree here is: a JS string, true, false, null, a Num (number literal with its source text), an
// Array of trees, or an Obj (a JSON object literal: ordered [key, tree] entries). Keeping the text of
// a number is what lets `1.0`, `-0.0` and integers past 2^53 survive a trip through the browser.

import { floatRepr } from "../js/sexpr.js";

export const WIDTH = 88;

export class Num {
  constructor(text) {
    this.text = text;
  }
  get value() {
    return Number(this.text);
  }
}

export class Obj {
  constructor(entries) {
    this.entries = entries; // [[key, tree], ...]
  }
}

export class ParseError extends Error {}

const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

export function parse(text) {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n && " \t\n\r".includes(text[i])) i++;
  };
  const fail = (what) => {
    const before = text.slice(0, i);
    const line = before.split("\n").length;
    const col = i - before.lastIndexOf("\n");
    throw new ParseError(`${what} at line ${line}, column ${col}`);
  };
  const value = () => {
    ws();
    if (i >= n) fail("unexpected end of input");
    const c = text[i];
    if (c === "[") {
      i++;
      const items = [];
      ws();
      if (text[i] === "]") {
        i++;
        return items;
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "]") {
          i++;
          return items;
        } else fail("expected ',' or ']'");
      }
    }
    if (c === "{") {
      i++;
      const entries = [];
      ws();
      if (text[i] === "}") {
        i++;
        return new Obj(entries);
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a string key");
        const key = string();
        ws();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        entries.push([key, value()]);
        ws();
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return new Obj(entries);
        } else fail("expected ',' or '}'");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(text);
    if (m) {
      i += m[0].length;
      return new Num(m[0]);
    }
    return fail(`unexpected character ${JSON.stringify(c)}`);
  };
  const string = () => {
    // Find the closing quote, then let JSON.parse do the escapes.
    let j = i + 1;
    while (j < n && text[j] !== '"') {
      if (text[j] === "\\") j++;
      j++;
    }
    if (j >= n) fail("unterminated string");
    const raw = text.slice(i, j + 1);
    i = j + 1;
    try {
      return JSON.parse(raw);
    } catch {
      return fail("bad string escape");
    }
  };
  const out = value();
  ws();
  if (i < n) fail("extra text after the script");
  return out;
}

// Python's repr of a float: the page's one implementation (js/sexpr.js prints the text form with it).
export { floatRepr };

// The canonical text of a number typed by a person: an integer stays exact (any size), anything with
// a point or an exponent is a double printed as Python prints it. Null when it is not a number.
export function normalizeNumber(text) {
  const t = String(text).trim();
  if (/^[+-]?[0-9]+$/.test(t)) return BigInt(t).toString();
  if (!/^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/.test(t)) return null;
  const v = Number(t);
  return Number.isFinite(v) ? floatRepr(v) : null;
}

// JSON string text as Python's json.dumps(ensure_ascii=False) writes it.
export function stringText(s) {
  return JSON.stringify(s);
}

export function atomText(v) {
  if (v === null || v === undefined) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (v instanceof Num) return v.text;
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : floatRepr(v);
  return stringText(v);
}

const isAtom = (t) => !Array.isArray(t) && !(t instanceof Obj);
const len = (s) => {
  // Python counts code points.
  let k = 0;
  for (const _ of s) k++;
  return k;
};

export function flat(t) {
  if (Array.isArray(t)) return `[${t.map(flat).join(", ")}]`;
  if (t instanceof Obj) return `{${t.entries.map(([k, v]) => `${stringText(k)}: ${flat(v)}`).join(", ")}}`;
  return atomText(t);
}

function pretty(t, level, indent) {
  const f = flat(t);
  if (isAtom(t) || len(f) + level * indent <= WIDTH) return f;
  const pad = " ".repeat((level + 1) * indent);
  const end = " ".repeat(level * indent);
  if (Array.isArray(t)) {
    if (t.length && typeof t[0] === "string") {
      const rest = t.slice(1).map((x) => pad + pretty(x, level + 1, indent));
      if (!rest.length) return `[${stringText(t[0])}]`;
      return `[${stringText(t[0])},\n${rest.join(",\n")}\n${end}]`;
    }
    return `[\n${t.map((x) => pad + pretty(x, level + 1, indent)).join(",\n")}\n${end}]`;
  }
  const parts = t.entries.map(([k, v]) => `${pad}${stringText(k)}: ${pretty(v, level + 1, indent)}`);
  return `{\n${parts.join(",\n")}\n${end}}`;
}

// The JSON form exactly as `viwo fmt --to json` prints it (without the final newline).
export function print(t, indent = 2) {
  return pretty(t, 0, indent);
}

// Plain JSON data (numbers as JS numbers: for sending to a server that reads JSON) from a tree.
export function toData(t) {
  if (Array.isArray(t)) return t.map(toData);
  if (t instanceof Obj) return Object.fromEntries(t.entries.map(([k, v]) => [k, toData(v)]));
  if (t instanceof Num) return t.value;
  return t;
}

// A tree from plain JSON data (numbers get JS's text; prefer parse() where the text is known).
export function fromData(d) {
  if (Array.isArray(d)) return d.map(fromData);
  if (d !== null && typeof d === "object") return new Obj(Object.entries(d).map(([k, v]) => [k, fromData(v)]));
  if (typeof d === "number") return new Num(Number.isInteger(d) ? String(d) : floatRepr(d));
  return d;
}

export function equal(a, b) {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, k) => equal(x, b[k]));
  if (a instanceof Obj)
    return (
      b instanceof Obj &&
      a.entries.length === b.entries.length &&
      a.entries.every(([k, v], j) => k === b.entries[j][0] && equal(v, b.entries[j][1]))
    );
  if (a instanceof Num) return b instanceof Num && a.text === b.text;
  return a === b;
}
