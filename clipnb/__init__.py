"""clipnb: zero-shot image analysis with CLIP, for notebooks and the command line.

Data flows one way: files -> images -> embeddings -> scores -> tables -> figures/files.

`import clipnb` gives what a notebook or a script needs: loading a model (`load_model`), reading images
(`find_images`, `gather_images`, `folder_note`), embedding them (`embed_images`, `EmbeddingCache`), prompts
(`prompt_spec`, `PromptSpec`, `template_sets`), zero-shot heads and tables (`build_head`, `results_table`,
`classify`, `similarity`), the table's columns (`probabilities`, `scores`, `setting`;
defined in `clipnb.zeroshot.schema`), summaries, comparisons of prompt settings (`score_settings`) and of models
(`compare_models`), evaluation against labels and calibration (`calibrate`, `apply_temperature`), search,
collection analysis (`find_duplicates`, `mark_outliers`, `embedding_map`), video and few-shot probes, and the
writers of their files (`write_csv`, `write_evaluation`, `write_model_comparison`, `write_video_report`, `write_probe_report`).
Importing it is quick: each name's module is imported when the name is first used, and none
loads plotting, widget or demo code.

The subpackages are the stages of that flow (docs/architecture.md): `clipnb.data` (reading files),
`clipnb.models`, `clipnb.embed`, `clipnb.zeroshot` (schema, prompts, heads, the results table), `clipnb.tasks`
(one module per question), `clipnb.report` (writers; charts in `clipnb.report.plots`), `clipnb.ui` (the
interactive panels), and `clipnb.notebook` (what notebooks use when a parameter is None), `clipnb.testing`
(models with random weights in each family's files, for tests and the benchmark), `clipnb.demo`, `clipnb.bench`.
Each subpackage's `__all__` is its API; the old module paths (`clipnb.widgets`, `clipnb.plotting`, ...) still
import for one release, with a DeprecationWarning (clipnb._moved).
"""
import importlib
import importlib.util
import sys
import types

# each module and the public names it defines: a name's module is imported when the name is first used
# (PEP 562), so `import clipnb` and the command line's `--help` import no torch, pandas or transformers
_EXPORTS = {
    "data.cache": "EmbeddingCache",
    "data.images": "FolderError ImageReadError aspect_info find_images folder_note gather_images open_image",
    "data.labels": "LabelError folder_labels match_classes read_labels",
    "data.video": "VideoError video_info",
    "embed.labelled": "LabelledImages embed_labelled",
    "embed.pipeline": "EmbeddedImages",
    "embed.runner": "embed_images",
    "models.loading": "ClipModel ModelError available_models list_models load_model",
    "report.export": "ExportError save_figure write_csv write_json",
    "report.writers": "write_duplicates write_evaluation write_model_comparison write_probe_report write_video_report",
    "tasks.collection_map": "MapError embedding_map",
    "tasks.duplicates": "duplicate_summary find_duplicates",
    "tasks.evaluation": "Evaluation evaluate_labelled",
    "tasks.few_shot": "ProbeError curve_summary probe_labelled",
    "tasks.model_comparison": "ModelComparison compare_models",
    "tasks.prompt_settings": "SettingsComparison highlight_changes score_settings setting_summary",
    "tasks.search": "ImageIndex index_from_store index_images rank_captions search_image search_text",
    "tasks.summary": "class_summary prediction_counts ratio_counts run_summary summary_text",
    "tasks.video": "VideoFrames VideoResult classify_video embed_video",
    "words": "LANGUAGES",
    "zeroshot.calibration": "Calibration apply_temperature calibrate expected_calibration_error reliability_table",
    "zeroshot.outliers": "mark_outliers",
    "zeroshot.prompts": ("DEFAULT_TEMPLATES ENSEMBLE_METHODS TEMPLATE_SETS PromptError PromptSpec prompt_spec resolve_templates "
                         "template_sets"),
    "zeroshot.results": "classify results_table similarity",
    "zeroshot.schema": "localised probabilities scores setting",
    "zeroshot.scoring": "ClassWarning ZeroShotHead build_head class_warnings encode_texts",
}
_HOMES = {name: module for module, names in _EXPORTS.items() for name in names.split()}

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


def __getattr__(name: str):
    """A public name, imported from its module on first use (then kept in the package, so once only); or a
    submodule, as `import clipnb.name` gives it (`clipnb.models.memory.release_freed_memory()` after `import clipnb`)."""
    module = _HOMES.get(name)
    if module is None:
        if name.startswith("_") or importlib.util.find_spec(f"{__name__}.{name}") is None:
            raise AttributeError(f"module 'clipnb' has no attribute {name!r}")
        return importlib.import_module(f".{name}", __name__)
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package's module object: `clipnb.classify` and `clipnb.embedding_map` are functions named like the
    modules that define them, and importing such a module makes Python bind the module to that name of
    the package. The function keeps the name (as it did when this package imported everything at once)."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and name in _HOMES and hasattr(value, name):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

from . import _moved  # noqa: E402 (the old import paths of issue 25's moves, for one release)

_moved.install()
