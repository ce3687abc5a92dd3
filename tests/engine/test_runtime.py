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


def test_overlapping_stages_in_two_threads_keep_it_paused_until_the_last_ends() -> None:
    import threading

    a_inside, b_inside, a_left = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def a() -> None:
        with gc_paused():
            a_inside.set()
            b_inside.wait(5)
        a_left.set()

    def b() -> None:
        a_inside.wait(5)
        with gc_paused():
            b_inside.set()
            a_left.wait(5)
            seen["after a left"] = gc.isenabled()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"after a left": False}  # b's stage is still in progress
    assert gc.isenabled()


def test_a_child_forked_inside_a_stage_pauses_its_own_stages() -> None:
    import os

    with gc_paused():
        pid = os.fork()
        if pid == 0:  # the child: its own stage pauses and re-enables the collector
            gc.enable()
            with gc_paused():
                paused = not gc.isenabled()
            os._exit(0 if paused and gc.isenabled() else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
