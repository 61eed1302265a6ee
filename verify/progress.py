"""Progress of a sweep: a tqdm bar in a terminal, plain lines with elapsed time and ETA otherwise.

``reporter(name, total)`` returns an object with ``update(n=1)`` and ``close()`` (a tqdm bar has both), so
the runner (or an executor that finishes points out of order) calls ``update`` once per finished point.
Without a terminal on stderr (a log file, a batch job, CI) a line is printed at the first finished point,
then at most every ``every`` seconds, and at the end:

    [verify] lipschitz_vs_t: 3/12 points (25%), 41 s elapsed, ETA 2 min
"""

from __future__ import annotations

import sys
import time


def _fmt(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class LineProgress:
    """Line-based progress for logs: ``[verify] NAME: k/N points (p%), T elapsed, ETA E``."""

    def __init__(self, name: str, total: int, *, stream=None, every: float = 10.0, unit: str = "points",
                 clock=time.monotonic):
        self.name, self.total, self.unit, self.every, self.clock = name, int(total), unit, float(every), clock
        self.stream = stream if stream is not None else sys.stderr
        self.done, self.start, self.last = 0, clock(), None

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if self.last is None or now - self.last >= self.every or self.done >= self.total:
            self.last = now
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = now - self.start
        pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        text = f"[verify] {self.name}: {self.done}/{self.total} {self.unit}{pct}, {_fmt(elapsed)} elapsed"
        if 0 < self.done < self.total:
            text += f", ETA {_fmt(elapsed / self.done * (self.total - self.done))}"
        elif self.done >= self.total:
            text += ", done"
        return text

    def close(self) -> None:
        pass


class NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def reporter(name: str, total: int, *, quiet: bool = False, stream=None, unit: str = "points"):
    """A tqdm bar if ``stream`` (default stderr) is a terminal, else a LineProgress; nothing if ``quiet`` or
    there is nothing to do."""
    stream = stream if stream is not None else sys.stderr
    if quiet or total <= 0:
        return NoProgress()
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=name, unit=unit.rstrip("s") or "it", file=stream)
    return LineProgress(name, total, stream=stream, unit=unit)
