"""Workflow templates: the original's ``.viwo-template.json`` format plus declared parameters.

A template file is a JSON object::

    {"id": "8d0c…", "name": "comet", "description": "A comet over a town", "author": "ada",
     "created": 1718000000000,                       # ms since the epoch (the original's Date.now())
     "script": ["std.seq", …],                        # the JSON form of the script
     "parameters": [{"name": "prompt", "type": "string", "default": "a comet"},
                    {"name": "seed", "type": "number", "default": 7}],
     "metadata": {"version": "1.0", "tags": ["night"], "thumbnail": "data:image/png;base64,…"}}

Parameter *i* is the script's argument *i* (``std.arg i``). :func:`parse_template` validates the JSON
against this schema with precise errors (``template.parameters[1].type: expected one of …``) and checks
the script statically before accepting it with the caller's ``check`` callable (``runtime.check``, so the
opcodes of the Runtime that will run it count). This module builds no Runtime (design §14: the composition
root is above it); the store below it keeps template data only.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ArgumentError, ScriptError

#: A static check: script (text, JSON data or nodes) -> diagnostics, e.g. ``runtime.check``.
Check = Callable[[Any], list]

SUFFIX = ".viwo-template.json"
PARAM_TYPES = ("string", "number", "integer", "boolean", "array", "object", "any")
#: A template's name is free text ("Mon portrait ✨ v2"): 1–100 characters, no control characters or line
#: breaks, no spaces at either end. Names are data (a store row, a JSON field), never paths: a file name
#: made from one goes through :func:`template_filename`.
MAX_NAME = 100
_UNSAFE_FILENAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
_FIELDS = ("id", "name", "description", "author", "created", "script", "parameters", "metadata")
MAX_TEMPLATE_BYTES = 16 * 1024 * 1024


class TemplateError(ArgumentError):
    """A template file that does not match the schema or whose script does not check."""


@dataclass
class Parameter:
    name: str
    type: str = "any"
    default: Any = None
    description: str = ""
    required: bool = False

    def to_json(self) -> dict:
        d: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.required:
            d["required"] = True
        else:
            d["default"] = self.default
        if self.description:
            d["description"] = self.description
        return d


@dataclass
class Template:
    name: str
    script: Any
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    description: str = ""
    author: str = ""
    created: int = field(default_factory=lambda: int(time.time() * 1000))
    parameters: list[Parameter] = field(default_factory=list)
    metadata: dict = field(default_factory=lambda: {"version": "1.0", "tags": []})

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "description": self.description, "author": self.author,
                "created": self.created, "script": self.script,
                "parameters": [p.to_json() for p in self.parameters], "metadata": self.metadata}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    def bind(self, args: list | dict | None = None) -> list:
        """Script arguments in parameter order: from a list (positional) or a dict (by name), defaults
        filled in, types checked. Unknown names and missing required parameters are errors."""
        return bind_args(self, args)


def _fail(where: str, message: str, source: str | None) -> TemplateError:
    prefix = f"template import: {source}: " if source else "template import: "
    return TemplateError(f"{prefix}{where}: {message}",
                         hint=f"a template is a JSON object with {', '.join(_FIELDS)} (see docs/templates.md)")


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (isinstance(value, float) and value.is_integer())
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def parse_template(data: Any, *, runtime: Any = None, source: str | None = None,
                   check: bool | Check = True) -> Template:
    """Validate template data (a dict, or JSON text) and return a :class:`Template`.

    Every field is checked against the schema; the script must parse and pass the static check: ``check``
    when it is a callable (``runtime.check``), else ``runtime.check`` of the ``runtime`` given (one of the
    two is required); ``check=False`` skips it (data the store already accepted). Raises
    :class:`TemplateError` naming the field.
    """
    if check is True and runtime is None:
        raise TypeError("templates: pass check=runtime.check (the static check of the Runtime that will run "
                        "the template), runtime=runtime, or check=False to skip the check")
    if isinstance(data, bytes | str):
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        try:
            data = json.loads(text)
        except ValueError as e:
            raise _fail(f"line {getattr(e, 'lineno', '?')} column {getattr(e, 'colno', '?')}",
                        f"not valid JSON ({getattr(e, 'msg', e)})", source) from None
    if not isinstance(data, dict):
        raise _fail("template", f"expected a JSON object, got {type(data).__name__}", source)
    for key in data:
        if key not in _FIELDS:
            raise _fail(f"template.{key}", "unknown field", source)
    for key in ("name", "script"):
        if key not in data:
            raise _fail(f"template.{key}", "missing (required)", source)
    name = data["name"]
    problem = name_problem(name)
    if problem:
        raise _fail("template.name", f"{problem}, got {json.dumps(name, ensure_ascii=False)[:120]}", source)
    name = unicodedata.normalize("NFC", name)
    for key in ("id", "description", "author"):
        if key in data and not isinstance(data[key], str):
            raise _fail(f"template.{key}", f"expected a string, got {json.dumps(data[key])}", source)
    created = data.get("created", int(time.time() * 1000))
    if isinstance(created, bool) or not isinstance(created, int | float) or created < 0:
        raise _fail("template.created", f"expected milliseconds since 1970 (a number), got {json.dumps(created)}",
                    source)
    params = _parse_parameters(data.get("parameters", []), source)
    meta = data.get("metadata", {"version": "1.0", "tags": []})
    if not isinstance(meta, dict):
        raise _fail("template.metadata", "expected an object {version, tags, thumbnail?}", source)
    if "version" in meta and not isinstance(meta["version"], str):
        raise _fail("template.metadata.version", f"expected a string, got {json.dumps(meta['version'])}", source)
    tags = meta.get("tags", [])
    if not isinstance(tags, list):
        raise _fail("template.metadata.tags", "expected a list of strings", source)
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise _fail(f"template.metadata.tags[{i}]", f"expected a string, got {json.dumps(tag)}", source)
    if "thumbnail" in meta and meta["thumbnail"] is not None and not (
            isinstance(meta["thumbnail"], str) and meta["thumbnail"].startswith("data:image/")):
        raise _fail("template.metadata.thumbnail", "expected a data:image/... URL", source)
    script = data["script"]
    if check is not False:
        check_script(script, check=check if callable(check) else None, runtime=runtime, source=source)
    return Template(name=name, script=script, id=data.get("id") or str(uuid.uuid4()),
                    description=data.get("description", ""), author=data.get("author", ""), created=int(created),
                    parameters=params, metadata={"version": "1.0", "tags": [], **meta})


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name a template (None when it can): free text of 1–100 characters without
    control characters or line breaks, not blank, no spaces at either end."""
    if not isinstance(name, str):
        return "expected a name (text)"
    if not name.strip():
        return "expected a name (1–100 characters, not blank)"
    if len(name) > MAX_NAME:
        return f"a name has at most {MAX_NAME} characters"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") for c in name):
        return "a name may not hold control characters or line breaks"
    if name != name.strip():
        return "a name may not start or end with a space"
    return None


def template_filename(name: str) -> str:
    """A file name for a template's export, ``NAME.viwo-template.json``: characters that file systems
    refuse (``/ \\ : * ? " < > |``, control characters) become ``_``, leading dots and spaces go."""
    base = _UNSAFE_FILENAME.sub("_", name).strip(" .") or "template"
    while len(base.encode("utf-8")) > 200:
        base = base[:-1]
    return base + SUFFIX


def _parse_parameters(raw: Any, source: str | None) -> list[Parameter]:
    if not isinstance(raw, list):
        raise _fail("template.parameters", "expected a list of {name, type, default}", source)
    out: list[Parameter] = []
    seen: set[str] = set()
    for i, p in enumerate(raw):
        where = f"template.parameters[{i}]"
        if not isinstance(p, dict):
            raise _fail(where, "expected an object {name, type, default}", source)
        for key in p:
            if key not in ("name", "type", "default", "description", "required"):
                raise _fail(f"{where}.{key}", "unknown field", source)
        name = p.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise _fail(f"{where}.name", f"expected an identifier, got {json.dumps(name)}", source)
        if name in seen:
            raise _fail(f"{where}.name", f"duplicate parameter '{name}'", source)
        seen.add(name)
        kind = p.get("type", "any")
        if kind not in PARAM_TYPES:
            raise _fail(f"{where}.type", f"expected one of {', '.join(PARAM_TYPES)}, got {json.dumps(kind)}", source)
        required = p.get("required", "default" not in p)
        if not isinstance(required, bool):
            raise _fail(f"{where}.required", "expected true or false", source)
        default = p.get("default")
        if "default" in p and default is not None and not _type_ok(default, kind):
            raise _fail(f"{where}.default", f"expected a {kind}, got {json.dumps(default)}", source)
        desc = p.get("description", "")
        if not isinstance(desc, str):
            raise _fail(f"{where}.description", "expected a string", source)
        out.append(Parameter(name, kind, default, desc, required))
    return out


def check_script(script: Any, *, check: Check | None = None, runtime: Any = None, source: str | None = None) -> None:
    """Parse and statically check a template's script; raise TemplateError with every error found.

    ``check`` (else ``runtime.check``) returns the diagnostics: this module builds no Runtime and knows no
    registry, so the caller says which opcodes a template may use."""
    check = check or (runtime.check if runtime is not None else None)
    if check is None:
        raise TypeError("templates: pass check=runtime.check (the static check of the Runtime that will run "
                        "the template), runtime=runtime, or check=False to skip the check")
    text = script if isinstance(script, str) else None
    try:
        diagnostics = check(script)
    except (TypeError, ValueError) as e:
        raise _fail("template.script", f"not a script ({e})", source) from None
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        listing = "; ".join(d.render(text).splitlines()[0] if text else d.message for d in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise _fail("template.script", f"{len(errors)} error(s): {listing}{more}", source)


def bind_args(template: Template, args: list | dict | None) -> list:
    """Arguments for ``template``'s script (see :meth:`Template.bind`)."""
    params = template.parameters
    where = f"template '{template.name}'"
    values: dict[str, Any] = {}
    if isinstance(args, dict):
        for key, value in args.items():
            if not any(p.name == key for p in params):
                raise ArgumentError(f"{where}: unknown parameter '{key}'",
                                    hint="parameters: " + (", ".join(p.name for p in params) or "none"))
            values[key] = value
    elif args:
        if len(args) > len(params):
            raise ArgumentError(f"{where}: takes {len(params)} argument(s), got {len(args)}")
        values = {p.name: v for p, v in zip(params, args, strict=False)}
    out = []
    for p in params:
        if p.name in values:
            v = values[p.name]
            if v is not None and not _type_ok(v, p.type):
                if p.type in ("number", "integer") and isinstance(v, str):
                    try:
                        v = json.loads(v)
                    except ValueError:
                        pass
                if not _type_ok(v, p.type):
                    raise ArgumentError(f"{where}: parameter '{p.name}' expects a {p.type}, got {json.dumps(v)}")
            out.append(int(v) if p.type == "integer" and isinstance(v, float) else v)
        elif p.required:
            raise ArgumentError(f"{where}: missing required parameter '{p.name}'",
                                hint=f"pass it with --arg {p.name}=...")
        else:
            out.append(p.default)
    return out


def load_template_file(path: str | Path, *, runtime: Any = None, check: bool | Check = True) -> Template:
    """Read and validate a ``.viwo-template.json`` file (import)."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_TEMPLATE_BYTES:
            raise _fail("template", f"file is larger than {MAX_TEMPLATE_BYTES} bytes", p.name)
        data = p.read_bytes()
    except OSError as e:
        raise ScriptError(f"template import: cannot read {p}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _fail("template", f"not UTF-8 text (byte {e.start})", p.name) from None
    return parse_template(text, runtime=runtime, source=p.name, check=check)


def stored_template(store: Any, name: str) -> Template:
    """The template called ``name`` (or with that id) in ``store`` (checked when it was saved)."""
    return parse_template(store.template_data(name), source=f"store template '{name}'", check=False)


def export_template(template: Template, path: str | Path) -> Path:
    """Write a template file (``NAME.viwo-template.json`` when ``path`` is a folder), atomically."""
    from .io.files import atomic_write

    p = Path(path)
    if p.is_dir():
        p = p / template_filename(template.name)
    return atomic_write(p, template.dumps().encode("utf-8"), fsync=False)


def template_from_script(name: str, script: Any, *, description: str = "", author: str = "",
                         parameters: list[dict] | None = None, tags: list[str] | None = None,
                         runtime: Any = None, check: bool | Check = True) -> Template:
    """A new template from a script (text or JSON data; stored in JSON form), validated like an import."""
    from .errors import ViwoSyntaxError
    from .nodes import Array, Atom, Object, to_data
    from .syntax import parse

    if isinstance(script, str):
        try:
            script = runtime.parse(script) if runtime is not None else parse(script)
        except ViwoSyntaxError:
            pass  # kept as text: the check below reports where it fails
    if isinstance(script, Array | Atom | Object):
        script = to_data(script)
    data = {"name": name, "script": script, "description": description, "author": author,
            "parameters": parameters or [], "metadata": {"version": "1.0", "tags": list(tags or [])}}
    return parse_template(data, runtime=runtime, check=check)
