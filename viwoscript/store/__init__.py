"""The SQLite store: image entities and templates (design §10).

A store is a folder holding ``store.sqlite3`` (WAL journal, foreign keys on, ``synchronous=FULL``) and
``blobs/ab/abcdef….png``: image pixels as content-addressed PNG files named by the SHA-256 of their bytes.

Crash safety: a blob file is written to a temporary name, fsynced and renamed *before* the row that refers
to it is committed; every change of rows is one SQLite transaction. A process killed at any moment leaves
the old or the new state; at worst an unreferenced blob file, which :meth:`Store.gc` removes.
:meth:`Store.verify` checks the database and every blob's hash.

The store is a wing below the script floor (design §14): it keeps template *data* (JSON) and builds no
Runtime; a caller that wants templates checked passes a check callable (:meth:`Store.save_template`), and
:mod:`viwoscript.templates` turns data into templates. Opening creates nothing until the first write; SQLite
failures (a damaged or truncated database, a lock held too long) become a :class:`StoreError` naming the file
and what to do. Entity ids may be given as unique prefixes (:meth:`Store.resolve`), like git's.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
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


#: Shortest id prefix looked up (like git): shorter references must be whole ids.
MIN_PREFIX = 4


class StoreError(ScriptError):
    """The store cannot be used: a damaged database, a folder that is a file, a missing store."""


def default_store_dir() -> Path:
    """The user data folder (``platformdirs.user_data_dir("viwoscript")/store``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("viwoscript")) / "store"


class Store:
    """One store folder. Thread-safe; several processes may open the same store (SQLite WAL locking).

    Opening creates nothing: reading a store that does not exist yet sees it empty, and the first write
    creates the folder and its database (``on_create(path)`` is called then, so a host can say so), with
    its missing parent folders unless ``parents=False`` (the command line's ``--store``: a mistyped path is
    refused, not made). ``create=True`` creates the store at once. A damaged database, or a store path that is a file, raises
    :class:`StoreError` naming the file and what to do.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, create: bool = False, parents: bool = True,
                 on_create: Callable[[Path], None] | None = None):
        self.parents = parents
        self.root = Path(root) if root is not None else default_store_dir()
        self.blob_dir = self.root / "blobs"
        self.path = self.root / "store.sqlite3"
        self.on_create = on_create
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"store: {self.root} is a file, not a store folder",
                             hint="a store is a folder holding store.sqlite3 and blobs/: pass --store a folder "
                                  "(a new name is created on the first save)")
        if create:
            self._connect(write=True)

    def exists(self) -> bool:
        """Whether the store's database exists (nothing has been created otherwise)."""
        return self._db is not None or self.path.exists()

    @property
    def db(self) -> sqlite3.Connection:
        """The SQLite connection (the store is created if it does not exist yet)."""
        return self._connect(write=True)

    def _connect(self, *, write: bool) -> sqlite3.Connection | None:
        """The connection; None for a read of a store that does not exist yet."""
        with self._lock:
            if self._db is not None:
                return self._db
            if not self.path.exists():
                if not write:
                    return None
                self._create_folder()
            with self._guard():
                db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
                try:
                    db.row_factory = sqlite3.Row
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA foreign_keys=ON")
                    db.execute("PRAGMA synchronous=FULL")
                    db.executescript(SCHEMA)
                except BaseException:
                    db.close()
                    raise
            self._db = db
            return db

    def _create_folder(self) -> None:
        if self.root.is_dir():
            return
        if not self.parents and not self.root.parent.is_dir():
            raise StoreError(f"store: cannot create {self.root}: its parent folder {self.root.parent} does not exist",
                             hint=f"create it first (mkdir -p {self.root.parent}) or pass another --store")
        try:
            self.root.mkdir(parents=self.parents, exist_ok=True)
        except OSError as e:
            raise StoreError(f"store: cannot create {self.root}: {e.strerror or e}",
                             hint="check the path and its permissions, or pass another --store") from None
        if self.on_create is not None:
            self.on_create(self.root)

    def _guard(self):
        """Turns SQLite's failures into a StoreError naming the database file and what to do."""
        return _Guard(self)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- transactions --------------------------------------------------------------------------------
    @contextmanager
    def _tx(self):
        """One SQLite transaction (BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error)."""
        db = self._connect(write=True)
        with self._lock, self._guard():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _read(self, sql: str, params=()) -> list:
        """Rows of a query; none when the store does not exist yet."""
        db = self._connect(write=False)
        if db is None:
            return []
        with self._lock, self._guard():
            return db.execute(sql, params).fetchall()

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
        """The image of a blob; a StoreError naming the file when it is missing or damaged."""
        from ..errors import ViwoError
        from ..io import read_image

        path = self.blob_path(digest)
        try:
            return read_image(path, op="entity")
        except ViwoError as e:
            what = "is missing" if not path.exists() else "cannot be read as an image"
            raise StoreError(f"store: the image file {path} {what} ({e.message.removeprefix('entity: ')})",
                             hint=f"restore {self.blob_dir} from a backup, or delete the entities that use it "
                                  "(Store.verify() lists every damaged file)") from None

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
        """The entity with exactly this id, or None."""
        rows = self._read("SELECT * FROM entities WHERE id = ?", (eid,))
        return self._record(rows[0]) if rows else None

    def resolve(self, ref: Any, op: str) -> str | None:
        """The id of the entity ``ref`` names: a whole id, or (like git) a unique prefix of at least
        MIN_PREFIX characters. None when nothing matches; an ArgumentError listing the candidates when
        the prefix matches several."""
        if not isinstance(ref, str) or not ref:
            return None
        if self._read("SELECT id FROM entities WHERE id = ?", (ref,)):
            return ref
        if len(ref) < MIN_PREFIX:
            return None
        upper = ref[:-1] + chr(ord(ref[-1]) + 1) if ord(ref[-1]) < 0x10FFFF else None
        sql = "SELECT id, name FROM entities WHERE id >= ?" + (" AND id < ?" if upper else "") + " ORDER BY id LIMIT 11"
        rows = [r for r in self._read(sql, (ref, upper) if upper else (ref,)) if r["id"].startswith(ref)]
        if len(rows) == 1:
            return rows[0]["id"]
        if not rows:
            return None
        listing = ", ".join(f"{r['id']} ({r['name']})" for r in rows[:10]) + (" …" if len(rows) > 10 else "")
        raise ArgumentError(f"{op}: the id prefix {ref} is ambiguous: it matches {'more than 10' if len(rows) > 10 else len(rows)} entities",
                            hint=f"give more characters of the id; candidates: {listing}")

    def find(self, ref: Any, op: str) -> dict | None:
        """The entity a whole id or a unique id prefix names, or None (see :meth:`resolve`)."""
        eid = self.resolve(ref, op)
        return self.get(eid) if eid is not None else None

    def require(self, ref: Any, op: str, *, hint: str = "entity.list shows the stored entities") -> dict:
        """Like :meth:`find`, but a missing entity is a ScriptError."""
        rec = self.find(ref, op)
        if rec is None:
            shown = ref if isinstance(ref, str) else repr(ref)
            raise ScriptError(f"{op}: no entity with id {shown}", hint=hint)
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
            text = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            sql += " AND (name LIKE ? ESCAPE '\\' OR metadata LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')"
            params += [f"%{text}%", f"%{text}%", f"{text}%"]  # an id matches by its beginning, like git
        sql += " ORDER BY created, id LIMIT ?"
        params.append(int(limit))
        return [self._record(r) for r in self._read(sql, params)]

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
            meta = self._json(row["metadata"])
            for key, value in changes.items():
                if value is None:
                    meta.pop(key, None)
                else:
                    meta[key] = to_json_value(value)
            db.execute("UPDATE entities SET metadata = ?, updated = ? WHERE id = ?", (json.dumps(meta), time.time(), eid))
        return self.get(eid)

    def delete(self, eid: str) -> bool:
        if not self.exists():
            return False
        with self._tx() as db:
            return db.execute("DELETE FROM entities WHERE id = ?", (eid,)).rowcount == 1

    # --- templates (JSON data; viwoscript.templates turns it into Template objects) ----------------------
    def save_template(self, template: Any, *, replace: bool = False,
                      check: Callable[[dict], Any] | None = None) -> None:
        """Keep a template: its JSON data (a dict with ``name``, ``script``…, or an object with ``to_json()``).

        ``check(data)`` runs first when given and may raise to refuse it (e.g. the template schema and a
        Runtime's static check); ``replace`` overwrites a template of the same name."""
        data = template.to_json() if hasattr(template, "to_json") else template
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ArgumentError("template save: expected template data with a name")
        if check is not None:
            check(data)
        name = data["name"]
        tid = data.get("id") or str(uuid.uuid4())
        with self._tx() as db:
            if replace:
                db.execute("DELETE FROM templates WHERE name = ?", (name,))
            try:
                db.execute("INSERT INTO templates(id, name, data, created) VALUES (?,?,?,?)",
                           (tid, name, json.dumps(data), time.time()))
            except sqlite3.IntegrityError:
                raise ScriptError(f"template save: a template named '{name}' already exists",
                                  hint="pass --replace to replace it, or choose another name") from None

    def template_data(self, name: str) -> dict:
        """The JSON data of the template with this name (or id); a ScriptError when there is none."""
        rows = self._read("SELECT data FROM templates WHERE name = ? OR id = ?", (name, name))
        if not rows:
            raise ScriptError(f"template: no template named '{name}'", hint="`viwo template list` shows them")
        return self._json(rows[0]["data"])

    def list_templates(self) -> list[dict]:
        return [self._json(r["data"]) for r in self._read("SELECT data FROM templates ORDER BY name")]

    def delete_template(self, name: str) -> bool:
        if not self.exists():
            return False
        with self._tx() as db:
            return db.execute("DELETE FROM templates WHERE name = ? OR id = ?", (name, name)).rowcount > 0

    def _record(self, row) -> dict:
        return {"id": row["id"], "name": row["name"], "kind": row["kind"], "owner": row["owner"],
                "created": row["created"], "updated": row["updated"], "metadata": self._json(row["metadata"]),
                "blob": row["blob"]}

    def _json(self, text: str) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError) as e:
            raise _store_error(self, e) from None

    # --- maintenance ---------------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """Problems found: SQLite integrity, foreign keys, missing or altered blob files (empty = healthy)."""
        problems: list[str] = []
        if not self.exists():
            return problems
        for (ok,) in self._read("PRAGMA integrity_check"):
            if ok != "ok":
                problems.append(f"sqlite: {ok}")
        for row in self._read("PRAGMA foreign_key_check"):
            problems.append(f"foreign key: {tuple(row)}")
        blobs = self._read("SELECT hash FROM blobs")
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
        if not self.exists():
            return 0
        with self._tx() as db:
            db.execute("DELETE FROM blobs WHERE hash NOT IN (SELECT blob FROM entities WHERE blob IS NOT NULL)")
            keep = {r[0] for r in db.execute("SELECT hash FROM blobs")}
            removed = 0
            for path in self.blob_dir.glob("*/*"):
                if path.name.removesuffix(".png") not in keep:
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed


class _Guard:
    def __init__(self, store: Store):
        self.store = store

    def __enter__(self) -> _Guard:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, sqlite3.DatabaseError):
            raise _store_error(self.store, exc) from None
        return False


def _store_error(store: Store, e: BaseException) -> StoreError:
    """What went wrong with the database file, and what to do about it."""
    text = str(e)
    low = text.lower()
    path = store.path
    if "locked" in low or "busy" in low:
        return StoreError(f"store: {path} is locked by another process ({text})",
                          hint="try again when the other viwo command has finished")
    if "readonly" in low or "read-only" in low or "unable to open" in low or "permission" in low:
        return StoreError(f"store: cannot open {path} for writing ({text})",
                          hint=f"check that {store.root} is a folder you may write to, or pass another --store")
    if "full" in low:
        return StoreError(f"store: the disk holding {path} is full ({text})", hint="free some space and try again")
    return StoreError(f"store: {path} is damaged or not a viwoscript store database ({text})",
                      hint=f"restore it from a backup, or move {path.name} (with any -wal/-shm file beside it) "
                           "away to start an empty store there (the images under blobs/ stay)")
