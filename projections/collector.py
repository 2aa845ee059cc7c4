"""Pausing Python's cyclic garbage collector while a batch is decoded and folded.

Decoding a batch of 5,000 events allocates a few hundred thousand containers (Structs, lists,
tuples) that all stay alive until the batch is written. Each allocation threshold crossed then
starts a collection that traverses them again, and none of it is garbage: measured on the
benchmark's events, decoding a batch took 2.5 to 3 times as long with the collector running.
Reference counting frees everything as usual while the collector is paused; only reference
cycles wait, and the collector finds them when it runs next. Pause only around code that does
not await, so that no other task of the process runs meanwhile.
"""

from __future__ import annotations

import contextlib
import gc
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("GC_THRESHOLDS", "collector_paused", "long_lived_collector")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off (left as found if someone else turned it
    off)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


GC_THRESHOLDS: Final = (20_000, 20, 20)
"""The cyclic collector's thresholds in a long-running process (the API, the projection runners,
a rebuild). Measured on the write benchmark with the default (700, 10, 10): ~8% of the server's
CPU in the collector, and full collections of the ~100k start-up objects taking 50-80 ms each,
the writes' p99; on rebuilds, collections set off while feed pages are decoded took a fifth to
a quarter of the process's time. Requests and batches free almost everything by reference
counting, so a large first threshold collects rarely and promotes far less of what is merely in
flight."""


@contextlib.contextmanager
def long_lived_collector() -> Iterator[None]:
    """Run the block with what was built so far frozen out of the collector's sight and the
    long-running thresholds; both restored afterwards (a process that builds many apps, the
    tests, can then collect the previous one's)."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
