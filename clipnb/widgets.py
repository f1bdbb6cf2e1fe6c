"""A control panel for zero-shot classification in JupyterLab (ipywidgets 8).

The images are embedded once (by the caller, or by `ClassifierPanel.from_folder`). Every change of a
control builds a zero-shot head for the new classes, templates or ensembling method and re-scores those
same embeddings (`build_head` + `results_table`: no image is encoded again), then redraws the table and
the charts in place. A bad entry (a template without `{}`, an empty or repeated class) shows a message in
the panel and leaves the last good results on screen. Export writes the CSV files and the figures to the
output folder and says where.

Everything is driven by the controls' values, so the panel works the same from Python as from the page:

    panel = ClassifierPanel(model, embedded, ["cat", "dog"])
    panel.new_class.value = "car"; panel.add_class_button.click()
    panel.ensemble.value = "score"
    panel.results          # the table of the last good scoring
"""
from __future__ import annotations

import base64
import contextlib
import html
import io
import os
from pathlib import Path
from typing import Sequence

import ipywidgets as w
import numpy as np
import pandas as pd

from . import plotting
from .classify import gather_images, prob_column, results_table
from .compare import display_names
from .embedding import EmbeddedImages, embed_images
from .export import ExportError, write_csv
from .models import ClipModel
from .prompts import ENSEMBLE_METHODS, TEMPLATE_SETS, PromptError, check_classes, resolve_templates
from .scoring import build_head
from .summary import class_summary, classes_of

CUSTOM = "custom"
CHARTS = ("images", "classes")  # the figures drawn (and exported), by name


def image_table(results: pd.DataFrame, rows: Sequence[int] | None = None) -> pd.DataFrame:
    """A screen-sized view of `results`: per image its prediction and confidence, the runner-up and its
    probability, and why it could not be read (when it could not)."""
    rows = list(range(len(results))) if rows is None else list(rows)
    classes = classes_of(results)
    names = display_names(results["path"])
    probs = results[[prob_column(c) for c in classes]].to_numpy(dtype=float)
    records = []
    for row in rows:
        entry = results.iloc[row]
        ranked = np.argsort(-np.nan_to_num(probs[row], nan=-1.0), kind="stable")
        second = ranked[1] if len(classes) > 1 and np.isfinite(probs[row, ranked[1]]) else None
        records.append({"image": names[row], "prediction": entry["prediction"],
                        "confidence": entry["confidence"],
                        "runner-up": classes[second] if second is not None else None,
                        "runner-up probability": probs[row, second] if second is not None else np.nan,
                        "error": entry["error"] or ""})
    return pd.DataFrame(records, columns=["image", "prediction", "confidence", "runner-up",
                                          "runner-up probability", "error"])


def template_lines(text: str) -> list[str]:
    """The templates of the editable list: one per line, blank lines and # comments left out."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def png_bytes(figure, dpi: int = 100) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


class ClassifierPanel:
    """Controls, a status line, the charts and the table for one set of embedded images.

    Controls (ipywidgets, set their values or click them to drive the panel): `new_class` +
    `add_class_button`, `class_list` + `remove_class_button`, `template_set`, `templates` (one per line),
    `ensemble`, `shown` (the images shown in the grid and the table), `output_dir` + `export_button`.
    State: `results` (last good scoring), `table` (the rows shown), `figures` and `pngs` (last drawn charts), `message` and `error`
    (the status line), `exported` (paths of the last export), `scorings` (how many times it scored).
    """

    def __init__(self, model: ClipModel, embedded: EmbeddedImages, classes: Sequence[str],
                 templates: str | Sequence[str] = "seed", ensemble: str = "embedding", *,
                 output_dir: str | os.PathLike = "reports", shown: Sequence[int] | None = None,
                 max_shown: int = 8, cache=None, dpi: int = 150):
        self.model, self.embedded, self.cache, self.dpi = model, embedded, cache, dpi
        classes = check_classes(classes)
        set_name = templates if isinstance(templates, str) and templates in TEMPLATE_SETS else CUSTOM
        templates = resolve_templates(templates)
        self.results: pd.DataFrame | None = None
        self.table: pd.DataFrame | None = None
        self.figures: dict = {}
        self.pngs: dict[str, bytes] = {}
        self.message, self.error = "", ""
        self.exported: list[Path] = []
        self.scorings = 0
        self._quiet = False
        self._colour_order = list(classes)  # every class seen, in order: a class keeps its colour

        names = display_names(embedded.records["path"])
        shown = list(range(min(max_shown, len(names)))) if shown is None else list(shown)
        wide = {"description_width": "initial"}  # labels in full, not cut to "Template ..."
        self.new_class = w.Text(placeholder="a new class, e.g. red circle", description="New class",
                                layout=w.Layout(width="auto"), style=wide)
        self.add_class_button = w.Button(description="Add class", icon="plus", button_style="primary")
        self.class_list = w.Select(options=classes, rows=min(8, max(3, len(classes))), description="Classes",
                                   layout=w.Layout(width="auto"), style=wide)
        self.remove_class_button = w.Button(description="Remove selected", icon="minus")
        self.template_set = w.Dropdown(options=list(TEMPLATE_SETS) + [CUSTOM], value=set_name,
                                       description="Template set", style=wide)
        self.templates = w.Textarea(value="\n".join(templates), rows=6, continuous_update=False,
                                    description="Templates", placeholder="one template per line, with {}",
                                    layout=w.Layout(width="auto"), style=wide)
        self.ensemble = w.ToggleButtons(options=list(ENSEMBLE_METHODS), value=ensemble, description="Ensemble",
                                        style=wide,
                                        tooltips=["average the template embeddings (CLIP paper)",
                                                  "average the per-template scores (seed notebook)"])
        self.shown = w.SelectMultiple(options=[(name, i) for i, name in enumerate(names)], value=shown,
                                      rows=min(8, max(3, len(names))), description="Images shown",
                                      layout=w.Layout(width="auto"), style=wide)
        self.output_dir = w.Text(value=str(output_dir), description="Output folder", layout=w.Layout(width="auto"),
                                 style=wide)
        self.export_button = w.Button(description="Export", icon="download", button_style="success")
        self.status = w.HTML()
        self.charts_out = w.Output()
        self.table_out = w.Output()
        self.charts_out.add_class("clipnb-charts")
        self.table_out.add_class("clipnb-table")

        self.add_class_button.on_click(lambda _: self.add_class())
        self.remove_class_button.on_click(lambda _: self.remove_class())
        self.export_button.on_click(lambda _: self.export())
        self.template_set.observe(self._on_template_set, names="value")
        self.templates.observe(self._on_templates, names="value")
        self.ensemble.observe(lambda _: self.refresh(), names="value")
        self.shown.observe(lambda _: self.redraw(), names="value")

        column = w.Layout(width="33%", padding="0 8px 0 0")
        self.widget = w.VBox([
            w.HBox([w.VBox([self.class_list, self.new_class,
                            w.HBox([self.add_class_button, self.remove_class_button])], layout=column),
                    w.VBox([self.template_set, self.templates, self.ensemble], layout=column),
                    w.VBox([self.shown, self.output_dir, self.export_button], layout=column)]),
            self.status, self.charts_out, self.table_out])
        self.widget.add_class("clipnb-panel")
        self.refresh()

    @classmethod
    def from_folder(cls, model: ClipModel, folder, classes: Sequence[str], templates="seed", *,
                    recursive: bool = False, cache=None, **options) -> "ClassifierPanel":
        """Embed the images of `folder` once and open a panel on them."""
        embedded = embed_images(model, gather_images(folder, recursive=recursive), cache=cache)
        return cls(model, embedded, classes, templates, cache=cache, **options)

    # -- what the controls hold -------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self.class_list.options)

    @property
    def palette(self) -> dict:
        """The colour of each class: a class keeps its colour when others are added or removed."""
        return plotting.class_palette(self._colour_order)

    @property
    def template_list(self) -> list[str]:
        return template_lines(self.templates.value)

    # -- actions ----------------------------------------------------------------------------------
    def add_class(self, name: str | None = None) -> bool:
        """Add the class typed in `new_class` (or `name`) and re-score; a bad name only shows a message."""
        name = self.new_class.value if name is None else name
        if not name.strip():
            return self._fail("class not added: the name is empty; type a class name first")
        try:
            classes = check_classes(self.classes + [name])
        except PromptError as exc:
            return self._fail(f"class not added: {exc}")
        self.class_list.options = classes
        self._colour_order += [c for c in classes if c not in self._colour_order]
        self.new_class.value = ""
        return self.refresh()

    def remove_class(self, name: str | None = None) -> bool:
        """Remove the class selected in `class_list` (or `name`) and re-score."""
        name = self.class_list.value if name is None else name
        if name not in self.classes:
            return self._fail("no class removed: select a class in the list first")
        if len(self.classes) == 1:
            return self._fail(f"class {name!r} not removed: it is the last one and at least one is needed")
        self.class_list.options = [c for c in self.classes if c != name]
        return self.refresh()

    def refresh(self) -> bool:
        """Re-score the embeddings with the controls' classes, templates and ensembling, then redraw.

        On a bad entry the message goes to the status line and the last good results stay on screen.
        """
        try:
            head = build_head(self.model, self.classes, self.template_list, self.ensemble.value, cache=self.cache)
        except PromptError as exc:
            return self._fail(f"{exc} (the results shown are from the last good settings)")
        results = results_table(self.embedded, head)
        results.attrs["model"] = self.model.name
        self.results = results
        self.scorings += 1
        self.redraw()
        self._say(f"{len(head.classes)} classes × {len(head.templates)} templates, {head.ensemble} ensembling: "
                  f"{int(self.embedded.ok.sum())} images re-scored from their embeddings (none encoded again)")
        return True

    def redraw(self) -> None:
        """Draw the charts and the table of the current results (the images shown may have changed)."""
        if self.results is None:
            return
        rows = list(self.shown.value)
        palette = self.palette
        self.figures = {"images": plotting.image_grid(self.results, rows=rows, palette=palette),
                        "classes": plotting.class_dashboard(self.results, palette=palette)}
        self.pngs = {name: png_bytes(figure) for name, figure in self.figures.items()}
        self.charts_out.outputs = tuple(_png_output(self.pngs[name], name) for name in CHARTS)
        self.table = image_table(self.results, rows)
        self.table_out.outputs = (_table_output(self.table),)

    def export(self) -> list[Path]:
        """Write classification.csv, class_summary.csv and each chart as PNG, SVG and PDF to the output
        folder; the status line says where. A folder that cannot be written only shows a message."""
        if self.results is None:
            self._fail("nothing to export yet: fix the entry shown above first")
            return []
        folder = Path(self.output_dir.value.strip() or ".").expanduser().resolve()
        try:
            written = [write_csv(self.results, folder / "classification.csv", bom=True),
                       write_csv(class_summary(self.results), folder / "class_summary.csv")]
            for name, figure in self.figures.items():
                written += plotting.export_figure(figure, folder, f"panel_{name}", dpi=self.dpi)
        except (ExportError, OSError) as exc:
            self._fail(f"export failed: {exc}")
            return []
        self.exported = written
        self._say(f"exported {len(written)} files to {folder}: {', '.join(p.name for p in written)}")
        return written

    # -- status line ------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.message, self.error = text, ""
        self.status.value = f'<span style="color:#1a7f37">✔ {html.escape(text)}</span>'

    def _fail(self, text: str) -> bool:
        self.message = self.error = text
        self.status.value = f'<span style="color:#cf222e;font-weight:bold">⚠ {html.escape(text)}</span>'
        return False

    # -- template set and list stay in step ---------------------------------------------------------
    @contextlib.contextmanager
    def _quietly(self):
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    def _on_template_set(self, change) -> None:
        if self._quiet or change["new"] == CUSTOM:
            return
        with self._quietly():
            self.templates.value = "\n".join(TEMPLATE_SETS[change["new"]])
        self.refresh()

    def _on_templates(self, change) -> None:
        if self._quiet:
            return
        lines = template_lines(change["new"])
        named = next((name for name, templates in TEMPLATE_SETS.items() if list(templates) == lines), CUSTOM)
        with self._quietly():
            self.template_set.value = named
        self.refresh()

    # -- display in a notebook --------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _png_output(png: bytes, name: str) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": f"<{name} chart>"}}


def _table_output(table: pd.DataFrame) -> dict:
    formatted = table.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3f}", border=0)
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/html": formatted, "text/plain": table.to_string(index=False)}}
