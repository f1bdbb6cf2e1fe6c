"""Writing results: atomically, so a crash or a kill never leaves a half-written file where a good one was."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pandas as pd


class ExportError(OSError):
    """A file could not be written; the results stay in memory, so the export can be retried."""


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike):
    """Yield a temporary path beside `target`; on success it replaces `target` in one step (os.replace)."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(handle)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}; choose another output folder "
                          "(the results are still in memory)") from None
    try:
        yield Path(temporary)
        os.replace(temporary, target)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {exc.strerror or exc}; free some space or choose another "
                          "output folder (the results are still in memory)") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def write_csv(results: pd.DataFrame, path: str | os.PathLike, bom: bool = False) -> Path:
    """UTF-8 CSV; `bom=True` adds the byte-order mark Excel needs to read UTF-8 (as the seed does)."""
    with atomic_path(path) as temporary:
        results.to_csv(temporary, index=False, encoding="utf-8-sig" if bom else "utf-8")
    return Path(path)


def save_figure(figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a matplotlib figure (format from the suffix: .png, .svg, .pdf) atomically."""
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    return path
