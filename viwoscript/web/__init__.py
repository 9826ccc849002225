"""The web UI's static files (design §16): ``index.html``, ES modules under ``js/``, ``app.css`` and the
vendored, minified third-party files under ``vendor/`` (see ``vendor/MANIFEST.json``). No build step: the
server serves this folder as it is. :data:`ROOT` is the folder."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent

