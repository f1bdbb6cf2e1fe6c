"""Embeddings as numpy arrays until torch is imported, torch tensors after: one rule for every module.

A run whose embeddings all come from the cache needs no torch, whose import is most of a warm command
line's time (1.3-1.5 s here): the cache hands out numpy arrays and scoring computes on them with numpy.
Once torch is imported (a model's weights loaded, something encoded, a notebook that imported it), the
same functions return torch tensors, as users of a loaded model expect. Nothing here imports torch.
"""
from __future__ import annotations

import sys

import numpy as np


def loaded_torch():
    """The torch module when something has imported it, else None (never imports it)."""
    return sys.modules.get("torch")


def is_tensor(values) -> bool:
    """True for a torch tensor (which needs torch imported to exist)."""
    torch = loaded_torch()
    return torch is not None and isinstance(values, torch.Tensor)


def namespace():
    """The array module of this rule: torch when imported, else numpy (both have einsum, exp, stack...)."""
    return loaded_torch() or np


def as_float32(values):
    """`values` as float32: a torch tensor (on its device) when torch is imported, else a numpy array."""
    torch = loaded_torch()
    if torch is None:
        return np.asarray(values, dtype=np.float32)
    if isinstance(values, np.ndarray) and not values.flags.writeable:
        values = values.copy()  # a read-only array (pandas' to_numpy) would make a tensor torch warns about
    return torch.as_tensor(values).float()


def to_numpy(values) -> np.ndarray:
    """A numpy array of `values` (a torch tensor is detached and brought to the CPU first)."""
    if is_tensor(values):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def stacked(vectors, dim: int):
    """Rows [len(vectors), dim] of float32 vectors (tensors or arrays), in the kind of `as_float32`."""
    if not len(vectors):
        return as_float32(np.zeros((0, dim), dtype=np.float32))
    torch = loaded_torch()
    if torch is None:
        return np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
    return torch.stack([torch.as_tensor(v).float() for v in vectors])
