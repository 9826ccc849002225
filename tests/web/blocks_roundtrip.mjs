// node --test: Blocks Mode's pure conversions (viwoscript/web/blocks/spec.js, sjson.js). The corpus (every
// example, shipped module and golden case in canonical JSON, plus the server's metadata) comes from
// tests/web/blocks_corpus.py through BLOCKS_CORPUS; tests/test_web_blocks.py builds it and runs this file (not named *.test.mjs: it needs the corpus).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse, print, normalizeNumber, floatRepr, Num } from "../../viwoscript/web/blocks/sjson.js";
import { buildSpecs, treeToState, stateToTree, TYPE, checkOf } from "../../viwoscript/web/blocks/spec.js";

const corpus = JSON.parse(readFileSync(process.env.BLOCKS_CORPUS, "utf8"));
const model = buildSpecs(corpus.opcodes, corpus.capabilities);

function* blocksOf(state) {
  const stack = [...(state.blocks?.blocks ?? [])];
  while (stack.length) {
    const b = stack.pop();
    yield b;
    for (const i of Object.values(b.inputs ?? {})) if (i.block) stack.push(i.block);
    if (b.next?.block) stack.push(b.next.block);
  }
}

test("every corpus script survives JSON -> blocks -> JSON unchanged", () => {
  assert.ok(corpus.cases.length > 500, "the corpus holds the examples and golden cases");
  const failures = [];
  for (const c of corpus.cases) {
    const tree = parse(c.json);
    assert.equal(print(tree), c.json, `${c.name}: the JSON printer matches viwo fmt --to json`);
    const state = JSON.parse(JSON.stringify(treeToState(model, tree)));
    for (const b of blocksOf(state)) {
      if (b.type === TYPE.generic && model.byOpcode.has(b.fields.OP))
        failures.push(`${c.name}: declared opcode ${b.fields.OP} loaded as a generic block`);
    }
    const back = print(stateToTree(model, state));
    if (back !== c.json) failures.push(`${c.name}:\n${c.json}\n!=\n${back}`);
  }
  assert.deepEqual(failures.slice(0, 5), []);
});

test("every declared opcode has its own block and every declared parameter a typed input", () => {
  for (const op of corpus.opcodes) {
    const spec = model.byOpcode.get(op.opcode);
    assert.ok(spec, op.opcode);
    assert.equal(spec.args.length, op.parameters.length);
    op.parameters.forEach((p, i) => {
      const a = spec.args[i];
      if (a.kind === "value") assert.equal(a.check, checkOf(p.type), `${op.opcode}.${p.name}`);
    });
  }
  for (const c of corpus.capabilities)
    for (const m of c.methods) assert.ok(model.specs.get(TYPE.cap(c.type, m.name)), `${c.type}.${m.name}`);
});

test("number literals keep their source text", () => {
  for (const t of ["1.0", "-0.0", "9007199254740993", "1e-07", "1.5e+300", "123456789012345678901234567890"]) {
    const tree = parse(`["list.new", ${t}]`);
    const back = stateToTree(model, JSON.parse(JSON.stringify(treeToState(model, tree))));
    assert.ok(back[1] instanceof Num);
    assert.equal(back[1].text, t);
  }
});

test("numbers typed by a person are written as the Python printer writes them", () => {
  assert.equal(normalizeNumber("007"), "7");
  assert.equal(normalizeNumber("1."), "1.0");
  assert.equal(normalizeNumber(".5"), "0.5");
  assert.equal(normalizeNumber("1e-7"), "1e-07");
  assert.equal(normalizeNumber("1e16"), "1e+16");
  assert.equal(normalizeNumber("12345678901234567890"), "12345678901234567890");
  assert.equal(normalizeNumber("abc"), null);
  assert.equal(normalizeNumber("1e999"), null);
  assert.equal(floatRepr(0.1 + 0.2), "0.30000000000000004");
});

test("a call of an opcode the toolbox lacks keeps its arguments", () => {
  const json = '["std.seq", ["no.such.op", 1, ["std.var", "x"]], ["+", 1, 2]]';
  const state = treeToState(model, parse(json));
  assert.equal(state.blocks.blocks[0].type, TYPE.generic);
  assert.equal(print(stateToTree(model, state)), json);
});

test("std.call_method on a known capability becomes the method's block", () => {
  const json =
    '["std.seq", ["std.let", "gen", ["get_capability", "diffusers.generate"]], ["std.call_method", ["std.var", "gen"], "textToImage", "a fox", ["obj.new", ["steps", 20]]]]';
  const state = treeToState(model, parse(json));
  const second = state.blocks.blocks[0].next.block;
  assert.equal(second.type, TYPE.cap("diffusers.generate", "textToImage"));
  assert.equal(print(stateToTree(model, state)), print(parse(json)));
});

test("a person's edits: empty trailing inputs are left out, inner ones are null", () => {
  const state = {
    blocks: {
      languageVersion: 0,
      blocks: [{ type: TYPE.op("list.new"), extraState: { n: 3 }, inputs: { ARG1: { block: { type: TYPE.num, fields: { NUM: "2" } } } } }],
    },
  };
  assert.equal(print(stateToTree(model, state)), '["list.new", null, 2]');
});

test("a capability method's options object shows its declared fields", () => {
  const json =
    '["std.call_method", ["get_capability", "diffusers.generate"], "textToImage", "a fox", ["obj.new", ["seed", 7], ["steps", 20]]]';
  const state = treeToState(model, parse(json));
  const opts = state.blocks.blocks[0].inputs.ARG1.block;
  assert.equal(opts.type, TYPE.opts("diffusers.generate", "textToImage", "options"));
  assert.deepEqual(opts.extraState.fields, ["seed", "steps"]);
  assert.equal(print(stateToTree(model, state)), print(parse(json)));
  // An undeclared key keeps the plain object block.
  const other = treeToState(model, parse(json.replace('"seed"', '"no_such_option"')));
  assert.equal(other.blocks.blocks[0].inputs.ARG1.block.type, TYPE.op("obj.new"));
});

test("a literal among a parameter's declared choices is a dropdown of them", () => {
  const json = '["canvas.layer.create", "a", "A", "mask"]';
  const state = treeToState(model, parse(json));
  const b = state.blocks.blocks[0].inputs.ARG2.block;
  assert.equal(b.type, TYPE.choice);
  assert.deepEqual(b.extraState.choices, ["raster", "control", "mask"]);
  assert.equal(print(stateToTree(model, state)), json);
  const other = treeToState(model, parse('["canvas.layer.create", "a", "A", "nope"]'));
  assert.equal(other.blocks.blocks[0].inputs.ARG2.block.type, TYPE.str);
});
