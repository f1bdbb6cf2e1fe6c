"""clipnb: zero-shot image analysis with CLIP, for notebooks and the command line.

Data flows one way: files -> images -> embeddings -> scores -> tables -> figures/files.

`import clipnb` gives what a notebook or a script needs: loading a model (`load_model`), reading images
(`find_images`, `gather_images`, `folder_note`), embedding them (`embed_images`, `EmbeddingCache`), prompts
(`prompt_spec`, `PromptSpec`, `template_sets`), zero-shot heads and tables (`build_head`, `results_table`,
`classify`, `similarity`), the table's columns (`probabilities`, `scores`, `setting`;
defined in `clipnb.schema`), summaries, comparisons of prompt settings (`score_settings`) and of models
(`compare_models`), evaluation against labels and calibration (`calibrate`, `apply_temperature`), search,
collection analysis (`find_duplicates`, `mark_outliers`, `embedding_map`), video and few-shot probes, and the
writers of their files (`write_csv`, `write_evaluation`, `write_model_comparison`, `write_video_report`, `write_probe_report`).
Importing it loads no plotting, widget or demo code.

Public submodules, imported by name when needed:
- `clipnb.plotting`, `clipnb.evaluation_plots`, `clipnb.calibration_plots`, `clipnb.search_plots`,
  `clipnb.duplicate_plots`, `clipnb.map_plots`, `clipnb.video_plots`: charts (matplotlib; each function
  draws on an optional `ax` or returns a figure).
- `clipnb.widgets`: the interactive classifier panel; `clipnb.map_widget`: the interactive embedding map
  (ipywidgets, plotly).
- `clipnb.demo`: the demo world (generated shapes, `shapes_folder`, `shapes_video`).
- `clipnb.defaults`: what notebooks use when a parameter is None (model, images, classes).
- `clipnb.schema`: the definition of the results table's columns and settings.
Other modules are the package's inside and may change.
"""
from .cache import EmbeddingCache
from .calibration import Calibration, apply_temperature, calibrate, expected_calibration_error, reliability_table
from .classify import classify, results_table, similarity
from .compare import SettingsComparison, highlight_changes, score_settings, setting_summary
from .duplicates import duplicate_summary, find_duplicates, write_duplicates
from .embedding import EmbeddedImages, embed_images
from .embedding_map import MapError, embedding_map
from .evaluate import Evaluation, evaluate_labelled
from .export import ExportError, save_figure, write_csv, write_json
from .images import FolderError, ImageReadError, aspect_info, find_images, folder_note, gather_images, open_image
from .labels import LabelError, LabelledImages, embed_labelled, folder_labels, match_classes, read_labels
from .model_comparison import ModelComparison, compare_models
from .models import ClipModel, ModelError, available_models, list_models, load_model
from .outliers import mark_outliers
from .probe import ProbeError, curve_summary, probe_labelled
from .prompts import (DEFAULT_TEMPLATES, ENSEMBLE_METHODS, TEMPLATE_SETS, PromptError, PromptSpec, prompt_spec,
                      resolve_templates, template_sets)
from .report import write_evaluation, write_model_comparison, write_probe_report, write_video_report
from .schema import probabilities, scores, setting
from .scoring import ClassWarning, ZeroShotHead, build_head, class_warnings, encode_texts
from .search import ImageIndex, index_from_store, index_images, rank_captions, search_image, search_text
from .summary import class_summary, prediction_counts, ratio_counts, run_summary, summary_text
from .video import VideoError, VideoFrames, VideoResult, classify_video, embed_video, video_info
from .words import LANGUAGES, localised

__version__ = "0.1.0"

__all__ = [
    "Calibration", "apply_temperature", "calibrate", "duplicate_summary", "expected_calibration_error",
    "find_duplicates", "MapError", "embedding_map", "mark_outliers", "reliability_table", "write_duplicates",
    "ClassWarning", "ClipModel", "DEFAULT_TEMPLATES", "ENSEMBLE_METHODS", "EmbeddedImages", "EmbeddingCache",
    "Evaluation", "ExportError", "FolderError", "ImageIndex", "ImageReadError", "LANGUAGES", "LabelError",
    "LabelledImages",
    "ModelComparison", "ModelError", "ProbeError", "PromptError", "PromptSpec", "SettingsComparison",
    "TEMPLATE_SETS", "VideoError",
    "VideoFrames", "VideoResult", "ZeroShotHead", "aspect_info", "available_models", "build_head",
    "class_summary", "class_warnings", "classify", "classify_video", "compare_models", "curve_summary", "embed_images",
    "embed_labelled", "embed_video", "encode_texts", "evaluate_labelled", "find_images", "folder_labels",
    "folder_note", "gather_images", "highlight_changes", "index_from_store", "index_images", "list_models", "load_model", "localised",
    "match_classes",
    "open_image", "prediction_counts", "probabilities", "probe_labelled", "prompt_spec", "rank_captions",
    "ratio_counts", "read_labels", "resolve_templates", "results_table", "run_summary", "save_figure",
    "score_settings", "scores", "search_image", "search_text", "setting", "setting_summary", "similarity",
    "summary_text", "template_sets", "video_info", "write_csv", "write_evaluation", "write_json",
    "write_model_comparison", "write_probe_report", "write_video_report",
]
