"""Install metadata: exact pins only in constraints.txt, ranges in the extras (issue 13 items 22-23)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_pillow_keeps_jpeg_xmp():
    assert "pillow>=11" in project()["dependencies"]


def test_the_diffusion_extra_takes_ranges_and_constraints_pin_exactly():
    extra = project()["optional-dependencies"]["diffusion"]
    torch = [r for r in extra if re.match(r"torch(vision)?\b", r)]
    assert torch and not [r for r in torch if "==" in r], torch  # a user's own torch stays
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#"))
    assert pins == {"torch": "2.14.1", "torchvision": "0.29.1", "ray": "2.60.0"}


def test_the_ray_extra_takes_a_range():
    extra = project()["optional-dependencies"]["ray"]
    assert extra and all(r.startswith("ray") and "==" not in r for r in extra)


def test_readme_and_ci_install_with_the_constraints():
    for path in ("README.md", ".ci/run"):
        text = (ROOT / path).read_text(encoding="utf-8")
        installs = [line for line in text.splitlines() if "pip install" in line and "dev,diffusion" in line]
        assert installs and all("-c constraints.txt" in line for line in installs), path


def test_the_shipped_model_configs_are_package_data():
    """Every file of viwoscript/models/configs/ (single-file checkpoints load with them, offline) is in the
    wheel: a package-data pattern matches it."""
    from fnmatch import fnmatch

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = tool["package-data"]["viwoscript.models"]
    base = ROOT / "viwoscript" / "models"
    files = [f.relative_to(base).as_posix() for f in (base / "configs").rglob("*") if f.is_file()]
    assert len(files) > 30
    assert not [f for f in files if not any(fnmatch(f, p) and f.count("/") == p.count("/") for p in patterns)]
