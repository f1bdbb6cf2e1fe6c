"""The embedding map in JupyterLab: a plotly map to hover and select on, beside ipywidgets controls.

Hovering a dot shows its image (a thumbnail made when first hovered, never all of them up front), its path,
prediction, true class and cluster beside the map. A box or lasso selection lists the selected images in a
table under the map (`MapPanel.selected` holds it as a DataFrame). "Colour by" recolours the dots; Export
writes the static map (`map_plots.map_figure`) as PNG, SVG and PDF, the map as CSV and the selection as CSV.

As in the ClassifierPanel, callbacks may run on another thread than the cell and an exception in one would
only reach JupyterLab's Log Console: every callback is guarded, its failure shown as a ⚠ in the status
line with the traceback folded under it, and the panel's state is changed under one lock.

    panel = MapPanel.from_embedded(embedded, results, truth=folder_labels(embedded.records["path"], classes))
    panel            # the last line of a cell shows it
    panel.selected   # the images selected on the map
"""
from __future__ import annotations

import functools
import html
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Sequence

import ipywidgets as w
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.colors import to_hex
from matplotlib.path import Path as MplPath

from ..data.files import RETRY_HINT, ExportError
from ..data.images import display_names
from ..embed.pipeline import EmbeddedImages
from ..report.colours import NO_CLASS_COLOUR, OUTLINE, edge_colour
from ..report.export import write_csv
from ..report.plots.base import export_figure
from ..report.plots.map import NO_VALUE_SYMBOL, map_colours, map_figure, no_value_labels
from ..tasks.collection_map import MIN_DIST, NEIGHBOURS, check_colouring, colourings, embedding_map, map_note
from ..words import UNKNOWN, map_word, plural, prediction_name, word
from .base import STYLE, PanelBase, export_folder, export_reason, table_html, thumbnail_uri


GL_FROM = 2000  # dots from which the map is drawn with WebGL (Scattergl): SVG slows down beyond
SHOWN_ROWS = 200  # selected images listed on the page (all of them are in `selected` and the export)
THUMBNAILS_KEPT = 256  # thumbnails kept for hovering again
SELECTION_COLUMNS = ("path", "prediction", "confidence", "truth", "cluster")


def selected_positions(table: pd.DataFrame, selections) -> list[int]:
    """The rows of a map table inside the map's selections (plotly layout `selections`: boxes, type "rect",
    and lassos, type "path"), in table order; a dot in several selections counts once."""
    xy = table[["x", "y"]].to_numpy(dtype=float)
    inside = np.zeros(len(table), dtype=bool)
    for shape in selections or ():
        if shape["type"] == "rect":
            x0, x1 = sorted((float(shape["x0"]), float(shape["x1"])))
            y0, y1 = sorted((float(shape["y0"]), float(shape["y1"])))
            inside |= (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
        elif shape["type"] == "path" and shape["path"]:
            corners = [[float(v) for v in point.split(",")]
                       for point in re.split(r"[MLZ]", shape["path"]) if point.strip()]
            if len(corners) >= 3:
                inside |= MplPath(corners).contains_points(xy)
    return np.flatnonzero(inside).tolist()


def selection_table(table: pd.DataFrame, positions: Sequence[int]) -> pd.DataFrame:
    """The rows at `positions` of a map table, with the columns a reader of a selection wants."""
    columns = [c for c in SELECTION_COLUMNS if c in table.columns]
    return table.iloc[list(positions)][columns].reset_index(drop=True)


class MapPanel(PanelBase):
    """An embedding map (`embedding_map`) to explore: hover, select, recolour, export.

    Controls: `colour` ("Colour by": the colourings the table offers), `output_dir` + `export_button`.
    Views: `figure` (the plotly FigureWidget), `hover_view` (the hovered image), `legend_view`,
    `selection_view` (the selected images), `status` (the status line).
    State: `hovered` (position in the table of the image shown), `selected` (a DataFrame of the selected
    images), `message` and `error` (the status line), `exported` (paths of the last export).
    `close()` closes its widgets.
    """

    log_name = "map panel"

    def __init__(self, table: pd.DataFrame, *, colour: str | None = None, output_dir: str | os.PathLike = "reports",
                 dpi: int = 150, lang: str = "en"):
        if len(table) == 0:
            raise ValueError("the map table is empty: make it with embedding_map(embedded, ...) of readable images")
        self.table, self.dpi, self.lang = table, dpi, lang
        choices = colourings(table)
        colour = check_colouring(table, colour or choices[0])
        self.names = display_names(table["path"])
        self.hovered: int | None = None
        self.selected = selection_table(table, [])
        self.message, self.error = "", ""
        self.exported: list[Path] = []
        self._lock = threading.RLock()
        self._thumbnails: OrderedDict[int, str | None] = OrderedDict()

        wide = {"description_width": "initial"}
        self.colour = w.Dropdown(options=[(map_word(c, lang), c) for c in choices], value=colour,
                                 description=word("map.colour_by", lang), style=wide)
        self.output_dir = w.Text(value=str(output_dir), description=word("control.output_dir", lang), style=wide)
        self.export_button = w.Button(description=word("control.export", lang), icon="download",
                                      button_style="success", tooltip=word("map.export_tip", lang))
        self.status = w.HTML()
        self.status.add_class("clipnb-map-status")
        self.hover_view = w.HTML(layout=w.Layout(width="280px"))
        self.hover_view.add_class("clipnb-map-hover")
        self.legend_view = w.HTML(layout=w.Layout(width="280px", max_height="200px", overflow="auto"))
        self.selection_view = w.HTML()
        self.selection_view.add_class("clipnb-map-selection")

        trace = (go.Scattergl if len(table) >= GL_FROM else go.Scatter)(
            x=table["x"], y=table["y"], mode="markers", hovertemplate="%{text}<extra></extra>",
            marker={"size": max(3, min(10, round(120 / np.sqrt(len(table))))), "opacity": 0.9 if len(table) <= 1000 else 0.6})
        self.figure = go.FigureWidget(data=[trace], layout=go.Layout(
            width=640, height=560, margin={"l": 10, "r": 10, "t": 10, "b": 10}, hovermode="closest",
            dragmode="select", plot_bgcolor="white", showlegend=False,
            xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"}))
        self.figure.add_class("clipnb-map-plot")
        points = self.figure.data[0]
        points.on_hover(self._guarded("showing the hovered image", self._on_hover))
        # the selection is read from the boxes and lassos themselves (layout.selections), not from plotly's
        # selection event: the page sends hover, unhover and selection events through one synced value, and
        # while the kernel has not answered the last update, a hover that follows replaces a selection unsent
        self.figure.layout.on_change(self._guarded("listing the selection", self._on_selections), "selections")
        self.colour.observe(self._guarded("recolouring the map", lambda _: self.recolour()), names="value")
        self.export_button.on_click(self._guarded("exporting", lambda _: self.export(wait=False)))

        self.widget = w.VBox([
            w.HBox([self.colour, self.output_dir, self.export_button]),
            self.status,
            w.HBox([self.figure, w.VBox([self.legend_view, self.hover_view])]),  # the legend above: a hover never moves it
            self.selection_view])
        self.widget.add_class("clipnb-map-panel")
        self.recolour()
        self.select([])
        self.hover_view.value = f'<i style="color:#555">{html.escape(word("map.hover_hint", lang))}</i>'
        note = map_note(table, lang)
        self._say(word("map.images", lang, images=plural(len(table), "image"), count=len(table))
                  + (f"; {note}" if note else ""))

    @classmethod
    def from_embedded(cls, embedded: EmbeddedImages, results: pd.DataFrame | None = None,
                      truth: Sequence[str | None] | None = None, *, neighbours: int = NEIGHBOURS, seed: int = 0,
                      min_dist: float = MIN_DIST, **options) -> "MapPanel":
        """Make the map of `embedded` (see `embedding_map`) and open a panel on it."""
        table = embedding_map(embedded, results, truth, neighbours=neighbours, seed=seed, min_dist=min_dist)
        return cls(table, **options)

    # -- what the panel shows ---------------------------------------------------------------------
    def recolour(self) -> None:
        """Colour the dots, their hover text and the legend by the `colour` control's choice."""
        with self._lock:
            colour = self.colour.value
            labels, colours = map_colours(self.table, colour, lang=self.lang)
            hexes = {name: to_hex(c) for name, c in colours.items()}
            grey = to_hex(NO_CLASS_COLOUR)
            crosses = no_value_labels(colour, self.lang)  # images of no class: crosses, not grey dots
            edges = {name: OUTLINE if name in crosses else to_hex(edge_colour(c, c))  # a white dot gets a rim
                     for name, c in colours.items()}
            # hovering names the image's own class, also where the map shows it as one of the grey "other"
            said = [value if isinstance(value, str) else label for value, label in zip(self.table[colour], labels)]
            with self.figure.batch_update():
                self.figure.data[0].marker.color = [hexes[label] for label in labels]
                self.figure.data[0].marker.line = {"color": [edges[label] for label in labels], "width": 1}
                self.figure.data[0].marker.symbol = [NO_VALUE_SYMBOL if label in crosses else "circle"
                                                     for label in labels]
                self.figure.data[0].text = [f"{html.escape(n)}<br>{html.escape(label)}"
                                            for n, label in zip(self.names, said)]
            counts = pd.Series(labels).value_counts()
            # the grey entries ("other 28 classes", unknown) first: the list scrolls, and they say what the
            # greys on the map are, which no scrolled-off line may hide
            listed = sorted((name for name in colours if name in counts.index), key=lambda name: hexes[name] != grey)
            dot = ('<span style="display:inline-block;width:10px;height:10px;border-radius:5px;background:{};'
                   'border:1px solid {};margin-right:6px"></span>')
            cross = ('<span style="display:inline-block;width:10px;margin-right:6px;font-weight:bold;color:{};'
                     '-webkit-text-stroke:0.5px {}">✖</span>')
            rows = "".join(f'<div>{(cross if name in crosses else dot).format(hexes[name], edges[name])}'
                           f'{html.escape(name)} '
                           f'<span style="color:#666">({counts[name]})</span></div>'
                           for name in listed)
            self.legend_view.value = (f'<div style="font-size:12px"><b>{html.escape(map_word(colour, self.lang))}'
                                      f'</b>{rows}</div>')

    def hover(self, position: int) -> None:
        """Show the image at `position` (a row of the map table) beside the map."""
        with self._lock:
            row = self.table.iloc[position]
            if position not in self._thumbnails:
                self._thumbnails[position] = thumbnail_uri(row["path"])
                while len(self._thumbnails) > THUMBNAILS_KEPT:
                    self._thumbnails.popitem(last=False)
            self._thumbnails.move_to_end(position)
            thumbnail = self._thumbnails[position]
            picture = (f'<img src="{thumbnail}" style="max-width:256px;max-height:256px" alt="">' if thumbnail
                       else f'<div style="color:#cf222e">{html.escape(word("map.unreadable_now", self.lang))}</div>')
            facts = [f'<div style="font-weight:600;overflow-wrap:anywhere">{html.escape(self.names[position])}</div>',
                     f'<div style="color:#555;font-size:11px;overflow-wrap:anywhere">{html.escape(str(row["path"]))}</div>']
            if "prediction" in row:  # the words escaped, the name in bold
                name = prediction_name(row["prediction"], self.lang, self.table.attrs.get("classes", ()))
                key = "map.prediction_unknown" if row["prediction"] == UNKNOWN else "map.prediction"
                text = html.escape(word(key, self.lang, name="\0", confidence=row["confidence"]))
                facts.append("<div>" + text.replace("\0", f"<b>{html.escape(str(name))}</b>") + "</div>")
            if "truth" in row and row["truth"] is not None:
                facts.append(f"<div>{html.escape(word('map.truth', self.lang, name=row['truth']))}</div>")
            cluster = row["cluster"] if row["cluster"] >= 0 else word("map.no_cluster", self.lang)
            facts.append(f"<div>{html.escape(word('map.cluster', self.lang, cluster=cluster))}</div>")
            self.hover_view.value = f'<div style="font-size:13px">{picture}{"".join(facts)}</div>'
            self.hovered = position

    def select(self, positions: Sequence[int]) -> pd.DataFrame:
        """List the images at `positions` (rows of the map table) under the map, as a selection does."""
        with self._lock:
            self.selected = selection_table(self.table, positions)
            count = len(self.selected)
            if not count:
                said = html.escape(word("map.none_selected", self.lang))
                self.selection_view.value = f'<i style="color:#555">{said}</i>'
                return self.selected
            shown = self.selected.head(SHOWN_ROWS).assign(path=[self.names[p] for p in list(positions)[:SHOWN_ROWS]])
            more = word("map.first_listed", self.lang, rows=SHOWN_ROWS) if count > SHOWN_ROWS else ""
            said = word("map.selected", self.lang, images=plural(count, "image"), count=count)
            shown_html = table_html(shown, self.lang, self.table.attrs.get("classes", ()))
            self.selection_view.value = (f'{STYLE}<div class="clipnb-table"><b>{html.escape(said)}</b>'
                                         f'{html.escape(more)}{shown_html}</div>')
            return self.selected

    # -- callbacks (plotly calls them with the trace, the points and the selector or input state) ---------
    def _on_hover(self, _trace, points, _state) -> None:
        if points.point_inds:
            self.hover(points.point_inds[0])

    def _on_selections(self, layout, _selections) -> None:
        # the layout's own JSON: plotly rebuilds the `selections` objects it hands over only later
        self.select(selected_positions(self.table, layout.to_plotly_json().get("selections", [])))

    # -- export -----------------------------------------------------------------------------------
    def export(self, wait: bool = True) -> list[Path]:
        """Write embedding_map.png/.svg/.pdf (coloured as shown), map.csv and, when images are selected,
        selection.csv to a new timestamped subfolder of the output folder. `wait=False` (the Export button)
        writes on a thread, so the panel stays usable; the status line says where the files went."""
        with self._lock:
            base = self.output_dir.value.strip()
            if not base:
                self._fail(word("panel.no_output_folder", self.lang))
                return []
            folder = export_folder(base)
            job = functools.partial(self._write_export, folder, self.colour.value, self.selected.copy())
            self._say(word("map.exporting", self.lang, folder=folder), working=True)
        return self._run_export(job, wait)

    def _write_export(self, folder: Path, colour: str, selected: pd.DataFrame) -> list[Path]:
        try:
            figure = map_figure(self.table, colour, lang=self.lang)
            written = export_figure(figure, folder, "embedding_map", dpi=self.dpi)
            written.append(write_csv(self.table, folder / "map.csv"))
            if len(selected):
                written.append(write_csv(selected, folder / "selection.csv"))
        except (ExportError, OSError) as exc:
            reason, details = export_reason(exc, self.lang)
            self._fail(word("map.export_failed", self.lang, folder=folder, reason=reason), details)
            return []
        finally:
            self.export_button.disabled = False
        with self._lock:
            self.exported = written
            self._say(word("map.exported", self.lang, files=plural(len(written), "file"), file_count=len(written),
                           folder=folder, names=", ".join(p.name for p in written)))
        return written

    # -- status line ------------------------------------------------------------------------------
    def _say(self, text: str, working: bool = False) -> None:
        with self._lock:
            self.message, self.error = text, ""
            self._show_line(self.status, "working" if working else "ok", text)

    def _fail(self, text: str, details: str = "") -> bool:
        with self._lock:
            self.message = self.error = text
            self._show_line(self.status, "failed", text, details)
        return False

    def _callback_failed(self, said: Callable[[str], str], details: str) -> None:
        """A control's or the map's failure, in the status line (the map's language is set once)."""
        self._fail(said(self.lang), details)
