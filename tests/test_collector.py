"""The cyclic collector's tuning for long-running processes (the API, ``diplofeed project``,
``diplofeed rebuild``): set inside, restored after, and what existed before frozen meanwhile."""

from __future__ import annotations

import gc

from projections.collector import GC_THRESHOLDS, collector_paused, long_lived_collector


def test_the_long_lived_tuning_is_set_inside_and_restored_after() -> None:
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with long_lived_collector():
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > frozen
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_paused_collector_is_left_as_found() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
