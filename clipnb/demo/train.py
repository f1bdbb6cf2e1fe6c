"""Contrastive (CLIP) training for any openai-clip ``clip.model.CLIP`` model.

Imported only when training: nothing in clipnb's inference path imports this module.

- ``ModelConfig``: the hyperparameters of a CLIP architecture that ``clip.model.build_model`` can rebuild
  from a state dict (it infers heads as width // 64, so widths must be multiples of 64).
- ``TrainConfig``: optimisation settings (AdamW, linear warm-up then cosine decay, seed, checkpoints).
- ``contrastive_loss``: CLIP's symmetric cross-entropy over ``logit_scale * cosine similarity``.
- ``train(model, batches, config)``: the loop; ``batches`` yields ``(images, tokens)`` tensors.
- ``widen_context(model, n)``: the same model reading longer prompts (new positions copy the last one).
- ``save_checkpoint`` / ``load_checkpoint``: a plain state dict written atomically, read with ``build_model``.
- ``shapes_batches``: a deterministic, endless stream of batches from the shapes world (``clipnb.demo.shapes``).
- ``pair_batches``: batches from a user's own list of (image path, caption) pairs, to fine-tune a CLIP.

The demo model is trained with ``python scripts/train_demo.py``.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

import clip
from clip.model import CLIP, build_model

MAX_LOGIT_SCALE = math.log(100.0)


# ----------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class ModelConfig:
    """A CLIP architecture, exactly as ``clip.model.CLIP`` takes it, that ``build_model`` can rebuild from
    the state dict alone.

    ``vision_layers`` is an int for a vision transformer (then ``vision_patch_size`` is its patch size and
    it has ``vision_width // 64`` heads) or four ints for CLIP's modified ResNet (then ``vision_patch_size``
    is unused and ``image_resolution`` a multiple of 32). The text transformer has
    ``transformer_width // 64`` heads, as ``build_model`` infers them, so widths are multiples of 64.
    """

    embed_dim: int = 128
    image_resolution: int = 64
    vision_layers: int | tuple[int, int, int, int] = 4
    vision_width: int = 128
    vision_patch_size: int | None = 8
    context_length: int = 32
    vocab_size: int = 49408
    transformer_width: int = 128
    transformer_layers: int = 3

    def __post_init__(self) -> None:
        if self.transformer_width % 64:
            raise ValueError("transformer_width must be a multiple of 64 (build_model infers heads = width // 64)")
        if self.resnet:
            if len(self.vision_layers) != 4 or self.image_resolution % 32:
                raise ValueError("a ResNet tower takes four layer counts and an image_resolution multiple of 32")
            object.__setattr__(self, "vision_layers", tuple(int(n) for n in self.vision_layers))
            object.__setattr__(self, "vision_patch_size", None)
        else:
            if self.vision_width % 64:
                raise ValueError("vision_width must be a multiple of 64 (the ViT has width // 64 heads)")
            if not self.vision_patch_size or self.image_resolution % self.vision_patch_size:
                raise ValueError("image_resolution must be a multiple of vision_patch_size")

    @property
    def resnet(self) -> bool:
        return not isinstance(self.vision_layers, int)

    @property
    def transformer_heads(self) -> int:
        return self.transformer_width // 64

    def build(self) -> CLIP:
        """A freshly initialised float32 CLIP model (seed torch first for reproducible weights)."""
        return CLIP(
            self.embed_dim,
            self.image_resolution, self.vision_layers, self.vision_width, self.vision_patch_size,
            self.context_length, self.vocab_size, self.transformer_width, self.transformer_heads,
            self.transformer_layers,
        )

    @classmethod
    def of(cls, model: CLIP) -> "ModelConfig":
        """The configuration of an existing CLIP model."""
        v = model.visual
        common = dict(
            embed_dim=model.text_projection.shape[1],
            image_resolution=v.input_resolution,
            context_length=model.context_length,
            vocab_size=model.vocab_size,
            transformer_width=model.transformer.width,
            transformer_layers=model.transformer.layers,
        )
        if hasattr(v, "conv1") and hasattr(v, "transformer"):
            return cls(vision_layers=len(v.transformer.resblocks), vision_width=v.conv1.weight.shape[0],
                       vision_patch_size=v.conv1.weight.shape[-1], **common)
        return cls(vision_layers=tuple(len(getattr(v, f"layer{i}")) for i in range(1, 5)),
                   vision_width=v.layer1[0].conv1.weight.shape[0], vision_patch_size=None, **common)


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 256
    lr: float = 1e-3
    final_lr_ratio: float = 0.02  # the cosine decays from lr to lr * final_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    grad_clip: float | None = 1.0
    seed: int = 0
    num_threads: int | None = None  # torch.set_num_threads, if given
    deterministic: bool = True  # torch.use_deterministic_algorithms
    bf16: bool = False  # autocast to bfloat16 (CPU or CUDA) for speed
    use_positives: bool = False  # batches of (images, tokens, positives): see contrastive_loss
    frozen: tuple[str, ...] = ()  # submodules (say "visual") kept as they are: no gradient, eval mode throughout
    checkpoint_path: str | None = None
    checkpoint_every: int | None = None  # steps; the final checkpoint is always written if a path is given
    checkpoint_dtype: str = "float16"
    log_every: int = 10
    progress: bool = True
    extra: dict = field(default_factory=dict)  # free-form notes recorded in the history


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up to ``cfg.lr``, then cosine decay."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    t = min(1.0, (step - cfg.warmup_steps) / span)
    lo = cfg.lr * cfg.final_lr_ratio
    return lo + (cfg.lr - lo) * 0.5 * (1 + math.cos(math.pi * t))




# ----------------------------------------------------------------------------------------------
# loss, optimiser


def contrastive_loss(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    logit_scale: torch.Tensor,
    positives: torch.Tensor | None = None,
) -> torch.Tensor:
    """CLIP's loss for a batch of N matching pairs: the mean of the cross-entropies over images->texts and
    texts->images of ``exp(logit_scale) * cosine similarity``, with pair i the right answer for row i
    (labels = arange(N)).

    ``positives`` (optional) says which other pairs are right answers too, so that they are not pushed
    apart as negatives: N group ids (pairs of one group match one another), or an N x N boolean matrix,
    ``positives[i, j]`` true when text j describes image i (its diagonal must be true). The target of each
    row (image) and each column (text) is then spread evenly over its right answers."""
    image_features = F.normalize(image_features.float(), dim=-1)
    text_features = F.normalize(text_features.float(), dim=-1)
    logits = logit_scale.float().exp() * image_features @ text_features.t()
    if positives is None:
        labels = torch.arange(logits.shape[0], device=logits.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
    if positives.ndim == 1:
        positives = positives[:, None] == positives[None, :]
    match = positives.to(device=logits.device, dtype=torch.float32)
    if not bool(torch.diagonal(match).all()):
        raise ValueError("positives must mark every pair (i, i) as a right answer")
    per_image = F.cross_entropy(logits, match / match.sum(1, keepdim=True))
    per_text = F.cross_entropy(logits.t(), (match / match.sum(0, keepdim=True)).t())
    return (per_image + per_text) / 2


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; gains, biases, embeddings of positions and class, and the temperature get no weight decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or "ln_" in name or "bias" in name or "logit_scale" in name or (
                "embedding" in name and "token" not in name):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


# ----------------------------------------------------------------------------------------------
# checkpoints


def state_dict_for_saving(model: CLIP, dtype: str | torch.dtype | None = "float16") -> dict[str, torch.Tensor]:
    """The model's plain state dict (every key ``build_model`` needs), floats cast to ``dtype``."""
    dt = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if dt is not None and v.is_floating_point():
            v = v.to(dt)
        out[k] = v.clone()
    return out


def save_checkpoint(model: CLIP, path: str | os.PathLike, dtype: str | torch.dtype | None = "float16") -> Path:
    """Write the model's state dict to ``path`` atomically (temporary file in the same folder, then
    ``os.replace``), so a reader never sees a half-written file. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sd = state_dict_for_saving(model, dtype)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; give it a normal file's mode
        with os.fdopen(fd, "wb") as f:
            torch.save(sd, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> CLIP:
    """Rebuild a CLIP model from a plain state dict with ``clip.model.build_model``; float32, eval mode.

    ``build_model`` rounds the weights of linear and convolution layers to float16; the stored values are
    loaded again afterwards, so a float32 checkpoint comes back exactly (to resume training, say)."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(dict(sd)).float()
    model.load_state_dict(sd)
    return model.to(device).eval()


def widen_context(model: CLIP, context_length: int) -> CLIP:
    """A copy of ``model`` whose text transformer reads ``context_length`` tokens (at least its own): the
    positional embeddings of the new positions start as copies of the last trained one, everything else is
    the model's own. For teaching a trained model longer prompts (Chinese costs about 3 tokens a
    character)."""
    old = model.positional_embedding.shape[0]
    if context_length < old:
        raise ValueError(f"context_length {context_length} is shorter than the model's {old}")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    pe = state["positional_embedding"]
    state["positional_embedding"] = torch.cat([pe, pe[-1:].expand(context_length - old, -1)])
    wider = replace(ModelConfig.of(model), context_length=context_length).build()
    wider.load_state_dict(state)
    return wider.to(pe.device)


# ----------------------------------------------------------------------------------------------
# the loop


def train(
    model: CLIP,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    cfg: TrainConfig,
    device: str | torch.device = "cpu",
    on_step: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Train ``model`` in place for ``cfg.steps`` steps on ``batches`` (an iterable of ``(images, tokens)``
    tensor pairs, images already preprocessed, or ``(images, tokens, positives)``: see ``contrastive_loss``;
    positives are used when ``cfg.use_positives``).
    Returns the history: one dict per logged step."""
    # Seeded, and deterministic where torch can be cheaply; the process's settings are restored after.
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    if cfg.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        return _train(model, batches, cfg, torch.device(device), on_step)
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])


def _train(model, batches, cfg: TrainConfig, device: torch.device, on_step) -> list[dict]:
    from tqdm.auto import tqdm

    model = model.float().to(device).train()
    for name in cfg.frozen:  # eval mode too: a ResNet's BatchNorm statistics stay as they are
        model.get_submodule(name).requires_grad_(False).eval()
    opt = make_optimizer(model, cfg)
    history: list[dict] = []
    it = iter(batches)
    bar = tqdm(total=cfg.steps, disable=not cfg.progress, desc="train", unit="step")
    t0 = time.perf_counter()
    seen = 0
    running = None
    for step in range(cfg.steps):
        images, tokens, *rest = next(it)
        images, tokens = images.to(device, non_blocking=True), tokens.to(device, non_blocking=True)
        positives = rest[0].to(device) if rest and cfg.use_positives else None
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            image_features = model.encode_image(images)
            text_features = model.encode_text(tokens)
        loss = contrastive_loss(image_features, text_features, model.logit_scale, positives)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)

        seen += images.shape[0]
        value = float(loss.detach())
        running = value if running is None else 0.9 * running + 0.1 * value
        elapsed = time.perf_counter() - t0
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            rec = {
                "step": step, "loss": value, "lr": lr, "logit_scale": float(model.logit_scale.detach().exp()),
                "images_per_s": seen / max(elapsed, 1e-9), "elapsed_s": elapsed,
            }
            history.append(rec)
            bar.set_postfix(loss=f"{running:.3f}", scale=f"{rec['logit_scale']:.1f}", img_s=f"{rec['images_per_s']:.0f}")
            if on_step:
                on_step(step, rec)
        if cfg.checkpoint_path and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
            save_checkpoint(model, cfg.checkpoint_path, cfg.checkpoint_dtype)
    bar.close()
    for name in cfg.frozen:
        model.get_submodule(name).requires_grad_(True)
    model.eval()
    if cfg.checkpoint_path:
        save_checkpoint(model, cfg.checkpoint_path, cfg.checkpoint_dtype)
    return history


# ----------------------------------------------------------------------------------------------
# data


def preprocess_for(resolution: int) -> Callable:
    """openai-clip's own preprocessing for a model of this input resolution."""
    return clip.clip._transform(resolution)


class ShapesBatches(torch.utils.data.IterableDataset):
    """An endless, deterministic stream of ``(images, tokens, positives)`` batches from the shapes world
    (``positives[i, j]``: caption j is true of image i, see ``contrastive_loss``).

    Images are drawn at varied sizes and passed through openai-clip's preprocessing. They are made in
    chunks of ``chunk`` batches; each image of a chunk is used ``reuse`` times, in fresh shuffles and with a
    fresh caption each time (drawing costs about a third of a small model's training step on a CPU).
    A share ``chinese`` of the captions is written in Chinese (``shapes.caption(..., lang="zh")``), each
    caption's language drawn independently (with ``chinese=0`` the stream is the English-only one).
    Chunk ``k`` depends only on ``(seed, k)``; the stream is the same whether it is made in this process or
    in one DataLoader worker (use at most one, as ``shapes_batches`` does).
    """

    def __init__(
        self,
        batch_size: int,
        resolution: int,
        context_length: int,
        seed: int = 0,
        classes: Sequence[str] | None = None,
        reuse: int = 1,
        chunk: int = 8,
        extra: float = 0.0,
        chinese: float = 0.0,
    ) -> None:
        from clipnb.demo import shapes

        self.batch_size = batch_size
        self.resolution = resolution
        self.context_length = context_length
        self.seed = seed
        self.classes = tuple(classes) if classes is not None else shapes.SEEN
        self.reuse = reuse
        self.chunk = chunk
        self.extra = extra  # the share of images with a colour or shape outside the classes
        self.chinese = chinese  # the share of captions written in Chinese (shapes.caption_zh)

    def chunk_batches(self, k: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The ``chunk * reuse`` batches of chunk ``k``."""
        from clipnb.demo import shapes

        preprocess = preprocess_for(self.resolution)
        rng = np.random.default_rng([self.seed, k])
        n = self.batch_size * self.chunk
        n_extra = int(round(n * self.extra))
        # Each class about equally often, and each extra combination too.
        labels = [self.classes[int(i)] for i in np.resize(rng.permutation(len(self.classes)), n - n_extra)]
        labels += [shapes.EXTRA[int(i)] for i in np.resize(rng.permutation(len(shapes.EXTRA)), n_extra)]
        labels = [labels[int(i)] for i in rng.permutation(n)]
        images, infos = [], []
        for label in labels:
            colour, shape = shapes.split(label)
            img, info = shapes.draw(colour, shape, rng)
            images.append(preprocess(img))
            infos.append(info)
        images = torch.stack(images)
        out = []
        for _ in range(self.reuse):
            order = rng.permutation(n)
            for b in range(self.chunk):
                idx = order[b * self.batch_size:(b + 1) * self.batch_size]
                texts = [self.caption(infos[i], rng) for i in idx]
                tokens = clip.tokenize(texts, context_length=self.context_length, truncate=True)
                out.append((images[torch.from_numpy(idx)], tokens, self.matches([infos[i] for i in idx], texts)))
        return out

    def caption(self, info: dict, rng: np.random.Generator) -> str:
        """One caption of an image, in Chinese with probability ``chinese``."""
        from clipnb.demo import shapes

        if self.chinese and rng.random() < self.chinese:
            return shapes.caption(info, rng, lang="zh")
        return shapes.caption(info, rng)

    @staticmethod
    def matches(infos: Sequence[dict], texts: Sequence[str]) -> torch.Tensor:
        """``m[i, j]``: whether caption j is true of image i, as far as colour and shape go (a caption
        that names only a colour is true of every image of that colour), in English or Chinese."""
        from clipnb.demo import shapes

        colours = np.array([i["colour"] for i in infos])
        kinds = np.array([i["shape"] for i in infos])
        ok = np.ones((len(infos), len(texts)), dtype=bool)
        for j, text in enumerate(texts):
            words = set(text.replace("-", " ").replace(".", " ").replace(",", " ").split())
            # English words are words; Chinese ones are found inside the text (it has no spaces)
            c = [w for w in shapes.ALL_COLOURS if w in words or w in shapes.CHINESE and shapes.CHINESE[w] in text]
            s = [w for w in shapes.ALL_SHAPES if w in words or w in shapes.CHINESE and shapes.CHINESE[w] in text]
            if c:
                ok[:, j] &= np.isin(colours, c)
            if s:
                ok[:, j] &= np.isin(kinds, s)
        return torch.from_numpy(ok)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        if torch.utils.data.get_worker_info() is not None:
            torch.set_num_threads(1)
        k = 0
        while True:
            yield from self.chunk_batches(k)
            k += 1


def shapes_batches(batch_size: int, resolution: int, context_length: int, seed: int = 0, background: bool = False, **kw):
    """An iterator over ``ShapesBatches``; ``background=True`` draws them in one DataLoader worker process
    while the model trains (same batches either way)."""
    ds = ShapesBatches(batch_size, resolution, context_length, seed=seed, **kw)
    if not background:
        return iter(ds)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=1, prefetch_factor=2 * ds.chunk * ds.reuse)
    return iter(loader)


def pair_batches(
    pairs: Sequence[tuple[str | os.PathLike, str]],
    batch_size: int,
    resolution: int,
    context_length: int = 77,
    seed: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches from a user's own ``(image path, caption)`` pairs: a fresh seeded shuffle each
    epoch, the last incomplete batch of an epoch dropped. For fine-tuning a real CLIP."""
    from PIL import Image

    if len(pairs) < batch_size:
        raise ValueError(f"{len(pairs)} pairs is fewer than one batch of {batch_size}")
    preprocess = preprocess_for(resolution)
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(pairs))
        for b in range(len(pairs) // batch_size):
            chunk = [pairs[int(j)] for j in order[b * batch_size:(b + 1) * batch_size]]
            images = torch.stack([preprocess(Image.open(p).convert("RGB")) for p, _ in chunk])
            tokens = clip.tokenize([c for _, c in chunk], context_length=context_length, truncate=True)
            yield images, tokens


def config_dict(model_cfg: ModelConfig, train_cfg: TrainConfig) -> dict:
    return {"model": asdict(model_cfg), "train": asdict(train_cfg)}
