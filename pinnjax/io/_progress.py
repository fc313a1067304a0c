"""A minimal terminal progress bar (no tqdm)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def format_metric(value: Any) -> str:
    """Compact rendering: floats as `1.23e-03`, ints as-is, anything else via str."""
    if hasattr(value, "item") and getattr(value, "size", 1) == 1:
        value = value.item()  # numpy / JAX scalars
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2e}"
    return str(value)


def format_duration(seconds: float) -> str:
    """`M:SS` or `H:MM:SS`; `?` when unknown."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressBar:
    """One status line: `step/total`, percentage, steps/s, ETA and metrics.

    On a terminal the line is redrawn in place with `\\r` (at most every
    `min_interval` seconds, always on the last step). On any other stream (log
    files, CI) it is quiet except for a plain line each time progress crosses a
    multiple of `plain_every` percent (`None` or `0`: fully quiet).

    ```python
    with ProgressBar(5000) as bar:
        for step in range(1, 5001):
            ...
            bar.update(step, loss=loss)
    ```
    """

    def __init__(
        self,
        total: int,
        *,
        stream: TextIO | None = None,
        plain_every: float | None = 10,
        min_interval: float = 0.1,
        start_step: int = 0,
        desc: str = "",
    ):
        if total <= 0:
            raise ValueError(f"total must be positive, got {total}")
        self.total = int(total)
        self.stream = sys.stderr if stream is None else stream
        self.plain_every = plain_every
        self.min_interval = min_interval
        self.desc = desc
        self.tty = _is_tty(self.stream)
        self._start_step = start_step
        self._start_time = time.perf_counter()
        self._last_draw = -float("inf")
        self._last_width = 0
        self._next_plain = self._plain_threshold_after(start_step)
        self._pending: str | None = None  # newest line not yet shown
        self._closed = False

    def _plain_threshold_after(self, step):
        """Next percentage to print at: a multiple of `plain_every`, or 100."""
        pct = 100.0 * step / self.total
        if not self.plain_every or pct >= 100.0:
            return float("inf")
        return min((pct // self.plain_every + 1) * self.plain_every, 100.0)

    def format(self, step: int, **metrics: Any) -> str:
        """The status line for `step` (without any `\\r` or newline)."""
        elapsed = time.perf_counter() - self._start_time
        done = step - self._start_step
        rate = done / elapsed if elapsed > 0 and done > 0 else float("nan")
        eta = (self.total - step) / rate if rate == rate else float("nan")
        width = len(str(self.total))
        parts = [
            f"{self.desc}: " if self.desc else "",
            f"{step:>{width}}/{self.total} {100.0 * step / self.total:3.0f}%",
            f" | {rate:.1f} it/s" if rate == rate else " | ? it/s",
            f" | ETA {format_duration(eta)}",
        ]
        if metrics:
            items = " ".join(f"{k}={format_metric(v)}" for k, v in metrics.items())
            parts.append(f" | {items}")
        return "".join(parts)

    def update(self, step: int, **metrics: Any) -> None:
        """Reports that `step` steps are done, with optional metrics to show."""
        if self._closed:
            return
        line = self.format(step, **metrics)
        if self.tty:
            now = time.perf_counter()
            if now - self._last_draw >= self.min_interval or step >= self.total:
                self._draw(line)
                self._last_draw = now
                self._pending = None
            else:
                self._pending = line
            return
        pct = 100.0 * step / self.total
        if pct >= self._next_plain:
            self.stream.write(line + "\n")
            self.stream.flush()
            self._next_plain = self._plain_threshold_after(step)
            self._pending = None
        else:
            self._pending = line

    def _draw(self, line):
        # Pad with spaces so a shorter line fully covers the previous one.
        pad = max(self._last_width - len(line), 0)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self._last_width = len(line)

    def write(self, message: str) -> None:
        """Prints a message on its own line without garbling the bar."""
        if self.tty and self._last_width:
            self.stream.write("\r" + " " * self._last_width + "\r")
            self._last_width = 0
            self._last_draw = -float("inf")  # redraw on the next update
        self.stream.write(message + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Shows the last status if it was skipped and ends the line."""
        if self._closed:
            return
        self._closed = True
        if self.tty:
            if self._pending is not None:
                self._draw(self._pending)
            if self._last_width:
                self.stream.write("\n")
        elif self._pending is not None and self.plain_every:
            self.stream.write(self._pending + "\n")
        self.stream.flush()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
