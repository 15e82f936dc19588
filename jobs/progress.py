"""Progress of a run: one line per stage with its name, records in and out, and elapsed time.

Three modes:
  console  local runs: ``[corpusmill] filter     start  10,918 records`` then
           ``[corpusmill] filter     done   10,918 -> 10,258 records (-660)     4.8s  total    32.1s``
  log      cluster runs: the same facts through ``logging`` (logger ``corpusmill.progress``, INFO,
           ``key=value`` fields), which lands in the driver log of YARN / Kubernetes / Airflow
  quiet    nothing printed (``--quiet``); the numbers are still kept for the manifest

``summary()`` is JSON-able (``manifest["progress"]``); ``jobs.report`` draws the record funnel from it.
Counting records is the caller's job (a ``count()`` on a persisted frame is cheap); this module
never imports pyspark.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

LOG = logging.getLogger("corpusmill.progress")
MODES = ("console", "log", "quiet")


@dataclass
class StageProgress:
    stage: str
    records_in: int | None = None
    records_out: int | None = None
    elapsed_s: float | None = None
    status: str = "running"  # running | done | failed
    detail: str = ""
    started_at: float = field(default=0.0, repr=False)  # clock reading at start; not in summary()


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


class Progress:
    """Per-stage progress lines; ``mode`` is console, log or quiet."""

    def __init__(self, mode: str = "console", emit: Callable[[str], None] | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in MODES:
            raise ValueError(f"progress mode '{mode}' is not one of {', '.join(MODES)}")
        self.mode = mode
        self._stream = stream
        self._emit = emit
        self._clock = clock
        self._started = clock()
        self.stages: list[StageProgress] = []
        if mode == "log" and not LOG.handlers and not logging.getLogger().handlers:
            # A bare driver (spark-submit) has no logging setup: INFO would vanish.
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            LOG.addHandler(handler)
            LOG.setLevel(logging.INFO)

    @classmethod
    def for_run(cls, quiet: bool = False, master: str | None = None, submitted: bool | None = None,
                emit: Callable[[str], None] | None = None) -> Progress:
        """quiet -> quiet; a cluster master under spark-submit -> log; otherwise console."""
        if quiet:
            return cls("quiet")
        if submitted is None:
            import os

            submitted = "PYSPARK_GATEWAY_PORT" in os.environ
        local = master is None or master.startswith("local")
        return cls("log" if submitted and not local else "console", emit=emit)

    def _console(self, line: str) -> None:
        if self._emit is not None:
            self._emit(line)
        else:
            print(line, file=self._stream or sys.stdout, flush=True)

    def note(self, message: str) -> None:
        """A line that is not a stage (the read plan, say)."""
        if self.mode == "console":
            self._console(f"[corpusmill] {message}")
        elif self.mode == "log":
            LOG.info("%s", message)

    def start(self, stage: str, records_in: int | None = None) -> StageProgress:
        entry = StageProgress(stage, records_in=records_in, started_at=self._clock())
        self.stages.append(entry)
        if self.mode == "console":
            count = f"  {_n(records_in)} records" if records_in is not None else ""
            self._console(f"[corpusmill] {stage:<10} start{count}")
        elif self.mode == "log":
            LOG.info("stage=%s event=start records_in=%s", stage, records_in)
        return entry

    def done(self, entry: StageProgress, records_out: int | None = None, detail: str = "",
             failed: bool = False) -> StageProgress:
        now = self._clock()
        entry.elapsed_s = round(now - entry.started_at, 3)
        if records_out is not None:
            entry.records_out = records_out
        entry.detail = detail or entry.detail
        entry.status = "failed" if failed else "done"
        total = now - self._started
        if self.mode == "console":
            if entry.records_in is not None and entry.records_out is not None:
                counts = (f"{_n(entry.records_in)} -> {_n(entry.records_out)} records "
                          f"({entry.records_out - entry.records_in:+,})")
            elif entry.records_out is not None:
                counts = f"{_n(entry.records_out)} records"
            else:
                counts = ""
            extra = f"  {entry.detail}" if entry.detail else ""
            self._console(f"[corpusmill] {entry.stage:<10} {entry.status:<6} {counts:<40} "
                          f"{entry.elapsed_s:7.1f}s  total {total:7.1f}s{extra}".rstrip())
        elif self.mode == "log":
            LOG.log(logging.ERROR if failed else logging.INFO,
                    "stage=%s event=%s records_in=%s records_out=%s elapsed_s=%.3f total_s=%.3f%s",
                    entry.stage, entry.status, entry.records_in, entry.records_out, entry.elapsed_s, total,
                    f" detail={entry.detail!r}" if entry.detail else "")
        return entry

    @contextmanager
    def stage(self, name: str, records_in: int | None = None) -> Iterator[StageProgress]:
        """``with progress.stage("filter", n) as p: ...; p.records_out = m`` -- timed, failure reported."""
        entry = self.start(name, records_in)
        try:
            yield entry
        except BaseException:
            self.done(entry, failed=True)
            raise
        self.done(entry)

    def summary(self) -> list[dict[str, Any]]:
        """``[{stage, records_in, records_out, elapsed_s, status, detail}]`` for ``manifest["progress"]``."""
        return [{k: v for k, v in asdict(s).items() if k != "started_at"} for s in self.stages]
