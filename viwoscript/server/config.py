"""``[server]`` in viwo.toml plus the ``viwo serve`` flags: one :class:`ServerConfig`.

.. code-block:: toml

    [server]
    host = "127.0.0.1"            # another address needs an explicit token (or users)
    port = 8080
    token = "s3cret"              # the "default" user's token; absent: a fresh random one per start
    users = { alice = "token-a", bob = "token-b" }   # several users, each with their own jobs and files
    roots = ["images"]            # folders scripts may read (default: [paths] roots)
    data = "viwo-server"          # where jobs, uploads and per-user stores live (default: user data dir)
    max_upload_size = 67108864    # bytes per POST /blobs (64 MiB)
    max_message_size = 16777216   # bytes per WebSocket message (16 MiB)
    max_queued_jobs = 100         # queued jobs per client
    allowed_origins = ["http://localhost:5173"]   # browser pages on other origins allowed to connect
    slots = 1                     # jobs run at once (executor slots)
    grants = [{ type = "diffusers.generate", params = { max_steps = 30 } }]   # default: [[grants]] / all
    limits = { gas = 1_000_000_000, timeout = 600 }   # per-job maximums (a client's gas is clamped)

    [executor]
    kind = "local"                # or "ray": jobs run on Ray workers (docs/distributed.md)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config, ConfigError
from ..limits import Limits

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_USER = "default"
DEFAULT_GAS = 1_000_000_000
DEFAULT_TIMEOUT = 600.0
MiB = 1024 * 1024

_KEYS = ("host", "port", "token", "users", "roots", "data", "max_upload_size", "max_message_size",
         "max_queued_jobs", "allowed_origins", "slots", "grants", "limits")
_LIMIT_KEYS = ("gas", "timeout", "max_depth", "max_string", "max_list", "max_object")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: token -> user name
    tokens: dict[str, str] = field(default_factory=dict)
    #: Whether the tokens were given (flag or config) rather than generated.
    explicit_token: bool = False
    roots: list[Path] = field(default_factory=list)
    data: Path | None = None
    max_upload_size: int = 64 * MiB
    max_message_size: int = 16 * MiB
    max_queued_jobs: int = 100
    allowed_origins: list[str] = field(default_factory=list)
    slots: int = 1
    grants: Any = "default"
    limits: Limits = field(default_factory=lambda: Limits(gas=DEFAULT_GAS, timeout=DEFAULT_TIMEOUT))
    canvas_size: tuple[int, int] = (1024, 1024)
    runner: str = "compiled"
    executor: str = "local"
    #: ``[executor]`` (``viwoscript.executors.settings.ExecutorConfig``) and the ``[models]`` table Ray
    #: workers configure their model capabilities from.
    executor_config: Any = None
    models: dict | None = None
    #: Extra Runtime keyword arguments for every job (``capabilities`` from ``[models]``, test ``opcodes``).
    runtime_kwargs: dict = field(default_factory=dict)
    verbose: bool = False

    @property
    def users(self) -> list[str]:
        return sorted(set(self.tokens.values()))

    def token_for(self, user: str = DEFAULT_USER) -> str | None:
        return next((t for t, u in self.tokens.items() if u == user), None)

    def url(self, user: str | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        token = self.token_for(user) if user else next(iter(self.tokens), None)
        return f"http://{host}:{self.port}/" + (f"?token={token}" if token else "")

    def check_exposure(self) -> None:
        """Binding a non-loopback address needs an explicit token."""
        if self.host not in LOOPBACK and not self.explicit_token:
            raise ConfigError(f"serve: refusing to listen on {self.host} with a generated token",
                              hint="give --token (or [server] token / users in viwo.toml) to serve beyond this machine")


def _fail(key: str, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"config: server.{key} {message}", hint=hint or "fix [server] in viwo.toml (see docs/server.md)")


def _int(table: dict, key: str, default: int, lo: int, hi: int) -> int:
    v = table.get(key, default)
    if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
        raise _fail(key, f"must be a whole number from {lo} to {hi}, got {v!r}")
    return v


def server_config(cfg: Config, *, host: str | None = None, port: int | None = None, token: str | None = None,
                  executor: str | None = None, verbose: bool = False) -> ServerConfig:
    """The effective server settings: ``[server]`` of ``cfg``, then the command-line flags."""
    table = cfg.settings["server"].value if "server" in cfg.settings else {}
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], _KEYS, n=1)
        raise ConfigError(f"config: unknown key server.{unknown[0]}",
                          hint=(f"did you mean {close[0]!r}? " if close else "") + f"known: {', '.join(_KEYS)}")
    base = cfg.path.parent if cfg.path else Path.cwd()
    sc = ServerConfig(canvas_size=cfg.canvas_size, runner=cfg["run.runner"], verbose=verbose)
    sc.host = host or table.get("host", DEFAULT_HOST)
    if not isinstance(sc.host, str) or not sc.host:
        raise _fail("host", f"must be an address, got {sc.host!r}", 'write host = "127.0.0.1"')
    sc.port = port if port is not None else _int(table, "port", DEFAULT_PORT, 0, 65535)
    users = table.get("users", {})
    if not isinstance(users, dict) or not all(isinstance(k, str) and isinstance(v, str) and len(v) >= 8
                                              for k, v in users.items()):
        raise _fail("users", "must map user names to tokens of at least 8 characters",
                    'write users = { alice = "a-long-token" }')
    for name, tok in users.items():
        sc.tokens[tok] = name
    tok = token if token is not None else table.get("token")
    if tok is not None:
        if not isinstance(tok, str) or len(tok) < 8:
            raise _fail("token", "must be a string of at least 8 characters")
        sc.tokens[tok] = DEFAULT_USER
    sc.explicit_token = bool(sc.tokens)
    if not sc.tokens:
        sc.tokens[secrets.token_urlsafe(24)] = DEFAULT_USER
    roots = table.get("roots")
    if roots is None:
        sc.roots = list(cfg.roots)
    else:
        if not (isinstance(roots, list) and all(isinstance(r, str) and r for r in roots)):
            raise _fail("roots", "must be a list of folder names", 'write roots = ["images"]')
        sc.roots = [(base / Path(r).expanduser()).resolve() for r in roots]
        missing = [str(r) for r in sc.roots if not r.is_dir()]
        if missing:
            raise _fail("roots", f": no such folder: {', '.join(missing)}", "create it or remove it from roots")
    data = table.get("data")
    if data is not None:
        if not isinstance(data, str) or not data:
            raise _fail("data", "must be a folder name", 'write data = "viwo-server"')
        sc.data = (base / Path(data).expanduser()).resolve()
    sc.max_upload_size = _int(table, "max_upload_size", sc.max_upload_size, 1024, 2**40)
    sc.max_message_size = _int(table, "max_message_size", sc.max_message_size, 1024, 2**31)
    sc.max_queued_jobs = _int(table, "max_queued_jobs", sc.max_queued_jobs, 1, 10**6)
    sc.slots = _int(table, "slots", sc.slots, 1, 1024)
    origins = table.get("allowed_origins", [])
    if not (isinstance(origins, list) and all(isinstance(o, str) and "://" in o for o in origins)):
        raise _fail("allowed_origins", "must be a list of origins like \"http://localhost:5173\"")
    sc.allowed_origins = [o.rstrip("/") for o in origins]
    if "grants" in table:
        from ..config import _grants, _Locator

        sc.grants = _grants(table["grants"], _Locator("", str(cfg.path or "viwo.toml")))
    else:
        sc.grants = cfg.grants
    sc.limits = _limits(table.get("limits", {}))
    from ..executors.settings import executor_config

    sc.executor_config = executor_config(cfg, executor)
    sc.executor = sc.executor_config.kind
    sc.models = cfg.models or None
    return sc


def _limits(table: Any) -> Limits:
    if not isinstance(table, dict):
        raise _fail("limits", "must be a table", "write limits = { gas = 1000000000, timeout = 600 }")
    unknown = sorted(set(table) - set(_LIMIT_KEYS))
    if unknown:
        raise _fail("limits", f"has unknown key {unknown[0]!r}", f"known: {', '.join(_LIMIT_KEYS)}")
    values = {"gas": DEFAULT_GAS, "timeout": DEFAULT_TIMEOUT, **table}
    for k in ("gas", "timeout"):
        if values[k] == "unlimited":
            values[k] = None
    try:
        return Limits(**values)
    except (TypeError, ValueError) as e:
        raise _fail("limits", f"is invalid: {e}") from None
