"""How clipnb asks the C allocator (glibc's malloc) to keep or give back freed memory.

A forward pass allocates and frees the same large activations batch after batch. By default glibc serves
blocks above a threshold that it raises as it goes with fresh pages from the kernel and returns them on
free, so each batch pays page faults (zeroing every page) for memory it just gave back. Measured with
`python -m clipnb.bench` (docs/performance.md, "Where the time goes"): thousands of faults per image and
a slower model. `reuse_freed_memory` keeps such blocks in the allocator for the next batch;
`release_freed_memory` hands what is left over back when a run ends. Elsewhere (macOS, Windows, musl)
there is no mallopt or malloc_trim and both do nothing.
"""
from __future__ import annotations

import ctypes
import threading

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# The largest threshold glibc accepts on 64-bit (half its 64 MiB per-thread heap): a ViT-B/32 batch of 16
# holds no activation above 10 MB, so each of them is then reused. Freed memory at the top of a heap is
# returned only beyond twice that, as glibc does when it adjusts the threshold itself.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD

_tuned = threading.Event()


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def reuse_freed_memory() -> bool:
    """Let freed blocks of up to MMAP_THRESHOLD bytes be reused by the next allocation instead of going back to
    the kernel (once per process; returns whether glibc took the settings)."""
    if _tuned.is_set():
        return True
    libc = _libc()
    try:
        taken = bool(libc and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                     and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except AttributeError:  # a C library without mallopt
        taken = False
    if taken:
        _tuned.set()
    return taken


def release_freed_memory() -> None:
    """Hand memory that Python and torch have freed back to the operating system.

    glibc keeps freed blocks mapped for reuse: after loading a model (checkpoint read in fp16, then
    converted) that is memory no later step reuses (docs/performance.md says how much), and threads each
    keep their own pool.
    """
    libc = _libc()
    try:
        if libc is not None:
            libc.malloc_trim(0)
    except AttributeError:
        pass
