"""The pipeline manager: loads each base model once and shares its weights between tasks.

One per Runtime (``runtime.models``), or shared between Runtimes by assigning the same object. Each
base model is one cache entry holding one pipeline; text-to-image, img2img, inpaint and ControlNet
pipelines of that model are made from it with ``from_pipe`` and hold the *same* component objects (no
copy). ControlNets are entries of their own. The cache is bounded by bytes (the weights' real size);
the least recently used entry is evicted first; :meth:`ModelManager.unload` drops entries explicitly.

Device and dtype policy: CUDA with float16 when available (bfloat16 or float32 on request), else the
CPU with float32 (never float16 on a CPU). Safety checker off unless configured.

Pipelines run on one long-lived worker thread per manager (:meth:`ModelManager.call`): PyTorch keeps
cuDNN execution plans (convolutions, attention) per thread, and a fresh thread per script run rebuilt
them every call — measured on an H100, a warm tiny-model call took 2× the plain diffusers call.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ScriptError
from .config import ModelConfig
from .device import device_policy
from .resolve import ResolvedModel
from .samplers import build_scheduler, choose

DEFAULT_CACHE_BYTES = 16 * 2**30

#: family → task → diffusers pipeline class name (the only names this module ever looks up).
TASK_CLASSES = {
    "sd15": {"txt2img": "StableDiffusionPipeline", "img2img": "StableDiffusionImg2ImgPipeline",
             "inpaint": "StableDiffusionInpaintPipeline", "controlnet": "StableDiffusionControlNetPipeline"},
    "sdxl": {"txt2img": "StableDiffusionXLPipeline", "img2img": "StableDiffusionXLImg2ImgPipeline",
             "inpaint": "StableDiffusionXLInpaintPipeline", "controlnet": "StableDiffusionXLControlNetPipeline"},
}
TASKS = ("txt2img", "img2img", "inpaint", "controlnet")

@dataclass
class Entry:
    """One loaded set of weights: a base pipeline (and its task pipelines), a ControlNet, or any other
    network a capability loads through :meth:`ModelManager.hold` (upscalers, face restorers, annotators)."""

    key: tuple
    name: str
    path: str
    kind: str
    family: str | None
    obj: Any
    nbytes: int
    device: str
    dtype: Any
    tasks: dict = field(default_factory=dict)
    #: LoRA adapters loaded into this base's shared modules: adapter name → file (see :mod:`.lora`).
    adapters: dict = field(default_factory=dict)

    @classmethod
    def of(cls, key: tuple, model: ResolvedModel, obj: Any, nbytes: int, device: str, dtype: Any) -> Entry:
        return cls(key, model.name, str(model.path), model.kind, model.family, obj, nbytes, device, dtype)


def module_bytes(modules: Iterable[Any]) -> int:
    """Bytes of the parameters and buffers of torch modules (each tensor counted once)."""
    seen: set[int] = set()
    total = 0
    for m in modules:
        if m is None or not hasattr(m, "parameters"):
            continue
        for t in (*m.parameters(), *m.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
    return total


def pipeline_modules(pipe: Any) -> list:
    return [v for v in pipe.components.values() if hasattr(v, "parameters")]


class ModelManager:
    """Loaded models of one Runtime (or of several, when a host shares it).

    ``max_bytes``: most bytes of weights kept loaded (default: the configuration's ``cache_bytes``,
    else 16 GiB). ``loads`` counts weight loads and ``evictions`` evicted entries (benchmarks and tests
    read them).
    """

    def __init__(self, max_bytes: int | None = None):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()
        self.loads = 0
        self.evictions = 0
        self._worker: Any = None  # a one-thread executor, made on first use
        self._worker_lock = threading.Lock()
        #: Guards the entries: Runtimes sharing this manager may load from several threads.
        self._lock = threading.RLock()

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` on this manager's worker thread and return its result (or raise its error).

        The same thread every time, so per-thread GPU state (cuDNN plans, cuBLAS handles) is built once;
        runs of Runtimes sharing this manager are serialised. Called on the worker itself (a host
        callback that runs another script), ``fn`` runs directly."""
        if threading.current_thread().name.startswith("viwo-models"):
            return fn()
        with self._worker_lock:
            if self._worker is None:
                from concurrent.futures import ThreadPoolExecutor

                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="viwo-models")
        return self._worker.submit(fn).result()

    # --- public ----------------------------------------------------------------------------------
    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._entries.values())

    def hold(self, key: tuple, load: Callable[[], tuple[Any, int]], *, name: str, path: str | Path, kind: str,
             estimate: int = 0, device: str = "cpu", dtype: Any = None) -> Any:
        """Weights other than diffusers pipelines (upscaling and face-restoration networks, ControlNet
        annotators, detectors): the object cached under ``key`` (``(kind, path, device, ...)``), else
        ``load()`` → ``(object, bytes)`` after making room for ``estimate`` bytes. They share the one byte
        budget and LRU order with the pipelines, and :meth:`unload`/:meth:`loaded` see them."""
        key = ("held", *key)
        with self._lock:
            entry = self._get(key)
            if entry is not None:
                return entry.obj
            self._make_room(estimate, [key], None)
            obj, nbytes = load()
            self.loads += 1
            self._add(Entry(key, name, str(path), kind, None, obj, int(nbytes), device, dtype), [key], None)
            return obj

    def loaded(self) -> list[dict]:
        """What is loaded, least recently used first: ``{name, path, kind, family, bytes, device, tasks}``."""
        with self._lock:
            entries = list(self._entries.values())
        return [{"name": e.name, "path": e.path, "kind": e.kind, "family": e.family,
                 "bytes": e.nbytes, "device": e.device, "dtype": str(e.dtype).replace("torch.", ""),
                 "tasks": sorted(k if isinstance(k, str) else k[0] for k in e.tasks if k != "_scheduler_config")}
                for e in entries]

    def unload(self, name_or_path: str | Path | None = None) -> int:
        """Drop every entry (``None``) or those whose name or folder matches; returns how many."""
        with self._lock:
            doomed = [k for k, e in self._entries.items()
                      if name_or_path is None or e.name == name_or_path or e.path == str(name_or_path)]
            for k in doomed:
                del self._entries[k]
        if doomed:
            _release()
        return len(doomed)

    def pipeline(self, model: ResolvedModel, task: str, config: ModelConfig,
                 controlnets: list[ResolvedModel] | None = None, loras: list | None = None) -> Any:
        """The ``task`` pipeline of ``model`` (one of :data:`TASKS`), sharing the base's components, with
        exactly the LoRAs ``loras`` (:class:`~.lora.LoraFile` list) switched on — none when empty: the
        base's adapters are shared by all its pipelines, so every caller sets them (call this on the
        worker thread, :meth:`call`, in the same call that runs the pipeline)."""
        import diffusers

        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}")
        with self._lock:
            pipe, entry = self._pipeline(model, task, config, controlnets, diffusers)
            if loras or entry.adapters:
                from .lora import activate

                activate(pipe, entry.adapters, list(loras or ()), model.family)
            return pipe

    def _pipeline(self, model, task, config, controlnets, diffusers) -> tuple[Any, Entry]:
        keep = [self._key(model, config)] + [self._key(c, config) for c in controlnets or ()]
        entry = self._base(model, config, keep)
        nets = [self.controlnet(c, config, keep) for c in controlnets or ()]
        tkey: Any = task if not nets else (task, *(str(c.path) for c in controlnets))
        pipe = entry.tasks.get(tkey)
        if pipe is None:
            if type(entry.obj).__name__ == TASK_CLASSES[model.family][task] and not nets:
                pipe = entry.obj
            else:
                cls = getattr(diffusers, TASK_CLASSES[model.family][task])
                extra = {}
                if nets:
                    extra["controlnet"] = nets[0] if len(nets) == 1 else _multi(nets)
                pipe = cls.from_pipe(entry.obj, **extra)
                pipe.set_progress_bar_config(disable=True)
            if nets:  # ControlNet pipelines are cheap wrappers; keep only the latest combination
                for k in [k for k in entry.tasks if isinstance(k, tuple)]:
                    del entry.tasks[k]
            entry.tasks[tkey] = pipe
        return pipe, entry

    def controlnet(self, model: ResolvedModel, config: ModelConfig, keep: list | None = None) -> Any:
        """A loaded ControlNet (its own cache entry)."""
        key = self._key(model, config)
        with self._lock:
            return self._controlnet(model, config, key, keep)

    def _controlnet(self, model: ResolvedModel, config: ModelConfig, key: tuple, keep: list | None) -> Any:
        entry = self._get(key)
        if entry is None:
            import diffusers

            device, dtype = device_policy(config)
            self._make_room(_disk_bytes(model.path, dtype), keep or [key], config)
            try:
                net = diffusers.ControlNetModel.from_pretrained(model.path, dtype=dtype)
            except (OSError, ValueError, RuntimeError) as e:
                raise ScriptError(f"models: cannot load ControlNet {model.name!r} from {model.path}: {e}",
                                  hint="check that the folder holds a complete diffusers ControlNet") from None
            if not config.cpu_offload and device != "cpu":
                net.to(device)
            self.loads += 1
            entry = self._add(Entry.of(key, model, net, module_bytes([net]), device, dtype), keep or [key], config)
        return entry.obj

    @staticmethod
    def scheduler(pipe: Any, name: str | None, base_config: Any = None, *, schedule_type: str | None = None,
                  timestep_spacing: str | None = None, seed: int | None = None) -> Any:
        """A fresh scheduler for one call: ``name`` (ours or A1111's, see :mod:`.samplers`), else the
        model's own kind (not the previous call's choice, which the pipe still holds), with the
        ``schedule_type``/``timestep_spacing`` flags."""
        cfg = base_config if base_config is not None else pipe.scheduler.config
        choice = choose(name, schedule_type, timestep_spacing, own_class=str(cfg.get("_class_name", "")) or None)
        return build_scheduler(choice, cfg, type(pipe.scheduler), seed=seed)

    def base_scheduler_config(self, model: ResolvedModel, config: ModelConfig) -> Any:
        with self._lock:
            entry = self._entries.get(self._key(model, config))
        return entry.tasks.get("_scheduler_config") if entry else None

    # --- internals -------------------------------------------------------------------------------
    @staticmethod
    def _key(model: ResolvedModel, config: ModelConfig) -> tuple:
        extra = () if model.checkpoint is None else (model.checkpoint.variant, model.checkpoint.prediction_type)
        return (model.kind, str(model.path), *config.load_key(), *extra)

    def _budget(self, config: ModelConfig | None = None) -> int:
        if self.max_bytes is not None:
            return self.max_bytes
        if config is not None and config.cache_bytes is not None:
            return config.cache_bytes
        return DEFAULT_CACHE_BYTES

    def _get(self, key: tuple) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def _base(self, model: ResolvedModel, config: ModelConfig, keep: list) -> Entry:
        key = self._key(model, config)
        entry = self._get(key)
        if entry is not None:
            return entry
        import diffusers

        device, dtype = device_policy(config)
        self._make_room(_disk_bytes(model.path, dtype), keep, config)
        kwargs: dict[str, Any] = {"dtype": dtype}
        if model.family == "sd15" and not config.safety_checker:
            kwargs.update(safety_checker=None, requires_safety_checker=False)
        cls = getattr(diffusers, model.class_name)
        try:
            if model.checkpoint is not None:  # a single-file checkpoint (models/checkpoints.py)
                from .checkpoints import load_pipeline

                pipe = load_pipeline(model.path, model.checkpoint, dtype=dtype, allow_pickle=config.allow_pickle,
                                     safety_checker=config.safety_checker)
            else:
                pipe = cls.from_pretrained(model.path, **kwargs)
        except (OSError, ValueError, RuntimeError, TypeError, KeyError, PermissionError) as e:
            what = "checkpoint file" if model.checkpoint is not None else "folder"
            raise ScriptError(f"models: cannot load {model.name!r} from {model.path}: {e}",
                              hint=f"check that the {what} holds a complete "
                              + ("Stable Diffusion checkpoint" if model.checkpoint is not None
                                 else "diffusers pipeline")) from None
        self.loads += 1
        if config.cpu_offload and device != "cpu":
            pipe.enable_model_cpu_offload()
        elif device != "cpu":
            pipe.to(device)
        if config.vae_tiling:
            pipe.vae.enable_tiling()
        if config.vae_slicing:
            pipe.vae.enable_slicing()
        pipe.set_progress_bar_config(disable=True)
        entry = Entry.of(key, model, pipe, module_bytes(pipeline_modules(pipe)), device, dtype)
        entry.tasks["_scheduler_config"] = pipe.scheduler.config
        return self._add(entry, keep, config)

    def _add(self, entry: Entry, keep: list, config: ModelConfig) -> Entry:
        self._entries[entry.key] = entry
        self._entries.move_to_end(entry.key)
        self._make_room(0, keep, config)
        return entry

    def _make_room(self, incoming: int, keep: list, config: ModelConfig) -> None:
        budget = self._budget(config)
        evicted = False
        for key in list(self._entries):
            if self.nbytes + incoming <= budget:
                break
            if key in keep:
                continue
            del self._entries[key]
            self.evictions += 1
            evicted = True
        if evicted:
            _release()


def _multi(nets: list) -> Any:
    from diffusers.models.controlnets.multicontrolnet import MultiControlNetModel

    return MultiControlNetModel(nets)


def _disk_bytes(path: Path, dtype: Any) -> int:
    """An estimate of the loaded size from the weight files (before loading, to evict first)."""
    import torch

    if path.is_file():  # a single-file checkpoint
        return path.stat().st_size // (2 if dtype in (torch.float16, torch.bfloat16) else 1)
    total = 0
    for f in path.rglob("*"):
        if f.suffix in (".safetensors", ".bin", ".pt", ".pth") and f.is_file():
            total += f.stat().st_size
    return total // 2 if dtype in (torch.float16, torch.bfloat16) else total


def _release() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass
