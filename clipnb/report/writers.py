"""Writing the files and figures of a run: an evaluation against labels, several models compared on the
same images, a video's classification, a few-shot probe. Computing happens elsewhere (evaluate, compare,
model_comparison, video, probe return numbers and tables); the command line and the notebooks hand those
results to the functions here.

Every file is written atomically (see clipnb.report.export), and every CSV's text cells that a spreadsheet would run
as a formula are neutralised unless `raw=True` (see `export.neutralise_formulas`). The charts are drawn here, and matplotlib is
imported only when one is drawn, so importing this module (and the command line) stays light.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .export import save_figure, write_csv, write_json
from ..words import check_lang
from ..zeroshot.schema import column_name, localised

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..zeroshot.calibration import Calibration
    from ..tasks.evaluation import Evaluation
    from ..tasks.model_comparison import ModelComparison
    from ..tasks.video import VideoResult

# every file each command may write into its --out folder, so the command line checks them all before any work
# (cli.check_outputs): the one list of them, kept beside the writers below
EVALUATION_FILES = ("metrics.json", "per_image.csv", "per_class.csv", "confusion.csv", "confusion_normalised.csv",
                    "mistakes.csv", "comparison.csv", "calibration.csv", "reliability.png", "confusion.png",
                    "mistakes.png", "comparison.png")
MODEL_COMPARISON_FILES = ("models.csv", "agreement.csv", "models.png")
VIDEO_FILES = ("summary.csv", "timeline.csv", "segments.csv", "timeline.png")
PROBE_FILES = ("curve.csv", "summary.csv", "shots.png")
OUTPUT_FILES = {"evaluate": EVALUATION_FILES + MODEL_COMPARISON_FILES, "video": VIDEO_FILES, "probe": PROBE_FILES}


def write_evaluation(evaluation: Evaluation, out_dir: str | os.PathLike, comparison: pd.DataFrame | None = None,
                     *, figures: bool = True, mistakes: int = 12, bom: bool = False, lang: str = "en",
                     calibration: Calibration | None = None, raw: bool = False) -> list[Path]:
    """Write metrics.json and the CSV tables (per image, per class, confusion counts and row-normalised,
    mistakes, comparison) and, with `figures`, confusion.png and mistakes.png. Returns the paths written.
    With a `calibration` (`calibration.calibrate`), also its numbers in metrics.json, calibration.csv (the
    reliability table before and after the temperature) and reliability.png.

    `lang`: the language of the report tables' headers (and ratio types) and of the figures' words ("en", or
    "zh": the article's 图像名称, 比例类型, `<class>_得分`, ...); metrics.json and comparison.csv, read by
    programs, keep their English keys."""
    check_lang(lang)
    out = Path(out_dir)

    def confusion_table(matrix: pd.DataFrame) -> pd.DataFrame:  # the first column names the true class
        table = matrix.reset_index()
        return table.rename(columns={table.columns[0]: column_name(str(table.columns[0]), lang)})

    calibrated = None if calibration is None else {
        "temperature": calibration.temperature, "ece_before": calibration.ece_before,
        "ece_after": calibration.ece_after, "fitted_on": calibration.fitted, "measured_on": calibration.held_out}
    written = [write_json({**evaluation.metrics, **evaluation.settings, "class_names": evaluation.classes,
                           "comparison": None if comparison is None else comparison.to_dict("records"),
                           "calibration": calibrated},
                          out / "metrics.json")]
    written.append(write_csv(localised(evaluation.table, lang), out / "per_image.csv", bom=bom, raw=raw))
    written.append(write_csv(localised(evaluation.per_class, lang), out / "per_class.csv", bom=bom, raw=raw))
    written.append(write_csv(confusion_table(evaluation.confusion), out / "confusion.csv", bom=bom, raw=raw))
    written.append(write_csv(confusion_table(evaluation.confusion_normalised), out / "confusion_normalised.csv",
                             bom=bom, raw=raw))
    written.append(write_csv(localised(evaluation.mistakes(None), lang), out / "mistakes.csv", bom=bom, raw=raw))
    if comparison is not None:
        written.append(write_csv(comparison, out / "comparison.csv", bom=bom, raw=raw))
    if calibration is not None:
        bins = pd.concat([calibration.before.assign(temperature=1.0),
                          calibration.after.assign(temperature=calibration.temperature)], ignore_index=True)
        written.append(write_csv(bins, out / "calibration.csv", bom=bom, raw=raw))
    if figures and calibration is not None:
        from .plots.calibration import reliability_figure

        written.append(save_figure(reliability_figure(calibration, lang=lang), out / "reliability.png"))
    if figures:
        from .plots.evaluation import confusion_figure, mistakes_figure, setting_accuracy_figure

        written.append(save_figure(confusion_figure(evaluation.confusion_normalised, evaluation.confusion, lang=lang),
                                   out / "confusion.png"))
        wrong = evaluation.mistakes(mistakes)
        if len(wrong):
            written.append(save_figure(mistakes_figure(wrong, lang=lang), out / "mistakes.png"))
        if comparison is not None:
            written.append(save_figure(setting_accuracy_figure(comparison), out / "comparison.png"))
    return written



def write_model_comparison(comparison: ModelComparison, out_dir: str | os.PathLike, *, figures: bool = True,
                           bom: bool = False, raw: bool = False) -> list[Path]:
    """Write models.csv (one row per model), agreement.csv (models x models) and, with `figures`, models.png
    (accuracy per model beside the agreement matrix). Returns the paths written."""
    out = Path(out_dir)
    written = [write_csv(comparison.models, out / "models.csv", bom=bom, raw=raw),
               write_csv(comparison.agreement.reset_index(), out / "agreement.csv", bom=bom, raw=raw)]
    if figures:
        from .plots.evaluation import model_comparison_figure

        written.append(save_figure(model_comparison_figure(comparison), out / "models.png"))
    return written

def write_video_report(result: VideoResult, out_dir: str | os.PathLike, *, title: str = "", segments: bool = True,
                       figure: Figure | None = None, lang: str = "en", raw: bool = False) -> list[Path]:
    """Write summary.csv (the video's classes, best first), timeline.csv (per sampled frame), with `segments`
    segments.csv (runs of one prediction), and timeline.png (frames above the probability timeline; `figure`
    when already drawn, else drawn here from `result.frames`). `lang`: the language of the CSV headers and of
    the figure drawn here ("en", "zh"). Returns the paths written."""
    check_lang(lang)
    out = Path(out_dir)
    written = [write_csv(localised(result.summary, lang), out / "summary.csv", raw=raw),
               write_csv(localised(result.timeline, lang), out / "timeline.csv", raw=raw)]
    if segments:
        written.append(write_csv(localised(result.segments(), lang), out / "segments.csv", raw=raw))
    if figure is None:
        from .plots.video import video_figure

        figure = video_figure(result.frames, result.timeline, title=title, lang=lang)
    written.append(save_figure(figure, out / "timeline.png"))
    return written


def write_probe_report(curve: pd.DataFrame, out_dir: str | os.PathLike, *, summary: pd.DataFrame | None = None,
                       figure: Figure | None = None, lang: str = "en", raw: bool = False) -> list[Path]:
    """Write curve.csv (every trial of every shot count), summary.csv (per shot count: `summary`, else
    `probe.curve_summary(curve)`) and shots.png (`figure` when already drawn, else the few-shot curve).
    `lang`: the language of the CSV headers and of the figure drawn here. Returns the paths written."""
    check_lang(lang)
    out = Path(out_dir)
    if summary is None:
        from ..tasks.few_shot import curve_summary

        summary = curve_summary(curve)
    if figure is None:
        from .plots.evaluation import shots_figure

        figure = shots_figure(curve, lang=lang)
    return [write_csv(localised(curve, lang), out / "curve.csv", raw=raw),
            write_csv(localised(summary, lang), out / "summary.csv", raw=raw),
            save_figure(figure, out / "shots.png")]


def write_duplicates(table: pd.DataFrame, path: str | os.PathLike, bom: bool = False, raw: bool = False):
    """Write the duplicates table as CSV with the columns path, group, similarity (a file in no group has an
    empty group), atomically, through `write_csv` (formula-like names neutralised unless `raw`);
    returns the path written."""
    from ..tasks.duplicates import COLUMNS, SIMILARITY_DECIMALS

    return write_csv(table[COLUMNS].round({"similarity": SIMILARITY_DECIMALS}), path, bom=bom, raw=raw)
