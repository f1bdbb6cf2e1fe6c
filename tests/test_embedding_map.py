"""The embedding map: the demo model's embeddings of generated shapes must place images of one class together,
the same seed must give the same map, unreadable rows must be left out and counted, the report figure must
save in every format, and the panel's hover and selection handlers (fed the messages plotly's front end sends)
must fill the thumbnail and the table. The map of the shapes is made once per module: UMAP's first fit in a
process compiles numba code."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from clipnb import build_head, embed_images, folder_labels, gather_images, results_table
from clipnb.tasks.collection_map import NO_CLUSTER, MapError, colourings, embedding_map, min_cluster_size
from clipnb.report.plots.map import map_colours, map_figure
from clipnb.ui.map_panel import MapPanel
from clipnb.report.plots.base import class_palette, export_figure
from clipnb.models.demo_vocabulary import CLASSES


@pytest.fixture(scope="module")
def shapes(demo, shapes_folder):
    """(embedded, results, truth, map) of the 48 classes x 2 generated shapes."""
    embedded = embed_images(demo, gather_images(shapes_folder, recursive=True), progress=False)
    results = results_table(embedded, build_head(demo, CLASSES))
    truth = folder_labels(embedded.records["path"], CLASSES)
    return embedded, results, truth, embedding_map(embedded, results, truth)


def with_features(embedded, features, errors=None):
    records = embedded.records.copy()
    if errors is not None:
        records["error"] = errors
    return dataclasses.replace(embedded, records=records, features=features)


def test_images_of_one_class_lie_together(shapes):
    _, _, truth, table = shapes
    xy = table[["x", "y"]].to_numpy()
    labels = np.array(table["truth"], dtype=object)
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    same = labels[:, None] == labels[None]
    off_diagonal = ~np.eye(len(table), dtype=bool)
    within, between = distances[same & off_diagonal].mean(), distances[~same].mean()
    assert within < 0.25 * between, (within, between)
    nearest = np.where(off_diagonal, distances, np.inf).argmin(axis=1)
    # the nearest dot is the one other image of the class far more often than the 1 in 95 of chance
    assert (labels[nearest] == labels).mean() >= 0.3


def test_the_table_follows_the_embedded_rows(shapes):
    embedded, results, truth, table = shapes
    assert len(table) == len(embedded) == 96
    assert table["row"].tolist() == list(range(96))
    assert table["path"].tolist() == embedded.records["path"].tolist()
    assert table["prediction"].tolist() == results["prediction"].tolist()
    assert np.allclose(table["confidence"], results["confidence"])
    assert table["truth"].tolist() == truth
    assert table["cluster"].min() >= NO_CLUSTER and table["cluster"].nunique() >= 2
    assert table.attrs["neighbours"] == 15 and table.attrs["seed"] == 0 and table.attrs["left_out"] == 0
    assert table.attrs["min_cluster_size"] == min_cluster_size(96) == 5
    assert table.attrs["classes"] == list(CLASSES) and table.attrs["map_note"] == ""
    assert colourings(table) == ["prediction", "truth", "cluster"]


def test_the_same_seed_gives_the_same_map(shapes):
    embedded, results, truth, table = shapes
    again = embedding_map(embedded, results, truth)
    pd.testing.assert_frame_equal(again, table)
    other = embedding_map(embedded, seed=1)
    assert not np.allclose(other[["x", "y"]].to_numpy(), table[["x", "y"]].to_numpy())
    assert colourings(other) == ["cluster"]


def test_unreadable_rows_are_left_out_and_counted(shapes):
    embedded, results, truth, _ = shapes
    features = embedded.features.clone()
    features[[3, 40]] = float("nan")
    errors = embedded.records["error"].copy()
    errors[3] = "not an image"  # row 40: NaN without an error, as a corrupt cache entry would be
    table = embedding_map(with_features(embedded, features, errors), truth=truth)
    assert len(table) == 94 and 3 not in set(table["row"]) and 40 not in set(table["row"])
    assert table["path"].tolist() == [p for i, p in enumerate(embedded.records["path"]) if i not in (3, 40)]
    assert table.attrs["left_out"] == 2 and "2 unreadable images left out" in table.attrs["map_note"]


def test_small_collections(shapes):
    embedded = shapes[0]
    keep = lambda n: dataclasses.replace(embedded, records=embedded.records.iloc[:n].reset_index(drop=True),  # noqa: E731
                                         features=embedded.features[:n])
    one = embedding_map(keep(1))
    assert one[["x", "y"]].to_numpy().tolist() == [[0.0, 0.0]] and one["cluster"].tolist() == [NO_CLUSTER]
    assert "principal components" in one.attrs["map_note"]
    three = embedding_map(keep(3))
    assert len(three) == 3 and np.isfinite(three[["x", "y"]].to_numpy()).all()
    eight = embedding_map(keep(8))
    assert eight.attrs["neighbours"] == 7 and "7 neighbours used instead of 15" in eight.attrs["map_note"]
    nothing = with_features(keep(4), torch.full((4, embedded.features.shape[1]), float("nan")), ["bad"] * 4)
    with pytest.raises(MapError, match="no readable image to map: all 4 rows"):
        embedding_map(nothing)


def test_bad_arguments_say_what_to_change(shapes):
    embedded, results, truth, table = shapes
    with pytest.raises(MapError, match="not of the embedded images"):
        embedding_map(embedded, results.iloc[::-1].reset_index(drop=True))
    with pytest.raises(MapError, match="truth has 3 entries but there are 96"):
        embedding_map(embedded, truth=truth[:3])
    with pytest.raises(MapError, match="neighbours must be a whole number of at least 2"):
        embedding_map(embedded, neighbours=1)
    with pytest.raises(MapError, match="cannot colour the map by 'size': choose one of prediction, truth, cluster"):
        map_figure(table, "size")
    with pytest.raises(MapError, match="no truth to colour by .*pass truth"):
        map_figure(table.drop(columns="truth"), "truth")


def test_a_class_keeps_its_colour_and_the_figure_saves(shapes, tmp_path):
    table = shapes[3]
    labels, colours = map_colours(table, "prediction")
    palette = class_palette(CLASSES)
    assert all(colours[name] == palette[name] for name in colours if name in palette)  # the others: grey "other"
    figure = map_figure(table, "prediction")
    ax = figure.axes[0]
    red = table["prediction"].eq("red circle").to_numpy()
    drawn = [c for c in ax.collections if np.allclose(c.get_facecolor()[0][:3], palette["red circle"])]
    assert len(drawn) == 1 and len(drawn[0].get_offsets()) == red.sum()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"red circle ({red.sum()})" in legend and red.sum() >= 1
    assert "Embedding map: 96 images, coloured by prediction" in ax.get_title(loc="left")
    written = export_figure(map_figure(table, "cluster"), tmp_path, "map")
    assert [p.suffix for p in written] == [".png", ".svg", ".pdf"]
    heads = {p.suffix: p.read_bytes()[:8] for p in written}
    assert heads[".png"].startswith(b"\x89PNG") and heads[".pdf"].startswith(b"%PDF") and b"<?xml" in heads[".svg"]


def points_message(event: str, indexes, selector: bool = False) -> dict:
    """What plotly's front end sends the kernel when points are hovered or selected."""
    message = {"event_type": event, "points": {"xs": [0.0] * len(indexes), "ys": [0.0] * len(indexes),
                                               "point_indexes": list(indexes), "trace_indexes": [0] * len(indexes)}}
    if selector:
        message["selector"] = {"type": "box", "selector_state": {"xrange": [0, 1], "yrange": [0, 1]}}
    return message


def test_the_panel_shows_the_hovered_image_and_lists_the_selection(shapes, tmp_path):
    table = shapes[3]
    panel = MapPanel(table, output_dir=tmp_path)
    assert [value for _, value in panel.colour.options] == ["prediction", "truth", "cluster"]
    assert panel._thumbnails == {}  # no thumbnail before a hover
    panel.figure._js2py_pointsCallback = points_message("plotly_hover", [5])
    assert panel.hovered == 5 and len(panel._thumbnails) == 1
    assert '<img src="data:image/jpeg;base64,' in panel.hover_view.value
    shown = panel.hover_view.value
    assert panel.names[5] in shown and panel.names[4] not in shown and panel.names[6] not in shown
    assert f"prediction: <b>{table.at[5, 'prediction']}</b> ({table.at[5, 'confidence']:.3f})" in shown
    assert f"true class: {table.at[5, 'truth']}" in shown

    # a box drawn on the page: plotly.js relayouts `selections`, and the panel lists the dots inside the box
    corners = table.iloc[[2, 7, 50]]
    box = {"type": "rect", "x0": corners.x.min(), "x1": corners.x.max(), "y0": corners.y.min(), "y1": corners.y.max()}
    panel.figure._js2py_relayout = {"relayout_data": {"selections": [box]}, "source_view_id": "page"}
    inside = table[table.x.between(box["x0"], box["x1"]) & table.y.between(box["y0"], box["y1"])]
    assert len(inside) >= 3 and panel.selected["path"].tolist() == inside["path"].tolist()
    assert panel.selected.columns.tolist() == ["path", "prediction", "confidence", "truth", "cluster"]
    assert f"{len(inside)} images selected" in panel.selection_view.value
    written = panel.export()
    assert sorted(p.name for p in written) == ["embedding_map.pdf", "embedding_map.png", "embedding_map.svg",
                                               "map.csv", "selection.csv"]
    assert pd.read_csv(written[-1])["path"].tolist() == panel.selected["path"].tolist()
    panel.figure._js2py_relayout = {"relayout_data": {"selections": []}, "source_view_id": "page"}  # a double click
    assert panel.selected.empty and "no images selected" in panel.selection_view.value

    panel.colour.value = "cluster"
    assert "cluster 0" in panel.legend_view.value and panel.error == ""


def test_a_failing_callback_is_shown_in_the_status_line(shapes):
    table = shapes[3]
    panel = MapPanel(table[["row", "path", "x", "y", "cluster"]].copy())
    assert [value for _, value in panel.colour.options] == ["cluster"]
    panel.figure._js2py_pointsCallback = points_message("plotly_hover", [10_000])
    assert panel.error.startswith("showing the hovered image failed: IndexError")
    assert "⚠" in panel.status.value and "details" in panel.status.value
    with pytest.raises(MapError, match="no prediction to colour by"):
        MapPanel(table.drop(columns=["prediction", "confidence"]), colour="prediction")
