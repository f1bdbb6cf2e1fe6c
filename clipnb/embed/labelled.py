"""A labelled folder embedded once: `embed_labelled` reads the labels (clipnb.data.labels), checks them against
the classes, then embeds the images (clipnb.embed.pipeline); `LabelledImages` is what evaluation, prompt
settings, model comparison and few-shot probes take."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..data.images import check_folder
from ..data.labels import match_classes, read_labels
from ..models.loading import ClipModel
from .pipeline import EmbeddedImages
from .runner import embed_images

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache


@dataclass
class LabelledImages:
    """Embedded images with the class each one truly shows (rows that could not be read have NaN features)."""

    embedded: EmbeddedImages
    labels: list[str]  # one class name per row of embedded.records
    classes: list[str]  # every class the prompts name (labels are among them)

    @property
    def ok(self) -> np.ndarray:
        """A boolean per row: True where the image was read and embedded."""
        return self.embedded.ok

    def label_indices(self) -> np.ndarray:
        """Each row's label as its position in `classes`."""
        position = {c: i for i, c in enumerate(self.classes)}
        return np.array([position[label] for label in self.labels], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)


def embed_labelled(model: ClipModel, folder: str | os.PathLike, labels_csv: str | os.PathLike | None = None,
                   classes: Sequence[str] | None = None, *, cache: EmbeddingCache | None = None, batch_size: int | None = None, exact: bool = False,
                   num_workers: int | None = None, progress: bool = True, scheduler=None,
                   store: str | os.PathLike | None = None) -> LabelledImages:
    """Read the labels of a folder (subfolders or CSV), check them against the classes, embed the images once.

    Everything about the labels is checked before any image is decoded.

    Args:
        model: the model whose image encoder is used.
        folder: FOLDER/<class>/image.jpg, or any images when `labels_csv` is given.
        labels_csv: a CSV of path,label (paths relative to `folder`; header names as in PATH_HEADERS and
            LABEL_HEADERS).
        classes: the classes the prompts name (default: the distinct labels); each label must be one of them.
        cache, batch_size, exact, num_workers, progress, scheduler, store: how images are embedded (see
            `embed_images`; with a scheduler, on a Dask cluster).

    Returns:
        LabelledImages: the embedded images, one label per row and the classes. Raises LabelError saying
        what is wrong with the folder, the CSV or the classes.
    """
    folder = check_folder(folder, what="labelled images")
    table = read_labels(folder, labels_csv)
    classes, mapped = match_classes(table["label"], classes)
    embedded = embed_images(model, [Path(p) for p in table["path"]], exact=exact, cache=cache,
                            num_workers=num_workers, progress=progress, batch_size=batch_size,
                            scheduler=scheduler, store=store)
    return LabelledImages(embedded=embedded, labels=mapped, classes=classes)
