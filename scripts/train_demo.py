"""Train clipnb's demo CLIP model on the shapes world and write clipnb/assets/demo.pt.

    python scripts/train_demo.py

The model is a small CLIP (ResNet image tower, 64 px; one-layer text transformer) trained from scratch
with clipnb.demo.train on generated coloured shapes (clipnb.demo.shapes), in two stages:

1. English (seed 1234, 1000 steps): the whole model, on English captions, with a 24-token context. This
   stage alone was the demo model before it was bilingual (its file is that model: float16 weights); about
   12 minutes on 2 idle CPU cores, estimated from its idle stretches (torch.set_num_threads(2); images are
   drawn in one background process), 17.3 minutes measured while other jobs shared the machine.
2. Chinese (seed 4321, 400 steps): the text transformer's context widened to 48 tokens (a Chinese prompt
   costs about 3 tokens a character: "一张红色圆形的照片" is 27), the image tower frozen, captions half
   English, half Chinese ("一张红色圆形的照片", "红色圆形", "圆形", "红色的形状", ...). About 4.5 minutes
   on 2 idle cores (0.64 s a step in its idle stretches), 6.5 minutes measured on the shared machine.

Deterministic from its seeds: a rerun writes the same file, byte for byte. ``--english FILE`` starts stage 2
from a saved stage-1 model (``--english-output FILE`` writes one), which gives the same file as a whole run
(checked: a whole run, 35 minutes while other jobs filled the machine, wrote stage 1 byte for byte as the
English-only demo.pt before it, and the same demo.pt as stage 2 alone from that file).
The colour-shape combinations in clipnb.models.demo_vocabulary.HELD_OUT never appear in training, in either language, so
zero-shot accuracy on them measures whether the model composes colour and shape. Check the result with
``python scripts/demo_quality.py`` (English and Chinese).

Why two stages and one text layer: stage 2 leaves the image tower as it was, so English accuracy stays what
it was (97.9% seen / 95.8% held-out on the training renderer, 100% / 96.9% on the other, 12 images per
class), and the one-layer text transformer reads the Chinese byte-level tokens well enough (Chinese
classes with the zh templates: 97.9% / 96.9% and 100% / 96.9%), so no layer was added.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from clipnb.demo.train import (  # noqa: E402
    ModelConfig, TrainConfig, load_checkpoint, save_checkpoint, shapes_batches, train, widen_context,
)

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
    checkpoint_path=None,  # stage 1 is not written (unless --english-output): stage 2 goes on from it
    log_every=10,
)
DEMO_REUSE = 2  # each drawn image is used twice, with fresh captions
DEMO_EXTRA = 0.2  # share of images in colours or shapes outside the 48 classes (a cyan star, a red heart)

# Stage 2, Chinese: the English model learns Chinese captions too. Its text transformer reads 48 tokens (a
# Chinese prompt costs about 3 tokens a character: "一张红色圆形的照片" is 27); the image tower is kept as
# stage 1 left it (frozen), so only the text side learns, and English captions stay in the mix.
DEMO_CONTEXT = 48
DEMO_BILINGUAL = replace(
    DEMO_TRAIN, steps=400, lr=1e-3, warmup_steps=20, seed=4321, frozen=("visual",),
    checkpoint_path=str(OUTPUT))  # written once, at the end: an interrupted run leaves the old file alone
DEMO_CHINESE = 0.5  # share of stage 2's captions in Chinese ("一张红色圆形的照片", "圆形", ...)


def stage(model, model_cfg: ModelConfig, cfg: TrainConfig, background: bool, device: str, **data) -> tuple[list, float]:
    batches = shapes_batches(cfg.batch_size, model_cfg.image_resolution, model_cfg.context_length, seed=cfg.seed,
                             background=background, reuse=DEMO_REUSE, extra=DEMO_EXTRA, **data)
    t0 = time.perf_counter()
    history = train(model, batches, cfg, device=device)
    return history, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", default=str(OUTPUT))
    ap.add_argument("--steps", type=int, default=None, help="override stage 2's steps (for experiments only)")
    ap.add_argument("--english", default=None,
                    help="start stage 2 from this saved stage-1 (English) checkpoint instead of training stage 1")
    ap.add_argument("--english-output", default=None, help="also write stage 1's English model here")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--foreground", action="store_true", help="draw images in this process, not in a background one (same data)")
    args = ap.parse_args(argv)

    walls = {}
    if args.english:
        english = load_checkpoint(args.english)
    else:
        torch.manual_seed(DEMO_TRAIN.seed)  # the initial weights
        english = DEMO_MODEL.build()
        cfg1 = replace(DEMO_TRAIN, checkpoint_path=args.english_output)
        _, walls["english"] = stage(english, DEMO_MODEL, cfg1, not args.foreground, args.device)
    # stage 2 starts from stage 1 as it is saved (float16 weights), so that it can start from that file
    with tempfile.TemporaryDirectory() as tmp:
        english = load_checkpoint(save_checkpoint(english, Path(tmp) / "english.pt", DEMO_TRAIN.checkpoint_dtype))
    model = widen_context(english, DEMO_CONTEXT)
    cfg2 = replace(DEMO_BILINGUAL, checkpoint_path=args.output)
    if args.steps is not None:
        cfg2 = replace(cfg2, steps=args.steps)
    history, walls["bilingual"] = stage(model, ModelConfig.of(model), cfg2, not args.foreground, args.device,
                                        chinese=DEMO_CHINESE)
    size = Path(args.output).stat().st_size
    print(json.dumps({"model": asdict(ModelConfig.of(model)),
                      "english": {k: v for k, v in asdict(DEMO_TRAIN).items() if k != "extra"},
                      "bilingual": {k: v for k, v in asdict(cfg2).items() if k != "extra"},
                      "reuse": DEMO_REUSE, "extra": DEMO_EXTRA, "chinese": DEMO_CHINESE, "final": history[-1],
                      "wall_s": {k: round(v, 1) for k, v in walls.items()}, "checkpoint_bytes": size}, indent=1))
    print(f"wrote {args.output} ({size / 2**20:.1f} MiB) in {sum(walls.values()) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
