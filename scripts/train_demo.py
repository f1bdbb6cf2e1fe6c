"""Train clipnb's demo CLIP model on the shapes world and write clipnb/assets/demo.pt.

    python scripts/train_demo.py

Deterministic from its seed: a rerun writes the same file, byte for byte. About 12 minutes on 2 idle CPU
cores, estimated from its idle stretches (torch.set_num_threads(2); images are drawn in one background
process); 17.3 minutes measured while
other jobs shared the machine. The model is a small CLIP
(ResNet image tower, 64 px; one-layer text transformer, 24 tokens) trained from scratch with clipnb.demo.train
on generated coloured shapes (clipnb.demo.shapes). The colour-shape combinations in clipnb.shapes.HELD_OUT
never appear in training, so zero-shot accuracy on them measures whether the model composes colour and
shape. Check the result with ``python scripts/demo_quality.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from clipnb.demo.train import ModelConfig, TrainConfig, shapes_batches, train  # noqa: E402

OUTPUT = ROOT / "clipnb" / "assets" / "demo.pt"

# A small CLIP: a modified-ResNet image tower (it learns shapes from far fewer images than a ViT of the
# same cost) and a one-layer text transformer (cheap, and the shallower the text tower the more its
# "colour shape" embeddings add up, which held-out combinations need).
DEMO_MODEL = ModelConfig(
    embed_dim=128,
    image_resolution=64,
    vision_layers=(1, 1, 1, 1),
    vision_width=32,
    vision_patch_size=None,
    context_length=24,
    vocab_size=49408,
    transformer_width=128,
    transformer_layers=1,
)

DEMO_TRAIN = TrainConfig(
    steps=1000,
    batch_size=256,
    lr=1e-3,
    final_lr_ratio=0.02,
    warmup_steps=40,
    weight_decay=0.1,
    grad_clip=1.0,
    seed=1234,
    num_threads=2,
    bf16=True,
    use_positives=True,  # a caption is a right answer for every image it is true of ("a red shape")
    checkpoint_path=str(OUTPUT),  # written once, at the end: an interrupted run leaves the old file alone
    log_every=10,
)
DEMO_REUSE = 2  # each drawn image is used twice, with fresh captions
DEMO_EXTRA = 0.2  # share of images in colours or shapes outside the 48 classes (a cyan star, a red heart)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", default=str(OUTPUT))
    ap.add_argument("--steps", type=int, default=None, help="override (for experiments only)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--foreground", action="store_true", help="draw images in this process, not in a background one (same data)")
    args = ap.parse_args(argv)

    cfg = replace(DEMO_TRAIN, checkpoint_path=args.output)
    if args.steps is not None:
        cfg = replace(cfg, steps=args.steps)
    torch.manual_seed(cfg.seed)  # the initial weights
    model = DEMO_MODEL.build()
    batches = shapes_batches(cfg.batch_size, DEMO_MODEL.image_resolution, DEMO_MODEL.context_length,
                             seed=cfg.seed, background=not args.foreground, reuse=DEMO_REUSE, extra=DEMO_EXTRA)
    t0 = time.perf_counter()
    history = train(model, batches, cfg, device=args.device)
    wall = time.perf_counter() - t0
    size = Path(args.output).stat().st_size
    print(json.dumps({"model": asdict(DEMO_MODEL), "train": {k: v for k, v in asdict(cfg).items() if k != "extra"},
                      "reuse": DEMO_REUSE, "extra": DEMO_EXTRA, "final": history[-1], "wall_s": round(wall, 1),
                      "checkpoint_bytes": size}, indent=1))
    print(f"wrote {args.output} ({size / 2**20:.1f} MiB) in {wall / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
