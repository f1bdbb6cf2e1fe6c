"""Ground-truth labels for a folder of images: from class subfolders or from a CSV of path,label.

`read_labels` returns a plain table (path, label) and nothing else; `match_classes` ties its labels to the
class names the prompts use. Embedding a labelled folder is clipnb.embed.labelled. Both check their input and say in one line what is wrong and what to do.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from .classes import check_classes
from .files import utf8_name
from .images import IMAGE_EXTENSIONS, find_images

PATH_HEADERS = ("path", "file", "filename", "file_name", "image", "image_path", "filepath")
LABEL_HEADERS = ("label", "class", "class_name", "category", "target")


class LabelError(ValueError):
    """Labels that cannot be used: the message names the file, the row or the label, and the fix."""


def read_labels(folder: str | os.PathLike, labels_csv: str | os.PathLike | None = None) -> pd.DataFrame:
    """Labels of the images in `folder`: from `labels_csv` when given, else from class subfolders.

    Returns:
        A table with columns path and label, one row per labelled image. Raises LabelError when the folder or
        the CSV gives none.
    """
    if labels_csv is not None:
        return labels_from_csv(labels_csv, folder)
    return labels_from_folders(folder)


def labels_from_folders(folder: str | os.PathLike) -> pd.DataFrame:
    """`folder/<label>/.../image.jpg` -> a table (path, label); the label is the first subfolder's name."""
    folder = Path(folder)
    images = find_images(folder, recursive=True)
    rows, loose = [], []
    for path in images:
        parts = path.relative_to(folder).parts
        if len(parts) < 2:
            loose.append(path)
        else:
            rows.append((str(path), utf8_name(parts[0])))  # a label becomes prompt text: valid UTF-8
    if not rows:
        where = f" ({len(loose)} images lie directly in it)" if loose else ""
        raise LabelError(f"no labelled images in {folder}{where}: put each class's images in a subfolder named for "
                         f"the class ({folder}/<class>/image.jpg), or give a CSV of path,label (--labels)")
    if loose:
        raise LabelError(f"{len(loose)} images in {folder} are not in a class subfolder (first: {loose[0].name}); "
                         "move them into <class>/ subfolders or give a CSV of path,label (--labels)")
    return _label_table(rows)


def labels_from_csv(labels_csv: str | os.PathLike, folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """A CSV of path,label -> a table (path, label).

    A header row is optional: columns named path/file/filename/image and label/class/category are used
    wherever they are; otherwise the first two columns are path and label. Relative paths are read against `folder` first, then against the CSV's own folder.
    """
    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise LabelError(f"labels file {labels_csv} does not exist; give a CSV with one `path,label` row per image")
    try:
        text = labels_csv.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelError(f"labels file {labels_csv} could not be read as UTF-8 text: {exc}") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = [row for row in csv.reader(text.splitlines(), dialect) if any(cell.strip() for cell in row)]
    if not rows:
        raise LabelError(f"labels file {labels_csv} is empty; give one `path,label` row per image")
    header = [cell.strip().lower() for cell in rows[0]]
    path_col = next((header.index(h) for h in PATH_HEADERS if h in header), None)
    label_col = next((header.index(h) for h in LABEL_HEADERS if h in header), None)
    if path_col is not None and label_col is not None:
        body, first_line = rows[1:], 2
    elif len(rows) > 1 and not _looks_like_image(rows[0][0]) and _looks_like_image(rows[1][0]):
        path_col, label_col, body, first_line = 0, 1, rows[1:], 2  # a header with other names
    else:
        path_col, label_col, body, first_line = 0, 1, rows, 1
    bases = [Path(folder)] if folder is not None else []
    bases.append(labels_csv.parent)
    records = []
    for line, row in enumerate(body, start=first_line):
        if len(row) <= max(path_col, label_col):
            raise LabelError(f"labels file {labels_csv}, row {line}: {','.join(row)!r} has no label; "
                             "each row needs a path and a label")
        name, label = row[path_col].strip(), " ".join(row[label_col].split())
        if not name or not label:
            raise LabelError(f"labels file {labels_csv}, row {line}: empty {'path' if not name else 'label'}")
        records.append((str(_resolve(name, bases)), label))
    if not records:
        raise LabelError(f"labels file {labels_csv} holds a header but no rows")
    table = _label_table(records)
    twice = table[table["path"].duplicated(keep=False)]
    clash = twice.groupby("path")["label"].nunique()
    if (clash > 1).any():
        path = clash[clash > 1].index[0]
        raise LabelError(f"labels file {labels_csv}: {path} is given two different labels; give each image one")
    table = table.drop_duplicates("path").reset_index(drop=True)
    if not any(Path(p).is_file() for p in table["path"]):
        looked = " or ".join(str(b) for b in bases)
        raise LabelError(f"none of the {len(table)} files in {labels_csv} exist (first: {table['path'][0]}); "
                         f"relative paths are read against {looked}")
    return table


def _label_table(rows: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """(path, label) rows as a table whose paths are kept as given (object dtype, as `embed_images` keeps
    them): a name that is not valid UTF-8 would not fit pandas' Arrow-backed strings."""
    paths, labels = zip(*rows)
    return pd.DataFrame({"path": pd.Series(paths, dtype=object), "label": pd.Series(labels, dtype=object)})


def _looks_like_image(cell: str) -> bool:
    return cell.strip().lower().endswith(IMAGE_EXTENSIONS)


def _resolve(name: str, bases: Sequence[Path]) -> Path:
    path = Path(os.path.expanduser(name))
    if path.is_absolute():
        return path
    for base in bases:
        if (base / path).exists():
            return base / path
    return bases[0] / path


def class_name(label: str) -> str:
    """The class name a folder or CSV label stands for: underscores become spaces ("red_circle" -> "red circle")."""
    return " ".join(str(label).replace("_", " ").split())


def match_classes(labels: Sequence[str], classes: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """(classes, the class of each label).

    Without `classes`, the classes are the distinct labels (underscores read as spaces), sorted. With them,
    each label must name one of the classes, exactly or ignoring letter case and underscores; classes that no
    image carries are kept (they still compete in the prediction).
    """
    labels = [str(label) for label in labels]
    if classes is None:
        classes = sorted({class_name(label) for label in labels})
    classes = check_classes(classes)
    lookup = _class_lookup(classes)
    mapped, unknown = [], {}
    for label in labels:
        found = match_class(label, lookup)
        if found is None:
            unknown[label] = unknown.get(label, 0) + 1
        mapped.append(found)
    if unknown:
        label, count = next(iter(unknown.items()))
        more = f" (and {len(unknown) - 1} more labels)" if len(unknown) > 1 else ""
        raise LabelError(f"label {label!r} ({count} images){more} is not one of the classes "
                         f"{', '.join(classes[:8])}{' ...' if len(classes) > 8 else ''}; add it to the classes "
                         "(--classes) or fix the labels")
    return classes, mapped


def _class_lookup(classes: Sequence[str]) -> dict[str, str]:
    lookup = {c: c for c in classes}
    for c in classes:
        lookup.setdefault(class_name(c).lower(), c)
    return lookup


def match_class(label: str, classes: Sequence[str] | dict[str, str]) -> str | None:
    """The class a label names, exactly or ignoring letter case and underscores ("Red_Circle" -> "red circle"),
    or None when it names none of them: the one matching rule of CSV labels and folder names."""
    lookup = classes if isinstance(classes, dict) else _class_lookup(classes)
    label = str(label)
    return lookup.get(label) or lookup.get(class_name(label).lower())


def folder_labels(paths: Sequence, classes: Sequence[str]) -> list[str | None]:
    """The class each image's folder names ("shapes/red circle/000.png" -> "red circle"), None where the
    folder is not a class: the true labels of a folder sorted into one subfolder per class."""
    lookup = _class_lookup(classes)
    return [match_class(os.path.basename(os.path.dirname(str(p))), lookup) for p in paths]
