"""How scripts/build_notebooks.py turns lists of cells into notebooks without outputs, writes them, and
checks that the committed ones are up to date.

A notebook is a list of (kind, source) cells; kind is "markdown", "code" or "parameters" (a code cell
tagged `parameters`, which papermill replaces). Cell ids are stable, so rebuilding changes nothing that
did not change.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "notebooks"


def build(cells) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for number, (kind, source) in enumerate(cells):
        if kind == "markdown":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
        cell.id = f"cell-{number:02d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def render(cells) -> str:
    return nbformat.writes(build(cells)) + "\n"


def write_or_check(notebooks: dict, script: str, argv=None, description: str = "") -> int:
    """Write each notebook of {file name: cells} into notebooks/, or with --check only compare: exit 1
    and name the stale ones when a committed notebook differs from what `script` would write."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="only compare notebooks/ with this script")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in notebooks.items():
        path = FOLDER / name
        text = render(cells)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path)
            continue
        FOLDER.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"notebooks differ from {script} (run it to rewrite them): "
              + ", ".join(str(p.relative_to(ROOT)) for p in stale), file=sys.stderr)
        return 1
    return 0
