"""Time a warm `classify` of 200 cached photos with ViT-B/32-size weights, this tree against another commit.

Makes (once) a 605 MB float32 ViT-B/32 checkpoint with random weights and 200 photos in /tmp, fills one cache
folder with a cold run, then runs the warm command with each tree in turn (same venv; the other tree through
PYTHONPATH: make it with `git worktree add /tmp/before COMMIT`), and `python -c "import torch"` for scale.
Wall and CPU seconds (children's) per run; the CPU is shared, so compare only figures from one run of this.

    .venv/bin/python scripts/warm_start.py --before /tmp/before [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clipnb.testing import vit_b32_checkpoint  # noqa: E402

SOURCES = [ROOT.parent / "shared" / "test-photos", ROOT / "test_images"]
CLASSES = ["cat", "dog", "car", "tree", "book"]


def photos(folder: Path, count: int = 200) -> Path:
    """`count` copies of the test photos (copies: each its own file, as a folder of photos has)."""
    if folder.is_dir() and len(list(folder.iterdir())) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sources = [p for where in SOURCES if where.is_dir() for p in sorted(where.iterdir())
               if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    for i in range(count):
        source = sources[i % len(sources)]
        shutil.copy(source, folder / f"{i:03d}{source.suffix.lower()}")
        with open(folder / f"{i:03d}{source.suffix.lower()}", "ab") as handle:
            handle.write(i.to_bytes(4, "big"))  # its own bytes, so each is its own cache entry
    return folder


def timed(command: list[str], tree: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one run of `command` with `tree`'s clipnb first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, cwd=tree)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the other tree (a git worktree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/warm-start"))
    args = parser.parse_args()
    weights = vit_b32_checkpoint(args.work / "vitb32-fp32.pt", half=False)
    folder = photos(args.work / "photos")
    cache = args.work / "cache"
    classify = [sys.executable, "-m", "clipnb", "classify", str(folder), "--classes", *CLASSES, "--model",
                str(weights), "--cache-dir", str(cache), "--csv", str(args.work / "out.csv"), "--quiet"]
    trees = {"before": args.before.resolve(), "after": ROOT}
    for name, tree in trees.items():  # the cold run (encodes) and each tree's manifest in the cache
        print(f"filling the cache ({name}): {timed(classify, tree)[0]:.1f} s", flush=True)
    runs = {name: [] for name in [*trees, "import torch"]}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            runs[name].append(timed(classify, tree))
        runs["import torch"].append(timed([sys.executable, "-c", "import torch"], ROOT))
    print(f"load average {os.getloadavg()[0]:.1f}; wall s (CPU s) per round, then medians")
    for name, times in runs.items():
        shown = ", ".join(f"{w:.2f} ({c:.2f})" for w, c in times)
        print(f"{name:>12}: {shown}; median {statistics.median(w for w, _ in times):.2f} "
              f"({statistics.median(c for _, c in times):.2f})")


if __name__ == "__main__":
    main()
