"""Stage 2, models: `load_model` and `ClipModel` (`loading`), the checks on model files from strangers
(`files`), one module per model family (`families/`), prompt languages (`languages`), freeing GPU/CPU
memory (`memory`) and the demo model's words (`demo_vocabulary`).

May import: `clipnb.data` and the base modules. `clipnb.models.X` still gives what the old module
`clipnb/models.py` offered (now `clipnb.models.loading`)."""
from .._lazy import lazy_door

__getattr__, __dir__, __all__ = lazy_door(__name__, {
    "loading": "ClipModel DEFAULT_MODEL DEMO_NAME ModelError available_models list_models load_model",
    "languages": "language_warnings",
    "memory": "release_freed_memory reuse_freed_memory",
}, fallback="loading")
