"""The Blocks Mode round-trip corpus: every example script, every shipped ViwoScript module and every
golden case of tests/lang, each in its canonical JSON form (`viwo fmt --to json`), plus the opcode and
capability metadata a default Runtime serves. Built fresh by the tests (never committed: the corpus
grows with the golden files). ``python tests/web/blocks_corpus.py OUT.json`` writes it for a manual run
of ``node --test tests/web/blocks_roundtrip.mjs`` with ``BLOCKS_CORPUS=OUT.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _golden_cases(text: str):
    """The code of each case of a golden file (the lines before each `;=>` / `;!!`)."""
    code: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(";=>") or stripped.startswith(";!!"):
            yield "\n".join(code)
            code = []
        else:
            code.append(line)


def sources() -> list[tuple[str, str]]:
    out = []
    for p in sorted((REPO / "examples").rglob("*")):
        if p.suffix in (".viwo", ".json") and p.is_file():
            if p.name.endswith(".viwo-template.json"):
                continue
            out.append((str(p.relative_to(REPO)), p.read_text(encoding="utf-8")))
    for p in sorted((REPO / "stdlib").glob("*.viwo")):
        out.append((str(p.relative_to(REPO)), p.read_text(encoding="utf-8")))
    for p in sorted((REPO / "tests" / "lang").glob("*.viwo")):
        for i, code in enumerate(_golden_cases(p.read_text(encoding="utf-8"))):
            out.append((f"{p.relative_to(REPO)}#{i}", code))
    return out


def build() -> dict:
    from viwoscript import Runtime
    from viwoscript.errors import ViwoError
    from viwoscript.syntax import parse, to_json

    rt = Runtime()
    cases = []
    for name, text in sources():
        try:
            tree = parse(text, filename=name)
        except ViwoError:
            continue  # golden cases of syntax errors have no JSON form
        try:
            cases.append({"name": name, "json": to_json(tree)})
        except ValueError:
            continue  # a float with no literal form (inf/nan) cannot be printed either
    return {"opcodes": rt.opcodes_metadata(), "capabilities": rt.capability_metadata(), "cases": cases}


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(build()), encoding="utf-8")
