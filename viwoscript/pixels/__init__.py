"""The ground floor: pixels as numpy arrays, and nothing above them (no canvas, io, script or models).

- :mod:`.decode` — the one decoder: bytes, files and ``data:`` URLs → H×W×{1,3,4} uint8, pixel limit checked
  before decoding, EXIF orientation applied once, every mode made L, RGB or RGBA.
- :mod:`.encode` — the one encoder: PNG, JPEG, WebP bytes and PNG ``data:`` URLs.
- :mod:`.colors` — CSS colours → ``(r, g, b, a)``.
- :mod:`.channels` — L/RGB/RGBA conversions, compositing over a background, luma, premultiplied alpha.
- :mod:`.resize` — the one resize, with every kernel (nearest, linear, cubic, mitchell, lanczos2, lanczos3,
  area); enlarging honours the kernel.

Everything above (canvas layers, image files with metadata, the ``image.*`` opcodes, the upscaler, the
model pipelines) goes through these. Nothing is imported by ``import viwoscript``; numpy loads with the
first submodule, Pillow and pyvips on first use. See docs/images.md.
"""
