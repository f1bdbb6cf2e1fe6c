"""Stage 7, the interactive panels (ipywidgets, anywidget, plotly): the classifier panel (`panel`) and the
embedding map panel (`map_panel`).

May import: every lower stage."""
from .._lazy import lazy_door

__getattr__, __dir__, __all__ = lazy_door(__name__, {
    "map_panel": "MapPanel",
    "panel": "ClassifierPanel",
})
