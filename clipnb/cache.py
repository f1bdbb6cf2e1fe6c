"""An on-disk embedding cache, so a folder is encoded once per model however often it is re-scored.

Image entries are keyed by the model's weight fingerprint, the way pixels were prepared (exact or fast
decoding, background colour) and the SHA-256 of the file's bytes: a renamed file is still a hit, an
edited file a miss. Text entries are keyed by fingerprint and prompt. So that a warm run need not read
every byte of a folder again, the SHA-256 of each file is remembered with the file's identity (path,
size, modification and change times in ns, inode): any edit, even one that restores the modification
time, changes the change time, and then the file is hashed again. Everything lives in one SQLite
file: each batch is committed as a transaction, so a run killed at any moment keeps every batch it
finished and never leaves half an entry. Each vector carries a checksum; an entry that fails it is
treated as missing and recomputed, never trusted.

One cache object may be used from any thread: a widget callback in JupyterLab can run on another thread
than the cell that made the cache. It holds one connection, opened for every thread and guarded by a
lock, so two threads never interleave their statements or transactions.
"""
from __future__ import annotations

import os
import sqlite3
import stat
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

DB_NAME = "embeddings.sqlite3"


def default_cache_dir() -> Path:
    """Where the cache lives: $CLIPNB_CACHE_DIR, else $XDG_CACHE_HOME/clipnb, else ~/.cache/clipnb."""
    base = os.environ.get("CLIPNB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "clipnb")
    return Path(base)


def utf8_name(path: str | os.PathLike) -> str:
    """A path as text that SQLite and Parquet can hold: a name that is not valid UTF-8 (another system's
    encoding, which Python escapes) is kept with backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _pack(vector: torch.Tensor) -> tuple[bytes, int]:
    data = np.ascontiguousarray(vector.detach().cpu().numpy(), dtype=np.float32).tobytes()
    return data, zlib.crc32(data)


def _unpack(data: bytes, checksum: int) -> torch.Tensor | None:
    if data is None or zlib.crc32(data) != checksum or len(data) % 4:
        return None
    return torch.from_numpy(np.frombuffer(data, dtype=np.float32).copy())


def _row_crc(identity: tuple, content: str) -> int:
    return zlib.crc32("|".join(map(str, (*identity, content))).encode())


class EmbeddingCache:
    """Image and text embeddings on disk; see the module docstring for the keys."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory else default_cache_dir()
        self.path = self.directory / DB_NAME
        self._db = None
        self._lock = threading.RLock()  # one thread at a time on the connection

    # -- connection ------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError:
                # a damaged cache file is rebuilt: it only ever holds what can be recomputed
                self._discard_file()
                self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        # check_same_thread=False: the connection is shared by every thread, serialised by self._lock
        db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS images (model TEXT, variant TEXT, content TEXT, width INTEGER,"
                   " height INTEGER, note TEXT, vector BLOB, crc INTEGER, PRIMARY KEY (model, variant, content))")
        db.execute("CREATE TABLE IF NOT EXISTS texts (model TEXT, prompt TEXT, truncate INTEGER, vector BLOB,"
                   " crc INTEGER, PRIMARY KEY (model, prompt, truncate))")
        db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER,"
                   " ctime INTEGER, inode INTEGER, content TEXT, crc INTEGER)")
        db.execute("SELECT count(*) FROM images").fetchone()  # fails here, not later, on a damaged file
        return db

    def _discard_file(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def _run(self, action):
        """Run a database action; a cache that turns out damaged is rebuilt once instead of failing."""
        with self._lock:
            try:
                return action(self._connect())
            except sqlite3.DatabaseError:
                self.close()
                self._discard_file()
                return action(self._connect())

    def close(self) -> None:
        """Close the database connection (the next use opens it again)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- file contents ---------------------------------------------------------------------------
    def content_keys(self, paths: Sequence[str | os.PathLike], progress: bool = False) -> list[tuple[str | None, str]]:
        """For each file: (SHA-256 of its bytes, "") or (None, reason it cannot be read).

        Files seen before with the same identity (see the module docstring) are not read again; the
        others are hashed in threads (hashlib works outside the GIL) and remembered.
        """
        keys: list[tuple[str | None, str]] = [(None, "")] * len(paths)
        identities = {}
        for i, path in enumerate(paths):
            try:
                st = os.stat(path)
            except OSError:
                continue  # left to open_image, which says why (broken link, moved, ...)
            if not stat.S_ISREG(st.st_mode):
                continue  # a named pipe or a device is never read here: that could block for ever
            real = utf8_name(os.path.realpath(path))
            identities[i] = (real, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        known = self._known_contents([identity[0] for identity in identities.values()])
        unknown = []
        for i, identity in identities.items():
            stored = known.get(identity[0])
            if stored is not None and stored[:4] == identity[1:] and stored[5] == _row_crc(identity, stored[4]):
                keys[i] = (stored[4], "")
            else:
                unknown.append(i)
        if unknown:
            from .embedding import progress_bar
            from .models import file_sha256

            def digest(i):
                try:
                    return file_sha256(paths[i]), ""
                except OSError as exc:
                    return None, f"cannot read file: {exc.strerror or exc}"

            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool, \
                    progress_bar(len(unknown), progress, "hashing files") as bar:
                for i, key in zip(unknown, pool.map(digest, unknown)):
                    keys[i] = key
                    bar.update(1)
            rows = [(*identities[i], keys[i][0], _row_crc(identities[i], keys[i][0]))
                    for i in unknown if keys[i][0] is not None]

            def store(db):
                with db:
                    db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", rows)
            self._run(store)
        return keys

    def _known_contents(self, real_paths: Sequence[str]) -> dict[str, tuple]:
        def lookup(db):
            found = {}
            unique = list(dict.fromkeys(real_paths))
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                rows = db.execute(f"SELECT path, size, mtime, ctime, inode, content, crc FROM files WHERE path IN "
                                  f"({','.join('?' * len(chunk))})", chunk)
                found.update((row[0], row[1:]) for row in rows)
            return found
        return self._run(lookup)

    # -- images ----------------------------------------------------------------------------------
    def get_images(self, model: str, variant: str, contents: Sequence[str]) -> list[dict | None]:
        """For each content key: {"vector", "width", "height", "note"} or None when missing or damaged."""
        def lookup(db):
            found = {}
            unique = list(dict.fromkeys(contents))
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT content, width, height, note, vector, crc FROM images WHERE model=? "
                                  f"AND variant=? AND content IN ({marks})", [model, variant, *chunk])
                for content, width, height, note, data, crc in rows:
                    vector = _unpack(data, crc)
                    if vector is not None:
                        found[content] = {"vector": vector, "width": width, "height": height, "note": note}
            return found
        found = self._run(lookup)
        return [found.get(c) for c in contents]

    def put_images(self, model: str, variant: str, entries: Iterable[tuple[str, int, int, str, torch.Tensor]]):
        """Store (content, width, height, note, vector) entries in one transaction."""
        rows = [(model, variant, c, w, h, note, *_pack(v)) for c, w, h, note, v in entries]

        def store(db):
            with db:
                db.executemany("INSERT OR REPLACE INTO images VALUES (?,?,?,?,?,?,?,?)", rows)
        self._run(store)

    # -- texts -----------------------------------------------------------------------------------
    def get_texts(self, model: str, prompts: Sequence[str], truncate: bool) -> list[torch.Tensor | None]:
        """The stored embedding of each prompt for this model and truncation, None where there is none."""
        def lookup(db):
            found = {}
            for prompt in dict.fromkeys(prompts):
                row = db.execute("SELECT vector, crc FROM texts WHERE model=? AND prompt=? AND truncate=?",
                                 (model, prompt, int(truncate))).fetchone()
                if row is not None and (vector := _unpack(*row)) is not None:
                    found[prompt] = vector
            return found
        found = self._run(lookup)
        return [found.get(p) for p in prompts]

    def put_texts(self, model: str, prompts: Sequence[str], truncate: bool, vectors: torch.Tensor) -> None:
        """Store one embedding per prompt (rows of `vectors`) for this model and truncation."""
        rows = [(model, p, int(truncate), *_pack(v)) for p, v in zip(prompts, vectors)]

        def store(db):
            with db:
                db.executemany("INSERT OR REPLACE INTO texts VALUES (?,?,?,?,?)", rows)
        self._run(store)

    # -- housekeeping ----------------------------------------------------------------------------
    def info(self) -> dict:
        """Where the cache is, how big, and how many entries of each kind."""
        size = sum(Path(str(self.path) + s).stat().st_size for s in ("", "-wal", "-shm")
                   if Path(str(self.path) + s).exists())
        if not self.path.exists():
            return {"path": str(self.path), "bytes": 0, "images": 0, "texts": 0, "models": 0}
        counts = self._run(lambda db: (
            db.execute("SELECT count(*) FROM images").fetchone()[0],
            db.execute("SELECT count(*) FROM texts").fetchone()[0],
            db.execute("SELECT count(DISTINCT model) FROM (SELECT model FROM images UNION "
                       "SELECT model FROM texts)").fetchone()[0]))
        return {"path": str(self.path), "bytes": size, "images": counts[0], "texts": counts[1], "models": counts[2]}

    def clear(self) -> None:
        """Delete every stored embedding (the cache file is removed and made again on use)."""
        with self._lock:
            self.close()
            self._discard_file()
