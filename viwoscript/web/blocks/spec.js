// Blocks Mode without Blockly: block specifications from the server's metadata (get_opcodes,
// get_capability_metadata), and the two conversions between a script tree (sjson.js) and Blockly's
// JSON serialization state. Pure functions, tested with `node --test` and, through Blockly, in the
// browser. The block definitions that consume the specs are in workspace.js.
//
// How a script maps to blocks:
// - a call of a declared opcode is that opcode's block; its arguments are inputs in declared order
//   (extraState.n says how many are present, so optional and variadic ones come and go);
// - name slots (std.let's name, ...) are text fields, lambda parameters a field of names, and bodies
//   (non-variadic `block` slots: then/else, loop bodies, lambda bodies) C-shaped statement inputs;
// - a body that is a `std.seq` of two or more forms is stacked inside the C; anything else is one
//   statement, so every tree comes back exactly;
// - `std.seq` elsewhere is its own C-shaped block; the top-level sequence is the workspace's stack;
// - `std.call_method` on a handle whose capability type is known becomes "type › method" with the
//   method's declared parameters;
// - literals are number/text/boolean/null blocks (numbers keep their source text), JSON data that is
//   not a call (object literals, lists whose head is not a name) a data block, and a call of an
//   opcode the toolbox lacks a generic block that keeps its arguments.

import { Num, Obj, flat, parse } from "./sjson.js";

export const TYPE = {
  op: (opcode) => `vw_op:${opcode}`,
  cap: (type, method) => `vw_cap:${type}:${method}`,
  opts: (type, method, param) => `vw_opts:${type}:${method}:${param}`,
  seq: "vw_seq",
  num: "vw_num",
  str: "vw_str",
  bool: "vw_bool",
  nul: "vw_null",
  json: "vw_json",
  choice: "vw_choice",
  generic: "vw_generic",
};

const CHECKS = {
  number: "Number",
  integer: "Number",
  string: "String",
  boolean: "Boolean",
  image: "Image",
  array: "Array",
  object: "Object",
  lambda: "Lambda",
  capability: "Capability",
  null: "Null",
};

export const checkOf = (type) => CHECKS[type] ?? null;

const SIMPLE_NAME = /^[^\s]+$/u;

// One argument position of a block: how it is shown and typed.
function argSpec(param, slot, opcode) {
  const kind =
    slot?.type === "name"
      ? "name"
      : slot?.type === "names"
        ? "names"
        : slot?.type === "block" && !param.variadic
          ? "body"
          : "value";
  const type = slot?.type === "block" || slot?.type === "name" || slot?.type === "names" ? "any" : param.type;
  return {
    name: param.name,
    kind,
    type,
    check: kind === "value" ? checkOf(type) : null,
    optional: !!param.optional,
    variadic: !!param.variadic,
    description: param.description ?? "",
    choices: param.choices ?? null,
    default: param.default,
    fields: param.fields ?? null,
    opcode,
  };
}

// Specs for every opcode and every capability method, keyed by block type.
export function buildSpecs(opcodes, capabilities = []) {
  const specs = new Map();
  const byOpcode = new Map();
  for (const m of opcodes) {
    const slots = new Map((m.slots ?? []).map((s) => [s.name, s]));
    const spec = {
      blockType: TYPE.op(m.opcode),
      kind: m.opcode === "std.seq" ? "seq" : m.opcode === "obj.new" ? "pairs" : "op",
      opcode: m.opcode,
      label: m.label || m.opcode,
      category: m.category || m.opcode.split(".")[0],
      description: m.description ?? "",
      returnType: m.returnType ?? "any",
      output: checkOf(m.returnType),
      args: m.parameters.map((p) => argSpec(p, slots.get(p.name), m.opcode)),
    };
    specs.set(spec.blockType, spec);
    byOpcode.set(m.opcode, spec);
  }
  const methods = new Map(); // method name -> [capability type, ...]
  for (const c of capabilities) {
    for (const meth of c.methods) {
      const spec = {
        blockType: TYPE.cap(c.type, meth.name),
        kind: "cap",
        opcode: "std.call_method",
        capType: c.type,
        method: meth.name,
        label: `${c.type} › ${meth.name}`,
        category: `cap:${c.type}`,
        categoryLabel: c.label || c.type,
        description: meth.description || "",
        returnType: meth.returnType ?? "any",
        output: checkOf(meth.returnType),
        args: meth.parameters.map((p) => argSpec(p, null, "std.call_method")),
      };
      specs.set(spec.blockType, spec);
      methods.set(meth.name, [...(methods.get(meth.name) ?? []), c.type]);
      for (const a of spec.args) {
        if (!a.fields?.length) continue;
        const os = {
          blockType: TYPE.opts(c.type, meth.name, a.name),
          kind: "opts",
          opcode: "obj.new",
          label: `${meth.name} ${a.name}`,
          category: spec.category,
          description: a.description || `Options of ${spec.label}`,
          returnType: "object",
          output: "Object",
          fields: a.fields.map((f) => ({ ...f, check: checkOf(f.type) })),
        };
        a.optionsBlock = os.blockType;
        specs.set(os.blockType, os);
      }
    }
  }
  return { specs, byOpcode, methods, capabilities };
}

// The spec of argument i (variadic parameters repeat; extra arguments are untyped values).
export function argAt(spec, i) {
  const args = spec.args;
  if (i < args.length) return args[i];
  const last = args[args.length - 1];
  if (last?.variadic) return last;
  return { name: `extra ${i - args.length + 1}`, kind: "value", type: "any", check: null, optional: true, extra: true };
}

export const requiredCount = (spec) => spec.args.filter((a) => !a.optional && !a.variadic).length;

// --- tree -> Blockly state ------------------------------------------------------------------------

const isCall = (t) => Array.isArray(t) && t.length > 0 && typeof t[0] === "string";

// Capability types bound by `std.let NAME (get_capability "TYPE" ...)` anywhere in the script.
function capabilityBindings(tree) {
  const found = new Map();
  const stack = [tree];
  while (stack.length) {
    const t = stack.pop();
    if (!Array.isArray(t)) continue;
    if (
      (t[0] === "std.let" || t[0] === "std.set") &&
      typeof t[1] === "string" &&
      isCall(t[2]) &&
      t[2][0] === "get_capability" &&
      typeof t[2][1] === "string" &&
      !found.has(t[1])
    ) {
      found.set(t[1], t[2][1]);
    }
    for (const x of t) stack.push(x);
  }
  return found;
}

export class Loader {
  constructor(model, tree) {
    this.model = model;
    this.bindings = capabilityBindings(tree);
  }

  // A whole workspace state for a program tree (undefined: empty workspace).
  workspace(tree) {
    const blocks = [];
    if (tree !== undefined) {
      const top =
        isCall(tree) && tree[0] === "std.seq" && tree.length > 2
          ? this.stack(tree.slice(1))
          : this.block(tree, "stmt");
      blocks.push({ ...top, x: 20, y: 20 });
    }
    return { blocks: { languageVersion: 0, blocks } };
  }

  stack(items) {
    let first;
    let prev;
    for (const item of items) {
      const b = this.block(item, "stmt");
      if (prev) prev.next = { block: b };
      else first = b;
      prev = b;
    }
    return first;
  }

  // The statement(s) inside a C-shaped input: a std.seq of 2+ forms is stacked, anything else is one.
  body(t) {
    return isCall(t) && t[0] === "std.seq" && t.length > 2 ? this.stack(t.slice(1)) : this.block(t, "stmt");
  }

  capSpec(t) {
    if (t.length < 3 || typeof t[2] !== "string") return null;
    const handle = t[1];
    let type = null;
    if (isCall(handle) && handle[0] === "get_capability" && typeof handle[1] === "string") type = handle[1];
    else if (isCall(handle) && handle[0] === "std.var" && typeof handle[1] === "string")
      type = this.bindings.get(handle[1]) ?? null;
    if (type === null) {
      const owners = this.model.methods.get(t[2]) ?? [];
      if (owners.length === 1) type = owners[0];
    }
    return type === null ? null : (this.model.specs.get(TYPE.cap(type, t[2])) ?? null);
  }

  block(t, shape) {
    const withShape = (b) => (shape === "stmt" ? { ...b, extraState: { ...(b.extraState ?? {}), shape } } : b);
    if (t === null) return withShape({ type: TYPE.nul });
    if (t === true || t === false) return withShape({ type: TYPE.bool, fields: { VALUE: String(t) } });
    if (t instanceof Num) return withShape({ type: TYPE.num, fields: { NUM: t.text } });
    if (typeof t === "string") return withShape({ type: TYPE.str, fields: { TEXT: t } });
    if (!isCall(t)) return withShape({ type: TYPE.json, fields: { JSON: flat(t) } });
    const head = t[0];
    const args = t.slice(1);
    if (head === "std.seq") {
      const b = { type: TYPE.seq, extraState: { shape } };
      if (args.length) b.inputs = { DO: { block: this.stack(args) } };
      return b;
    }
    if (head === "std.call_method") {
      const cs = this.capSpec(t);
      if (cs) {
        const b = this.call(cs, [t[1], ...t.slice(3)], shape);
        b.extraState.handle = true;
        return b;
      }
    }
    const spec = this.model.byOpcode.get(head);
    if (!spec) {
      const b = { type: TYPE.generic, fields: { OP: head }, extraState: { shape, n: args.length } };
      const inputs = {};
      args.forEach((a, i) => {
        inputs[`ARG${i}`] = { block: this.block(a, "value") };
      });
      if (args.length) b.inputs = inputs;
      return b;
    }
    if (spec.kind === "pairs") return this.pairs(spec, args, shape);
    return this.call(spec, args, shape);
  }

  // An opcode (or capability method) block. For capability methods args[0] is the handle.
  call(spec, args, shape) {
    const cap = spec.kind === "cap";
    const extraState = { shape, n: args.length - (cap ? 1 : 0), raw: [] };
    const fields = {};
    const inputs = {};
    if (cap) inputs.HANDLE = { block: this.block(args[0], "value") };
    const rest = cap ? args.slice(1) : args;
    rest.forEach((a, i) => {
      const as = argAt(spec, i);
      const key = `ARG${i}`;
      if (as.kind === "name" && typeof a === "string") fields[key] = a;
      else if (
        as.kind === "names" &&
        Array.isArray(a) &&
        a.every((x) => typeof x === "string" && SIMPLE_NAME.test(x))
      )
        fields[key] = a.join(" ");
      else if (as.kind === "name" || as.kind === "names") {
        extraState.raw.push(i);
        inputs[key] = { block: this.data(a) };
      } else if (as.kind === "body") inputs[key] = { block: this.body(a) };
      else inputs[key] = { block: this.options(as, a) ?? this.choice(as.choices, a) ?? this.block(a, "value") };
    });
    if (!extraState.raw.length) delete extraState.raw;
    const b = { type: spec.blockType, extraState };
    if (Object.keys(fields).length) b.fields = fields;
    if (Object.keys(inputs).length) b.inputs = inputs;
    return b;
  }

  // An options object of a capability method as its named fields, when every key is a declared one.
  options(as, t) {
    if (!as.optionsBlock || !isCall(t) || t[0] !== "obj.new") return null;
    const os = this.model.specs.get(as.optionsBlock);
    const known = new Set(os.fields.map((f) => f.name));
    const names = [];
    for (const pair of t.slice(1)) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || !known.has(pair[0])) return null;
      if (names.includes(pair[0])) return null;
      names.push(pair[0]);
    }
    const inputs = {};
    t.slice(1).forEach(([k, v]) => {
      const f = os.fields.find((x) => x.name === k);
      inputs[`F:${k}`] = { block: this.choice(f.choices, v) ?? this.block(v, "value") };
    });
    const b = { type: os.blockType, extraState: { shape: "value", fields: names } };
    if (names.length) b.inputs = inputs;
    return b;
  }

  // A literal that is one of a parameter's declared choices: a dropdown of them.
  choice(choices, t) {
    if (!choices?.length) return null;
    const texts = choices.map(String);
    if (typeof t === "string" && choices.includes(t))
      return { type: TYPE.choice, extraState: { choices: texts, num: false }, fields: { VALUE: t } };
    if (t instanceof Num && choices.some((c) => typeof c === "number" && String(c) === t.text))
      return { type: TYPE.choice, extraState: { choices: texts, num: true }, fields: { VALUE: t.text } };
    return null;
  }

  // A value in a position the language does not evaluate (raw data): a data block unless atomic.
  data(t) {
    return isCall(t) || Array.isArray(t) || t instanceof Obj ? { type: TYPE.json, fields: { JSON: flat(t) } } : this.block(t, "value");
  }

  // obj.new: rows of [key, value] pairs; a row that is not a pair keeps its raw data.
  pairs(spec, args, shape) {
    const rows = [];
    const inputs = {};
    args.forEach((a, i) => {
      if (Array.isArray(a) && a.length === 2) {
        rows.push("p");
        inputs[`K${i}`] = { block: this.block(a[0], "value") };
        inputs[`V${i}`] = { block: this.block(a[1], "value") };
      } else {
        rows.push("r");
        inputs[`R${i}`] = { block: this.data(a) };
      }
    });
    const b = { type: spec.blockType, extraState: { shape, rows } };
    if (args.length) b.inputs = inputs;
    return b;
  }
}

export function treeToState(model, tree) {
  return new Loader(model, tree).workspace(tree);
}

// --- Blockly state -> tree ------------------------------------------------------------------------

export class SaveError extends Error {
  constructor(message, blockId) {
    super(message);
    this.blockId = blockId;
  }
}

export class Saver {
  constructor(model) {
    this.model = model;
    this.paths = new Map(); // block id -> index path in the JSON form
  }

  workspace(state) {
    const tops = [...(state.blocks?.blocks ?? [])].sort((a, b) => (a.y ?? 0) - (b.y ?? 0) || (a.x ?? 0) - (b.x ?? 0));
    const blocks = tops.flatMap((b) => this.chainBlocks(b));
    if (!blocks.length) return undefined;
    if (blocks.length === 1) return this.node(blocks[0], []);
    return ["std.seq", ...blocks.map((b, i) => this.node(b, [i + 1]))];
  }

  chainBlocks(b) {
    const out = [];
    for (let cur = b; cur; cur = cur.next?.block) out.push(cur);
    return out;
  }

  note(id, path) {
    if (id !== undefined) this.paths.set(id, path);
  }

  input(b, name) {
    const i = b.inputs?.[name];
    return i?.block ?? i?.shadow;
  }

  // A C-shaped input: nothing, one statement, or a std.seq of the stack.
  stmts(first, path) {
    const blocks = first ? this.chainBlocks(first) : [];
    if (!blocks.length) return undefined;
    if (blocks.length === 1) return this.node(blocks[0], path);
    return ["std.seq", ...blocks.map((b, i) => this.node(b, [...path, i + 1]))];
  }

  // Arguments from positions 0..n-1: trailing empty ones are left out, inner empty ones are null.
  args(list) {
    let end = list.length;
    while (end > 0 && list[end - 1] === undefined) end--;
    return list.slice(0, end).map((x) => (x === undefined ? null : x));
  }

  node(b, path) {
    this.note(b.id, path);
    const f = b.fields ?? {};
    const es = b.extraState ?? {};
    switch (b.type) {
      case TYPE.nul:
        return null;
      case TYPE.bool:
        return f.VALUE === "true";
      case TYPE.num:
        return new Num(f.NUM);
      case TYPE.str:
        return f.TEXT ?? "";
      case TYPE.choice:
        return es.num ? new Num(f.VALUE) : (f.VALUE ?? "");
      case TYPE.json:
        try {
          return parse(f.JSON);
        } catch (e) {
          throw new SaveError(`data block: ${e.message}`, b.id);
        }
      case TYPE.seq: {
        const first = this.input(b, "DO");
        const items = first ? this.chainBlocks(first) : [];
        return ["std.seq", ...items.map((x, i) => this.node(x, [...path, i + 1]))];
      }
      case TYPE.generic: {
        const n = es.n ?? 0;
        const list = [];
        for (let i = 0; i < n; i++) {
          const c = this.input(b, `ARG${i}`);
          list.push(c ? this.node(c, [...path, i + 1]) : undefined);
        }
        return [f.OP ?? "", ...this.args(list)];
      }
      default:
        break;
    }
    const spec = this.model.specs.get(b.type);
    if (!spec) throw new SaveError(`unknown block type ${b.type}`, b.id);
    if (spec.kind === "opts") {
      return [
        "obj.new",
        ...(es.fields ?? []).map((name, i) => {
          const c = this.input(b, `F:${name}`);
          return [name, c ? this.node(c, [...path, i + 1, 1]) : null];
        }),
      ];
    }
    if (spec.kind === "pairs") {
      const rows = es.rows ?? [];
      return [
        spec.opcode,
        ...rows.map((r, i) => {
          const p = [...path, i + 1];
          if (r === "r") {
            const c = this.input(b, `R${i}`);
            return c ? this.node(c, p) : null;
          }
          const k = this.input(b, `K${i}`);
          const v = this.input(b, `V${i}`);
          return [k ? this.node(k, [...p, 0]) : null, v ? this.node(v, [...p, 1]) : null];
        }),
      ];
    }
    const cap = spec.kind === "cap";
    const off = cap ? 3 : 1; // where argument 0 sits in the JSON array
    const raw = new Set(es.raw ?? []);
    const list = [];
    const n = es.n ?? 0;
    for (let i = 0; i < n; i++) {
      const as = argAt(spec, i);
      const key = `ARG${i}`;
      const p = [...path, i + off];
      if ((as.kind === "name" || as.kind === "names") && !raw.has(i)) {
        const text = f[key];
        if (as.kind === "name") list.push(text ?? "");
        else list.push((text ?? "").split(/\s+/u).filter((x) => x));
      } else if (as.kind === "body") {
        list.push(this.stmts(this.input(b, key), p));
      } else {
        const c = this.input(b, key);
        list.push(c ? this.node(c, p) : undefined);
      }
    }
    if (cap) {
      const h = this.input(b, "HANDLE");
      return ["std.call_method", h ? this.node(h, [...path, 1]) : null, spec.method, ...this.args(list)];
    }
    return [spec.opcode, ...this.args(list)];
  }
}

export function stateToTree(model, state) {
  return new Saver(model).workspace(state);
}
