"""Peak resident memory of another process (a server under load), sampled by a thread.

The kernel's own high-water mark (``VmHWM``) is reset before a measurement by writing ``5`` to
``/proc/<pid>/clear_refs`` where that is allowed, so it catches a spike between two samples;
otherwise the peak is the largest sample (psutil when installed, else ``/proc/<pid>/status``).
A cap protects a shared machine: past it the process is killed and the peak says so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Final

try:
    import psutil
except ImportError:  # optional: /proc serves as well on Linux
    psutil = None

__all__ = ("RssPeak", "rss_mb")

_MB: Final = 1e6


def _status_kb(pid: int, field: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return None


def rss_mb(pid: int) -> float | None:
    """The process's resident set now, in MB (``None`` once it has ended)."""
    if psutil is not None:
        try:
            return float(psutil.Process(pid).memory_info().rss) / _MB
        except psutil.Error:
            return None
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else kb * 1000 / _MB


def _reset_high_water(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssPeak:
    """``with RssPeak(pid) as peak: ...`` then ``peak.mb``: the largest resident set seen."""

    def __init__(self, pid: int, *, cap_mb: float | None = None, interval: float = 0.02) -> None:
        self._pid = pid
        self._cap = cap_mb
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._high_water = False
        self.mb = 0.0
        self.killed = False
        """The process passed the cap and was killed."""

    def _sample(self) -> None:
        now = rss_mb(self._pid)
        if now is None:
            return
        self.mb = max(self.mb, now)
        if self._cap is not None and now > self._cap and not self.killed:
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
            self.killed = True

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> RssPeak:
        self._high_water = _reset_high_water(self._pid)
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        if self._high_water:
            kb = _status_kb(self._pid, "VmHWM")
            if kb is not None:
                self.mb = max(self.mb, kb * 1000 / _MB)
