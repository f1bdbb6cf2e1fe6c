"""Weights from the Hugging Face hub (open_clip tags, transformers models, Chinese-CLIP): the local cache
first, the network only when the hub can be reached.

Without this, a machine with no network waits through huggingface_hub's retries (about 25 s per file, a
minute or more per model) and prints a warning for each before failing."""
from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Callable, TypeVar

T = TypeVar("T")
HUB_HOST = "huggingface.co"


@contextlib.contextmanager
def offline():
    """huggingface_hub's offline mode for a block: files come from the local cache or not at all."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def reachable() -> bool:
    """Whether the hub may be reached: not in offline mode, and its name resolves (or a proxy is set, which
    resolves it instead)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        socket.getaddrinfo(os.environ.get("HF_ENDPOINT", HUB_HOST).split("//")[-1].split("/")[0], 443)
        return True
    except OSError:
        return False


def cache_first(load: Callable[[], T]) -> T:
    """`load()` from the local cache; when that fails and the hub can be reached, `load()` again with the
    network. The first failure is raised when the hub cannot be reached."""
    try:
        with offline(), quiet_logging():
            return load()
    except Exception:
        if not reachable():
            raise
    with quiet_logging():
        return load()


@contextlib.contextmanager
def quiet_logging():
    """huggingface_hub's and transformers' warnings (retries, missing files) off for a block: clipnb's own
    message says what failed and what to do."""
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "transformers", "root")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR + 10)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
