"""A1111 hashes of model files (viwoscript.models.hashes) and their cache."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import pytest

from viwoscript.models.config import ModelConfig
from viwoscript.models.hashes import CACHE_FILE, FileHashes, HashCache, cache_file_for, compute


def safetensors_bytes(body: bytes = b"\x01\x02\x03\x04" * 3000, meta: dict | None = None) -> bytes:
    header = json.dumps({"w": {"dtype": "U8", "shape": [len(body)], "data_offsets": [0, len(body)]},
                         **({"__metadata__": meta} if meta else {})}).encode()
    return struct.pack("<Q", len(header)) + header + body


def test_hashes_are_a1111s(tmp_path):
    body = os.urandom(3 << 20)  # over 1 MiB + 64 KiB: the legacy hash exists
    data = safetensors_bytes(body)
    path = tmp_path / "m.safetensors"
    path.write_bytes(data)
    h = compute(path)
    full = hashlib.sha256(data).hexdigest()
    assert h.sha256 == full and h.model == full[:10] and h.short == full[:12]
    header = 8 + struct.unpack("<Q", data[:8])[0]
    assert h.addnet == hashlib.sha256(data[header:]).hexdigest()  # A1111's addnet_hash_safetensors
    assert h.addnet_short == h.addnet[:12]
    assert h.legacy == hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]  # A1111's model_hash()
    assert h.matches(full[:10].upper()) and h.matches(h.addnet[:12]) and h.matches(h.legacy)
    assert not h.matches("0" * 10) and not h.matches("abc")


def test_other_files_have_no_addnet_hash_and_small_ones_no_legacy(tmp_path):
    path = tmp_path / "e.pt"
    path.write_bytes(b"not a safetensors file")
    h = compute(path)
    assert h.addnet is None and h.legacy is None and h.addnet_short is None
    assert h.sha256 == hashlib.sha256(b"not a safetensors file").hexdigest()
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"\xff" * 20)  # header length larger than the file: no addnet hash, no error
    assert compute(fake).addnet is None


def test_cache_by_path_size_and_mtime(tmp_path, monkeypatch):
    from viwoscript.models import hashes

    path = tmp_path / "m.safetensors"
    path.write_bytes(safetensors_bytes())
    cache = HashCache(tmp_path / "cache" / CACHE_FILE)
    assert cache.cached(path) is None
    first = cache.hashes(path)
    assert json.loads(cache.path.read_text())["files"][str(path.resolve())]["sha256"] == first.sha256
    calls = []
    real = hashes.compute
    monkeypatch.setattr(hashes, "compute", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = HashCache(cache.path)  # a fresh process reads the file
    assert again.hashes(path) == first and again.cached(path) == first and not calls
    path.write_bytes(safetensors_bytes(b"\x09" * 500))  # changed: size and mtime differ
    assert again.cached(path) is None
    assert again.hashes(path).sha256 != first.sha256 and len(calls) == 1
    assert not list(cache.path.parent.glob(".model-hashes-*"))  # the atomic write left no temp file


def test_a_damaged_cache_is_ignored_and_rebuilt(tmp_path):
    path = tmp_path / "lora.safetensors"
    path.write_bytes(safetensors_bytes())
    cache_path = tmp_path / CACHE_FILE
    for junk in ("{not json", json.dumps([1, 2]), json.dumps({"version": 1, "files": {str(path.resolve()): 7}}),
                 json.dumps({"version": 99, "files": {}})):
        cache_path.write_text(junk)
        cache = HashCache(cache_path)
        assert cache.cached(path) is None
        assert cache.hashes(path, addnet=True).addnet is not None
        assert json.loads(cache_path.read_text())["version"] == 1
    cache_path.write_bytes(b"\xff\xfe garbage")
    assert HashCache(cache_path).hashes(path).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_addnet_is_computed_when_asked_for_later(tmp_path):
    path = tmp_path / "thing.bin"  # not named .safetensors, but is one
    path.write_bytes(safetensors_bytes())
    cache = HashCache(tmp_path / CACHE_FILE)
    assert cache.hashes(path).addnet is None
    assert cache.cached(path, addnet=True) is None
    assert cache.hashes(path, addnet=True).addnet is not None
    assert cache.cached(path, addnet=True).addnet is not None


def test_cache_file_location_comes_from_the_config(tmp_path):
    assert cache_file_for(ModelConfig(cache_dir=str(tmp_path))) == tmp_path / CACHE_FILE
    assert cache_file_for(ModelConfig()).name == CACHE_FILE
    assert "viwoscript" in str(cache_file_for(None))  # the user cache folder, never inside the package


def test_an_unwritable_cache_still_hashes(tmp_path):
    path = tmp_path / "m.ckpt"
    path.write_bytes(b"x" * 100)
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = HashCache(blocker / "sub" / CACHE_FILE)  # its folder cannot be made
    assert cache.hashes(path).sha256 == hashlib.sha256(b"x" * 100).hexdigest()


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        HashCache("/nonexistent/cache.json").hashes("/nonexistent/model.safetensors")


def test_to_dict():
    h = FileHashes("ab" * 32, "cd" * 32, "12345678")
    assert h.to_dict() == {"sha256": "ab" * 32, "model_hash": "ab" * 5, "short_hash": "ab" * 6, "addnet": "cd" * 32,
                           "addnet_hash": "cd" * 6, "legacy_hash": "12345678"}
