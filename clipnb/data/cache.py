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

The cache never deletes what it cannot read right now (`EmbeddingCache._run`): a database locked by another
process is waited for (SQLite's own busy timeout), then the run stores nothing in it; a read-only file, a
folder that cannot be made or written, or a full disk: the run goes on without it (a full disk does not end
the run, so that every result computed and to come is kept; only caching stops); a database that is really
damaged is kept under another name (quarantined) and a new one started. Each says so once, as a CacheWarning.
"""
from __future__ import annotations

import errno
import json
import os
import sqlite3
import stat
import threading
import warnings
import zlib
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..arrays import to_numpy

from .files import utf8_name  # also importable from here, as before

DB_NAME = "embeddings.sqlite3"
BUSY_TIMEOUT = 30.0  # seconds SQLite waits for another process's lock before this run goes on without the cache


class CacheWarning(UserWarning):
    """The embedding cache cannot be used as it is right now; the run goes on (the message says how)."""


class CacheError(Exception):
    """`cache info` or `cache clear` cannot do its work on this cache folder (the message says why)."""


def default_cache_dir() -> Path:
    """Where the cache lives: $CLIPNB_CACHE_DIR, else $XDG_CACHE_HOME/clipnb, else ~/.cache/clipnb."""
    base = os.environ.get("CLIPNB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "clipnb")
    return Path(base)


def file_identity(path: str | os.PathLike) -> tuple | None:
    """A regular file's identity as the cache trusts it: (real path, size, modification and change times in
    ns, inode); None for a file that cannot be stat'ed or is not a regular file (a named pipe or a device
    is never read here: that could block for ever)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (utf8_name(os.path.realpath(path)), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _pack(vector) -> tuple[bytes, int]:
    data = np.ascontiguousarray(to_numpy(vector), dtype=np.float32).tobytes()
    return data, zlib.crc32(data)


def _unpack(data: bytes, checksum: int) -> np.ndarray | None:
    # numpy, not torch: a run whose embeddings are all here never imports torch (`clipnb.arrays`)
    if data is None or zlib.crc32(data) != checksum or len(data) % 4:
        return None
    return np.frombuffer(data, dtype=np.float32).copy()


def _row_crc(identity: tuple, content: str) -> int:
    return zlib.crc32("|".join(map(str, (*identity, content))).encode())


# SQLite's primary result codes (sqlite3.h) and the words of their messages, for Pythons without sqlite_errorcode
SQLITE_PROBLEMS = {5: "locked", 6: "locked", 8: "read-only", 11: "damaged", 26: "damaged", 13: "full"}
SQLITE_WORDS = {"locked": "locked", "readonly": "read-only", "malformed": "damaged", "not a database": "damaged",
                "disk is full": "full"}


def _problem(exc: Exception) -> str:
    """What kind of trouble an error of the cache is: "locked", "read-only", "damaged", "full", or "unusable"
    (a folder that cannot be made or written, a file that cannot be opened, anything else)."""
    if isinstance(exc, OSError):
        return "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "unusable"
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return SQLITE_PROBLEMS.get(code & 0xFF, "unusable")
    text = str(exc).lower()
    return next((kind for words, kind in SQLITE_WORDS.items() if words in text), "unusable")


class EmbeddingCache:
    """Image and text embeddings on disk; see the module docstring for the keys.

    `busy_timeout`: seconds to wait for another process's lock. Once a cache object has stopped using the
    database (locked, read-only, full disk, see the module docstring), it stays so: make a new
    EmbeddingCache, or call `clear`, to try again (a notebook keeps one object across many runs).
    """

    def __init__(self, directory: str | os.PathLike | None = None, busy_timeout: float = BUSY_TIMEOUT):
        self.directory = Path(directory) if directory else default_cache_dir()
        self.path = self.directory / DB_NAME
        self.busy_timeout = busy_timeout
        self._db = None
        self._lock = threading.RLock()  # one thread at a time on the connection
        self._off = ""  # why the cache is not used at all in this run ("" while it is)
        self._no_writes = ""  # why nothing more is stored in it in this run ("" while writes go on)

    # -- connection ------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        # check_same_thread=False: the connection is shared by every thread, serialised by self._lock
        db = sqlite3.connect(self.path, timeout=self.busy_timeout, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS images (model TEXT, variant TEXT, content TEXT, width INTEGER,"
                       " height INTEGER, note TEXT, vector BLOB, crc INTEGER, PRIMARY KEY (model, variant, content))")
            db.execute("CREATE TABLE IF NOT EXISTS texts (model TEXT, prompt TEXT, truncate INTEGER, vector BLOB,"
                       " crc INTEGER, PRIMARY KEY (model, prompt, truncate))")
            db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER,"
                       " ctime INTEGER, inode INTEGER, content TEXT, crc INTEGER)")
            # what a loaded model is, without its weights (clipnb.models.loading' manifest), per load arguments
            db.execute("CREATE TABLE IF NOT EXISTS manifests (args TEXT PRIMARY KEY, files TEXT, manifest TEXT,"
                       " crc INTEGER)")
            db.execute("SELECT count(*) FROM images").fetchone()  # fails here, not later, on a damaged file
        except BaseException:
            db.close()
            raise
        return db

    def _files(self) -> list[Path]:
        return [Path(str(self.path) + suffix) for suffix in ("", "-wal", "-shm")]

    def _quarantine(self) -> Path:
        """Keep a damaged database (and its WAL, which may hold committed rows) under a new name."""
        kept = self.path.with_name(f"{self.path.name}.corrupt-{datetime.now():%Y%m%d-%H%M%S-%f}")
        for source, suffix in zip(self._files(), ("", "-wal", "-shm")):
            if source.exists():
                source.rename(str(kept) + suffix)
        return kept

    def _run(self, action, default=None, write: bool = False, quiet: bool = False):
        """Run a database action, or return `default` when the cache cannot be used (see the module
        docstring): nothing it cannot read right now is ever deleted. `write`: the action stores."""
        with self._lock:
            if self._off or (write and self._no_writes):
                return default
            try:
                return action(self._connect())
            except (sqlite3.DatabaseError, OSError) as exc:
                problem = _problem(exc)
                if problem != "damaged" or quiet:  # `cache info` only says so: it never renames the file
                    return self._stop(problem, exc, write, quiet, default)
            self.close()
            try:  # a really damaged database: kept under another name, and a new one started
                kept = self._quarantine()
                result = action(self._connect())
            except (sqlite3.DatabaseError, OSError) as exc:
                return self._stop(_problem(exc), exc, write, quiet, default)
            if not quiet:
                warnings.warn(f"the embedding cache {self.path} was damaged; it was kept as {kept.name} and a new "
                              "one was started (delete the old one once you no longer need it)", CacheWarning)
            return result

    def _stop(self, problem: str, exc: Exception, write: bool, quiet: bool, default):
        """Stop using the cache (or stop storing in it) for the rest of this run, saying why once."""
        self.close()
        detail = getattr(exc, "strerror", None) or str(exc)
        if problem == "locked" and write:
            self._no_writes = (f"the embedding cache {self.path} stayed locked by another process for "
                               f"{self.busy_timeout:g} s; this run stores nothing more in it (results are "
                               "kept). Run again once the other process is done")
        elif problem == "read-only" and write:
            self._no_writes = (f"the embedding cache {self.path} is read-only; this run reads it but stores "
                               "nothing in it. Make it writable or give another cache folder (--cache-dir)")
        elif problem == "full":
            self._off = (f"the disk of the embedding cache {self.path} is full; this run goes on without the "
                         "cache (every result is kept, none is stored). Free some space or give another "
                         "cache folder (--cache-dir)")
        elif problem == "damaged":
            self._off = (f"the embedding cache {self.path} is damaged ({detail}); the next run that uses it keeps "
                         "it under another name and starts a new one")
        elif problem == "locked":
            self._off = (f"the embedding cache {self.path} stayed locked by another process for "
                         f"{self.busy_timeout:g} s; this run goes on without it. Run again once the other "
                         "process is done")
        else:
            self._off = (f"the embedding cache in {self.directory} cannot be used ({detail}); this run goes "
                         "on without it. Give a writable folder as the cache folder (--cache-dir)")
        if not quiet:
            warnings.warn(self._off or self._no_writes, CacheWarning)
        return default

    def close(self) -> None:
        """Close the database connection (the next use opens it again)."""
        with self._lock:
            if self._db is not None:
                try:
                    self._db.close()
                except sqlite3.Error:
                    pass  # a connection that failed is gone either way
                self._db = None

    # -- file contents ---------------------------------------------------------------------------
    def content_keys(self, paths: Sequence[str | os.PathLike], progress: bool = False) -> list[tuple[str | None, str]]:
        """For each file: (SHA-256 of its bytes, "") or (None, reason it cannot be read).

        Files seen before with the same identity (see the module docstring) are not read again; the
        others are hashed in threads (hashlib works outside the GIL) and remembered.
        """
        keys: list[tuple[str | None, str]] = [(None, "")] * len(paths)
        # a file that cannot be stat'ed is left to open_image, which says why (broken link, moved, ...)
        identities = {i: identity for i, path in enumerate(paths) if (identity := file_identity(path)) is not None}
        known = self._known_contents([identity[0] for identity in identities.values()])
        unknown = []
        for i, identity in identities.items():
            stored = known.get(identity[0])
            if stored is not None and stored[:4] == identity[1:] and stored[5] == _row_crc(identity, stored[4]):
                keys[i] = (stored[4], "")
            else:
                unknown.append(i)
        if unknown:
            from ..progress import progress_bar
            from .files import file_sha256

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
            self._run(store, write=True)
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
        return self._run(lookup, default={})

    # -- model manifests -------------------------------------------------------------------------
    def get_manifest(self, args: str) -> tuple[list, dict] | None:
        """(files, manifest) stored for a model's load arguments (see put_manifest), or None when there is
        none or the row is damaged (its checksum fails, or it is not the JSON it should be)."""
        row = self._run(lambda db: db.execute("SELECT files, manifest, crc FROM manifests WHERE args=?",
                                              (args,)).fetchone())
        if row is None or zlib.crc32("|".join((args, *row[:2])).encode()) != row[2]:
            return None
        try:
            files, manifest = json.loads(row[0]), json.loads(row[1])
        except (TypeError, ValueError):
            return None
        return (files, manifest) if isinstance(files, list) and isinstance(manifest, dict) else None

    def put_manifest(self, args: str, files: list, manifest: dict) -> None:
        """Store what a model loaded with `args` is (`manifest`, JSON-able) and the identities of the weights
        files it was read from (`files`, from file_identity), replacing an older row for the same args."""
        texts = (json.dumps(files), json.dumps(manifest, ensure_ascii=False))
        row = (args, *texts, zlib.crc32("|".join((args, *texts)).encode()))

        def store(db):
            with db:
                db.execute("INSERT OR REPLACE INTO manifests VALUES (?,?,?,?)", row)
        self._run(store, write=True)

    # -- images ----------------------------------------------------------------------------------
    def get_images(self, model: str, variant: str, contents: Sequence[str]) -> list[dict | None]:
        """For each content key: {"vector" (a float32 numpy array), "width", "height", "note"} or None when
        missing or damaged."""
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
        found = self._run(lookup, default={})
        return [found.get(c) for c in contents]

    def put_images(self, model: str, variant: str, entries: Iterable[tuple[str, int, int, str, object]]):
        """Store (content, width, height, note, vector) entries in one transaction."""
        rows = [(model, variant, c, w, h, note, *_pack(v)) for c, w, h, note, v in entries]

        def store(db):
            with db:
                db.executemany("INSERT OR REPLACE INTO images VALUES (?,?,?,?,?,?,?,?)", rows)
        self._run(store, write=True)

    # -- texts -----------------------------------------------------------------------------------
    def get_texts(self, model: str, prompts: Sequence[str], truncate: bool) -> list[np.ndarray | None]:
        """The stored embedding of each prompt for this model and truncation (a float32 numpy array), None
        where there is none."""
        def lookup(db):
            found = {}
            for prompt in dict.fromkeys(prompts):
                row = db.execute("SELECT vector, crc FROM texts WHERE model=? AND prompt=? AND truncate=?",
                                 (model, prompt, int(truncate))).fetchone()
                if row is not None and (vector := _unpack(*row)) is not None:
                    found[prompt] = vector
            return found
        found = self._run(lookup, default={})
        return [found.get(p) for p in prompts]

    def put_texts(self, model: str, prompts: Sequence[str], truncate: bool, vectors) -> None:
        """Store one embedding per prompt (rows of `vectors`) for this model and truncation."""
        rows = [(model, p, int(truncate), *_pack(v)) for p, v in zip(prompts, vectors)]

        def store(db):
            with db:
                db.executemany("INSERT OR REPLACE INTO texts VALUES (?,?,?,?,?)", rows)
        self._run(store, write=True)

    # -- housekeeping ----------------------------------------------------------------------------
    def info(self) -> dict:
        """Where the cache is, whether it exists yet, how big, and how many entries of each kind. CacheError when
        it cannot be read."""
        self._check_folder()
        if not self.path.exists():
            return {"path": str(self.path), "exists": False, "bytes": 0, "images": 0, "texts": 0, "models": 0}
        counts = self._run(lambda db: (
            db.execute("SELECT count(*) FROM images").fetchone()[0],
            db.execute("SELECT count(*) FROM texts").fetchone()[0],
            db.execute("SELECT count(DISTINCT model) FROM (SELECT model FROM images UNION "
                       "SELECT model FROM texts)").fetchone()[0]), quiet=True)
        if counts is None:
            raise CacheError(self._off)
        size = sum(file.stat().st_size for file in self._files() if file.exists())
        return {"path": str(self.path), "exists": True, "bytes": size, "images": counts[0], "texts": counts[1],
                "models": counts[2]}

    def clear(self) -> None:
        """Delete every stored embedding (the cache file is removed and made again on use). CacheError when
        the folder does not let it."""
        self._check_folder()
        with self._lock:
            self.close()
            try:
                for file in self._files():
                    file.unlink(missing_ok=True)
            except OSError as exc:
                raise CacheError(f"cannot clear the embedding cache {self.path}: {exc.strerror or exc}; check "
                                 "the folder's permissions, or give another cache folder (--cache-dir)") from None
            self._off = self._no_writes = ""

    def _check_folder(self) -> None:
        """CacheError when the cache folder is something else than a folder (a file, or under one)."""
        try:
            kind = os.stat(self.directory).st_mode
        except FileNotFoundError:
            return  # made on first use
        except OSError as exc:
            raise CacheError(f"the cache folder {self.directory} cannot be used: {exc.strerror or exc}; give "
                             "another cache folder (--cache-dir)") from None
        if not stat.S_ISDIR(kind):
            raise CacheError(f"the cache folder {self.directory} is not a folder; give another cache folder "
                             "(--cache-dir)")
