"""Views shared by the command line and the REPL: opcode lists and docs, capabilities, configuration.

Everything is derived from the declarations (OpSpecs, capability metadata, the effective Config) and
rendered with rich; on a non-terminal rich prints plain text without wrapping, fit for grep.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from ..opcodes import OpSpec, Registry


def console(file=None):
    from rich.console import Console

    from .console import use_color

    file = file or sys.stdout
    color = use_color(file)
    terminal = Console(file=file).is_terminal
    # Off a terminal nothing wraps or truncates: the output is for files and grep.
    return Console(file=file, soft_wrap=True, highlight=False, force_terminal=color or None,
                   no_color=not color, emoji=False, width=None if terminal else 10_000)


# --------------------------------------------------------------------------------------------------
# Opcodes
# --------------------------------------------------------------------------------------------------


def match_ops(registry: Registry, pattern: str | None) -> list[OpSpec]:
    """An exact name → that opcode; a glob → matching names; else a substring of names or categories."""
    specs = list(registry)
    if not pattern:
        return specs
    exact = registry.get(pattern)
    if exact is not None:
        return [exact]
    if any(c in pattern for c in "*?["):
        return [s for s in specs if fnmatch.fnmatchcase(s.name, pattern)]
    low = pattern.lower()
    return [s for s in specs if low in s.name.lower() or low == s.category.lower()]


def suggest(registry: Registry, pattern: str | None) -> str:
    close = registry.suggest(pattern or "")
    return f" (did you mean {' or '.join(close)}?)" if close else "; run `viwo ops` for the full list"


_SENTENCE_END = re.compile(r"[.!?](?=\s+[A-Z(`\"'])")


def first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence ("e.g. this" does not)."""
    text = " ".join(text.split())
    m = _SENTENCE_END.search(text)
    return text[: m.end()] if m else text


def op_list(specs: list[OpSpec]):
    """Opcodes grouped by category: signature, then the first sentence of the description."""
    from rich.text import Text

    out = Text()
    category = None
    for spec in specs:
        if spec.category != category:
            category = spec.category
            if out:
                out.append("\n")
            out.append(f"{category}\n", style="bold underline")
        out.append("  ")
        out.append(spec.signature(), style="cyan")
        if spec.description:
            out.append("\n      " + first_sentence(spec.description), style="dim")
        out.append("\n")
    out.rstrip()
    return out


def describe_op(spec: OpSpec):
    """One opcode in full: signature, description, parameters, return type."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from ..opcodes import REQUIRED

    head = Text(spec.signature(), style="bold cyan")
    facts = [f"category: {spec.category}"]
    if spec.lazy:
        facts.append("lazy (receives its arguments unevaluated)")
    if not spec.pure:
        facts.append("has effects outside the interpreter")
    parts: list[Any] = [head, Text("  ".join(facts), style="dim")]
    if spec.description:
        parts.append(Text("\n" + spec.description))
    if spec.params:
        table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
        for col in ("parameter", "type", "default", "description"):
            table.add_column(col)
        for p in spec.params:
            name = p.name + ("..." if p.variadic else "")
            kind = p.kind if p.kind != "value" else p.type
            if p.default is REQUIRED:
                default = "" if not p.variadic else f"(at least {p.at_least})" if p.at_least else ""
            else:
                default = json.dumps(p.default)
            desc = p.description + (f" One of: {', '.join(map(str, p.choices))}." if p.choices else "")
            table.add_row(name, kind, default, desc.strip())
        parts += [Text(""), table]
    parts.append(Text(f"\nreturns {spec.returns}", style="dim"))
    return Group(*parts)


# --------------------------------------------------------------------------------------------------
# Capabilities
# --------------------------------------------------------------------------------------------------


def capabilities(runtime) -> list[dict]:
    """One row per capability implementation: availability (and why not), grant, limits, methods.

    The rows of ``runtime.caps.status()`` with ``methods`` replaced by the full method metadata of
    ``get_capability_metadata`` (their one-line signatures stay under ``signatures``).
    """
    try:
        import viwoscript.capabilities.manager  # noqa: F401
    except ImportError:
        return []
    caps = runtime.caps
    meta = {m["type"]: m for m in caps.metadata()}
    rows = []
    for status in caps.status():
        row = dict(status)
        row["signatures"] = list(row.get("methods", []))
        row["methods"] = meta.get(row.get("type"), {}).get("methods", [])
        rows.append(row)
    return rows


def caps_view(entries: list[dict]):
    from rich.console import Group
    from rich.text import Text

    if not entries:
        return Text("no capabilities installed (install one, e.g. pip install 'viwoscript[diffusion]')")
    parts: list[Any] = []
    for e in entries:
        if e.get("type") is None:  # a plugin that failed to load
            parts += [Text(f"plugin error: {e.get('reason')}", style="red"), Text("")]
            continue
        line = Text(e["type"], style="bold")
        if e.get("provider"):
            fake = ", fake" if e.get("fake") and e["provider"] != "fake" else ""
            line.append(f"  ({e['provider']}{fake})", style="dim")
        if e.get("available"):
            line.append("  available", style="green")
        else:
            line.append("  unavailable" + (f": {e['reason']}" if e.get("reason") else ""), style="red")
        if e.get("granted"):
            line.append("  granted", style="green")
        elif e.get("selected", True):
            line.append("  not granted", style="yellow")
        else:
            line.append("  not in use", style="dim")
        parts.append(line)
        if e.get("description"):
            parts.append(Text("  " + e["description"], style="dim"))
        for sig, m in zip(e.get("signatures", []), e.get("methods", []) or [{}] * len(e.get("signatures", [])),
                          strict=False):
            parts.append(Text(f"    {sig}", style="cyan"))
            if m.get("description"):
                parts.append(Text("        " + first_sentence(m["description"]), style="dim"))
        limits = [f"{lim['name']}={json.dumps(lim['default'])}" for lim in e.get("limits", [])
                  if lim.get("default") is not None]
        if limits:
            parts.append(Text("  grant limits (defaults): " + ", ".join(limits), style="dim"))
        parts.append(Text(""))
    return Group(*parts)


def _param_text(p: dict) -> str:
    text = f"{p.get('name')}: {p.get('type', 'any')}"
    if "default" in p:
        text += f" = {json.dumps(p['default'])}"
    elif p.get("optional"):
        text += "?"
    return text


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


def config_view(cfg: Config, env: dict[str, str], searched: list):
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if cfg.path:
        head = Text(f"config file: {cfg.path}")
    else:
        head = Text("config file: none (searched " + ", ".join(str(p) for p in searched) + ")")
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("setting", "value", "source"):
        table.add_column(col)
    for key, s in cfg.settings.items():
        table.add_row(key, _value_text(key, s.value), s.source, style=None if s.source != "default" else "dim")
    parts: list[Any] = [head, Text(""), table]
    if env:
        parts += [Text(""), Text("environment (read by the libraries that define these):", style="bold")]
        parts += [Text(f"  {k}={'***' if 'TOKEN' in k else v}") for k, v in env.items()]
    return Group(*parts)


def _value_text(key: str, v: Any) -> str:
    if v is None:
        return "unlimited" if key in ("limits.gas", "limits.timeout") else "none"
    if key == "grants" and v == "default":
        return "default (every installed capability, default limits)"
    if isinstance(v, list):
        return ", ".join(json.dumps(i) if isinstance(i, dict) else str(i) for i in v) or "[] (nothing granted)"
    return str(v)
