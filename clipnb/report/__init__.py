"""Stage 6, tables to files and figures: table and figure files (`export`), the files each command writes
(`writers`), class colours (`colours`) and charts (`plots/`: a shared base and one module per chart family).

May import: `clipnb.tasks` and every lower stage. `clipnb.report.X` still gives what the old module
`clipnb/report.py` offered (now `clipnb.report.writers`)."""
from .._lazy import lazy_door

__getattr__, __dir__, __all__ = lazy_door(__name__, {
    "export": "ExportError save_figure write_csv write_json",
    "writers": "OUTPUT_FILES write_duplicates write_evaluation write_model_comparison write_probe_report write_video_report",
}, fallback="writers")
