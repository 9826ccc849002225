"""Blocks Mode (viwoscript/web/blocks/): the script <-> blocks conversions over every example, shipped
module and golden case — with node (pure conversions) and through the real Blockly in Chromium (the
state Blockly loads and saves back) — and the generated blocks' typed inputs.

The page-level tests (toolbox drag and drop, run, check errors on blocks, visualize as layers) are in
tests/test_web_blocks_page.py."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "web"))
sys.path.insert(0, str(Path(__file__).parent))
import blocks_corpus  # noqa: E402
from web_server import browser_missing, chromium, watch_console  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "viwoscript" / "web"

CI = os.environ.get("CI", "").lower() == "true"
TESTS_WEB = Path(__file__).parent / "web"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("blocks") / "corpus.json"
    path.write_text(json.dumps(blocks_corpus.build()), encoding="utf-8")
    return path


def test_corpus_holds_every_example_and_golden_case(corpus):
    data = json.loads(corpus.read_text())
    names = {c["name"].split("#")[0] for c in data["cases"]}
    golden = {f"tests/lang/{p.name}" for p in (Path(__file__).parent / "lang").glob("*.viwo")}
    assert golden <= names
    assert "examples/hello.viwo" in names and "examples/fizzbuzz.json" in names
    assert len(data["cases"]) > 1000


def test_conversions_with_node(corpus):
    node = shutil.which("node")
    if node is None:
        if CI:
            pytest.fail("node is required under CI=true (Blocks Mode's conversions are tested with node --test)")
        pytest.skip("node is not installed")
    out = subprocess.run([node, "--test", str(TESTS_WEB / "blocks_roundtrip.mjs")], capture_output=True, text=True,
                         env={**os.environ, "BLOCKS_CORPUS": str(corpus)}, timeout=300)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


# --- through the real Blockly -----------------------------------------------------------------------

def _need_browser():
    if why := browser_missing():  # under CI=true a missing browser fails instead
        pytest.skip(why)


class _Static(http.server.SimpleHTTPRequestHandler):
    extra: dict[str, Path] = {}

    def translate_path(self, path):
        name = path.split("?")[0]
        if name in self.extra:
            return str(self.extra[name])
        return super().translate_path(path)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def blockly_page(corpus):
    """A blank page serving viwoscript/web/ (and the corpus) with Blockly loaded."""
    _need_browser()
    blank = corpus.parent / "blank.html"
    blank.write_text("<!doctype html><html><head><link rel='icon' href='data:,'></head><body><div id='ws'></div>"
                     "<script src='/vendor/blockly/blockly.min.js'></script></body></html>")
    handler = type("H", (_Static,), {"extra": {"/_corpus.json": corpus, "/_blank.html": blank}})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(ROOT)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    with chromium() as browser:
        page = browser.new_page()
        problems = watch_console(page)
        page.goto(f"{base}/_blank.html")
        page.wait_for_function("window.Blockly !== undefined")
        page.base = base
        page.problems = problems
        yield page
    srv.shutdown()
    assert not problems, "\n".join(problems)


ROUND_TRIP = """async (base) => {
  const sj = await import(base + '/blocks/sjson.js');
  const sp = await import(base + '/blocks/spec.js');
  const wsm = await import(base + '/blocks/workspace.js');
  const corpus = await (await fetch(base + '/_corpus.json')).json();
  const model = sp.buildSpecs(corpus.opcodes, corpus.capabilities);
  wsm.defineBlocks(model, {});
  const ws = wsm.headlessWorkspace();
  const fails = [];
  const generic = new Set();
  for (const c of corpus.cases) {
    try {
      wsm.loadState(ws, sp.treeToState(model, sj.parse(c.json)));
      for (const b of ws.getAllBlocks(false))
        if (b.type === sp.TYPE.generic && model.byOpcode.has(b.getFieldValue('OP'))) generic.add(b.getFieldValue('OP'));
      const back = sj.print(sp.stateToTree(model, wsm.saveState(ws)));
      if (back !== c.json) fails.push(c.name + '\\n' + c.json + '\\n!=\\n' + back);
    } catch (e) { fails.push(c.name + ': ' + e.message); }
  }
  return {n: corpus.cases.length, fails: fails.slice(0, 5), nfail: fails.length, generic: [...generic]};
}"""


def test_every_script_round_trips_through_blockly(blockly_page):
    r = blockly_page.evaluate(ROUND_TRIP, blockly_page.base)
    assert r["n"] > 1000
    assert r["generic"] == [], "declared opcodes loaded as generic blocks"
    assert r["nfail"] == 0, "\n\n".join(r["fails"])


TYPED_INPUTS = """async (base) => {
  const sp = await import(base + '/blocks/spec.js');
  const wsm = await import(base + '/blocks/workspace.js');
  const corpus = await (await fetch(base + '/_corpus.json')).json();
  const model = sp.buildSpecs(corpus.opcodes, corpus.capabilities);
  wsm.defineBlocks(model, {});
  const ws = wsm.headlessWorkspace();
  const wrong = [];
  for (const spec of model.specs.values()) {
    if (spec.kind === 'opts') {
      wsm.loadState(ws, {blocks: {languageVersion: 0, blocks: [{type: spec.blockType, extraState: {fields: spec.fields.map((f) => f.name)}}]}});
      const b = ws.getAllBlocks(false)[0];
      for (const f of spec.fields) {
        const input = b.getInput('F:' + f.name);
        const want = sp.checkOf(f.type);
        if (!input || JSON.stringify(input.connection.getCheck()) !== JSON.stringify(want === null ? null : [want]))
          wrong.push(spec.blockType + '.' + f.name + ': option is not a typed input');
      }
      continue;
    }
    const n = spec.args.length;
    const extraState = spec.kind === 'pairs' ? {rows: ['p']} : {n};
    wsm.loadState(ws, {blocks: {languageVersion: 0, blocks: [{type: spec.blockType, extraState}]}});
    const b = ws.getAllBlocks(false)[0];
    if (spec.kind === 'pairs') { if (!b.getInput('K0') || !b.getInput('V0')) wrong.push(spec.blockType + ': no pair row'); continue; }
    spec.args.forEach((a, i) => {
      const key = 'ARG' + i;
      if (a.kind === 'name' || a.kind === 'names') { if (!b.getField(key)) wrong.push(spec.blockType + '.' + a.name + ': no name field'); return; }
      const input = b.getInput(key);
      if (!input) { wrong.push(spec.blockType + '.' + a.name + ': no input'); return; }
      if (a.kind === 'body') { if (input.connection.type !== Blockly.NEXT_STATEMENT) wrong.push(spec.blockType + '.' + a.name + ': body is not C-shaped'); return; }
      const check = input.connection.getCheck();
      const want = sp.checkOf(a.type);
      if (JSON.stringify(check) !== JSON.stringify(want === null ? null : [want])) wrong.push(spec.blockType + '.' + a.name + ': check ' + JSON.stringify(check) + ' for ' + a.type);
    });
    if (spec.kind === 'cap' && !b.getInput('HANDLE')) wrong.push(spec.blockType + ': no handle input');
  }
  return {n: model.specs.size, wrong};
}"""


def test_every_declared_parameter_is_a_typed_input(blockly_page):
    r = blockly_page.evaluate(TYPED_INPUTS, blockly_page.base)
    assert r["n"] > 150
    assert r["wrong"] == []
