"""What moved where in issue 25's layout, and the one-release bridge from the old import paths.

`MOVED` maps each old module path to its new one; `NAMES` maps a name that left a module for another
(`clipnb.words.localised` is now `clipnb.zeroshot.schema.localised`). `install()` (called by clipnb's
`__init__`) puts a small finder first on `sys.meta_path`: importing an old path (or anything under an old
package path) gives the new module itself, not a copy, with a DeprecationWarning that names the new path.
The old paths go in the release after next; docs/architecture.md has the same table for readers.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

MOVED = {
    "clipnb.images": "clipnb.data.images",
    "clipnb.labels": "clipnb.data.labels",
    "clipnb.cache": "clipnb.data.cache",
    "clipnb.model_files": "clipnb.models.files",
    "clipnb.families": "clipnb.models.families",
    "clipnb.languages": "clipnb.models.languages",
    "clipnb.memory": "clipnb.models.memory",
    "clipnb.shapes": "clipnb.models.demo_vocabulary",
    "clipnb.embedding": "clipnb.embed.pipeline",
    "clipnb.cluster": "clipnb.embed.dask",
    "clipnb.vector_index": "clipnb.embed.vector_index",
    "clipnb.schema": "clipnb.zeroshot.schema",
    "clipnb.prompts": "clipnb.zeroshot.prompts",
    "clipnb.scoring": "clipnb.zeroshot.scoring",
    "clipnb.classify": "clipnb.zeroshot.results",
    "clipnb.outliers": "clipnb.zeroshot.outliers",
    "clipnb.calibration": "clipnb.zeroshot.calibration",
    "clipnb.evaluate": "clipnb.tasks.evaluation",
    "clipnb.compare": "clipnb.tasks.prompt_settings",
    "clipnb.model_comparison": "clipnb.tasks.model_comparison",
    "clipnb.probe": "clipnb.tasks.few_shot",
    "clipnb.search": "clipnb.tasks.search",
    "clipnb.duplicates": "clipnb.tasks.duplicates",
    "clipnb.embedding_map": "clipnb.tasks.collection_map",
    "clipnb.video": "clipnb.tasks.video",
    "clipnb.summary": "clipnb.tasks.summary",
    "clipnb.export": "clipnb.report.export",
    "clipnb.colours": "clipnb.report.colours",
    "clipnb.plotting": "clipnb.report.plots.base",
    "clipnb.evaluation_plots": "clipnb.report.plots.evaluation",
    "clipnb.calibration_plots": "clipnb.report.plots.calibration",
    "clipnb.duplicate_plots": "clipnb.report.plots.duplicates",
    "clipnb.search_plots": "clipnb.report.plots.search",
    "clipnb.map_plots": "clipnb.report.plots.map",
    "clipnb.video_plots": "clipnb.report.plots.video",
    "clipnb.widgets": "clipnb.ui.panel",
    "clipnb.map_widget": "clipnb.ui.map_panel",
    "clipnb.defaults": "clipnb.notebook",
    "clipnb.bench.report": "clipnb.bench.tables",
    "clipnb.bench.vector_index": "clipnb.bench.index_speed",
}
# clipnb.models and clipnb.report are packages now, standing where the modules models.py and report.py were:
# they give what those modules offered (from clipnb.models.loading and clipnb.report.writers), without a warning

# (old module, name) -> new module, for names that left a module that is still there
NAMES = {
    ("clipnb.words", "column_name"): "clipnb.zeroshot.schema",
    ("clipnb.words", "localised"): "clipnb.zeroshot.schema",
    ("clipnb.words", "ARTICLE_COLUMNS"): "clipnb.zeroshot.schema",
    ("clipnb.embed.pipeline", "embed_images"): "clipnb.embed.runner",
    ("clipnb.tasks.duplicates", "write_duplicates"): "clipnb.report.writers",
}


def new_path(old: str) -> str | None:
    """The new path of an old module path (or of a module under an old package path); None if it did not move."""
    for before, after in MOVED.items():
        if old == before or old.startswith(before + "."):
            return after + old[len(before):]
    return None


def warn(old: str, new: str, stacklevel: int = 3) -> None:
    warnings.warn(f"{old} moved to {new}: import it from there ({old} goes in the release after next)",
                  DeprecationWarning, stacklevel=stacklevel)


def moved_name(module: str, name: str):
    """The value of a name that left `module` (see NAMES), with a DeprecationWarning; AttributeError otherwise.
    For a module's `__getattr__`."""
    home = NAMES.get((module, name))
    if home is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warn(f"{module}.{name}", f"{home}.{name}", stacklevel=4)
    return getattr(importlib.import_module(home), name)


class _Alias(importlib.abc.Loader):
    """Loads an old path as the new module itself (the import system keeps what exec_module leaves in
    sys.modules), so classes and module state are never duplicated."""

    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        warn(module.__name__, self.new, stacklevel=4)
        sys.modules[module.__name__] = importlib.import_module(self.new)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = new_path(fullname) if fullname.startswith("clipnb.") else None
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    """Serve the old paths (once per process)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
