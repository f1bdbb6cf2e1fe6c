"""Writing results: atomically, so a crash or a kill never leaves a half-written file where a good one was.

Each file is written to a hidden temporary file beside its target (".NAME.HOST-PID.XXXXXXXX.part"),
flushed to disk, and then renamed over the target in one step (os.replace). A run killed while writing
leaves the previous file intact; the temporary file it leaves behind is removed by the next write of
the same target once its process is gone. When a file cannot be written (read-only folder, full disk),
ExportError says so and the results stay in memory, so the same call can simply be retried.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import socket
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # only for the annotation: exporting tables never imports matplotlib
    from matplotlib.figure import Figure

READ_ONLY_ERRORS = (errno.EROFS, errno.EACCES, errno.EPERM)
FULL_ERRORS = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)
PART_NAME_CHARS = 60
RETRY_HINT = "the results are still in memory: fix this and call the export again"


class ExportError(OSError):
    """A file could not be written; the results stay in memory, so the export can be retried."""


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname() or "host")


def _part_prefix(target: Path) -> str:
    # the name is shortened so that the temporary name stays within the file system's 255 bytes
    return f".{target.name[:PART_NAME_CHARS]}.{_host()}-{os.getpid()}."


def _explain(target: Path, exc: OSError) -> str:
    """One line: what could not be written, why, and what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno in READ_ONLY_ERRORS:
        advice = f"the folder {target.parent} is read-only or not yours; choose another output path"
    elif exc.errno in FULL_ERRORS:
        advice = "the disk is full; free some space or choose another output path"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST) or isinstance(exc, (NotADirectoryError, FileExistsError)):
        advice = "a part of the output path is a file, not a folder; choose another output path"
    elif exc.errno == errno.EISDIR or isinstance(exc, IsADirectoryError):
        advice = f"{target} is a folder; give a file name such as {target / 'results.csv'}"
    else:
        advice = "choose another output path"
    return f"cannot write {target}: {reason}; {advice} ({RETRY_HINT})"


def check_output_file(target: str | os.PathLike) -> Path:
    """Refuse, before any work is done, an output path that cannot become a file: a folder, a path under a
    file, or a read-only folder. Returns the path; the write itself may still fail (a full disk)."""
    target = Path(target)
    if target.is_dir():
        raise ExportError(f"cannot write {target}: it is a folder; give a file name such as {target / 'results.csv'}")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ExportError(f"cannot write {target}: {parent} is a file, not a folder; choose another output path")
    if not os.access(parent, os.W_OK):
        raise ExportError(f"cannot write {target}: the folder {parent} is read-only or not yours; "
                          "choose another output path")
    return target


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

    On any failure the target is left as it was and the temporary file is removed; OSErrors become an
    ExportError whose message says why (read-only, disk full, not a folder) and what to do.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        handle, temporary = tempfile.mkstemp(prefix=_part_prefix(target), suffix=".part", dir=target.parent)
        os.close(handle)
    except OSError as exc:
        raise ExportError(_explain(target, exc)) from None
    temporary = Path(temporary)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())  # the data is on disk before the name points to it
        os.chmod(temporary, _new_file_mode(target))
        os.replace(temporary, target)
    except OSError as exc:
        raise ExportError(_explain(target, exc)) from None
    finally:
        temporary.unlink(missing_ok=True)
    remove_stale_parts(target)


def write_csv(results: pd.DataFrame, path: str | os.PathLike, bom: bool = False) -> Path:
    """Write a table as UTF-8 CSV, atomically.

    File names that are not valid UTF-8 (bytes from another system's encoding) are written with
    backslash escapes (caf\\udce9.jpg), so the CSV is always valid UTF-8 and the export never fails on them.

    Args:
        results: the table (its index is not written).
        path: where to write; missing folders are made.
        bom: add the byte-order mark Excel needs to read UTF-8.

    Returns:
        The path written. Raises ExportError saying why when it cannot be written.
    """
    with atomic_path(path) as temporary:
        results.to_csv(temporary, index=False, encoding="utf-8-sig" if bom else "utf-8", errors="backslashreplace")
    return Path(path)


def save_figure(figure: Figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a matplotlib figure atomically.

    Args:
        figure: the figure.
        path: where to write; the suffix picks the format (.png, .svg, .pdf).
        dpi: resolution of raster formats.

    Returns:
        The path written. Raises ExportError saying why when it cannot be written.
    """
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    return path


def write_json(data: dict, path: str | os.PathLike) -> Path:
    """A dict as indented UTF-8 JSON, written atomically (NaN becomes null)."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    with atomic_path(path) as temporary:
        Path(temporary).write_text(json.dumps(clean(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)
