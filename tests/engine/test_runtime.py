"""engine.runtime.gc_paused: the collector is paused, then the run's objects leave the young
generation without a scan, and cyclic garbage is still reclaimed."""

from __future__ import annotations

import gc
import weakref

from engine.runtime import gc_paused, keep_for_process_lifetime, release_kept_objects


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_collector_paused_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner exit leaves it paused
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_objects_leave_the_young_generation_unscanned() -> None:
    with gc_paused():
        kept = [[i] for i in range(50_000)]
    young = len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1))
    assert young < 1_000  # else the next young collections walk all 50k lists
    assert gc.get_freeze_count() == 0  # nothing is left frozen
    assert len(kept) == 50_000


def test_cyclic_garbage_made_while_paused_is_still_reclaimed() -> None:
    with gc_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        del a, b
    assert probe() is not None  # a cycle: refcounting alone does not free it
    gc.collect()
    assert probe() is None


def test_a_process_kept_for_its_lifetime_freezes_what_paused_stages_build() -> None:
    keep_for_process_lifetime()
    try:
        before = gc.get_freeze_count()
        with gc_paused():
            kept = [[i] for i in range(1_000)]
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        release_kept_objects()
    assert gc.get_freeze_count() == 0
    with gc_paused():
        more = [[i] for i in range(1_000)]
    assert gc.get_freeze_count() == 0 and len(more) == 1_000
