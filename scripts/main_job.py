"""The main job of `make demo`: run every notebook top to bottom with papermill and write their figures
and CSV files under reports/.

Uses $CLIPNB_MODEL when set, else ViT-B/32, falling back to the offline demo model (on the coloured-shape
images it knows) when ViT-B/32 cannot be had; the choice is made once here, said in one line, and passed
to every notebook. Writes:
  reports/classification.csv, class_summary.csv, dashboard.{png,svg,pdf}   (notebook 03, the report)
  reports/zero_shot/...     the per-image grid, the settings comparison and their CSV (notebook 02)
  reports/similarity/...    one image against free texts (notebook 01)
  reports/evaluation/...    accuracy, confusion matrix and per-class metrics on labelled images (04)
  reports/search/...        text-to-image and image-to-image search hits (05)
  reports/video/...         a video's frames classified along a timeline (06)
  reports/few_shot/...      linear probes against zero-shot by labelled images per class (07)
  reports/scale_out/store   the Parquet store of a run on a local Dask cluster (08)
  reports/collection/...    the embedding map, duplicates, images that fit no class, calibration (09)
  reports/notebooks/*.ipynb the executed notebooks, with their outputs
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from clipnb.notebook import choose_model, requested_model

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
REPORTS = ROOT / "reports"
# no cell of these notebooks needs minutes on the default images; a cell silent for this long is stuck
# (seen once: the kernel idle and the executed cell's reply never reaching papermill)
CELL_TIMEOUT_S = 900
RUNS = [  # notebook, its output folder
    ("01_image_text_similarity", REPORTS / "similarity"),
    ("02_zero_shot_classification", REPORTS / "zero_shot"),
    ("03_classification_report", REPORTS),
    ("04_evaluation", REPORTS / "evaluation"),
    ("05_search", REPORTS / "search"),
    ("06_video", REPORTS / "video"),
    ("07_few_shot", REPORTS / "few_shot"),
    ("08_scale_out", REPORTS / "scale_out"),
    ("09_collection", REPORTS / "collection"),
]


def printed(notebook) -> str:
    """What the notebook's cells printed (its stream outputs)."""
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs if output.output_type == "stream" and output.get("name") == "stdout")


def run_notebook(name: str, output_dir: Path, model_spec: str) -> Path:
    import nbformat
    import papermill

    executed = REPORTS / "notebooks" / f"{name}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(executed), cwd=str(NOTEBOOKS),
                               parameters={"model_name": model_spec, "output_dir": str(output_dir)},
                               kernel_name="python3", progress_bar=False, execution_timeout=CELL_TIMEOUT_S)
    print(printed(nbformat.read(executed, as_version=4)).rstrip())
    return executed


def main() -> int:
    from papermill.exceptions import PapermillExecutionError

    model = choose_model()  # says so in one line when it falls back to the demo model
    # the notebooks load exactly what was chosen here, so a fallback is decided (and said) once
    model_spec = model.name if model.name == "demo" else requested_model()
    print(f"model: {model.name}; running {len(RUNS)} notebooks into {REPORTS}")
    # the notebooks' kernels import clipnb from this checkout even where it is not installed
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    for name, output_dir in RUNS:
        print(f"\n== {name} ==")
        for attempt in (1, 2):
            try:
                executed = run_notebook(name, output_dir, model_spec)
                break
            except TimeoutError:
                if attempt == 2:
                    print(f"main job: notebook {name} got stuck twice (a cell gave no answer for {CELL_TIMEOUT_S} "
                          f"s); what it did is in {REPORTS / 'notebooks' / (name + '.ipynb')}. Run `make demo` "
                          "again, or the notebook in JupyterLab to see where it stops.", file=sys.stderr)
                    return 1
                print(f"main job: a cell of {name} gave no answer for {CELL_TIMEOUT_S} s; running the notebook "
                      "once more (the embeddings it made are cached)", file=sys.stderr)
            except PapermillExecutionError as exc:
                print(f"main job: notebook {name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}; "
                      f"the executed notebook with the whole traceback is "
                      f"{REPORTS / 'notebooks' / (name + '.ipynb')}", file=sys.stderr)
                return 1
        print(f"executed notebook: {executed.relative_to(ROOT)}")
    print(f"\nfigures and CSV files are under {REPORTS}; the dashboard is {REPORTS / 'dashboard.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
