"""Stage 7, the interactive panels (ipywidgets, anywidget, plotly): `base` (`PanelBase`, the status line, guard,
export and HTML both panels share), the classifier panel (`panel`) and the embedding map panel (`map_panel`).

May import: every lower stage."""
from .._lazy import lazy_door

__getattr__, __dir__, __all__ = lazy_door(__name__, {
    "base": "PanelBase table_html",
    "map_panel": "MapPanel",
    "panel": "ClassifierPanel image_table settings_line warnings_said",
})
