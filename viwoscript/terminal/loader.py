"""The one script loader of the command-line faces (``viwo run/check/fmt`` and the REPL's ``:load``).

A source is a file path (``.viwo`` text, ``.json``, or an image viwoscript wrote), ``-`` (stdin), or
``template:NAME`` (a template in the store). :func:`load_script` turns it into a :class:`Script`: the node
tree (parsed with the Runtime's name slots), the text it came from when there is one, and the arguments an
image or a template carries. Images and templates hold JSON data, which becomes nodes directly.

Errors are ``ViwoError``\\ s: :class:`SourceError` when the source cannot be read at all (a missing file;
the command line exits 2 as for any usage error), ``ScriptError`` when what was read is not a script.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import ScriptError, ViwoError

if TYPE_CHECKING:
    from ..nodes import Node

#: Suffixes that name an image: such a file is read as an image, whatever it holds.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
_TEXT_HINT = "scripts are UTF-8 .viwo or .json files, or PNG/JPEG/WebP images viwo saved"


class SourceError(ViwoError):
    """A script source that cannot be read (no such file, a folder, no permission)."""

    kind = "UsageError"


@dataclass(frozen=True)
class Script:
    """A loaded script: ``tree`` runs; ``text`` (None for images and templates) renders error snippets."""

    tree: Node
    filename: str
    text: str | None
    #: Arguments the source carries (an image's recorded args, a template's bound parameters), else None.
    args: list | None
    #: ``file``, ``stdin``, ``template`` or ``image``.
    kind: str

    @property
    def stem(self) -> str:
        """The name images saved by this script start with (``hello-001.png`` re-run saves ``hello-002``)."""
        if self.kind == "stdin":
            return "stdin"
        if self.kind == "template":
            return self.filename.removeprefix("template:")
        stem = Path(self.filename).stem
        return re.sub(r"-\d+\Z", "", stem) if self.kind == "image" else stem


def is_image_source(source: str) -> bool:
    """Whether a source is named as an image (``.png``, ``.jpg``, ``.jpeg``, ``.webp``)."""
    return source.lower().endswith(IMAGE_SUFFIXES)


def is_image_file(source: str) -> bool:
    """Named as an image, or starting like one."""
    if is_image_source(source):
        return True
    try:
        with open(source, "rb") as f:
            return _looks_like_image(f.read(12))
    except OSError:
        return False


def load_script(source: str, parse, *, template_args: list | dict | None = None, store_dir: Any = None,
                stdin: TextIO | None = None, models: Any = None) -> Script:
    """Load ``source`` (see the module doc). ``parse(text, filename=...)`` is the Runtime's parser
    (``Runtime.parse``), so a script reads with the name slots of the opcodes it will run with.
    ``models``: the host's ModelConfig, to find the model and LoRAs of an A1111 image (its
    ``parameters`` become a script, :mod:`viwoscript.models.a1111`)."""
    from ..syntax import from_python

    if source == "-":
        text = (stdin or sys.stdin).read()
        return Script(parse(text, filename="<stdin>"), "<stdin>", text, None, "stdin")
    if source.startswith("template:"):
        data, args = template_script(source, store_dir=store_dir, args=template_args)
        return Script(from_python(data), source, None, args, "template")
    path = Path(source)
    try:
        data_bytes = path.read_bytes()
    except IsADirectoryError:
        raise SourceError(f"{source} is a folder, not a script",
                          hint="give a .viwo or .json file, - for stdin, or an image viwo saved") from None
    except OSError as e:
        raise SourceError(f"cannot read {source}: {e.strerror or e}",
                          hint="check the path; scripts are .viwo or .json files, - for stdin, template:NAME, "
                               "or images viwo saved") from None
    if is_image_source(source) or _looks_like_image(data_bytes):
        data, args = image_script(path, data_bytes, models=models)
        if isinstance(data, str):  # a script kept as text (viwoscript.io reads no script): parse it here
            return Script(parse(data, filename=source), source, data, args, "image")
        return Script(from_python(data), source, None, args, "image")
    try:
        text = data_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ScriptError(f"{source} is not UTF-8 text (byte {e.start})", hint=_TEXT_HINT) from None
    return Script(parse(text, filename=source), source, text, None, "file")


def _looks_like_image(data: bytes) -> bool:
    return data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def image_script(path: Path, data: bytes | None = None, *, models: Any = None) -> tuple[Any, list]:
    """``(script as JSON data, args)`` that an image viwoscript wrote carries, or the script equivalent to
    an A1111 image's ``parameters``; a ``ScriptError`` saying what is really missing otherwise (not an
    image, no metadata we can replay, a script left out for size)."""
    from ..io.metadata import read_metadata

    data = path.read_bytes() if data is None else data
    if not _looks_like_image(data):
        what = "text" if _is_text(data) else "not an image"
        raise ScriptError(f"{path.name} is named as an image but is {what}; it is not run as a script",
                          hint="a script file ends in .viwo or .json; rename it if it is one")
    try:
        info = read_metadata(path)
    except ScriptError as e:
        raise ScriptError(f"{path.name}: {e.message.removeprefix('info: ')}", hint=e.hint) from None
    script = info.get("script")
    if script is None and isinstance(info.get("a1111"), dict) and "viwo" not in info:
        return a1111_script(path, info, models), []
    if script is None:
        raise ScriptError(f"{path.name} carries no script: {missing_script_reason(info)}",
                          hint=missing_script_hint(info))
    args = info.get("args")
    return script, list(args) if isinstance(args, list) else []


def a1111_script(path: Path, info: dict, models: Any) -> list:
    """The ViwoScript equivalent to an A1111 image's ``parameters``; what does not replay (Hires fix,
    extensions' fields, ...) is said on stderr."""
    from ..models.a1111 import replay_script

    try:
        from ..capabilities.options import common_options

        known = {p.name for p in common_options()} | {"width", "height"}
    except ImportError:  # pragma: no cover
        known = None
    script, notes = replay_script(info, models, path.name, options_known=known)
    for note in notes:
        print(f"{path.name}: {note}", file=sys.stderr)
    return script


def missing_script_reason(info: dict) -> str:
    """Why an image's metadata (``read_metadata``) holds no script, in words."""
    payload = info.get("viwo")
    if isinstance(payload, dict):
        omitted = payload.get("script_omitted") or payload.get("omitted")
        if omitted:
            return f"viwoscript left the script out: {omitted}"
        return "viwoscript wrote it without a script (it was not saved by a script run)"
    if info.get("errors"):
        return "; ".join(info["errors"])
    others = [s for s in info.get("sources", []) if s != "viwo"]
    if others:
        return f"it has {', '.join(others)} metadata, not viwoscript's"
    return "it has no viwoscript metadata"


def missing_script_hint(info: dict) -> str:
    payload = info.get("viwo")
    if isinstance(payload, dict) and (payload.get("script_omitted") or payload.get("omitted")):
        return "a JPEG's metadata holds at most 64 KB: save as PNG (or WebP) to keep a long script"
    return "only images written by viwoscript hold the script that made them"


def _is_text(data: bytes) -> bool:
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in data[:4096]


def template_script(spec: str, store_dir: Any = None, args: list | dict | None = None) -> tuple[Any, list]:
    """``(script JSON data, bound args)`` of a stored template (``template:NAME``)."""
    from ..store import Store
    from ..templates import stored_template

    name = spec.removeprefix("template:")
    with Store(store_dir) as s:
        t = stored_template(s, name)
    return t.script, t.bind(args)
