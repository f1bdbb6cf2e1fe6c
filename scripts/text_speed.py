"""How fast prompts are encoded (issue 24): imagenet80's 80 templates x 16 classes (1,280 prompts) through the
text tower of a ViT-B/32-size openai-clip model with random weights (the real model's compute), three ways,
side by side in one process, the best of three rounds each (the full context once):

- full context: every prompt padded to the 77 tokens of the context and encoded in full (openai-clip's
  `encode_text`), in batches of 256: what encoding cost before clipnb trimmed the padding;
- trimmed, as given: each batch of 256 encoded up to its own longest prompt, prompts in the order given;
- clipnb (`encode_texts`): the same, with prompts sorted by token length first, so each batch's prompts are
  about as long as each other.

It prints seconds in all and per class, and the largest difference of each from the full-context embeddings.
Run: `.venv/bin/python scripts/text_speed.py` (the checkpoint is written once, 300 MB, in /tmp).
"""
from __future__ import annotations

import argparse
import time

import torch

from clipnb import bench, load_model
from clipnb.zeroshot.prompts import IMAGENET80_TEMPLATES, build_prompts
from clipnb.zeroshot.scoring import TEXT_BATCH, encode_texts

CLASSES = ["golden retriever", "tabby cat", "red fox", "school bus", "espresso", "grand piano", "mountain bike",
           "lighthouse", "hot air balloon", "sea turtle", "strawberry", "violin", "fire truck", "snow leopard",
           "red circle", "a pair of running shoes"]


def full_context(model, prompts: list[str]) -> torch.Tensor:
    """Every prompt through the text tower at the full context (openai-clip's own encode_text)."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(prompts), TEXT_BATCH):
            tokens = model.tokenize(prompts[start:start + TEXT_BATCH])
            out.append(torch.nn.functional.normalize(model.model.encode_text(tokens).float(), dim=-1))
    return torch.cat(out)


def trimmed_as_given(model, prompts: list[str]) -> torch.Tensor:
    """Batches of TEXT_BATCH in the order given, each encoded up to its longest prompt."""
    return torch.cat([model.encode_token_tensors(model.tokenize(prompts[start:start + TEXT_BATCH]))
                      for start in range(0, len(prompts), TEXT_BATCH)])


def clipnb_now(model, prompts: list[str]) -> torch.Tensor:
    model._text_memo.clear()  # nothing remembered: every prompt is encoded
    return encode_texts(model, prompts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="/tmp/clipnb-vit-b32-random.pt")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    model = load_model(bench.vit_b32_checkpoint(args.checkpoint), device="cpu", cache=None)
    prompts = [p for row in build_prompts(CLASSES, IMAGENET80_TEMPLATES) for p in row]
    lengths = [model.tokenizer.count(p) for p in prompts]
    print(f"{len(prompts)} prompts ({len(IMAGENET80_TEMPLATES)} templates x {len(CLASSES)} classes), "
          f"{min(lengths)}-{max(lengths)} tokens, mean {sum(lengths) / len(lengths):.1f}; "
          f"{torch.get_num_threads()} torch threads")
    ways = {"full context (77 tokens)": full_context, "trimmed, as given": trimmed_as_given,
            "clipnb: sorted by length, trimmed": clipnb_now}
    best = dict.fromkeys(ways, float("inf"))
    results = {}
    for round in range(args.rounds):  # the ways take turns, so a busy moment of the machine hits each alike
        for name, way in ways.items():
            if round and way is full_context:
                continue  # once is enough: it takes several times as long as the others
            start = time.perf_counter()
            results[name] = way(model, prompts)
            best[name] = min(best[name], time.perf_counter() - start)
    reference = results["full context (77 tokens)"]
    for name in ways:
        diff = float((results[name] - reference).abs().max())
        print(f"{name:<36} {best[name]:6.2f} s  {best[name] / len(CLASSES):5.3f} s per class  "
              f"max |diff| vs full {diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
