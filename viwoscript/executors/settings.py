"""``[executor]`` in viwo.toml plus ``--executor``: which executor runs work, and how it is built.

.. code-block:: toml

    [executor]
    kind = "ray"             # "local" (default) or "ray"
    address = "auto"         # join a running Ray cluster; left out: start a local Ray instance
    num_workers = 2          # actors (default: one per GPU, else one per CPU)
    num_cpus = 0.5           # what each worker reserves (fractions allowed)
    num_gpus = 1
    resources = { sdxl = 1 } # custom Ray resources each worker needs (model affinity, node placement)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Config, ConfigError

#: Executor names accepted by ``--executor`` and ``[executor] kind``.
EXECUTORS = ("local", "ray")
KEYS = ("kind", "address", "num_workers", "num_cpus", "num_gpus", "resources")


@dataclass
class ExecutorConfig:
    kind: str = "local"
    address: str | None = None
    num_workers: int | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    resources: dict = field(default_factory=dict)

    def ray_options(self) -> dict:
        return {"address": self.address, "num_workers": self.num_workers, "num_cpus": self.num_cpus,
                "num_gpus": self.num_gpus, "resources": self.resources or None}


def _fail(key: str, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"config: executor.{key} {message}",
                       hint=hint or "fix [executor] in viwo.toml (see docs/distributed.md)")


def executor_config(cfg: Config | None, kind: str | None = None) -> ExecutorConfig:
    """The effective executor settings: ``[executor]`` of ``cfg``, then ``kind`` (``--executor``)."""
    table: dict[str, Any] = {}
    if cfg is not None and "executor" in cfg.settings:
        table = cfg.settings["executor"].value or {}
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], KEYS, n=1)
        raise ConfigError(f"config: unknown key executor.{unknown[0]}",
                          hint=(f"did you mean {close[0]!r}? " if close else "") + f"known: {', '.join(KEYS)}")
    ec = ExecutorConfig(kind=kind or table.get("kind", "local"))
    if ec.kind not in EXECUTORS:
        raise ConfigError(f"config: unknown executor {ec.kind!r}", hint=f"known: {', '.join(EXECUTORS)}")
    address = table.get("address")
    if address is not None and (not isinstance(address, str) or not address):
        raise _fail("address", f"must be an address like \"auto\" or \"ray://head:10001\", got {address!r}")
    ec.address = address
    n = table.get("num_workers")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 4096):
        raise _fail("num_workers", f"must be a whole number from 1 to 4096, got {n!r}")
    ec.num_workers = n
    for key in ("num_cpus", "num_gpus"):
        v = table.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < 0):
            raise _fail(key, f"must be a number of at least 0 (fractions allowed), got {v!r}")
        setattr(ec, key, v)
    res = table.get("resources", {})
    if not (isinstance(res, dict) and all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
                                          for v in res.values())):
        raise _fail("resources", f"must map resource names to amounts, got {res!r}", 'write resources = { sdxl = 1 }')
    ec.resources = dict(res)
    return ec


def make_executor(ec: ExecutorConfig, *, slots: int = 1, host: Any = None, models: dict | None = None,
                  settings: Any = None, **ray_extra: Any):
    """The executor ``ec`` describes (``local``: ``slots`` threads of this process; ``ray``: Ray actors)."""
    if ec.kind == "ray":
        from .ray import RayExecutor

        return RayExecutor(**ec.ray_options(), models=models, host=host, settings=settings, slots=slots,
                           **ray_extra)
    from .local import LocalExecutor

    return LocalExecutor(slots=slots, host=host)
