// Blockly block types generated from the specs of spec.js, and the workspace that holds them. The only
// module of Blocks Mode that touches Blockly (the global `Blockly` of vendor/blockly/blockly.min.js).
//
// Every block keeps its shape and its argument count in extraState ({shape, n, raw, rows, handle}), so
// Blockly's own serialization carries all a script needs, and spec.js converts that state to and
// from the script's JSON form.

import { TYPE, argAt, requiredCount } from "./spec.js";
import { normalizeNumber, parse as parseJson } from "./sjson.js";

const B = () => globalThis.Blockly;

// Colours: one hue per category, stable across runs (the metadata names categories, not colours).
const HUES = { std: 210, math: 230, list: 260, object: 290, data: 290, string: 160, boolean: 120, canvas: 20,
  image: 40, time: 190, kernel: 330, batch: 350, entity: 60, json: 290, literal: 0 };
export function hueOf(category) {
  if (category in HUES) return HUES[category];
  let h = 0;
  for (const ch of category) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

const PLUS =
  "data:image/svg+xml;utf8," +
  encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><circle cx="8" cy="8" r="7" fill="white" fill-opacity=".85"/><path d="M4 8h8M8 4v8" stroke="#333" stroke-width="2"/></svg>');
const MINUS =
  "data:image/svg+xml;utf8," +
  encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><circle cx="8" cy="8" r="7" fill="white" fill-opacity=".85"/><path d="M4 8h8" stroke="#333" stroke-width="2"/></svg>');

// While a script is loaded, connections that a person could not make (a text literal where a number
// is declared) are allowed: every script loads, and check_script reports what is wrong.
let loading = 0;

function defineChecker() {
  const Bl = B();
  if (Bl.registry.hasItem?.(Bl.registry.Type.CONNECTION_CHECKER, "viwo")) return;
  class Checker extends Bl.ConnectionChecker {
    doTypeChecks(a, b) {
      return loading > 0 || super.doTypeChecks(a, b);
    }
  }
  Bl.registry.register(Bl.registry.Type.CONNECTION_CHECKER, "viwo", Checker, true);
}

// A text field that takes any name, offering the names in scope as a dropdown when clicked.
function nameDropdown(block) {
  const Bl = B();
  class NameField extends Bl.FieldDropdown {
    doClassValidation_(v) {
      return typeof v === "string" ? v : null;
    }
    getText_() {
      return this.getValue();
    }
  }
  return new NameField(function () {
    const names = scopeNames(this.getSourceBlock() ?? block);
    const cur = this.getValue?.() ?? "";
    const opts = [...new Set([cur, ...names])].filter((x) => x !== "").map((n) => [n, n]);
    opts.push(["rename…", "\u0000rename"]);
    return opts.length ? opts : [["", ""]];
  }, function (v) {
    if (v === "\u0000rename") {
      const next = globalThis.prompt?.("Variable name", this.getValue()) ?? null;
      return next && next.trim() ? next.trim() : null;
    }
    return v;
  });
}

// Names a block can see: lambda parameters, for-loop names, catch names and std.let/std.var above it.
export function scopeNames(block) {
  const names = new Set();
  let cur = block;
  while (cur) {
    const prev = cur.getPreviousBlock?.();
    const parent = cur.getParent?.();
    if (prev && prev.getNextBlock?.() === cur) {
      collectDeclared(prev, names);
      cur = prev;
      continue;
    }
    if (parent) collectBinders(parent, names);
    cur = parent;
  }
  for (const b of block.workspace?.getTopBlocks?.(false) ?? []) collectDeclared(b, names);
  return [...names].sort();
}

function collectDeclared(b, names) {
  const op = b.vwSpec?.opcode;
  if (op === "std.let" && b.getField("ARG0")) names.add(b.getFieldValue("ARG0"));
}

function collectBinders(b, names) {
  const op = b.vwSpec?.opcode;
  if (op === "std.lambda" && b.getField("ARG0")) for (const n of b.getFieldValue("ARG0").split(/\s+/u)) if (n) names.add(n);
  if (op === "std.for" && b.getField("ARG0")) names.add(b.getFieldValue("ARG0"));
  if (op === "std.try" && b.getField("ARG1")) names.add(b.getFieldValue("ARG1"));
  collectDeclared(b, names);
}

function setShape(block, shape) {
  if (shape === "stmt") {
    if (block.outputConnection) block.setOutput(false);
    block.setPreviousStatement(true);
    block.setNextStatement(true);
  } else {
    if (block.previousConnection) block.setPreviousStatement(false);
    if (block.nextConnection) block.setNextStatement(false);
    block.setOutput(true, block.vwOutput ?? null);
  }
}

// Rebuild a block's inputs for a new extraState, keeping what is connected and typed where it was.
function rebuild(block, build) {
  const kept = new Map();
  const values = new Map();
  for (const input of [...block.inputList]) {
    const target = input.connection?.targetConnection;
    if (target) kept.set(input.name, target);
    for (const f of input.fieldRow) if (f.name) values.set(f.name, f.getValue());
  }
  for (const input of [...block.inputList]) {
    input.connection?.targetConnection && input.connection.disconnect();
    block.removeInput(input.name);
  }
  build();
  for (const [name, target] of kept) {
    const input = block.getInput(name);
    if (input?.connection && !target.getSourceBlock().isDisposed?.()) {
      loading++;
      try {
        input.connection.connect(target);
      } finally {
        loading--;
      }
    }
  }
  for (const [name, v] of values) if (block.getField(name)) block.setFieldValue(v, name);
}

function fireMutation(block, before) {
  const Bl = B();
  const after = JSON.stringify(block.saveExtraState());
  if (before !== after) Bl.Events.fire(new (Bl.Events.get(Bl.Events.BLOCK_CHANGE))(block, "mutation", null, before, after));
}

function plusMinus(block, canAdd, canRemove, add, remove) {
  const Bl = B();
  const input = block.appendDummyInput("PLUSMINUS");
  if (canRemove)
    input.appendField(new Bl.FieldImage(MINUS, 16, 16, "remove the last argument", () => {
      const before = JSON.stringify(block.saveExtraState());
      remove();
      fireMutation(block, before);
    }));
  if (canAdd)
    input.appendField(new Bl.FieldImage(PLUS, 16, 16, "add an argument", () => {
      const before = JSON.stringify(block.saveExtraState());
      add();
      fireMutation(block, before);
    }));
}

// ⊕ / ⊖ for a block whose arguments are ARG0..ARG{n-1} (extraState.n).
function argCountButtons(block, n, canAdd, canRemove) {
  plusMinus(block, canAdd, canRemove,
    () => {
      block.vwState.n = n + 1;
      rebuild(block, () => block.vwBuild());
    },
    () => {
      unplugInput(block, `ARG${n - 1}`);
      block.vwState.n = n - 1;
      rebuild(block, () => block.vwBuild());
    });
}

function unplugInput(block, name) {
  const c = block.getInput(name)?.connection?.targetBlock();
  if (c) c.unplug(true);
}

function helpItem(block, spec, onHelp) {
  return {
    text: `Help: ${spec.opcode === "std.call_method" && spec.method ? spec.label : spec.opcode}`,
    enabled: true,
    callback: () => onHelp?.(spec),
  };
}

function shapeItem(block) {
  const stmt = block.vwState.shape === "stmt";
  return {
    text: stmt ? "Use as a value" : "Use as a statement",
    enabled: true,
    callback: () => {
      const before = JSON.stringify(block.saveExtraState());
      block.unplug(true);
      block.vwState.shape = stmt ? "value" : "stmt";
      setShape(block, block.vwState.shape);
      fireMutation(block, before);
    },
  };
}

// A repeated (variadic) parameter is labelled once, at its first position.
function argLabel(spec, i) {
  const a = argAt(spec, i);
  if (a.variadic && i > 0 && argAt(spec, i - 1) === a) return "";
  return a.name;
}

// The mixin every generated block shares.
function commonMixin(onHelp) {
  return {
    saveExtraState() {
      return { ...this.vwState };
    },
    loadExtraState(s) {
      this.vwState = { ...this.vwState, ...s };
      setShape(this, this.vwState.shape ?? "value");
      rebuild(this, () => this.vwBuild());
    },
    customContextMenu(options) {
      options.push(shapeItem(this));
      if (this.vwSpec) options.push(helpItem(this, this.vwSpec, onHelp));
    },
  };
}

function defineOpBlock(spec, onHelp) {
  const Bl = B();
  const cap = spec.kind === "cap";
  const minN = requiredCount(spec);
  const canGrow = (n) => n < spec.args.length || spec.args[spec.args.length - 1]?.variadic;
  Bl.Blocks[spec.blockType] = {
    ...commonMixin(onHelp),
    init() {
      this.vwSpec = spec;
      this.vwOutput = spec.output;
      this.vwState = { shape: "value", n: minN };
      this.setColour(hueOf(spec.category.startsWith("cap:") ? "kernel" : spec.category));
      this.setTooltip(`${spec.opcode === "std.call_method" ? spec.label : spec.opcode}: ${spec.description}`);
      setShape(this, "value");
      this.vwBuild();
    },
    vwBuild() {
      const n = this.vwState.n ?? minN;
      const raw = new Set(this.vwState.raw ?? []);
      const isVar = spec.opcode === "std.var";
      this.appendDummyInput("HEAD").appendField(isVar ? "get" : spec.label);
      let statements = false;
      if (cap) this.appendValueInput("HANDLE").setCheck(["Capability"]).appendField("on");
      for (let i = 0; i < n; i++) {
        const a = argAt(spec, i);
        const key = `ARG${i}`;
        if ((a.kind === "name" || a.kind === "names") && !raw.has(i)) {
          const field = isVar ? nameDropdown(this) : new Bl.FieldTextInput("");
          this.appendDummyInput(`IN${i}`).appendField(isVar ? "" : argLabel(spec, i)).appendField(field, key);
        } else if (a.kind === "body") {
          statements = true;
          this.appendStatementInput(key).appendField(argLabel(spec, i));
        } else {
          this.appendValueInput(key).setCheck(raw.has(i) ? null : a.check ? [a.check] : null).appendField(argLabel(spec, i));
        }
      }
      const optional = n > minN;
      if (canGrow(n) || optional) argCountButtons(this, n, canGrow(n), optional);
      this.setInputsInline(isVar || (!statements && n <= 2 && !cap));
    },
  };
}

function definePairs(spec, onHelp) {
  const Bl = B();
  Bl.Blocks[spec.blockType] = {
    ...commonMixin(onHelp),
    init() {
      this.vwSpec = spec;
      this.vwOutput = spec.output;
      this.vwState = { shape: "value", rows: [] };
      this.setColour(hueOf(spec.category));
      this.setTooltip(`${spec.opcode}: ${spec.description}`);
      setShape(this, "value");
      this.vwBuild();
    },
    vwBuild() {
      const rows = this.vwState.rows ?? [];
      this.appendDummyInput("HEAD").appendField(spec.label);
      rows.forEach((r, i) => {
        if (r === "r") this.appendValueInput(`R${i}`).appendField("pair");
        else {
          this.appendValueInput(`K${i}`).setCheck(["String"]).appendField("key");
          this.appendValueInput(`V${i}`).appendField("value");
        }
      });
      plusMinus(this, true, rows.length > 0,
        () => {
          this.vwState.rows = [...rows, "p"];
          rebuild(this, () => this.vwBuild());
        },
        () => {
          const i = rows.length - 1;
          for (const k of [`K${i}`, `V${i}`, `R${i}`]) unplugInput(this, k);
          this.vwState.rows = rows.slice(0, -1);
          rebuild(this, () => this.vwBuild());
        });
      this.setInputsInline(false);
    },
  };
}

// The options object of a capability method: one named, typed input per option present; a dropdown
// adds the others.
function defineOptions(spec, onHelp) {
  const Bl = B();
  Bl.Blocks[spec.blockType] = {
    ...commonMixin(onHelp),
    init() {
      this.vwSpec = spec;
      this.vwOutput = ["Object"];
      this.vwState = { shape: "value", fields: [] };
      this.setColour(hueOf("kernel"));
      this.setTooltip(spec.description);
      setShape(this, "value");
      this.vwBuild();
    },
    vwBuild() {
      const present = this.vwState.fields ?? [];
      this.appendDummyInput("HEAD").appendField("options");
      for (const name of present) {
        const f = spec.fields.find((x) => x.name === name);
        const input = this.appendValueInput(`F:${name}`).setCheck(f?.check ? [f.check] : null).appendField(name);
        if (f?.description) input.setTooltip?.(f.description);
      }
      const missing = spec.fields.filter((f) => !present.includes(f.name));
      const row = this.appendDummyInput("PLUSMINUS");
      if (missing.length) {
        row.appendField(new Bl.FieldDropdown(
          () => [["add option…", "\u0000"], ...missing.map((f) => [f.name, f.name])],
          (v) => {
            if (v && v !== "\u0000") {
              setTimeout(() => {
                const before = JSON.stringify(this.saveExtraState());
                this.vwState.fields = [...(this.vwState.fields ?? []), v];
                rebuild(this, () => this.vwBuild());
                fireMutation(this, before);
              });
            }
            return "\u0000";
          }), "ADD");
      }
      if (present.length) {
        row.appendField(new Bl.FieldImage(MINUS, 16, 16, "remove the last option", () => {
          const before = JSON.stringify(this.saveExtraState());
          unplugInput(this, `F:${present[present.length - 1]}`);
          this.vwState.fields = present.slice(0, -1);
          rebuild(this, () => this.vwBuild());
          fireMutation(this, before);
        }));
      }
      this.setInputsInline(false);
    },
  };
}

function defineFixed(onHelp) {
  const Bl = B();
  const lit = (type, colour, build, output) => {
    Bl.Blocks[type] = {
      ...commonMixin(onHelp),
      init() {
        this.vwOutput = output;
        this.vwState = { shape: "value" };
        this.setColour(colour);
        setShape(this, "value");
        build.call(this);
      },
      loadExtraState(s) {
        this.vwState = { ...this.vwState, ...s };
        setShape(this, this.vwState.shape ?? "value");
      },
    };
  };
  lit(TYPE.num, 230, function () {
    this.appendDummyInput().appendField(new Bl.FieldTextInput("0", (t) => normalizeNumber(t) !== null ? t.trim() : null), "NUM");
    this.setTooltip("A number. Its text is kept as written (1.0 stays 1.0).");
  }, ["Number"]);
  lit(TYPE.str, 160, function () {
    this.appendDummyInput().appendField("“").appendField(new Bl.FieldTextInput(""), "TEXT").appendField("”");
    this.setTooltip("A text (string).");
  }, ["String"]);
  lit(TYPE.bool, 120, function () {
    this.appendDummyInput().appendField(new Bl.FieldDropdown([["true", "true"], ["false", "false"]]), "VALUE");
    this.setTooltip("true or false.");
  }, ["Boolean"]);
  Bl.Blocks[TYPE.choice] = {
    ...commonMixin(onHelp),
    init() {
      this.vwOutput = null;
      this.vwState = { shape: "value", choices: [""], num: false };
      this.setColour(160);
      this.setTooltip("One of the values the parameter allows.");
      setShape(this, "value");
      this.vwBuild();
    },
    vwBuild() {
      const block = this;
      class ChoiceField extends Bl.FieldDropdown {
        doClassValidation_(v) {
          return typeof v === "string" ? v : null;
        }
      }
      this.appendDummyInput("HEAD").appendField(
        new ChoiceField(() => (block.vwState.choices ?? [""]).map((c) => [c, c])), "VALUE");
      this.vwOutput = [this.vwState.num ? "Number" : "String"];
      if (this.outputConnection) this.outputConnection.setCheck(this.vwOutput);
    },
  };
  lit(TYPE.nul, 0, function () {
    this.appendDummyInput().appendField("null");
    this.setTooltip("null: no value.");
  }, null);
  lit(TYPE.json, 290, function () {
    this.appendDummyInput().appendField("data").appendField(new Bl.FieldTextInput("[]", (t) => {
      try {
        parseJson(t);
        return t;
      } catch {
        return null;
      }
    }), "JSON");
    this.setTooltip("JSON data, used as it is (never run as a call).");
  }, null);
  Bl.Blocks[TYPE.seq] = {
    ...commonMixin(onHelp),
    init() {
      this.vwOutput = null;
      this.vwState = { shape: "value" };
      this.vwSpec = { opcode: "std.seq", label: "do in order", description: "Run the forms in order; the value is the last one's." };
      this.setColour(hueOf("std"));
      setShape(this, "value");
      this.vwBuild();
      this.setTooltip("std.seq: run the forms in order; the value is the last one's.");
    },
    vwBuild() {
      this.appendDummyInput("HEAD").appendField("do in order");
      this.appendStatementInput("DO");
    },
  };
  Bl.Blocks[TYPE.generic] = {
    ...commonMixin(onHelp),
    init() {
      this.vwOutput = null;
      this.vwState = { shape: "value", n: 0 };
      this.setColour(0);
      this.setTooltip("A call of an opcode this server does not declare; its arguments are kept as they are.");
      setShape(this, "value");
      this.vwBuild();
    },
    vwBuild() {
      const n = this.vwState.n ?? 0;
      this.appendDummyInput("HEAD").appendField("call").appendField(new Bl.FieldTextInput("op"), "OP");
      for (let i = 0; i < n; i++) this.appendValueInput(`ARG${i}`).appendField(`arg ${i + 1}`);
      argCountButtons(this, n, true, n > 0);
      this.setInputsInline(n <= 3);
    },
  };
}

// Define every block type of a model (spec.buildSpecs). Re-defining replaces the old definitions.
export function defineBlocks(model, { onHelp } = {}) {
  defineChecker();
  defineFixed(onHelp);
  for (const spec of model.specs.values()) {
    if (spec.kind === "pairs") definePairs(spec, onHelp);
    else if (spec.kind === "opts") defineOptions(spec, onHelp);
    else defineOpBlock(spec, onHelp);
  }
}

// Options every Blocks Mode workspace gets (the lenient-while-loading connection checker).
export const PLUGINS = { connectionChecker: "viwo" };

// A workspace without a view (for conversions and tests).
export function headlessWorkspace() {
  const Bl = B();
  return new Bl.Workspace(new Bl.Options({ plugins: PLUGINS }));
}

// Load a Blockly state into a workspace (replacing what it holds), allowing every connection.
export function loadState(workspace, state) {
  const Bl = B();
  loading++;
  Bl.Events.disable();
  try {
    workspace.clear();
    Bl.serialization.workspaces.load(state, workspace, { recordUndo: false });
  } finally {
    Bl.Events.enable();
    loading--;
  }
}

export function saveState(workspace) {
  return B().serialization.workspaces.save(workspace);
}

// Required parameters with declared choices start as a dropdown of them in the toolbox.
function choiceInputs(spec) {
  const inputs = {};
  (spec.args ?? []).slice(0, requiredCount(spec)).forEach((a, i) => {
    if (!a.choices?.length) return;
    const num = typeof a.choices[0] === "number";
    const value = String(a.default ?? a.choices[0]);
    inputs[`ARG${i}`] = { block: { type: TYPE.choice, extraState: { choices: a.choices.map(String), num }, fields: { VALUE: value } } };
  });
  return Object.keys(inputs).length ? inputs : null;
}

// Toolbox: a category per opcode namespace and one per capability.
export function toolbox(model, opcodes, capabilities) {
  const cats = new Map();
  const add = (key, name, colour, item) => {
    const short = name.length > 26 ? `${name.slice(0, 25)}…` : name;
    if (!cats.has(key)) cats.set(key, { kind: "category", name: short, colour: String(colour), contents: [] });
    cats.get(key).contents.push(item);
  };
  add("literal", "values", 160, { kind: "block", type: TYPE.num });
  add("literal", "values", 160, { kind: "block", type: TYPE.str });
  add("literal", "values", 160, { kind: "block", type: TYPE.bool });
  add("literal", "values", 160, { kind: "block", type: TYPE.nul });
  add("literal", "values", 160, { kind: "block", type: TYPE.json });
  add("std", "std", hueOf("std"), { kind: "block", type: TYPE.seq, extraState: { shape: "stmt" } });
  for (const m of opcodes) {
    const spec = model.byOpcode.get(m.opcode);
    if (m.opcode === "std.seq") continue;
    const stmt = m.returnType === "null" || ["std.let", "std.set", "std.if", "std.for", "std.while", "std.try"].includes(m.opcode);
    const item = { kind: "block", type: spec.blockType };
    if (stmt) item.extraState = { shape: "stmt", ...(spec.kind === "pairs" ? { rows: [] } : { n: requiredCount(spec) }) };
    const prefill = choiceInputs(spec);
    if (prefill) item.inputs = prefill;
    add(spec.category, spec.category, hueOf(spec.category), item);
  }
  for (const c of capabilities) {
    for (const meth of c.methods) {
      const spec = model.specs.get(TYPE.cap(c.type, meth.name));
      const inputs = {
        HANDLE: { block: { type: TYPE.op("get_capability"), extraState: { n: 1 }, inputs: { ARG0: { block: { type: TYPE.str, fields: { TEXT: c.type } } } } } },
      };
      const n = requiredCount(spec);
      spec.args.slice(0, n).forEach((a, i) => {
        if (a.type === "string") inputs[`ARG${i}`] = { block: { type: TYPE.str, fields: { TEXT: "" } } };
      });
      Object.assign(inputs, choiceInputs(spec) ?? {});
      add(`cap:${c.type}`, c.label || c.type, hueOf("kernel"), { kind: "block", type: spec.blockType, extraState: { n }, inputs });
      for (const a of spec.args) {
        if (a.optionsBlock) add(`cap:${c.type}`, c.label || c.type, hueOf("kernel"), { kind: "block", type: a.optionsBlock });
      }
    }
  }
  return { kind: "categoryToolbox", contents: [...cats.values()] };
}
