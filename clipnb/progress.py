"""clipnb's one progress bar, for every stage that counts steps (embedding, caching, video, cluster runs)."""
from __future__ import annotations


def progress_bar(total: int | None, enabled: bool, description: str, unit: str = "img"):
    """clipnb's progress bar (tqdm, in a notebook or a terminal): `total` steps (None: unknown), hidden when
    not `enabled` or when there is nothing to do. Use it as a context manager, or close it."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled or total == 0, desc=description, unit=unit, dynamic_ncols=True)
