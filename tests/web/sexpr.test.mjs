// node --test: web/js/sexpr.js prints exactly what `viwo fmt --to text` prints (fixtures from Python).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { toText, numberText, isSymbol, slotsFromOpcodes, DEFAULT_SLOTS } from "../../viwoscript/web/js/sexpr.js";

const fixtures = JSON.parse(readFileSync(new URL("./fmt_cases.json", import.meta.url), "utf8"));

for (const [i, c] of fixtures.cases.entries()) {
  test(`case ${i}: ${c.json.slice(0, 60)}`, () => {
    assert.equal(toText(JSON.parse(c.json)), c.text);
  });
}

test("numbers print as Python prints what it reads from JSON.stringify", () => {
  assert.equal(numberText(12), "12");
  assert.equal(numberText(2.5), "2.5");
  assert.equal(numberText(1e-7), "1e-07");
  assert.equal(numberText(1e16), "10000000000000000");
  assert.equal(numberText(1.5e16), "15000000000000000");
  assert.equal(numberText(1e21), "1e+21");
  assert.equal(numberText(123456789.125), "123456789.125");
  assert.equal(numberText(0.0001), "0.0001");
  assert.equal(numberText(-0.5), "-0.5");
});

test("symbols", () => {
  assert.ok(isSymbol("canvas.draw_stroke"));
  assert.ok(!isSymbol("1abc"));
  assert.ok(!isSymbol("true"));
  assert.ok(!isSymbol("a b"));
});

test("slots from get_opcodes metadata", () => {
  const s = slotsFromOpcodes([{ opcode: "my.bind", parameters: [{ name: "n", kind: "name" }, { name: "v" }] }]);
  assert.deepEqual(s["my.bind"], { 0: "name" });
  assert.deepEqual(s["std.let"], DEFAULT_SLOTS["std.let"]);
});
