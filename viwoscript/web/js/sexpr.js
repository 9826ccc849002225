// The text form of a JSON-form script, exactly as `viwo fmt --to text` prints it (viwoscript/syntax.py:
// to_text). Pure: no DOM. Tested against fixtures the Python printer generates (tests/web/).

export const WIDTH = 88;

// Opcode argument positions that are names, not code (std.let's bound name, lambda parameters, ...).
// The page may replace this with the slots of get_opcodes.
export const DEFAULT_SLOTS = {
  "std.let": { 0: "name" },
  "std.var": { 0: "name" },
  "std.set": { 0: "name" },
  "std.for": { 0: "name" },
  "std.try": { 1: "name" },
  "std.lambda": { 0: "names" },
};

const SYMBOL_RE = /^(?!-?[0-9])[^\s()[\]{}",;:]+$/u;
const KEYWORDS = new Set(["true", "false", "null"]);

export function isSymbol(name) {
  return SYMBOL_RE.test(name) && !KEYWORDS.has(name);
}

// Python's repr of a float from JS's shortest round-trip digits.
export function floatRepr(v) {
  if (!Number.isFinite(v)) throw new Error(`${v} has no literal form`);
  if (Object.is(v, -0)) return "-0.0";
  const [mant, expText] = v.toExponential().split("e");
  const exp = Number(expText);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  let out;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, "0");
      const frac = digits.slice(exp + 1) || "0";
      out = `${intPart}.${frac}`;
    } else {
      out = `0.${"0".repeat(-exp - 1)}${digits}`;
    }
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp).toString().padStart(2, "0");
    out = `${m}e${exp < 0 ? "-" : "+"}${e}`;
  }
  return neg ? `-${out}` : out;
}

// A number as Python prints the value it gets from this number's JSON text: JSON.stringify writes
// whole numbers below 1e21 without a point (Python reads an int), anything else is a Python float.
export function numberText(v) {
  if (Number.isInteger(v) && Math.abs(v) < 1e21) return BigInt(v).toString();
  return floatRepr(v);
}

export function atomText(v) {
  if (v === null || v === undefined) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (typeof v === "number") return numberText(v);
  return JSON.stringify(v);
}

function isArray(n) {
  return Array.isArray(n);
}

function isObject(n) {
  return n !== null && typeof n === "object" && !Array.isArray(n);
}

function headOf(n) {
  return isArray(n) && n.length && typeof n[0] === "string" ? n[0] : null;
}

export function jsonFlat(n) {
  if (isArray(n)) return "[" + n.map(jsonFlat).join(", ") + "]";
  if (isObject(n)) return "{" + Object.entries(n).map(([k, v]) => `${atomText(k)}: ${jsonFlat(v)}`).join(", ") + "}";
  return atomText(n);
}

class Printer {
  constructor(slots) {
    this.slots = slots;
  }

  slot(head, i) {
    const s = this.slots[head];
    return s ? s[i] ?? null : null;
  }

  flat(n, slot = null) {
    if (isArray(n)) return this.array(n, slot, null);
    if (isObject(n)) return "{" + Object.entries(n).map(([k, v]) => `${atomText(k)}: ${jsonFlat(v)}`).join(", ") + "}";
    if (typeof n === "string" && (slot === "name" || slot === "names") && isSymbol(n)) return n;
    return atomText(n);
  }

  array(n, slot, level) {
    const sub = level === null ? (x, s = null) => this.flat(x, s) : (x, s = null) => this.pretty(x, level + 1, s);
    if (slot === "names") return "(" + n.map((i) => sub(i, "name")).join(" ") + ")";
    const head = headOf(n);
    if (head === null) {
      if (!n.length) return "()";
      return "(" + [sub(n[0], "name"), ...n.slice(1).map((i) => sub(i))].join(" ") + ")";
    }
    const args = n.slice(1);
    const notName = slot !== "name" && slot !== "names";
    if (head === "std.var" && args.length === 1 && typeof args[0] === "string" && isSymbol(args[0]) && notName) {
      return args[0];
    }
    if (head === "list.new" && notName) return "[" + args.map((a) => sub(a)).join(" ") + "]";
    if (head === "obj.new" && args.length && notName &&
        args.every((a) => isArray(a) && a.length === 2 && !(headOf(a[0]) === "std.var"))) {
      return "{" + args.map((a) => `${this.flat(a[0], "name")} ${sub(a[1])}`).join(" ") + "}";
    }
    const headText = isSymbol(head) ? head : atomText(head);
    return "(" + [headText, ...args.map((a, i) => sub(a, this.slot(head, i)))].join(" ") + ")";
  }

  pretty(n, level, slot = null) {
    const flat = this.flat(n, slot);
    if (flat.length + level * 2 <= WIDTH || !isArray(n) || n.length < 2) return flat;
    const head = headOf(n);
    const pad = "  ".repeat(level + 1);
    if (head === null || slot === "names") return flat;
    if (head === "list.new" && flat.startsWith("[")) {
      return "[\n" + n.slice(1).map((a) => pad + this.pretty(a, level + 1)).join("\n") + "]";
    }
    if (flat.startsWith("{") || !flat.startsWith("(")) return flat;
    const headText = isSymbol(head) ? head : atomText(head);
    const args = n.slice(1).map((a, i) => pad + this.pretty(a, level + 1, this.slot(head, i)));
    return `(${headText}\n` + args.join("\n") + ")";
  }
}

// The whole text form of a script (a JSON-form value); a top-level std.seq of 2+ forms is written as a
// sequence of forms separated by blank lines.
export function toText(node, slots = DEFAULT_SLOTS) {
  const p = new Printer(slots);
  if (headOf(node) === "std.seq" && node.length > 2) {
    return node.slice(1).map((i) => p.pretty(i, 0)).join("\n\n") + "\n";
  }
  return p.pretty(node, 0) + "\n";
}

// Slot kinds from get_opcodes metadata ({opcode, parameters: [{name, kind?}]}) merged over the defaults.
export function slotsFromOpcodes(opcodes) {
  const out = { ...DEFAULT_SLOTS };
  for (const op of opcodes || []) {
    (op.parameters || []).forEach((p, i) => {
      if (p && (p.kind === "name" || p.kind === "names")) out[op.opcode] = { ...(out[op.opcode] || {}), [i]: p.kind };
    });
  }
  return out;
}
