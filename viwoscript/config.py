"""``viwo.toml``: the command line's configuration, with where each value came from.

One file is read: the one given with ``--config``, else ``./viwo.toml``, else ``viwo.toml`` in the user
config directory (``~/.config/viwoscript/`` on Linux, via platformdirs). Command-line flags override it.
Relative paths in a file are relative to the directory holding that file.

.. code-block:: toml

    [limits]
    gas = 100_000_000        # or "unlimited"
    timeout = 600            # seconds, or "unlimited"

    [run]
    runner = "compiled"      # or "tree": the reference tree-walker (slower; for comparing)

    [canvas]
    width = 1024
    height = 1024

    [paths]
    roots = ["."]            # folders scripts may read files from
    out = "viwo-out"         # where images are saved

    [[grants]]               # absent: every installed capability with its default limits
    type = "diffusers.generate"
    params = { max_steps = 50, max_width = 1024 }
    provider = "fake"        # optional: which implementation (see `viwo caps`)

    [models]                 # read by viwoscript.models: aliases plus settings (default, device, ...)
    sd15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"   # alias = local dir or Hugging Face id
    default = "sd15"
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ViwoError
from .limits import CLI_DEFAULTS, Limits
from .nodes import Span

FILENAME = "viwo.toml"
APP_NAME = "viwoscript"
DEFAULT_OUT = "viwo-out"
MAX_CANVAS_SIDE = 16384
#: Environment variables other tools define that affect viwoscript; shown by ``viwo config``, never renamed.
RELEVANT_ENV = ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_TOKEN", "TRANSFORMERS_OFFLINE",
                "XDG_CONFIG_HOME", "NO_COLOR")

DEFAULT = "default"


class ConfigError(ViwoError):
    """A ``viwo.toml`` that cannot be used."""

    kind = "ConfigError"


@dataclass
class Setting:
    value: Any
    source: str = DEFAULT


_LIMIT_KEYS = ("gas", "timeout", "max_depth", "max_string", "max_list", "max_object", "max_nodes", "max_memory")
_UNLIMITED = ("gas", "timeout", "max_memory")
_SCHEMA = {
    "limits": _LIMIT_KEYS,
    "run": ("runner",),
    "canvas": ("width", "height"),
    "paths": ("roots", "out"),
    "grants": None,
    "models": None,
    "server": None,  # `viwo serve`: validated by viwoscript.server.config
    "executor": None,  # design §17: validated by viwoscript.server.config
}


@dataclass
class Config:
    """Effective settings. ``settings`` maps dotted keys (``limits.gas``) to value and source."""

    path: Path | None = None
    settings: dict[str, Setting] = field(default_factory=dict)
    #: Where relative defaults (roots, out) are anchored; the current directory when not given.
    cwd: Path | None = None

    def __post_init__(self) -> None:
        if not self.settings:
            base = (self.cwd or Path.cwd()).resolve()
            for key in _LIMIT_KEYS:
                self.settings[f"limits.{key}"] = Setting(getattr(CLI_DEFAULTS, key))
            self.settings["run.runner"] = Setting("compiled")
            self.settings["canvas.width"] = Setting(1024)
            self.settings["canvas.height"] = Setting(1024)
            self.settings["paths.roots"] = Setting([base])
            self.settings["paths.out"] = Setting(base / DEFAULT_OUT)
            self.settings["grants"] = Setting("default")

    def __getitem__(self, key: str) -> Any:
        return self.settings[key].value

    def set(self, key: str, value: Any, source: str, *, allow_none: bool = False) -> None:
        """Override a value (command-line flags); ``None`` leaves it unchanged unless ``allow_none``."""
        if value is not None or allow_none:
            self.settings[key] = Setting(value, source)

    # --- what the Runtime and the CLI need --------------------------------------------------------
    def limits(self) -> Limits:
        try:
            return Limits(**{k: self[f"limits.{k}"] for k in _LIMIT_KEYS})
        except ValueError as e:
            raise ConfigError(f"config: {e}", hint="fix [limits] in viwo.toml (see `viwo config`)") from None

    @property
    def canvas_size(self) -> tuple[int, int]:
        return (self["canvas.width"], self["canvas.height"])

    @property
    def roots(self) -> list[Path]:
        return list(self["paths.roots"])

    @property
    def out_dir(self) -> Path:
        return self["paths.out"]

    @property
    def grants(self) -> str | list[dict]:
        return self["grants"]

    @property
    def models(self) -> dict[str, Any]:
        """The ``[models]`` table: model aliases and loading settings (see ``viwoscript.models``)."""
        return {k.split(".", 1)[1]: s.value for k, s in self.settings.items() if k.startswith("models.")}

    def runtime_kwargs(self) -> dict:
        """Keyword arguments for :class:`viwoscript.runtime.Runtime`.

        With a ``[models]`` table, the model-running capabilities configured from it are added.
        """
        kw: dict[str, Any] = {"limits": self.limits(), "canvas_size": self.canvas_size, "roots": self.roots,
                              "grants": self.grants, "runner": self["run.runner"]}
        if self.models and _models_package():
            try:
                from .capabilities import capabilities

                kw["capabilities"] = capabilities(self.models)
            except ImportError as e:
                raise ConfigError(f"config: [models] is set but the model capabilities cannot load: {e}",
                                  hint="pip install 'viwoscript[diffusion]', or remove [models]") from None
        return kw

    def to_dict(self) -> dict:
        """``{key: {"value": ..., "source": ...}}`` with JSON-friendly values (``viwo config --json``)."""
        return {k: {"value": _plain(s.value), "source": s.source} for k, s in self.settings.items()}


def _plain(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, list | tuple):
        return [_plain(i) for i in v]
    if isinstance(v, dict):
        return {k: _plain(i) for k, i in v.items()}
    return v


def user_config_file() -> Path:
    import platformdirs

    return platformdirs.user_config_path(APP_NAME) / FILENAME


def find_config(explicit: str | os.PathLike | None = None, cwd: Path | None = None) -> Path | None:
    """The one file to read: ``explicit``, else ``./viwo.toml``, else the user's, else ``None``."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config: no such file: {path}", hint="check the --config path")
        return path
    local = (cwd or Path.cwd()) / FILENAME
    if local.is_file():
        return local
    user = user_config_file()
    return user if user.is_file() else None


def load_config(explicit: str | os.PathLike | None = None, cwd: Path | None = None) -> Config:
    """Defaults, then the one config file found (see :func:`find_config`)."""
    cfg = Config(cwd=cwd)
    path = find_config(explicit, cwd)
    if path is None:
        return cfg
    cfg.path = path.resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config: cannot read {path}: {e}", hint="the file must be UTF-8 TOML") from None
    apply_toml(cfg, text, cfg.path)
    return cfg


_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def apply_toml(cfg: Config, text: str, path: Path) -> None:
    """Validate a TOML document and record its values in ``cfg`` (source: the file's path)."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = _POS_RE.search(msg)
        span = Span(int(m.group(1)), int(m.group(2)), int(m.group(1)), int(m.group(2)) + 1, str(path)) if m else None
        raise ConfigError(f"config: invalid TOML: {_POS_RE.sub('', msg).strip()}", span,
                          hint="see https://toml.io for the syntax", source=text) from None
    source = str(path)
    base = path.parent
    where = _Locator(text, source)
    for table, value in data.items():
        if table not in _SCHEMA:
            raise where.error(table, None, f"config: unknown table [{table}]", _did_you_mean(table, _SCHEMA))
        if table == "grants":
            cfg.set("grants", _grants(value, where), source)
            continue
        if not isinstance(value, dict):
            raise where.error(table, None, f"config: [{table}] must be a table", f"write [{table}] on its own line")
        if table in ("server", "executor"):  # read by `viwo serve` (viwoscript.server.config)
            cfg.set(table, value, source)
            continue
        if table == "models":
            _check_models(value, where)
            for key, v in value.items():
                cfg.set(f"models.{key}", _model_path(key, v, base), source)
            continue
        allowed = _SCHEMA[table]
        for key, v in value.items():
            if key not in allowed:
                raise where.error(table, key, f"config: unknown key {table}.{key}", _did_you_mean(key, allowed))
            cfg.set(f"{table}.{key}", _validate(table, key, v, base, where), source, allow_none=True)


def _validate(table: str, key: str, v: Any, base: Path, where: _Locator) -> Any:
    name = f"{table}.{key}"
    if table == "limits":
        if key in _UNLIMITED and v == "unlimited":
            return None
        ok = (isinstance(v, int | float) and not isinstance(v, bool) and v > 0) if key == "timeout" else (
            isinstance(v, int) and not isinstance(v, bool) and v >= 1)
        if not ok:
            kind = "a positive number of seconds" if key == "timeout" else "a positive integer"
            extra = ' or "unlimited"' if key in _UNLIMITED else ""
            raise where.error(table, key, f"config: {name} must be {kind}{extra}, got {v!r}", None)
        return v
    if table == "run":
        from .runtime import RUNNERS

        if v not in RUNNERS:
            raise where.error(table, key, f"config: run.runner must be one of {', '.join(map(repr, RUNNERS))}, "
                              f"got {v!r}", 'write runner = "compiled" (the default) or runner = "tree" (the reference walker)')
        return v
    if table == "canvas":
        if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_CANVAS_SIDE):
            raise where.error(table, key, f"config: {name} must be an integer from 1 to {MAX_CANVAS_SIDE}, got {v!r}",
                              None)
        return v
    if key == "roots":
        if not (isinstance(v, list) and all(isinstance(i, str) and i for i in v)):
            raise where.error(table, key, "config: paths.roots must be a list of folder names",
                              'write roots = [".", "images"]')
        roots = [(base / Path(i).expanduser()).resolve() for i in v]
        missing = [str(r) for r in roots if not r.is_dir()]
        if missing:
            raise where.error(table, key, f"config: paths.roots: no such folder: {', '.join(missing)}",
                              "create it, or remove it from roots (like --root, roots must exist)")
        return roots
    if not (isinstance(v, str) and v):
        raise where.error(table, key, "config: paths.out must be a folder name", 'write out = "viwo-out"')
    return (base / Path(v).expanduser()).resolve()


def _model_path(key: str, v: Any, base: Path) -> Any:
    """A ``[models]`` folder setting (``checkpoints_dir``, ``upscale_dir``, ...) relative to the file's folder."""
    if not _models_package():
        return v
    from .models.config import PATH_SETTINGS

    if key not in PATH_SETTINGS or not isinstance(v, str) or not v:
        return v
    path = Path(v).expanduser()
    return v if path.is_absolute() else str((base / path).resolve())


def _models_package() -> bool:
    import importlib.util

    return importlib.util.find_spec(f"{__package__}.models") is not None


def _check_models(table: dict, where: _Locator) -> None:
    """``[models]`` is interpreted by ``viwoscript.models.ModelConfig`` (settings plus aliases)."""
    if not _models_package():
        return
    from .models.config import SETTINGS, ModelConfig

    for key, v in table.items():
        if key not in SETTINGS and not (isinstance(v, str) and v):
            raise where.error("models", key, f"config: models.{key} must be a string",
                              'an alias is alias = "local/dir" or alias = "org/model-id"; settings: '
                              + ", ".join(SETTINGS))
    try:
        ModelConfig.from_table(table)
    except (ViwoError, TypeError, ValueError) as e:
        message = getattr(e, "message", str(e))
        key = next((k for k in table if repr(k) in message or f"{k!r}" in message), None)
        raise where.error("models", key, f"config: {message}", getattr(e, "hint", None)) from None


def _grants(value: Any, where: _Locator) -> list[dict]:
    if not isinstance(value, list):
        raise where.error("grants", None, "config: grants must be an array of tables",
                          'write [[grants]] then type = "diffusers.generate"')
    out = []
    for i, g in enumerate(value):
        if not isinstance(g, dict):
            raise where.error("grants", None, f"config: grants[{i}] must be a table", "use [[grants]] tables")
        extra = set(g) - {"type", "params", "provider"}
        if extra:
            raise where.error("grants", sorted(extra)[0], f"config: grants[{i}] has unknown key {sorted(extra)[0]!r}",
                              "a grant has `type`, an optional `params` table and optional `provider`")
        if not isinstance(g.get("type"), str) or not g["type"]:
            raise where.error("grants", None, f"config: grants[{i}] needs a type", 'write type = "diffusers.generate"')
        params = g.get("params", {})
        if not isinstance(params, dict):
            raise where.error("grants", "params", f"config: grants[{i}].params must be a table",
                              "write params = { max_steps = 50 }")
        grant = {"type": g["type"], "params": dict(params)}
        if "provider" in g:
            if not isinstance(g["provider"], str) or not g["provider"]:
                raise where.error("grants", "provider", f"config: grants[{i}].provider must be a string",
                                  'the implementation to use, e.g. provider = "fake" (see `viwo caps`)')
            grant["provider"] = g["provider"]
        out.append(grant)
    return out


def _did_you_mean(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    known = ", ".join(options)
    return f"did you mean {close[0]!r}? (known: {known})" if close else f"known: {known}"


class _Locator:
    """Finds the line of a table or key in the TOML text so errors can point at it."""

    def __init__(self, text: str, file: str):
        self.text = text
        self.file = file

    def error(self, table: str, key: str | None, message: str, hint: str | None) -> ConfigError:
        return ConfigError(message, self._span(table, key), hint=hint, source=self.text)

    def _span(self, table: str, key: str | None) -> Span | None:
        lines = self.text.splitlines()
        start = 0
        header = re.compile(r"\s*\[\[?\s*" + re.escape(table) + r"\s*\]\]?\s*(#.*)?$")
        for i, line in enumerate(lines):
            if header.match(line):
                start = i
                if key is None:
                    col = line.index("[") + 1
                    return Span(i + 1, col, i + 1, len(line.rstrip()) + 1, self.file)
                break
        names = [key, f"{table}.{key}"] if key else [table]
        for i in range(start, len(lines)):
            for n in names:
                m = re.match(r"\s*(" + re.escape(n) + r")\s*=", lines[i])
                if m:
                    return Span(i + 1, m.start(1) + 1, i + 1, m.end(1) + 1, self.file)
        return Span(0, 0, file=self.file)
