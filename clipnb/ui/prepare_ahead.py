"""Encoding, in the background, the prompts a panel's user is likely to ask for next.

A first use of a template set costs one pass through the text tower per new prompt: with ViT-B/32 on a
2-core CPU, 16 classes switched to `imagenet80` (1,280 prompts) take ~8 s, which no batching makes 1 s.
So while the panel is idle, a `Preparer` encodes those prompts ahead into the same places the foreground
reads (the model's memory of encoded prompts and the disk cache, through `encode_texts`), most likely first.

The foreground always wins: the work goes in small batches (PREPARE_BATCH prompts), and a batch starts only
after PREPARE_PAUSE seconds without a foreground change (`Preparer.foreground`). Passes through the text tower never
overlap (`ClipModel.encode_token_tensors` holds the model's lock), so a change waits at most for the one
batch under way. Both use torch's threads in turn: `torch.set_num_threads` is process-wide and is left alone.

One worker thread (`ThreadPoolExecutor(max_workers=1)`); it ends when the preparer is stopped (the panel
closed or collected, or the interpreter exiting) after the batch under way. An exception stops the
preparing only, and is handed once to the `failed` callback.
"""
from __future__ import annotations

import concurrent.futures.thread  # noqa: F401  (its exit hook is registered first, so ours runs before it)
import contextlib
import os
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from ..models.loading import ClipModel
from ..zeroshot.scoring import encode_texts

if TYPE_CHECKING:
    from ..data.cache import EmbeddingCache

# "0" in this variable makes panels not prepare ahead unless asked to (the test suite's tests count the prompts a
# shared model remembers, which a panel left from an earlier test would change under them)
PREPARE_VARIABLE = "CLIPNB_PREPARE_AHEAD"
# prompts per background batch: ~0.1 s of ViT-B/32's text tower on 2 idle cores, the longest a change waits for it
PREPARE_BATCH = 16
# seconds without a change before a batch starts: changes made in a row (a person clicking on) never meet one
PREPARE_PAUSE = 1.0


def prepare_by_default() -> bool:
    """Whether a panel prepares ahead when not told (`prepare_ahead=None`): yes, unless CLIPNB_PREPARE_AHEAD=0."""
    return os.environ.get(PREPARE_VARIABLE, "1").strip() != "0"


class Preparer:
    """Encodes planned prompts for `model` on one background thread, into its memory and `cache`.

    `progress(done, total)` is called after each batch; `failed(exception)` once, if the work fails (it then
    stops for good). Both are called on the worker thread.
    """

    def __init__(self, model: ClipModel, cache: EmbeddingCache | None = None, *, batch: int = PREPARE_BATCH,
                 pause: float = PREPARE_PAUSE,
                 progress: Callable[[int, int], object] | None = None,
                 failed: Callable[[BaseException], object] | None = None):
        self.model, self.cache, self.batch, self.pause = model, cache, batch, pause
        self._progress, self._failed = progress, failed
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clipnb-prepare-ahead")
        self._state = threading.Lock()  # guards everything below
        self._quiet = threading.Condition(self._state)  # told when a change ends, and on stop
        self._busy = 0  # foreground changes running (they may nest)
        self._last_change = time.monotonic()  # when the last one ended
        self._stopped = False
        self._groups: list[list[str]] = []  # planned prompts not started, most likely group first
        self._batches: list[list[str]] = []  # the group under way, cut into batches
        self._plan_id = 0  # a new plan makes the batches of an older one moot
        self._running: Future | None = None
        self.done = self.total = 0
        self.error: BaseException | None = None
        _LIVE.add(self)

    @property
    def working(self) -> bool:
        """Whether the worker has a job (running, or waiting for the foreground)."""
        with self._state:
            return self._running is not None

    def plan(self, groups: Iterable[Sequence[str]]) -> None:
        """Prepare these groups of prompts next, most likely group first, in place of any earlier plan.
        Prompts the model already remembers are skipped; a stopped or failed preparer ignores plans."""
        seen: set[str] = set()
        todo = []
        for group in groups:
            fresh = [p for p in self.model.prompts_to_encode(group) if p not in seen]
            seen.update(fresh)
            if fresh:
                todo.append(fresh)
        with self._state:
            if self._stopped or self.error is not None:
                return
            self._groups, self._batches = todo, []
            self._plan_id += 1
            self.done, self.total = 0, len(seen)
            if todo and self._running is None:
                self._running = self._executor.submit(self._work)

    @contextlib.contextmanager
    def foreground(self):
        """While this block runs (a change of the panel), and `pause` seconds after, no new batch starts."""
        with self._state:
            self._busy += 1
        try:
            yield
        finally:
            with self._state:
                self._busy -= 1
                self._last_change = time.monotonic()
                self._quiet.notify_all()

    def stop(self, wait: bool = False) -> None:
        """Stop after the batch under way (`wait`: until the worker thread has ended)."""
        with self._state:
            self._stopped = True
            self._groups, self._batches = [], []
            self._quiet.notify_all()  # a worker waiting for its turn wakes up to see it is stopped
        self._executor.shutdown(wait=wait, cancel_futures=True)

    def _work(self) -> None:
        try:
            while self._turn():
                with self._state:
                    if self._stopped or not (self._batches or self._groups):
                        self._running = None
                        return
                    plan_id = self._plan_id
                    if not self._batches:
                        group = self._groups.pop(0)
                    else:
                        group, batch = None, self._batches.pop(0)
                if group is not None:
                    self._cut(group, plan_id)
                else:
                    self._encode(batch, plan_id)
        except Exception as exc:  # noqa: BLE001 - any failure stops the preparing only, and is said once
            with self._state:
                self.error, self._running = exc, None
                self._groups, self._batches = [], []
            if self._failed is not None:
                self._failed(exc)

    def _turn(self) -> bool:
        """Wait until no change has run for `pause` seconds; False when stopped meanwhile."""
        with self._state:
            while not self._stopped:
                left = self._last_change + self.pause - time.monotonic()
                if not self._busy and left <= 0:
                    return True
                self._quiet.wait(None if self._busy else left)
            self._running = None
            return False

    def _cut(self, group: list[str], plan_id: int) -> None:
        """Cut a group into batches of about one token length (each is encoded up to its longest prompt),
        leaving out prompts too long for the model: the foreground says so if they are ever asked for."""
        count, context = self.model.tokenizer.count, self.model.context_length
        lengths = {p: count(p) for p in group}
        fits = sorted((p for p in group if lengths[p] <= context), key=lengths.get)
        with self._state:
            if plan_id == self._plan_id:
                self._batches = [fits[i:i + self.batch] for i in range(0, len(fits), self.batch)]
                self.total -= len(group) - len(fits)

    def _encode(self, batch: list[str], plan_id: int) -> None:
        fresh = self.model.prompts_to_encode(batch)  # the foreground may have encoded some meanwhile
        if fresh:
            encode_texts(self.model, fresh, cache=self.cache)
        with self._state:
            if plan_id == self._plan_id:  # a batch of a replaced plan is not part of the new one's count
                self.done += len(batch)
            done, total = self.done, self.total
        if self._progress is not None:
            self._progress(done, total)


_LIVE: weakref.WeakSet[Preparer] = weakref.WeakSet()


def stop_all(wait: bool = False) -> None:
    """Stop every preparer of this process (`wait`: until their threads have ended)."""
    for preparer in list(_LIVE):
        preparer.stop(wait=wait)


# At interpreter exit concurrent.futures joins its workers (a hook threading runs, newest first, before
# atexit): stop every preparer before that join, so an exiting kernel waits for one batch, not a whole plan.
getattr(threading, "_register_atexit", lambda hook: None)(stop_all)
