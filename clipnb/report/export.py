"""Writing results: tables (CSV, JSON) and figures, atomically through clipnb.data.files, so a crash or a
kill never leaves a half-written file where a good one was, and only where asked (how, and what is refused
before any work: clipnb.data.files). When a file cannot be written (read-only folder, full disk),
ExportError says so and the results stay in memory, so the same call can simply be retried.
CSV text cells that a spreadsheet would run as a formula are neutralised (`neutralise_formulas`).
"""
from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # only for the annotation: exporting tables never imports matplotlib
    from matplotlib.figure import Figure

# the safe-file helpers live in clipnb.data.files; these names stay importable from here
from ..data.files import (RETRY_HINT, ExportError, atomic_path, check_csv_name, check_output_file,  # noqa: F401
                          check_output_folder, real_target, remove_stale_parts)

# OWASP's CSV injection rule: a cell starting with one of these is run as a formula by Excel, LibreOffice and
# Google Sheets (tab and carriage return too, as some of them skip them first)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of `table` in which every text cell and column name that a spreadsheet would run as a formula
    (starting with =, +, -, @, tab or carriage return: OWASP's CSV injection rule, for a file named
    `=cmd|' -C calc'!A0.png`) starts with a single quote, which spreadsheets show as text. Numbers, negative
    scores included, are not text and stay numbers."""
    def safe(value):
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value

    table = table.rename(columns=safe)
    for column in range(table.shape[1]):
        values = table.iloc[:, column]
        if values.dtype == object:  # built cell by cell: names that are not UTF-8 stay as they are
            table.isetitem(column, pd.Series([safe(v) for v in values], index=values.index, dtype=object))
        elif not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values)):
            table.isetitem(column, values.map(safe))
    return table


def write_csv(results: pd.DataFrame, path: str | os.PathLike, bom: bool = False, raw: bool = False) -> Path:
    """Write a table as UTF-8 CSV, atomically: the one CSV writer of clipnb.

    File names that are not valid UTF-8 (bytes from another system's encoding) are written with
    backslash escapes (caf\\udce9.jpg), so the CSV is always valid UTF-8 and the export never fails on them.
    Text cells that a spreadsheet would run as a formula get a leading single quote (`neutralise_formulas`).

    Args:
        results: the table (its index is not written).
        path: where to write; missing folders are made. A name ending like an image's is refused.
        bom: always add the byte-order mark (--bom). Without it the one rule of every CSV clipnb writes
            holds: a BOM exactly when the CSV has a character outside ASCII (Chinese headers, class names,
            file names), which Excel otherwise reads as another encoding and garbles; an ASCII CSV is the
            same in every encoding and gets none.
        raw: write text cells exactly as they are, formulas included (--raw-csv).

    Returns:
        The path written. Raises ExportError saying why when it cannot be written.
    """
    check_csv_name(path)
    table = results if raw else neutralise_formulas(results)
    bom = bom or not _ascii(table)
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False, encoding="utf-8-sig" if bom else "utf-8", errors="backslashreplace",
                     quoting=_quoting(table))
    return Path(path)


def _text_cells(table: pd.DataFrame):
    """Every header (as text) and every cell of the columns that are not numbers: what a CSV writes as text."""
    yield from map(str, table.columns)
    for column in range(table.shape[1]):
        if not pd.api.types.is_numeric_dtype(table.iloc[:, column]):
            yield from table.iloc[:, column]


def _ascii(table: pd.DataFrame) -> bool:
    """Whether every header and text cell of a table is ASCII (numbers always are)."""
    return all(not isinstance(value, str) or value.isascii() for value in _text_cells(table))


def _quoting(table: pd.DataFrame) -> int:
    """csv.QUOTE_MINIMAL, or QUOTE_NONNUMERIC (every text cell quoted) for a table with a carriage return in a
    text cell (a file name may hold one): Python 3.11's csv module does not quote such a cell, and a reader
    then ends the row there."""
    has_return = any(isinstance(value, str) and "\r" in value for value in _text_cells(table))
    return csv.QUOTE_NONNUMERIC if has_return else csv.QUOTE_MINIMAL


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
