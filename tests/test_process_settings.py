"""Design §14: no process-wide side effects outside the command-line face. The library never changes
Python's recursion limit or the logging/progress-bar state of the model libraries; `viwo` does, once."""

from __future__ import annotations

import ast
import os
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "viwoscript"
FACE = ("cli", "repl", "terminal")
PROCESS_WIDE = {"setrecursionlimit", "set_verbosity", "set_verbosity_error", "set_verbosity_warning",
                "disable_progress_bar", "enable_progress_bar", "basicConfig", "putenv", "setswitchinterval"}


def _changes(tree):
    """Calls that change process-wide state, and writes to os.environ."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in PROCESS_WIDE:
                yield node.lineno
            if name in ("setdefault", "update", "pop") and isinstance(f, ast.Attribute) and \
                    ast.unparse(f.value) == "os.environ":
                yield node.lineno
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Subscript) and ast.unparse(t.value) == "os.environ":
                    yield node.lineno


def test_library_code_changes_no_process_wide_setting():
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] in FACE or rel.as_posix() == "server/command.py":
            continue
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        offenders += [f"{rel}:{no}: {lines[no - 1].strip()}" for no in _changes(ast.parse(text))]
    assert offenders == []


def test_the_command_line_quiets_model_libraries_without_overriding_the_user(monkeypatch):
    from viwoscript.cli.app import QUIET_LIBRARIES, process_settings

    for key in QUIET_LIBRARIES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DIFFUSERS_VERBOSITY", "info")
    process_settings()
    assert os.environ["DIFFUSERS_VERBOSITY"] == "info"
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert os.environ["TQDM_DISABLE"] == "1"
