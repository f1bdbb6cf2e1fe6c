"""A control panel for zero-shot classification in JupyterLab (ipywidgets 8).

The images are embedded once (by the caller, or by `ClassifierPanel.from_folder`). Every change of a
control builds a zero-shot head for the new classes, templates or ensembling method and re-scores those
same embeddings (`build_head` + `results_table`: no image is encoded again), then redraws the charts and
the table in place.

The charts in the panel are HTML (bars drawn by the browser, thumbnails made once per image), not
matplotlib figures: a change then costs the scoring and a string (`python scripts/panel_latency.py`
measures it in a real browser; docs/performance.md, "The control panel in a browser", has the figures). Export draws the same results as
matplotlib figures (PNG, SVG, PDF) for reports.

Nothing a user does is lost without a word: a bad entry, or any exception in a callback (which JupyterLab
would only show in its Log Console, since callbacks may run on another thread), puts a ⚠ message in the
status line with the details folded under it, and the last good results stay on screen. After every good
change the status line reads "N classes × M templates, METHOD ensembling". Export has a line of its own
under its button, so an export finishing never overwrites what the status line says about the controls.

Everything is driven by the controls' values, so the panel works the same from Python as from the page:

    panel = ClassifierPanel(model, embedded, ["red circle", "blue star"])
    panel.new_class.value = "green square"; panel.add_class_button.click()
    panel.ensemble.value = "score"
    panel.results          # the table of the last good scoring
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import html
import logging
import os
import threading
import time
import traceback
import weakref
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import anywidget
import ipywidgets as w
import numpy as np
import traitlets
import pandas as pd
from matplotlib.colors import to_hex

from ..data.files import ExportError
from ..data.images import display_names, gather_images
from ..data.labels import folder_labels
from ..embed.pipeline import EmbeddedImages
from ..embed.runner import embed_images
from ..models.languages import unknown_languages
from ..models.loading import ClipModel
from ..report.colours import NO_CLASS_COLOUR, class_palette, edge_colour
from ..report.export import write_csv, write_json
from ..report.plots import base as plotting
from ..tasks.summary import class_summary, prediction_counts
from ..words import LANGUAGE_NAMES, check_lang, plural, prediction_name, sentences, template_set_name, word
from ..zeroshot import schema
from ..zeroshot.outliers import check_unknown
from ..zeroshot.prompts import (CHINESE_SETS, DEFAULT_TEMPLATES, ENSEMBLE_METHODS, TEMPLATE_SETS, PromptError,
                                Templates, build_prompts, check_classes, class_key, prompt_spec, split_class_names)
from ..zeroshot.results import results_table
from ..zeroshot.schema import localised, readable
from ..zeroshot.scoring import ClassWarning, build_head, class_warnings, template_note
from .base import STYLE, PanelBase, export_folder, export_reason, failure_html, table_html, thumbnail_uri
from .prepare_ahead import Preparer, prepare_by_default

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache

log = logging.getLogger(__name__)

CUSTOM = "custom"
CHARTS = ("images", "classes")  # the figures exported, by name
TYPING_DELAY = 0.4  # seconds without a keystroke before edited templates apply (a new line applies at once)


def image_table(results: pd.DataFrame, rows: Sequence[int] | None = None,
                truth: Sequence[str | None] | None = None) -> pd.DataFrame:
    """A screen-sized view of `results`: per image its prediction and confidence, the runner-up and its
    probability, why it could not be read (when it could not), and, when `truth` (one true class or None
    per row of `results`) is given, the true class and whether the prediction is right."""
    rows = list(range(len(results))) if rows is None else list(rows)
    classes = schema.classes(results)
    names = display_names(results["path"])
    probs = schema.probabilities(results, classes).to_numpy(dtype=float)
    records = []
    for row in rows:
        entry = results.iloc[row]
        ranked = np.argsort(-np.nan_to_num(probs[row], nan=-1.0), kind="stable")
        second = ranked[1] if len(classes) > 1 and np.isfinite(probs[row, ranked[1]]) else None
        record = {"image": names[row], "prediction": entry["prediction"], "confidence": entry["confidence"],
                  "runner-up": classes[second] if second is not None else None,
                  "runner-up probability": probs[row, second] if second is not None else np.nan,
                  "fits no class": bool(entry.get("outlier", False)), "error": entry["error"] or ""}
        if truth is not None:
            true = truth[row]
            record["true class"] = true
            record["correct"] = None if true is None or entry["error"] else entry["prediction"] == true
        records.append(record)
    columns = ["image", "prediction", "confidence", "runner-up", "runner-up probability", "fits no class", "error"]
    if truth is not None:
        columns[2:2] = ["true class", "correct"]
    return pd.DataFrame(records, columns=columns)


def template_lines(text: str) -> list[str]:
    """The templates of the editable list: one per line, blank lines and # comments left out."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def settings_line(classes: Sequence[str], templates: Sequence[str], ensemble: str, sigmoid: bool = False,
                  lang: str = "en") -> str:
    """The status line's summary of the settings shown: "5 classes × 3 templates, embedding ensembling", and
    for a sigmoid model (SigLIP) that its probabilities are per class; in `lang` ("en", "zh")."""
    line = word("panel.settings", lang, classes=plural(len(classes), "class"), class_count=len(classes),
                templates=plural(len(templates), "template"), template_count=len(templates),
                ensemble=word(f"ensemble.{ensemble}", lang))
    return line + (word("panel.sigmoid", lang, note=word("note.sigmoid", lang)) if sigmoid else "")


# ---------------------------------------------------------------------------------------------
# HTML charts (pure: results in, HTML out)

def _fill(colour) -> str:
    """The CSS of a bar or swatch in `colour`: a very light one is outlined, as in the charts."""
    edge = edge_colour(colour)
    return f"background:{to_hex(colour)}" + (f";box-shadow:inset 0 0 0 1px {edge}" if edge else "")


def _bar(fraction: float, colour, text: str) -> str:
    width = 0.0 if not np.isfinite(fraction) else max(0.0, min(1.0, fraction)) * 100
    return (f'<span class="clipnb-bar"><span class="fill" style="width:{width:.1f}%;{_fill(colour)}"></span>'
            f'<span class="value">{html.escape(text)}</span></span>')


def class_chart_html(results: pd.DataFrame, palette: Mapping[str, tuple], lang: str = "en") -> str:
    """Per class: how many images it won and their mean confidence (as the report's dashboard), the
    most predicted first; with more than 20 classes, those that won nothing are left out (and counted).
    `lang`: the words of the chart ("en", "zh")."""
    good = readable(results)
    counts = prediction_counts(results).set_index("class")
    means = good.groupby("prediction")["confidence"].mean()
    order = plotting.chart_order(results)
    top = max([int(counts.at[c, "count"]) for c in order] + [1])
    cells = [f'<span class="head">{html.escape(word("panel.head_class", lang))}</span>'
             f'<span class="head">{html.escape(word("panel.head_predicted", lang))}</span>'
             f'<span class="head">{html.escape(word("panel.head_confidence", lang))}</span>']
    for name in order:
        count = int(counts.at[name, "count"])
        colour = palette.get(name, NO_CLASS_COLOUR)
        mean = float(means.get(name, np.nan))
        cells.append(f'<span class="class-name"><span class="clipnb-swatch" style="{_fill(colour)}"></span>'
                     f'{html.escape(prediction_name(name, lang, schema.classes(results)))}</span>')
        cells.append(_bar(count / top, colour, f"{count} ({100 * count / max(len(good), 1):.0f}%)"))
        cells.append(_bar(mean, colour, "–" if not np.isfinite(mean) else f"{mean:.3f}"))
    hidden = [c for c in schema.classes(results) if c not in order]
    names = ", ".join(hidden[:12]) + (", …" if len(hidden) > 12 else "")
    note = word("panel.not_shown", lang, hidden=plural(len(hidden), "class"), count=len(hidden), names=names)
    note = f'<div class="clipnb-note">{html.escape(note)}</div>' if hidden else ""
    heading = word("panel.chart_heading", lang, images=plural(len(good), "image"), image_count=len(good))
    return (f'<h4>{html.escape(heading)}</h4>'
            f'<div class="clipnb-bars clipnb-class-chart">{"".join(cells)}</div>{note}')


def image_cards_html(results: pd.DataFrame, rows: Sequence[int], palette: Mapping[str, tuple],
                     thumbnails: Mapping[int, str | None], truth: Sequence[str | None] | None = None,
                     top: int = 5, lang: str = "en") -> str:
    """One card per shown image: its thumbnail (a data URI, or None when unreadable), its name marked ✓ or
    ✗ where the true class is known, and its `top` class probabilities with the winner in its colour;
    `lang`: the words of the cards ("en", "zh")."""
    probabilities = schema.probabilities(results)
    names = display_names(results["path"])
    cards = []
    for row in rows:
        entry = results.iloc[row]
        thumbnail = thumbnails.get(row)
        picture = f'<img src="{thumbnail}" alt="">' if thumbnail else ""
        title = html.escape(names[row])
        true = truth[row] if truth is not None else None
        if entry["error"]:
            body = f'<div class="wrong">{html.escape(word("note.unreadable", lang, reason=entry["error"]))}</div>'
        else:
            if true is not None:
                mark = ('<span class="right">✓ </span>' if entry["prediction"] == true
                        else '<span class="wrong">✗ </span>')
                title = mark + title + ("" if entry["prediction"] == true
                                        else f' <span class="wrong">{html.escape(word("panel.true_class", lang, name=true))}</span>')
            probs = probabilities.iloc[row].astype(float)
            probs = probs.sort_values(ascending=False, kind="stable").head(top)
            lines = []
            for k, (name, value) in enumerate(probs.items()):
                colour = palette.get(name, NO_CLASS_COLOUR) if k == 0 else NO_CLASS_COLOUR
                weight = "font-weight:600;" if k == 0 else ""
                lines.append(f'<span class="label" style="{weight}" title="{html.escape(name)}">'
                             f'{html.escape(name)}</span>{_bar(value, colour, f"{value:.3f}")}')
            body = f'<div class="prob">{"".join(lines)}</div>'
            if entry.get("outlier", False):
                body += f'<div class="wrong">{html.escape(word("panel.outlier", lang))}</div>'
        cards.append(f'<div class="clipnb-card">{picture}<div class="name">{title}</div>{body}</div>')
    if not cards:
        cards.append(f'<div class="clipnb-note">{html.escape(word("panel.no_images", lang), quote=False)}</div>')
    return f'<div class="clipnb-cards">{"".join(cards)}</div>'


@contextlib.contextmanager
def warnings_said(lang: str = "en", category: type[Warning] = ClassWarning):
    """Print each `category` warning the block raises as the one ⚠ line a notebook shows (its message), after
    the block, instead of Python's red box with a file name, a line number and the source line; other warnings
    are shown as they would have been."""
    check_lang(lang)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", category)
            yield
    finally:  # said even when the block fails: a warning may be why
        for found in caught:
            if issubclass(found.category, category):
                print(word("note.warning", lang, message=found.message))
            else:
                warnings.warn_explicit(found.message, found.category, found.filename, found.lineno, source=found.source)


# ---------------------------------------------------------------------------------------------
# the panel

ENTRY_JS = """
function render({ model, el }) {
  el.classList.add("widget-inline-hbox", "clipnb-entry");
  el.style.cssText = "display:flex;align-items:center;gap:4px;width:100%;box-sizing:border-box";
  const label = document.createElement("label");
  label.className = "widget-label";
  label.style.cssText = "width:auto;flex:none;margin-right:4px";
  const input = document.createElement("input");
  input.type = "text";
  input.className = "widget-input";
  input.style.cssText = "flex:1 1 auto;min-width:0;height:var(--jp-widgets-inline-height,28px);box-sizing:border-box";
  const button = document.createElement("button");
  button.className = "jupyter-widgets jupyter-button widget-button mod-primary";
  button.style.cssText = "flex:none;width:auto";
  const show = () => {
    label.textContent = model.get("description");
    input.placeholder = model.get("placeholder");
    input.title = model.get("tooltip");
    button.textContent = model.get("button");
  };
  show();
  input.value = model.get("value");
  // Python's value follows the box; the submit message carries the text itself, since ipywidgets holds
  // back a value update while the kernel has not answered the last one, and a custom message overtakes it
  input.addEventListener("input", () => { model.set("value", input.value); model.save_changes(); });
  const submit = () => {
    const text = input.value;
    model.send({ event: "submit", value: text });
    input.value = "";
    model.set("value", "");
    model.save_changes();
  };
  input.addEventListener("keydown", (event) => {
    event.stopPropagation();  // JupyterLab's shortcuts must not see the typing
    if (event.key === "Enter" && !event.isComposing) { event.preventDefault(); submit(); }
  });
  button.addEventListener("click", submit);
  model.on("change:value", () => { if (input.value !== model.get("value")) input.value = model.get("value"); });
  for (const name of ["placeholder", "description", "tooltip", "button"]) model.on(`change:${name}`, show);
  // a refused entry comes back to be corrected, unless typing went on: selected and outlined, so that the
  // next key replaces it instead of appending to it ("purple starPurple Star" was once accepted)
  const unmark = () => { input.style.outline = ""; };
  input.addEventListener("input", unmark);
  input.addEventListener("blur", unmark);
  model.on("msg:custom", (message) => {
    if (message.do === "restore" && input.value === "") {
      input.value = message.value;
      model.set("value", message.value);
      model.save_changes();
      input.focus();
      input.select();
      input.style.outline = "2px solid #cf222e";
    }
  });
  el.append(label, input, button);
}
export default { render };
"""


class ClassEntry(anywidget.AnyWidget):
    """A text box with its own button, for names to add: Enter or the button submits what the box shows.

    ipywidgets' Text sends Enter as a message that can overtake the box's last value update (the front end
    holds value updates back while the kernel has not answered the previous one, and custom messages are
    not held), so a class typed quickly lost its last letters. Here the submit message carries the text,
    the box empties at once, and a refused text comes back to it (`restore`).
    `on_submit(callback)`: callback(text) per submission; `submit()` submits `value` from Python.
    """

    _esm = ENTRY_JS
    value = traitlets.Unicode("").tag(sync=True)
    placeholder = traitlets.Unicode("").tag(sync=True)
    description = traitlets.Unicode("").tag(sync=True)
    tooltip = traitlets.Unicode("").tag(sync=True)
    button = traitlets.Unicode("Add").tag(sync=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._submit_callbacks: list[Callable[[str | None], object]] = []
        self.on_msg(self._on_message)

    def on_submit(self, callback: Callable[[str | None], object]) -> None:
        self._submit_callbacks.append(callback)

    def submit(self, text: str | None = None) -> None:
        """Submit `text` (None: what `value` holds now), as Enter in the box does."""
        for callback in self._submit_callbacks:
            callback(text)

    def restore(self, text: str) -> None:
        """Put a refused `text` back in the box (the page keeps what was typed since)."""
        self.send({"do": "restore", "value": text})

    def _on_message(self, _widget, content, _buffers) -> None:
        if content.get("event") == "submit":
            self.submit(content.get("value"))


class EntryButton:
    """The "Add class" button of a ClassEntry, as Python code uses a Button: `description`, `click()`."""

    def __init__(self, entry: ClassEntry):
        self.entry = entry

    @property
    def description(self) -> str:
        return self.entry.button

    def click(self) -> None:
        self.entry.submit()


class ClassifierPanel(PanelBase):
    """Controls, a status line, the charts and the table for one set of embedded images.

    Controls (ipywidgets; set their values or click them to drive the panel):
    `class_list` ("Classes", several may be selected) + `remove_class_button` ("Remove");
    `new_class` ("New class": Enter adds it; several names separated by commas add several) +
    `add_class_button` ("Add class"); `template_set` ("Template set"); `templates` ("Templates", one per
    line: applies `typing_delay` seconds after the last keystroke, and at once on a new line);
    `ensemble` ("Ensembling"); `shown` ("Images shown"); `language` ("Language": English or 中文, the words of
    the status and export lines, the charts, the table and the exported files' headers and figures; switching
    it re-words what is shown and changes no setting); `output_dir` + `export_button` ("Export": a new
    timestamped subfolder of the output folder each time, with its own line, `export_status`, under it).

    State: `results` (last good scoring), `table` (the rows shown), `html` (the charts shown), `message`
    and `error` (the status line), `export_message` and `export_error` (the export line), `exported`
    (paths of the last export), `scorings` (how many times it scored), `truth` (true class per image from
    folder names, where a folder is named after a class).

    `prepare_ahead` (default: on, unless the variable CLIPNB_PREPARE_AHEAD is "0"): once an answer is shown, the
    prompts of the current classes in the other built-in template sets are encoded in the background
    (`clipnb.prepare_ahead`), so that a switch of set, or an add, is answered from memory; `preparing` is its
    quiet line under the status line. `close()` stops it and closes the panel's widgets.
    """

    def __init__(self, model: ClipModel, embedded: EmbeddedImages, classes: Sequence[str],
                 templates: str | Sequence[str] = DEFAULT_TEMPLATES, ensemble: str = "embedding", *,
                 output_dir: str | os.PathLike = "reports", shown: Sequence[int] | None = None,
                 max_shown: int = 8, cache: EmbeddingCache | None = None, dpi: int = 150, truth: str | Sequence | None = "folders",
                 typing_delay: float = TYPING_DELAY, lang: str = "en", prepare_ahead: bool | None = None):
        check_lang(lang)
        self.model, self.embedded, self.cache, self.dpi = model, embedded, cache, dpi
        self.typing_delay = typing_delay
        spec = prompt_spec(classes, templates, ensemble)
        classes, templates = list(spec.classes), list(spec.templates)
        self._truth_rule = truth
        self.results: pd.DataFrame | None = None
        self.table: pd.DataFrame | None = None
        self.truth: list | None = None
        self.html = ""
        self.message, self.error = "", ""
        self.exported: list[Path] = []
        self.scorings = 0
        self._lock = threading.RLock()  # callbacks and the typing timer may run on different threads
        self._timer: threading.Timer | None = None
        self._quiet = False
        self._repeats = 0  # how often the same error came again in a row
        self._shown_settings = ""
        self._failure: tuple | None = None  # the status line's failure: (said, details), said(lang) its words
        self._export_line: tuple | None = None  # the export line: (said, kind, details), said(lang) its words
        self._working = ""  # the working line while new prompts are encoded, to add progress to
        self._working_count = 0  # the prompts it says are encoded
        self._to_encode: set[str] = set()  # the prompts the scoring under way found the model without
        self._planned: set[str] = set()  # the prompts the background was asked for that the model lacked then
        self._scored: tuple | None = None  # what the last good scoring was, to word its status line again
        self._shown_controls: tuple | None = None  # the controls' values the results shown were scored with
        self._thumbnails: dict[int, str | None] = {}
        self._colours = class_palette(classes)  # a class keeps its colour for good

        names = display_names(embedded.records["path"])
        shown = list(range(min(max_shown, len(names)))) if shown is None else list(shown)
        wide = {"description_width": "initial"}  # labels in full, not cut to "Template ..."
        self.class_list = w.SelectMultiple(options=classes, rows=min(8, max(3, len(classes))), description="Classes",
                                           layout=w.Layout(width="auto"), style=wide)
        self.remove_class_button = w.Button(description="Remove", icon="minus",
                                            tooltip="remove the classes selected in the list")
        self.new_class = ClassEntry(placeholder="e.g. red circle, blue star", description="New class",
                                    button="Add class", tooltip="Enter or Add class adds it; commas separate several")
        self.add_class_button = EntryButton(self.new_class)
        self.template_set = w.Dropdown(options=list(TEMPLATE_SETS) + [CUSTOM], value=self._set_name(templates),
                                       description="Template set", style=wide)
        self.templates = w.Textarea(value="\n".join(templates), rows=6, continuous_update=True,
                                    description="Templates", placeholder="one template per line, with {}",
                                    layout=w.Layout(width="auto"), style=wide)
        self.ensemble = w.ToggleButtons(options=list(ENSEMBLE_METHODS), value=ensemble, description="Ensembling",
                                        style=wide,
                                        tooltips=["average the templates' text embeddings, then compare "
                                                  "(the CLIP paper's way)",
                                                  "compare with each template, then average the scores"])
        self.unknown = w.Checkbox(value=False, description="report images that fit no class as unknown",
                                  indent=False, layout=w.Layout(width="auto"))
        self.shown = w.SelectMultiple(options=[(name, i) for i, name in enumerate(names)], value=shown,
                                      rows=min(8, max(3, len(names))), description="Images shown",
                                      layout=w.Layout(width="auto"), style=wide)
        self.language = w.ToggleButtons(options=[(LANGUAGE_NAMES[code], code) for code in LANGUAGE_NAMES],
                                        value=lang, description="Language", style=wide,
                                        tooltips=["English", "中文: the article's chart titles, summary and CSV headers"])
        self.output_dir = w.Text(value=str(output_dir), description="Output folder", layout=w.Layout(width="auto"),
                                 style=wide)
        self.export_button = w.Button(description="Export", icon="download", button_style="success",
                                      tooltip="write the CSV files and the charts to a new subfolder")
        self.export_status = w.HTML(layout=w.Layout(width="auto"))
        self.export_status.add_class("clipnb-export-status")
        self.export_message, self.export_error = "", ""
        self.status = w.HTML()
        self.status.add_class("clipnb-status")
        self.stale_label = w.HTML()
        self.stale_label.add_class("clipnb-stale-note")
        self.charts = w.HTML()
        self.charts.add_class("clipnb-charts")
        self.table_view = w.HTML()
        self.table_view.add_class("clipnb-table")

        self.new_class.on_submit(self._guarded("adding a class", self._on_submit))
        self.remove_class_button.on_click(self._guarded("removing classes", lambda _: self.remove_class()))
        self.export_button.on_click(self._guarded("exporting", lambda _: self.export(wait=False)))
        self.template_set.observe(self._guarded("switching the template set", self._on_template_set), names="value")
        self.templates.observe(self._guarded("editing the templates", self._on_templates), names="value")
        self.ensemble.observe(self._guarded("switching the ensembling", self._on_ensemble), names="value")
        self.unknown.observe(self._guarded("switching unknown", lambda _: self.refresh()), names="value")
        self.shown.observe(self._guarded("choosing the images shown", lambda _: self.redraw()), names="value")
        self.language.observe(self._guarded("switching the language", self._on_language), names="value")

        self.preparing = w.HTML()  # a quiet line: the background preparing's progress (clipnb.prepare_ahead)
        column = w.Layout(width="33%", padding="0 8px 0 0")
        self.widget = w.VBox([
            w.HBox([w.VBox([self.class_list, self.remove_class_button, self.new_class], layout=column),
                    w.VBox([self.template_set, self.templates, self.ensemble, self.unknown], layout=column),
                    w.VBox([self.shown, self.language, self.output_dir, self.export_button, self.export_status],
                           layout=column)]),
            self.status, self.preparing, self.stale_label, self.charts, self.table_view])
        self.widget.add_class("clipnb-panel")
        self._label_controls()
        self._start_preparing(prepare_by_default() if prepare_ahead is None else prepare_ahead)
        self.refresh()

    @classmethod
    def from_folder(cls, model: ClipModel, folder: str | os.PathLike, classes: Sequence[str], templates: Templates = DEFAULT_TEMPLATES, *,
                    recursive: bool = False, cache: EmbeddingCache | None = None, **options) -> "ClassifierPanel":
        """Embed the images of `folder` once and open a panel on them."""
        embedded = embed_images(model, gather_images(folder, recursive=recursive), cache=cache)
        return cls(model, embedded, classes, templates, cache=cache, **options)

    # -- what the controls hold -------------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        """The classes the panel scores now, in order."""
        return list(self.class_list.options)

    @property
    def palette(self) -> dict:
        """The colour of each class: a class keeps its colour when others are added or removed."""
        return {name: self._colours[name] for name in self.classes}

    @property
    def lang(self) -> str:
        """The language of the panel's words and exports: "en" or "zh" (the `language` control)."""
        return self.language.value

    @property
    def template_list(self) -> list[str]:
        """The templates typed in the panel, one per line."""
        return template_lines(self.templates.value)

    # -- actions ----------------------------------------------------------------------------------
    def add_class(self, name: str | None = None) -> bool:
        """Add the class typed in `new_class` (or `name`; commas separate several) and re-score.
        A bad name only shows a message, and the typed text stays in the box to be corrected."""
        with self._lock:
            typed = self.new_class.value if name is None else name
            names = split_class_names(typed)
            if not names:
                return self._fail(lambda lang: word("panel.class_empty", lang))
            listed = {class_key(c): c for c in self.classes}
            known = [n for n in names if class_key(n) in listed]
            if known:
                same = listed[class_key(known[0])] == known[0]
                return self._fail(lambda lang: word("panel.class_listed" if same else "panel.class_listed_case", lang,
                                                    name=known[0], listed=listed[class_key(known[0])]))
            try:
                classes = check_classes(self.classes + names)
            except PromptError as exc:
                return self._fail(lambda lang, exc=exc: word("panel.class_refused", lang, reason=exc.said(lang)))
            self._colours.update(class_palette(list(self._colours) + classes, keep=self._colours))
            with self._quietly():
                self.class_list.options = classes
                self.class_list.rows = min(8, max(3, len(classes)))
            if name is None:
                self.new_class.value = ""
            return self.refresh()

    def remove_class(self, names: str | Sequence[str] | None = None) -> bool:
        """Remove the classes selected in `class_list` (or `names`) and re-score."""
        with self._lock:
            names = list(self.class_list.value) if names is None else [names] if isinstance(names, str) else list(names)
            names = [n for n in names if n in self.classes]
            if not names:
                return self._fail(lambda lang: word("panel.none_selected", lang))
            left = [c for c in self.classes if c not in names]
            if not left:
                return self._fail(lambda lang: word("panel.none_left", lang))
            with self._quietly():
                self.class_list.options = left
            return self.refresh()

    def refresh(self) -> bool:
        """Re-score the embeddings with the controls' classes, templates and ensembling, then redraw.

        On a bad entry the message goes to the status line and the last good results stay on screen, marked
        stale. While new prompts are encoded (the slow part) the status line says "working: …" and the last
        results are marked stale. Edits made meanwhile (callbacks of other threads wait for the lock) are
        scored next, in order, the last one winning: ✔ is said only of results that match the controls.
        """
        with self._lock, self._foreground():
            while True:
                done = self._score(*self._controls())
                if done is not None:
                    break
        if done:
            self._prepare_next()
        return done


    def _controls(self) -> tuple:
        """What the controls ask for now: (classes, templates, ensembling, unknown)."""
        return tuple(self.classes), tuple(self.template_list), self.ensemble.value, bool(self.unknown.value)

    def _score(self, classes, templates, ensemble: str, unknown: bool) -> bool | None:
        """Score with these settings and show the results; None, showing nothing, when the controls changed
        meanwhile (the caller scores again)."""
        started = time.perf_counter()
        try:
            self._say_working(classes, templates, ensemble)
            head = build_head(self.model, list(classes), list(templates), ensemble, cache=self.cache, warn=False,
                              progress=self._say_progress)
            check_unknown(head.classes, unknown)
        except PromptError as exc:
            return self._fail(lambda lang, exc=exc: exc.said(lang) + self._last_good(lang))
        results = results_table(self.embedded, head, unknown=unknown)
        if self._controls() != (classes, templates, ensemble, unknown):
            return None
        self.results = results
        schema.set_settings(self.results, model=self.model.name)
        self.scorings += 1
        if self._shown_controls is not None and self._shown_controls != (classes, templates, ensemble, unknown):
            self._export_clear()  # an export message is about the settings it wrote, which are gone
        self._shown_controls = (classes, templates, ensemble, unknown)
        self.redraw()
        self._scored = (head, time.perf_counter() - started, self._prompts_had(head))
        return self._say_scored()

    def _prompts_had(self, head) -> tuple[str, int]:
        """How the prompts of `head` were had, as its status line says it (a catalogue key and a count):
        encoded now, prepared ahead by the background (the model lacked them when it was asked for them), or
        all remembered from before."""
        if self._to_encode:
            return "panel.prompts_encoded", len(self._to_encode)
        ahead = {p for row in build_prompts(head.classes, head.templates) for p in row} & self._planned
        return ("panel.prompts_ahead", len(ahead)) if ahead else ("panel.prompts_memory", 0)

    def _say_working(self, classes, templates, ensemble: str) -> None:
        """Say "working: encoding N prompts for K classes…" and mark the results shown as stale when the
        settings need prompts the model has not encoded yet (each takes a pass through its text tower)."""
        self._working, self._to_encode = "", set()
        spec = prompt_spec(list(classes), list(templates), ensemble)  # a bad entry raises PromptError here
        rows = [self.model.prompts_to_encode(row) for row in build_prompts(spec.classes, spec.templates)]
        self._to_encode = {p for row in rows for p in row}
        new = len(self._to_encode)
        if not new:
            return
        count = sum(1 for row in rows if row)
        self.message, self.error = word("panel.working", self.lang, prompts=plural(new, "prompt"), prompt_count=new,
                                        classes=plural(count, "class"), class_count=count), ""
        self._working, self._working_count = self.message, new
        self._mark_stale(True)  # before the status line, so that the page never shows it over unmarked results
        self._show_line(self.status, "working", self.message)

    def _say_progress(self, done: int, total: int) -> None:
        """The working line with how far the text tower has got ("… 256 of 640"): encode_texts calls it after
        each batch, on the thread that encodes, which holds the panel's lock (ipywidgets sends from any
        thread), so no other edit can put ✔ or another message in between."""
        if not self._working:  # every prompt was remembered after all: no working line to add to
            return
        read = max(self._working_count - total, 0)  # prompts the disk cache had: done without the text tower
        self.message = (f"{self._working} "
                        f"{word('panel.progress', self.lang, done=done + read, total=total + read)}")
        self._show_line(self.status, "working", self.message)

    def _mark_stale(self, stale: bool | None = None) -> None:
        """Grey the charts and the table, with a "stale" label, while they do not match the controls
        (`stale`: None to compare the controls with what was scored last)."""
        if stale is None:
            stale = self._shown_controls is not None and self._controls() != self._shown_controls
        for view in (self.charts, self.table_view):
            (view.add_class if stale else view.remove_class)("clipnb-stale")
        self.stale_label.value = (f'<span class="clipnb-stale-label">{html.escape(word("panel.stale", self.lang))}'
                                  f'</span>' if stale else "")

    def _say_scored(self) -> bool:
        """The status line of the last good scoring, in the panel's language."""
        head, seconds, (had, prompts) = self._scored
        lang = self.lang
        cautions = class_warnings(self.model, head.classes, head.templates, lang)
        self._shown_settings = self._settings_said(lang)
        images = int(self.embedded.ok.sum())
        text = word("panel.rescored", lang, settings=self._shown_settings, images=plural(images, "image"),
                    image_count=images, seconds=seconds,
                    prompts=word(had, lang, prompts=plural(prompts, "prompt"), prompt_count=prompts))
        flagged = int(self.results["outlier"].sum())
        if flagged:
            how = "panel.outliers_unknown" if schema.setting(self.results, "unknown", False) else "panel.outliers"
            text += word(how, lang, images=plural(flagged, "image"), count=flagged)
        note = template_note(self.model, head, lang)  # the demo model: why templates and ensembling agree
        text = sentences([text, note], lang)
        if cautions:
            return self._warn(sentences([text, *cautions], lang))
        self._say(text)
        return True

    def _settings_said(self, lang: str, head=None) -> str:
        """The settings of `head` (default: the last good scoring's) as the status line says them in `lang`;
        "" before any."""
        head = head if head is not None else self._scored[0] if self._scored else None
        return settings_line(head.classes, head.templates, head.ensemble, head.sigmoid, lang) if head is not None else ""

    def redraw(self) -> None:
        """Draw the charts and the table of the current results (the images shown may have changed)."""
        with self._lock:
            if self.results is None:
                return
            rows = list(self.shown.value)
            for row in rows:
                if row not in self._thumbnails:
                    self._thumbnails[row] = thumbnail_uri(self.embedded.records.at[row, "path"])
            self.truth = self._true_classes()
            palette, lang = self.palette, self.lang
            self.html = (STYLE + '<div class="clipnb-view">' + class_chart_html(self.results, palette, lang)
                         + image_cards_html(self.results, rows, palette, self._thumbnails, self.truth, lang=lang)
                         + "</div>")
            self.charts.value = self.html
            self.table = image_table(self.results, rows, self.truth)
            self.table_view.value = table_html(self.table, lang, schema.classes(self.results))

    def export(self, wait: bool = True) -> list[Path]:
        """Write classification.csv, class_summary.csv, settings.json (model, classes, templates,
        ensembling) and the charts (PNG, SVG, PDF) of the results shown to a new timestamped subfolder of
        the output folder, in the panel's language (Chinese: the article's CSV headers and chart titles). The
        export line under the button says "exporting…" at once, with the settings
        being written, and where the files went after; the status line above stays about the controls.
        Templates still waiting for the typing pause apply first. `wait=False` (the Export button) writes
        on a thread, so the panel stays usable."""
        with self._lock:
            self.settle()
            if self.results is None:
                self._export_fail(lambda lang: word("panel.nothing_to_export", lang))
                return []
            base = self.output_dir.value.strip()
            if not base:
                self._export_fail(lambda lang: word("panel.no_output_folder", lang))
                return []
            folder = export_folder(base)
            lang, head, error = self.lang, self._scored[0], bool(self.error)

            def label(lang: str) -> str:  # the settings written, in any language: the export line is re-worded
                return self._settings_said(lang, head) + (word("panel.last_good", lang) if error else "")
            results = self.results
            settings = {"model": self.model.name, "model_path": self.model.source or None,
                        "classes": schema.classes(results),
                        "templates": list(schema.setting(results, "templates", [])),
                        "ensemble": schema.setting(results, "ensemble"), "images": len(results),
                        "unknown": bool(schema.setting(results, "unknown", False)),
                        "exported": datetime.datetime.now().isoformat(timespec="seconds")}
            job = functools.partial(self._write_export, folder, results, settings, list(self.shown.value),
                                    self.palette, self.truth, label, lang)
            self._export_say(lambda lang: word("panel.exporting", lang, label=label(lang), folder=folder), working=True)
        return self._run_export(job, wait)

    def _write_export(self, folder: Path, results, settings, rows, palette, truth, label: Callable[[str], str],
                      lang: str = "en") -> list[Path]:
        """Write the files in `lang`; the export line says how it went, `label(lang)` naming the settings."""
        try:
            written = [write_csv(localised(results, lang), folder / "classification.csv"),  # export's BOM rule
                       write_csv(localised(class_summary(results), lang), folder / "class_summary.csv"),
                       write_json(settings, folder / "settings.json")]
            figures = {"images": plotting.image_grid(results, rows=rows, palette=palette, truth=truth, lang=lang),
                       "classes": plotting.class_dashboard(results, palette=palette, lang=lang)}
            for name in CHARTS:
                written += plotting.export_figure(figures[name], folder, f"panel_{name}", dpi=self.dpi)
        except (ExportError, OSError) as exc:
            with self._lock:
                self._export_fail(lambda lang, exc=exc: word("panel.export_failed", lang, folder=folder,
                                                             reason=export_reason(exc, lang)[0]),
                                  lambda lang, exc=exc: export_reason(exc, lang)[1])
            return []
        finally:
            self.export_button.disabled = False
        with self._lock:
            self.exported = written
            self._export_say(lambda lang: word("panel.exported", lang, files=plural(len(written), "file"),
                                               file_count=len(written), label=label(lang), folder=folder,
                                               names=", ".join(p.name for p in written)))
        return written

    # The export and status lines are kept as functions of the language (`said(lang)`), so that switching the
    # language words again whatever they show: a ⚠ or an export line never stays in the language it was said in.
    def _export_say(self, said: Callable[[str], str], working: bool = False) -> None:
        self._export_line = (said, "working" if working else "ok", lambda lang: "")
        self._show_export()

    def _export_fail(self, said: Callable[[str], str], details: Callable[[str], str] = lambda lang: "") -> None:
        self._export_line = (said, "failed", details)
        self._show_export()

    def _export_clear(self) -> None:
        self._export_line = None
        self.export_message, self.export_error = "", ""
        self.export_status.value = ""

    def _show_export(self) -> None:
        """The export line, in the panel's language."""
        if self._export_line is None:
            return
        said, kind, details = self._export_line
        text = said(self.lang)
        self.export_message, self.export_error = text, text if kind == "failed" else ""
        self._show_line(self.export_status, kind, text, details(self.lang))

    # -- status line ------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.message, self.error = text, ""
        self._mark_stale()  # the marks first: a ✔ must never appear over results still greyed
        self._show_line(self.status, "ok", text)

    def _warn(self, text: str) -> bool:
        """Applied, but the answer may mean little (one class, classes the model does not know)."""
        self.message, self.error = text, ""
        self._mark_stale()
        self.status.value = f'<span style="color:#9a6700">⚠ {html.escape(text)}</span>'
        return True

    def _last_good(self, lang: str) -> str:
        """What a failure's message ends with: the settings still shown, in `lang`."""
        settings = self._settings_said(lang)
        return (word("panel.still_showing", lang, settings=settings) if settings else "") + word("panel.kept", lang)

    def _fail(self, said: Callable[[str], str], details: str = "") -> bool:
        """Say a failure in the status line, `said(lang)` its words in a language."""
        if said(self.lang) == self.error:  # the same mistake again: say so, or nothing on screen would react
            self._repeats += 1
        else:
            self._repeats = 0
        self._failure = (said, details)
        self._show_failure()
        return False

    def _show_failure(self) -> None:
        """The status line's failure, in the panel's language."""
        said, details = self._failure
        text = said(self.lang)
        again = word("panel.again", self.lang, times=self._repeats + 1) if self._repeats else ""
        self.message = self.error = text
        self._mark_stale()
        self._show_line(self.status, "failed", text + again, details)

    def _callback_failed(self, said: Callable[[str], str], details: str) -> None:
        """A control's failure, in the status line: it ends with the settings still shown."""
        with self._lock:
            self._fail(lambda lang: said(lang) + self._last_good(lang), details)

    # -- typing, template set and list in step ------------------------------------------------------
    @contextlib.contextmanager
    def _quietly(self):
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    @staticmethod
    def _set_name(templates: Sequence[str]) -> str:
        return next((name for name, known in TEMPLATE_SETS.items() if list(known) == list(templates)), CUSTOM)

    def _on_submit(self, text: str | None) -> None:
        """Enter or "Add class" in the "New class" box: the page sends the text it showed (None: from Python,
        `new_class.value`); a text that was not added goes back into the box to be corrected."""
        with self._lock:  # the list compared before and after this add only, not another thread's edit
            before = self.classes
            self.add_class(text)
            if text is not None and self.classes == before:
                self.new_class.restore(text)

    def _on_template_set(self, change) -> None:
        with self._lock:  # `_quiet` is read under the lock: another thread's edit waits, and is not ignored
            if self._quiet or change["new"] == CUSTOM:
                return
            self._cancel_typing()
            with self._quietly():
                self.templates.value = "\n".join(TEMPLATE_SETS[change["new"]])
            self.refresh()

    def _on_ensemble(self, _change) -> None:
        with self._lock:
            if not self._quiet:  # not while its buttons are renamed (_label_controls)
                self.refresh()

    def _on_templates(self, change) -> None:
        with self._lock:
            if self._quiet:
                return
            self._cancel_typing()
            new_line = change["new"].count("\n") > (change["old"] or "").count("\n")
            if self.typing_delay <= 0 or new_line:
                self._apply_templates()
                return
            self._timer = threading.Timer(self.typing_delay,
                                          self._guarded("applying the templates", self._apply_templates))
            self._timer.daemon = True
            self._timer.start()

    def _cancel_typing(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _apply_templates(self) -> None:
        with self._lock:
            self._timer = None
            with self._quietly():
                self.template_set.value = self._set_name(self.template_list)
            self.refresh()

    def settle(self) -> None:
        """Apply templates still waiting for the typing pause now (for scripts and tests)."""
        with self._lock:
            if self._timer is not None:
                self._cancel_typing()
                self._apply_templates()

    def _on_language(self, _change) -> None:
        """Word the charts, the table and the status line again in the chosen language: nothing is re-scored,
        and no edit is touched (templates still waiting for the typing pause keep waiting; a ⚠ about a bad
        entry stays, as the entry is still there, worded again as the export line is)."""
        with self._lock:
            self._label_controls()
            self._say_preparing()
            self.redraw()
            self._mark_stale()
            self._show_export()
            self._shown_settings = self._settings_said(self.lang)
            if self.error:  # the bad entry is still in its control: its message stays, in the new language
                self._show_failure()
            elif self._scored is not None:
                self._say_scored()

    def _label_controls(self) -> None:
        """Label the controls in the panel's language (their values, such as the ensembling methods' names,
        stay as they are)."""
        lang = self.lang
        for control, key in ((self.class_list, "classes"), (self.remove_class_button, "remove"),
                             (self.new_class, "new_class"), (self.template_set, "template_set"),
                             (self.templates, "templates"), (self.ensemble, "ensemble"), (self.unknown, "unknown"),
                             (self.shown, "shown"), (self.output_dir, "output_dir"), (self.export_button, "export")):
            control.description = word(f"control.{key}", lang)
        self.language.description = word("panel.language", lang)
        self.language.tooltips = [word(f"control.language_{code}_tip", lang) for _, code in self.language.options]
        self.remove_class_button.tooltip = word("control.remove_tip", lang)
        self.new_class.placeholder = word("control.new_class_hint", lang)
        self.new_class.button = word("control.add_class", lang)
        self.new_class.tooltip = word("control.add_class_tip", lang)
        self.templates.placeholder = word("control.templates_hint", lang)
        # the choices named in the language, their values kept (a choice named by its value given as itself, as
        # `options` always held in English); renaming picks the first choice for a moment, quietly
        for control, named in ((self.ensemble, [(word(f"ensemble.{m}", lang), m) for m in ENSEMBLE_METHODS]),
                               (self.template_set, [(template_set_name(n, lang), n) for n in [*TEMPLATE_SETS, CUSTOM]])):
            names = [value if label == value else (label, value) for label, value in named]
            if list(control.options) != names:
                value = control.value
                with self._quietly():
                    control.options = names
                    control.value = value
        self.ensemble.tooltips = [word(f"control.ensemble_{method}_tip", lang) for method in ENSEMBLE_METHODS]
        self.export_button.tooltip = word("control.export_tip", lang)

    def _true_classes(self) -> list | None:
        rule = self._truth_rule
        if rule is None:
            return None
        if isinstance(rule, str) and rule == "folders":
            truth = folder_labels(self.embedded.records["path"], self.classes)
            return truth if any(t is not None for t in truth) else None
        return list(rule)

    # -- preparing other template sets in the background (clipnb.prepare_ahead) -------------------------
    def _start_preparing(self, on: bool) -> None:
        """A quiet line under the status, and a Preparer that encodes ahead what the user may ask for next;
        it stops when the panel is closed (`close`, or its widget closed) or collected."""
        self.preparing.add_class("clipnb-preparing")
        self._preparer: Preparer | None = None
        if not on:
            return
        me = weakref.ref(self)  # the worker must not keep a closed panel alive

        def progress(done: int, total: int) -> None:
            if (panel := me()) is not None:
                panel._say_preparing()

        def failed(exc: BaseException) -> None:
            if (panel := me()) is not None:
                log.error("preparing prompts in the background failed", exc_info=exc)
                panel._say_preparing()

        self._preparer = Preparer(self.model, self.cache, progress=progress, failed=failed)
        weakref.finalize(self, self._preparer.stop)
        self.widget.observe(lambda change: change["new"] is None and self._stop_preparing(), names="comm")

    def _foreground(self):
        return self._preparer.foreground() if self._preparer is not None else contextlib.nullcontext()

    def _prepare_next(self) -> None:
        """Plan the prompts of the current classes in every built-in template set the model reads: the sets in
        the panel's language first, each kind smallest first (the soonest done); after an add, only the new
        classes' prompts are left to encode."""
        if self._preparer is None:
            return
        classes, chinese = self.classes, self.lang == "zh"
        sets = sorted((name for name, t in TEMPLATE_SETS.items() if not unknown_languages(self.model, t)),
                      key=lambda name: ((name in CHINESE_SETS) != chinese, len(TEMPLATE_SETS[name])))
        sets = [TEMPLATE_SETS[name] for name in sets]
        groups = [[p for row in build_prompts(classes, list(t)) for p in row] for t in sets]
        # what the model lacks now and the background will encode: a later status line says "prepared ahead"
        self._planned = set(self.model.prompts_to_encode(p for group in groups for p in group))
        self._preparer.plan(groups)
        self._say_preparing()

    def _say_preparing(self) -> None:
        """The quiet line: how far the preparing has got, or why it stopped; nothing when there is nothing to do.
        The status line above stays about the results shown."""
        preparer = self._preparer
        if preparer is None:
            return
        lang = self.lang
        if preparer.error is not None:
            error = f"{type(preparer.error).__name__}: {preparer.error}"
            self.preparing.value = failure_html(word("panel.prepare_failed", lang, error=error),
                                                "".join(traceback.format_exception(preparer.error)), lang)
        elif preparer.working and preparer.done < preparer.total:
            self.preparing.value = (f'<span style="color:#6e7781">'
                                    f'{html.escape(word("panel.preparing", lang, done=preparer.done, total=preparer.total))}'
                                    f'</span>')
        else:
            self.preparing.value = ""

    def _stop_preparing(self) -> None:
        if self._preparer is not None:
            self._preparer.stop()
            self._say_preparing()

    def close(self) -> None:
        """Close the panel: its background preparing stops (after the batch under way) and its widgets go."""
        self._stop_preparing()
        super().close()
