"""The SQLite store: image entities and templates (design §10).

A store is a folder holding ``store.sqlite3`` (WAL journal, foreign keys on, ``synchronous=FULL``) and
``blobs/ab/abcdef….png``: image pixels as content-addressed PNG files named by the SHA-256 of their bytes.

Crash safety: a blob file is written to a temporary name, fsynced and renamed *before* the row that refers
to it is committed; every change of rows is one SQLite transaction. A process killed at any moment leaves
the old or the new state; at worst an unreferenced blob file, which :meth:`Store.gc` removes.
:meth:`Store.verify` checks the database and every blob's hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..errors import ArgumentError, ScriptError
from ..io.files import atomic_write

SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    hash TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    mode TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS entities (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    owner TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    blob TEXT REFERENCES blobs(hash) ON DELETE RESTRICT
);
CREATE INDEX IF NOT EXISTS entities_kind ON entities(kind, created);
CREATE INDEX IF NOT EXISTS entities_name ON entities(name);
CREATE TABLE IF NOT EXISTS templates (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL CHECK (json_valid(data)),
    created REAL NOT NULL
);
"""


def default_store_dir() -> Path:
    """The user data folder (``platformdirs.user_data_dir("viwoscript")/store``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("viwoscript")) / "store"


class Store:
    """One store folder. Thread-safe; several processes may open the same store (SQLite WAL locking)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_store_dir()
        self.blob_dir = self.root / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.root / "store.sqlite3", timeout=30, check_same_thread=False,
                                  isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- transactions --------------------------------------------------------------------------------
    def _tx(self):
        store = self

        class _Tx:
            def __enter__(self):
                store._lock.acquire()
                store.db.execute("BEGIN IMMEDIATE")
                return store.db

            def __exit__(self, exc_type, exc, tb):
                try:
                    store.db.execute("ROLLBACK" if exc_type else "COMMIT")
                finally:
                    store._lock.release()
                return False

        return _Tx()

    # --- blobs --------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest[:2] / f"{digest}.png"

    def _put_blob(self, db, image) -> str:
        data = image.to_png_bytes()
        digest = hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            atomic_write(path, data)
        db.execute("INSERT OR IGNORE INTO blobs(hash, size, width, height, mode, created) VALUES (?,?,?,?,?,?)",
                   (digest, len(data), image.width, image.height, image.mode, time.time()))
        return digest

    def read_blob(self, digest: str):
        from ..io import read_image

        return read_image(self.blob_path(digest), op="entity")

    # --- entities ------------------------------------------------------------------------------------
    def save_image(self, image, name: str, *, owner: str | None = None, kind: str = "image",
                   metadata: dict | None = None, id: str | None = None) -> dict:
        """Store an image as a new entity; returns its record."""
        from ..values import to_json_value

        if not isinstance(name, str) or not name or len(name) > 200:
            raise ArgumentError("entity.save: name must be a non-empty string of at most 200 characters")
        meta = to_json_value({**image.metadata, **(metadata or {})})
        eid = id or str(uuid.uuid4())
        now = time.time()
        with self._tx() as db:
            digest = self._put_blob(db, image)
            db.execute("INSERT INTO entities(id, name, kind, owner, created, updated, metadata, blob) "
                       "VALUES (?,?,?,?,?,?,?,?)", (eid, name, kind, owner, now, now, json.dumps(meta), digest))
        return self.get(eid)

    def get(self, eid: str) -> dict | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM entities WHERE id = ?", (eid,)).fetchone()
        return _record(row) if row else None

    def require(self, eid: Any, op: str) -> dict:
        rec = self.get(eid) if isinstance(eid, str) else None
        if rec is None:
            raise ScriptError(f"{op}: no entity with id {json.dumps(eid) if isinstance(eid, str) else eid!r}",
                              hint="entity.list shows the stored entities")
        return rec

    def list(self, *, kind: str | None = None, owner: str | None = None, limit: int = 1000,
             search: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM entities WHERE 1=1", []
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        if owner is not None:
            sql += " AND owner = ?"
            params.append(owner)
        if search:
            like = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            sql += " AND (name LIKE ? ESCAPE '\\' OR metadata LIKE ? ESCAPE '\\' OR id = ?)"
            params += [like, like, search]
        sql += " ORDER BY created, id LIMIT ?"
        params.append(int(limit))
        with self._lock:
            return [_record(r) for r in self.db.execute(sql, params).fetchall()]

    def update_image(self, eid: str, image) -> dict:
        with self._tx() as db:
            digest = self._put_blob(db, image)
            if db.execute("UPDATE entities SET blob = ?, updated = ? WHERE id = ?", (digest, time.time(), eid)).rowcount != 1:
                raise ScriptError(f"entity: no entity with id {eid}")
        return self.get(eid)

    def update_metadata(self, eid: str, changes: dict) -> dict:
        from ..values import to_json_value

        with self._tx() as db:
            row = db.execute("SELECT metadata FROM entities WHERE id = ?", (eid,)).fetchone()
            if row is None:
                raise ScriptError(f"entity: no entity with id {eid}")
            meta = json.loads(row["metadata"])
            for key, value in changes.items():
                if value is None:
                    meta.pop(key, None)
                else:
                    meta[key] = to_json_value(value)
            db.execute("UPDATE entities SET metadata = ?, updated = ? WHERE id = ?", (json.dumps(meta), time.time(), eid))
        return self.get(eid)

    def delete(self, eid: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM entities WHERE id = ?", (eid,)).rowcount == 1

    # --- templates -----------------------------------------------------------------------------------
    def save_template(self, template, *, replace: bool = False) -> None:
        with self._tx() as db:
            if replace:
                db.execute("DELETE FROM templates WHERE name = ?", (template.name,))
            try:
                db.execute("INSERT INTO templates(id, name, data, created) VALUES (?,?,?,?)",
                           (template.id, template.name, json.dumps(template.to_json()), time.time()))
            except sqlite3.IntegrityError:
                raise ScriptError(f"template save: a template named '{template.name}' already exists",
                                  hint="choose another name, or replace it") from None

    def load_template(self, name: str, *, runtime: Any = None):
        from ..templates import parse_template

        with self._lock:
            row = self.db.execute("SELECT data FROM templates WHERE name = ? OR id = ?", (name, name)).fetchone()
        if row is None:
            raise ScriptError(f"template: no template named '{name}'", hint="`viwo template list` shows them")
        return parse_template(row["data"], runtime=runtime, check=False)

    def list_templates(self) -> list[dict]:
        with self._lock:
            rows = self.db.execute("SELECT data FROM templates ORDER BY name").fetchall()
        return [json.loads(r["data"]) for r in rows]

    def delete_template(self, name: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM templates WHERE name = ? OR id = ?", (name, name)).rowcount > 0

    # --- maintenance ---------------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Problems found: SQLite integrity, foreign keys, missing or altered blob files (empty = healthy)."""
        problems: list[str] = []
        with self._lock:
            ok = self.db.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                problems.append(f"sqlite: {ok}")
            for row in self.db.execute("PRAGMA foreign_key_check").fetchall():
                problems.append(f"foreign key: {tuple(row)}")
            blobs = self.db.execute("SELECT hash FROM blobs").fetchall()
        for (digest,) in blobs:
            path = self.blob_path(digest)
            try:
                if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                    problems.append(f"blob {digest}: content does not match its hash")
            except OSError:
                problems.append(f"blob {digest}: file missing")
        return problems

    def gc(self) -> int:
        """Delete blob rows no entity uses and blob files no row names; returns files removed."""
        with self._tx() as db:
            db.execute("DELETE FROM blobs WHERE hash NOT IN (SELECT blob FROM entities WHERE blob IS NOT NULL)")
            keep = {r[0] for r in db.execute("SELECT hash FROM blobs")}
            removed = 0
            for path in self.blob_dir.glob("*/*"):
                if path.name.removesuffix(".png") not in keep:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


def _record(row) -> dict:
    return {"id": row["id"], "name": row["name"], "kind": row["kind"], "owner": row["owner"],
            "created": row["created"], "updated": row["updated"], "metadata": json.loads(row["metadata"]),
            "blob": row["blob"]}
