"""clipnb.testing is the one factory of random-weight models (issue 25, item 4): the package and the tests'
helper build no model from a seed elsewhere, the benchmark's model is the factory's, each factory writes the
layout its docstring names, and the same seed writes the same weights."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# clipnb/demo/train.py seeds the demo model it trains (the committed demo.pt), which is no random-weight model
SEEDS_ALLOWED = {ROOT / "clipnb" / "testing.py", ROOT / "clipnb" / "demo" / "train.py"}


def seeded_lines(path: Path) -> list[int]:
    """Lines of `path` that seed torch's generator (every random-weight factory does, to be deterministic)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("torch.manual_seed", "manual_seed")]


def test_random_weight_models_are_built_only_in_clipnb_testing():
    files = [*sorted((ROOT / "clipnb").rglob("*.py")), ROOT / "tests" / "family_models.py",
             ROOT / "tests" / "conftest.py"]
    elsewhere = [f"{path.relative_to(ROOT)} line {line}" for path in files if path not in SEEDS_ALLOWED
                 for line in seeded_lines(path)]
    assert not elsewhere, "random weights built outside clipnb.testing:\n" + "\n".join(elsewhere)


def test_the_benchmark_and_the_tests_use_the_factory():
    import family_models

    import clipnb.bench
    import clipnb.bench.measure
    import clipnb.testing

    assert clipnb.bench.vit_b32_checkpoint is clipnb.testing.vit_b32_checkpoint
    assert clipnb.bench.measure.random_open_clip_folder is clipnb.testing.random_open_clip_folder
    assert family_models.save_hf_clip_model is clipnb.testing.save_hf_clip_model


def test_importing_the_factory_imports_no_family_library():
    code = ("import sys, clipnb.testing\n"
            "print(sorted(m for m in ('open_clip', 'transformers', 'cn_clip', 'clip') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_the_same_seed_writes_the_same_weights_and_another_seed_others(tmp_path):
    from clipnb.testing import save_state_dict, tiny_clip

    paths = [save_state_dict(tiny_clip(seed=seed), tmp_path / f"{name}.pt", half=False)
             for name, seed in (("a", 7), ("b", 7), ("c", 8))]
    a, b, c = (torch.load(path, weights_only=True) for path in paths)
    assert set(a) == set(c) and "visual.conv1.weight" in a  # openai-clip's ViT layout
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["visual.conv1.weight"], c["visual.conv1.weight"])


def test_the_open_clip_folder_holds_what_open_clip_reads(tmp_path):
    import json

    from clipnb.testing import save_open_clip_model

    name, folder = save_open_clip_model(tmp_path / "tiny", seed=1)
    assert name == f"local-dir:{folder.resolve()}"
    assert sorted(p.name for p in folder.iterdir()) == ["open_clip_config.json", "open_clip_model.safetensors"]
    assert set(json.loads((folder / "open_clip_config.json").read_text())) == {"model_cfg", "preprocess_cfg"}


def test_a_checkpoint_already_written_is_kept(tmp_path):
    from clipnb.testing import vit_b32_checkpoint

    path = tmp_path / "vit-b32-random.pt"
    path.write_bytes(b"kept")  # a 300 MB checkpoint is not built again when a benchmark folder is reused
    assert vit_b32_checkpoint(path) == path and path.read_bytes() == b"kept"
