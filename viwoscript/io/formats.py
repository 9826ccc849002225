"""Which image files are read, and how big: the one decoder's list and limit (:mod:`viwoscript.pixels.decode`),
named here for decoding (:mod:`.codec`) and metadata reading (:mod:`.metadata`)."""

from __future__ import annotations

from ..pixels.decode import DEFAULT_MAX_PIXELS, INPUT_FORMATS, input_formats

__all__ = ["DEFAULT_MAX_PIXELS", "INPUT_FORMATS", "input_formats"]
