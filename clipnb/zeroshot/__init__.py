"""Stage 4, embeddings to scores: the results table's columns (`schema`), prompts and templates (`prompts`),
the zero-shot head (`scoring`), the results table and `classify` (`results`), images that fit no class
(`outliers`) and temperature calibration (`calibration`).

May import: `clipnb.embed`, `clipnb.models`, `clipnb.data` and the base modules."""
from .._lazy import lazy_door

__getattr__, __dir__, __all__ = lazy_door(__name__, {
    "calibration": "Calibration apply_temperature calibrate expected_calibration_error reliability_table",
    "outliers": "mark_outliers",
    "prompts": "DEFAULT_TEMPLATES ENSEMBLE_METHODS TEMPLATE_SETS PromptError PromptSpec prompt_spec "
               "resolve_templates template_sets",
    "results": "classify results_table similarity",
    "schema": "probabilities scores setting",
    "scoring": "ClassWarning ZeroShotHead build_head class_warnings encode_texts",
})
