"""Files that clipnb writes, safely: atomically, so a crash or a kill never leaves a half-written file where a
good one was, and only where asked; and what identifies a file: its SHA-256 and its name as text.

Each file is written to a hidden temporary file beside its target (".NAME.HOST-PID.XXXXXXXX.part"),
flushed to disk, and then renamed over the target in one step (os.replace). A run killed while writing
leaves the previous file intact; the temporary file it leaves behind is removed by the next write of
the same target once its process is gone. When a file cannot be written (read-only folder, full disk),
ExportError says so and the results stay in memory, so the same call can simply be retried.

Outputs only go where asked: a symlink is written through (its target gets the new file), and a target
that is not a regular file (a device, a FIFO, a socket, a folder) is refused, since os.replace would put a
file in its place. `check_output_file` and `check_output_folder` refuse what cannot work before any work
is done (the command line calls them first), including a CSV named like an image or one of the inputs.
The table and figure writers built on these are in clipnb.report.export.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import socket
import stat
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

READ_ONLY_ERRORS = (errno.EROFS, errno.EACCES, errno.EPERM)
FULL_ERRORS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)
PART_NAME_CHARS = 60
RETRY_HINT = "the results are still in memory: fix this and call the export again"  # words.py's export.retry


class ExportError(OSError):
    """A file could not be written; the results stay in memory, so the export can be retried.

    One made by `worded` keeps its words.py key and fields, so that a panel or notebook can say it in its own
    language (`said`); str() is the English line the command line prints."""

    key: str | None = None
    fields: Mapping = {}

    @classmethod
    def worded(cls, key: str, **fields) -> ExportError:
        error = cls(_phrase(key, **fields).said("en"))
        error.key, error.fields = key, fields
        return error

    def said(self, lang: str = "en", retry: bool = True) -> str:
        """The message in `lang` (the English message where it has no words.py key); with `retry` False without
        its "(the results are still in memory...)" part, for a caller that says what is kept itself."""
        said = _phrase(self.key, **self.fields).said(lang) if self.key else str(self)
        return said if retry else said.replace(f" ({_phrase('export.retry').said(lang)})", "")


def _phrase(key: str, **fields):
    """A clipnb.words.Phrase, imported here: atomic_path is used alone, without the package (tests do)."""
    from ..words import Phrase

    return Phrase(key, fields)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname() or "host")


def _part_prefix(target: Path) -> str:
    # the name is shortened so that the temporary name stays within the file system's 255 bytes
    return f".{target.name[:PART_NAME_CHARS]}.{_host()}-{os.getpid()}."


def _explain(target: Path, exc: OSError) -> ExportError:
    """One line: what could not be written, why, and what to do. The reason is the system's (strerror, in
    English); a line in another language gives the error's code (EROFS) and says why in its advice."""
    if exc.errno in READ_ONLY_ERRORS:
        advice = _phrase("export.advice.read_only", parent=target.parent)
    elif exc.errno in FULL_ERRORS:
        advice = _phrase("export.advice.full")
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST) or isinstance(exc, (NotADirectoryError, FileExistsError)):
        advice = _phrase("export.advice.not_folder")
    elif exc.errno == errno.EISDIR or isinstance(exc, IsADirectoryError):
        advice = _phrase("export.advice.is_folder", target=target, example=target / "results.csv")
    else:
        advice = _phrase("export.advice.other")
    return ExportError.worded("export.failed", target=target, reason=exc.strerror or str(exc),
                              code=errno.errorcode.get(exc.errno, "?"), advice=advice,
                              retry=_phrase("export.retry"))


def _kind(mode: int):
    """What a file that is not a regular file is, in words."""
    kinds = ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "device"),
             (stat.S_ISBLK, "device"), (stat.S_ISSOCK, "socket"))
    return _phrase("export.kind." + next((name for test, name in kinds if test(mode)), "other"))


def real_target(target: str | os.PathLike) -> Path:
    """The file a write to `target` lands in: the end of its symlinks (so a link is written through, not
    replaced), or ExportError when that is there and is not a regular file (a device, FIFO, socket or
    folder), which os.replace would otherwise replace with a file."""
    target = Path(target)
    real = Path(os.path.realpath(target))
    try:
        mode = os.stat(real).st_mode
    except OSError:  # nothing there yet (or unreachable: the write itself says why)
        return real
    if stat.S_ISDIR(mode):
        raise ExportError.worded("export.is_folder", target=target, example=target / "results.csv")
    if not stat.S_ISREG(mode):
        shown = target if real == target.absolute() else _phrase("export.link", target=target, real=real)
        raise ExportError.worded("export.not_regular", shown=shown, kind=_kind(mode))
    return real


def _check_parent(target: Path, parent: Path) -> None:
    """The nearest existing folder at or above `parent` must be a writable folder (missing ones are made)."""
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ExportError.worded("export.parent_file", target=target, parent=parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError.worded("export.read_only", target=target, parent=parent)


def check_csv_name(target: str | os.PathLike) -> None:
    """Refuse a CSV target named like an image (photo.jpg), or a link to one: writing it would overwrite a
    picture."""
    from ..data.images import is_image_name  # here: atomic_path is used alone, without the package (tests do)

    for name in dict.fromkeys((str(target), os.path.realpath(target))):
        if is_image_name(name):
            shown = target if name == str(target) else _phrase("export.link", target=target, real=name)
            raise ExportError.worded("export.image_name", shown=shown)


def check_output_file(target: str | os.PathLike, inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Refuse, before any work is done, a CSV path that cannot become a file: a folder, a device, FIFO or
    socket (through symlinks too), a path under a file, a read-only folder, an image's name, or one of
    `inputs` (the files the command reads). Returns the path; the write itself may still fail (a full disk)."""
    target = Path(target)
    check_csv_name(target)
    real = real_target(target)
    _check_not_input(target, real, inputs)
    _check_parent(target, real.parent)
    return target


def _check_not_input(target: Path, real: Path, inputs: Sequence[str | os.PathLike]) -> None:
    for source in inputs:
        if source is not None and real.exists() and os.path.exists(source) and os.path.samefile(real, source):
            raise ExportError.worded("export.input", target=target, source=source)


def check_output_folder(folder: str | os.PathLike, names: Sequence[str] = (),
                        inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Refuse, before any work is done, an output folder that cannot be made or written: a file, a device or
    FIFO (through symlinks too), a path under a file, or a read-only place; and each file `names` that the
    command will write in it, as `real_target` and `check_output_file` would at the write (a folder, FIFO or
    device there, or one of `inputs`). Returns the folder."""
    folder = Path(folder)
    real = Path(os.path.realpath(folder))
    if real.exists() and not real.is_dir():
        kind = _phrase("export.kind.file") if real.is_file() else _kind(os.stat(real).st_mode)
        raise ExportError.worded("export.folder_kind", folder=folder, kind=kind)
    _check_parent(folder, real)
    for name in names:
        _check_not_input(folder / name, real_target(folder / name), inputs)
    return folder


def _new_file_mode(target: Path) -> int:
    """The permissions the target should get: the old file's, else what open() would give (umask)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def remove_stale_parts(target: str | os.PathLike) -> list[Path]:
    """Delete temporary files of `target` left by writers on this machine that no longer run (killed)."""
    target = Path(target)
    pattern = re.compile(rf"^\.{re.escape(target.name[:PART_NAME_CHARS])}\.{re.escape(_host())}-(\d+)\.[^.]+\.part$")
    removed = []
    try:
        candidates = list(target.parent.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        match = pattern.match(candidate.name)
        if not match or int(match.group(1)) == os.getpid() or _process_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but is someone else's
        return True
    return True


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; on success it replaces `target` in one step (os.replace).

    A symlink is written through (the temporary file goes beside the file it points to); a target that is not
    a regular file (a device, FIFO or folder) is refused (see `real_target`). On any failure the target is left
    as it was and the temporary file is removed; OSErrors become an ExportError whose message says why
    (read-only, disk full, not a folder) and what to do.
    """
    target = real_target(target)  # a symlink's target is written; a device, FIFO or folder is refused
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        handle, temporary = tempfile.mkstemp(prefix=_part_prefix(target), suffix=".part", dir=target.parent)
        os.close(handle)
    except OSError as exc:
        raise _explain(target, exc) from None
    temporary = Path(temporary)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())  # the data is on disk before the name points to it
        os.chmod(temporary, _new_file_mode(target))
        os.replace(temporary, target)
    except OSError as exc:
        raise _explain(target, exc) from None
    finally:
        temporary.unlink(missing_ok=True)
    remove_stale_parts(target)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file as hex, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def utf8_name(path: str | os.PathLike) -> str:
    """A path as text that SQLite and Parquet can hold: a name that is not valid UTF-8 (another system's
    encoding, which Python escapes) is kept with backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
