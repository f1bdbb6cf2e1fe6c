"""What both panels (`ClassifierPanel`, `MapPanel`) share: the HTML of their status lines (✔ done, ⏳ working,
⚠ failed with the details folded under it), the guard that shows a callback's exception in the panel instead of
JupyterLab's Log Console, the export's folder, thread and reasons, the table and thumbnail HTML, and `PanelBase`,
the class both panels subclass for the status line, the guard, the export start and closing."""
from __future__ import annotations

import base64
import datetime
import functools
import html
import io
import logging
import os
import threading
import traceback
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from ..data.files import RETRY_HINT
from ..data.images import THUMBNAIL_SIDE, ImageReadError, open_image
from ..words import WORDS, prediction_name, word
from ..zeroshot.schema import column_name

log = logging.getLogger(__name__)

THUMBNAIL = THUMBNAIL_SIDE  # pixels: the longest side of a thumbnail in a panel


def export_folder(base: str | os.PathLike, now: datetime.datetime | None = None) -> Path:
    """A new subfolder of `base` named after the time (panel-20261201-101502), never one that exists."""
    base = Path(base).expanduser().resolve()
    stamp = f"panel-{(now or datetime.datetime.now()):%Y%m%d-%H%M%S}"
    folder, count = base / stamp, 1
    while folder.exists():
        count += 1
        folder = base / f"{stamp}-{count}"
    return folder



STYLE = """<style>
.clipnb-view{font-size:13px;line-height:1.35}
.clipnb-view h4{margin:6px 0 4px;font-size:14px}
.clipnb-bars{display:grid;grid-template-columns:minmax(90px,max-content) 1fr 1fr;gap:3px 12px;align-items:center;max-width:980px}
.clipnb-bars .head{font-weight:600;color:#444}
.clipnb-bar{display:flex;align-items:center;gap:6px}
.clipnb-bar span.fill{display:inline-block;height:14px;border-radius:2px;min-width:1px}
.clipnb-bar span.value{white-space:nowrap;color:#333}
.clipnb-swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.clipnb-cards{display:flex;flex-wrap:wrap;gap:10px;margin-top:8px}
.clipnb-card{width:250px;border:1px solid #ddd;border-radius:4px;padding:6px;background:#fff}
.clipnb-card img{display:block;max-width:238px;max-height:150px;margin:0 auto 4px}
.clipnb-card .name{font-weight:600;overflow-wrap:anywhere}
.clipnb-card .wrong{color:#cf222e}
.clipnb-card .right{color:#1a7f37}
.clipnb-card .prob{display:grid;grid-template-columns:118px 1fr;gap:2px 6px;align-items:center;font-size:12px}
.clipnb-card .prob .label{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.clipnb-note{color:#555}
.clipnb-table table td,.clipnb-table table th,.clipnb-table table.dataframe thead th{padding:2px 8px;text-align:left}
.clipnb-stale{opacity:.45;filter:grayscale(1)}
.clipnb-stale-label{display:inline-block;background:#eaeef2;color:#444;border-radius:3px;padding:1px 6px;font-size:12px}
</style>"""



def thumbnail_uri(path: str | os.PathLike) -> str | None:
    """A small JPEG of an image file as a data URI (None when it cannot be read)."""
    try:
        image = open_image(path, draft_size=THUMBNAIL).image
    except ImageReadError:
        return None
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")



def table_html(table: pd.DataFrame, lang: str = "en", classes: Sequence[str] = ()) -> str:
    """A table (`image_table`) as HTML in `lang`: its headers in the language's words, ✓/✗ for right and
    wrong, ⚠ for an image that fits no class, "unknown" (unless one of the `classes`) in the language's word,
    and empty cells for None."""
    marks = {True: "✓", False: "✗", None: ""}
    shown = table.copy()
    for column in shown.columns:  # None shows as an empty cell, as NaN does
        if not pd.api.types.is_numeric_dtype(shown[column]):
            shown[column] = shown[column].astype(object).where(shown[column].notna(), "")
    if "correct" in shown:
        shown["correct"] = [marks.get(v, "") for v in shown["correct"]]
    if "fits no class" in shown:  # True/False are words: a mark says it in every language
        shown["fits no class"] = ["⚠" if v else "" for v in shown["fits no class"]]
    if "prediction" in shown:
        shown["prediction"] = shown["prediction"].map(lambda v: prediction_name(v, lang, classes))
    shown = shown.rename(columns=lambda c: column_name(c, lang))
    return TABLE_STYLE + shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.3f}", border=0,
                                       classes="clipnb-rows")


# A table's own style, so that it is compact wherever it is shown (the panel, a notebook cell): one line a row
# (a wrapped class name made every row two lines tall), only the last column (error: free text) wraps
TABLE_STYLE = """<style>
table.clipnb-rows td,table.clipnb-rows th{padding:2px 8px;line-height:1.3;text-align:left;vertical-align:top}
table.clipnb-rows td{white-space:nowrap}
table.clipnb-rows td:last-child{white-space:normal;min-width:12em}
</style>"""



def ok_html(text: str) -> str:
    """A panel's status line when all is well: ✔ and the text, in green."""
    return f'<span style="color:#1a7f37">✔ {html.escape(text)}</span>'


def working_html(text: str) -> str:
    """A panel's status line while work is going on (encoding prompts, exporting): ⏳ and the text, in blue;
    never ✔, which says the work is done."""
    return f'<span style="color:#0969da">⏳ {html.escape(text)}</span>'


def failure_html(text: str, details: str = "", lang: str = "en") -> str:
    """A panel's status line when something went wrong: ⚠ and the text in red, with `details` (a traceback)
    folded under it, its fold named in `lang`."""
    folded = (f"<details><summary>{html.escape(word('panel.details', lang))}</summary>"
              f"<pre style='font-size:12px'>{html.escape(details)}</pre></details>") if details else ""
    return f'<span style="color:#cf222e;font-weight:bold">⚠ {html.escape(text)}</span>{folded}'


def export_reason(exc: OSError, lang: str = "en") -> tuple[str, str]:
    """An export error's reason as a panel's line says it in `lang`, and the details folded under that line.
    clipnb's own refusals carry their words (`ExportError.worded`) and are said in `lang`, without the retry
    hint (the panel says what is kept); any other error's reason is English (the system's), so a line in
    another language points to the fold that holds it."""
    if getattr(exc, "key", None):
        return exc.said(lang, retry=False), ""
    reason = str(exc).replace(f" ({RETRY_HINT})", "")
    return word("panel.reason_folded", lang, reason=reason), ("" if lang == "en" else reason)


def guarded(callback: Callable, doing: str, fail: Callable[[Callable[[str], str], str], object],
            panel: str) -> Callable:
    """`callback` for a widget: an exception is logged and handed to `fail(said, traceback)` (a panel's
    status line) instead of vanishing into JupyterLab's Log Console, where a callback's errors otherwise go.
    `said(lang)` is the message in a language: what was being done (`doing`, a "doing.<doing>" word) failed,
    and the error; a function, so that a panel can say it again when its language changes."""
    @functools.wraps(callback)
    def run(*args):
        try:
            return callback(*args)
        except Exception as exc:  # noqa: BLE001 - every failure must reach the user
            log.exception("clipnb %s: %s failed", panel, doing)
            error = f"{type(exc).__name__}: {exc}"

            def said(lang: str) -> str:
                doing_said = word(f"doing.{doing}", lang) if f"doing.{doing}" in WORDS else doing
                return word("panel.failed", lang, doing=doing_said, error=error)
            fail(said, traceback.format_exc())
    return run



def run_export(job: Callable[[], list], wait: bool, guard: Callable) -> list:
    """Run a panel's export `job` now (`wait`, its files returned), or on a thread so that the panel stays
    usable while it writes (the Export button), its failures said through `guard`."""
    if wait:
        return job()
    threading.Thread(target=guard("exporting", job), daemon=True).start()
    return []




def line_html(kind: str, text: str, details: str = "", lang: str = "en") -> str:
    """A panel's line (status or export) of `kind` "ok", "working" or "failed" (the last with `details` folded)."""
    if kind == "failed":
        return failure_html(text, details, lang)
    return working_html(text) if kind == "working" else ok_html(text)


class PanelBase(ABC):
    """What both panels do the same way. A subclass builds, before it uses these: `widget` (the whole panel),
    `status` (its status line), `export_button`, `_lock` (an RLock: callbacks run on other threads), and has a
    `lang`; it says how a callback's failure is shown in `_callback_failed(said, details)`."""

    log_name = "panel"  # names the panel in the log

    @abstractmethod
    def _callback_failed(self, said: Callable[[str], str], details: str) -> None:
        """Show a callback's failure: `said(lang)` its words in a language, `details` the traceback."""

    def _guarded(self, doing: str, callback: Callable) -> Callable:
        """`callback` for a control, its failures said in the panel (see `guarded`)."""
        return guarded(callback, doing, self._callback_failed, self.log_name)

    def _show_line(self, view, kind: str, text: str, details: str = "") -> None:
        """Put a line of `kind` ("ok", "working", "failed") in `view` (the status or export line)."""
        view.value = line_html(kind, text, details, self.lang)

    def _run_export(self, job: Callable[[], list], wait: bool) -> list:
        """Start an export `job` (see `run_export`); the Export button waits, disabled, while a thread writes
        (the job enables it again when done)."""
        with self._lock:
            if not wait:
                self.export_button.disabled = True
        return run_export(job, wait, self._guarded)

    def close(self) -> None:
        """Close the panel's widgets, every box and what it holds."""
        boxes = [self.widget]
        while boxes:
            box = boxes.pop()
            boxes += getattr(box, "children", ())
            box.close()

    # -- display in a notebook --------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
