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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("collector_paused",)


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
