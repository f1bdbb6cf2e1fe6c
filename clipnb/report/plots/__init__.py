"""Charts (matplotlib): the shared base (`base`: figures, fonts for Chinese text, thumbnails, the dashboard)
and one module per chart family (`evaluation`, `calibration`, `duplicates`, `search`, `map`, `video`). Each
axes-level function draws on an optional `ax`; each `*_figure` function returns a figure.

May import: `clipnb.report`'s other modules, `clipnb.tasks` and every lower stage."""
from ..._lazy import lazy_door

__getattr__, __dir__, __all__ = lazy_door(__name__, {
    "base": "class_dashboard comparison_figure image_grid new_figure report_dashboard similarity_figure "
            "thumbnails_figure",
    "calibration": "reliability_diagram reliability_figure",
    "duplicates": "duplicates_figure",
    "evaluation": "confusion_figure mistakes_figure model_comparison_figure setting_accuracy_figure shots_figure",
    "map": "map_figure",
    "search": "search_figure",
    "video": "video_figure",
})
