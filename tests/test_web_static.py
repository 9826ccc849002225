"""viwoscript/web: vendored files match their manifest, the pure JS modules pass `node --test`, the JS
S-expression printer's fixtures still match the Python printer, and a built wheel ships viwoscript/web/**."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from viwoscript.web import ROOT

REPO = Path(__file__).resolve().parent.parent
TESTS_WEB = Path(__file__).resolve().parent / "web"
CI = os.environ.get("CI", "").lower() == "true"


def test_vendored_files_match_the_manifest():
    manifest = json.loads((ROOT / "vendor" / "MANIFEST.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    vendor = ROOT / "vendor"
    present = {p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file() and p.name != "MANIFEST.json"}
    assert present == listed, "every vendored file is in MANIFEST.json and every listed file is present"
    for f in manifest["files"]:
        data = (ROOT / "vendor" / f["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
        assert len(data) == f["bytes"], f["path"]
        for lic in f.get("licenses", []):
            assert lic in listed, f"{f['path']}: its licence {lic} is vendored too"
        assert f.get("license") or f.get("licenses"), f"{f['path']} names its licence"


def test_pages_import_only_files_that_exist():
    import re

    for js in [*ROOT.glob("js/*.js"), ROOT / "index.html"]:
        for spec in re.findall(r"""(?:from|import)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""", js.read_text()):
            assert (js.parent / spec).resolve().is_file(), f"{js.name} imports {spec}"


def test_js_printer_fixtures_match_the_python_printer():
    sys.path.insert(0, str(TESTS_WEB))
    try:
        import fmt_cases
    finally:
        sys.path.remove(str(TESTS_WEB))
    want = json.loads((TESTS_WEB / "fmt_cases.json").read_text())
    assert fmt_cases.build() == want, "regenerate: python tests/web/fmt_cases.py > tests/web/fmt_cases.json"


def test_pure_js_modules_with_node():
    node = shutil.which("node")
    if node is None:
        if CI:
            pytest.fail("node is required under CI=true (the pure JS modules are tested with node --test)")
        pytest.skip("node is not installed: the web UI's pure JS modules (tests/web/*.test.mjs) were not tested")
    files = sorted(str(p) for p in TESTS_WEB.glob("*.test.mjs"))
    r = subprocess.run([node, "--test", *files], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_wheel_contains_the_web_ui_and_every_subpackage(tmp_path):
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ and *.egg-info behind
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "build", "dist", "*.egg-info", "node_modules", ".pytest_cache",
        ".ruff_cache", ".hypothesis"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path / "out"), "-q"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    wheel = next((tmp_path / "out").glob("viwoscript-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    pkg = REPO / "viwoscript"
    for init in pkg.rglob("__init__.py"):
        if "__pycache__" not in init.parts:
            rel = init.relative_to(REPO).as_posix()
            assert rel in names, f"{rel}: its package is missing from the wheel (pyproject.toml packages)"
    for p in ROOT.rglob("*"):
        if p.is_file() and "__pycache__" not in p.parts:
            rel = "viwoscript/web/" + p.relative_to(ROOT).as_posix()
            assert rel in names, f"{rel} is missing from the wheel"
    assert "viwoscript/server/canvas_session.py" in names


def test_every_canvas_method_is_documented():
    from viwoscript.server.canvas_methods import methods

    doc = (REPO / "docs" / "ui.md").read_text(encoding="utf-8")
    for name in methods.methods:
        assert f"`{name}`" in doc, f"docs/ui.md does not describe {name}"
