"""Process-level helpers shared by the stages that handle a whole run at once."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused", "keep_for_process_lifetime", "release_kept_objects"]

# Set by `keep_for_process_lifetime`: the objects of paused stages are frozen for good.
_KEEP = False


def keep_for_process_lifetime() -> None:
    """For a process that ends with its job (the `bareme` command, a pool's worker): freeze
    what it holds now, and from now on what each `gc_paused` stage builds, out of the
    collector's scans for good. Cyclic garbage among them is then only reclaimed when the
    process exits; a long-lived process (a test run, a server) should not call this."""
    global _KEEP
    gc.freeze()
    _KEEP = True


def release_kept_objects() -> None:
    """Undo `keep_for_process_lifetime`: the frozen objects go back to the collector."""
    global _KEEP
    _KEEP = False
    gc.unfreeze()


# Paused stages in progress, over all threads (Dask workers run tasks in threads): the collector
# is re-enabled when the last one ends, whatever the order they end in.
_LOCK = threading.Lock()
_DEPTH = 0
_RESTORE = False  # whether the collector was enabled when the first stage began


def _forked_child() -> None:
    global _LOCK, _DEPTH, _RESTORE
    # A child forked inside a paused stage runs no stage yet (and the lock may be held).
    _LOCK, _DEPTH, _RESTORE = threading.Lock(), 0, False


os.register_at_fork(after_in_child=_forked_child)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: billing a run, reading or writing its rows and
    unpickling it allocate hundreds of thousands of acyclic objects, which the collector would
    otherwise scan again and again (with everything else the process holds) for nothing.

    Stages nest and may overlap in several threads: the collector is off from the first one's
    start to the last one's end. Then, what was allocated meanwhile leaves the youngest
    generation without a scan: re-enabled as is, the collector's next young collections would
    walk every object of the run (0.4 s for a run of 100k subscriptions). The objects go to the
    oldest generation, which the collector still scans now and then (cyclic garbage is
    reclaimed as before), or are frozen for good after `keep_for_process_lifetime`."""
    global _DEPTH, _RESTORE
    with _LOCK:
        if _DEPTH == 0:
            _RESTORE = gc.isenabled()
            gc.disable()
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _RESTORE:
                gc.freeze()  # O(1): the generations' lists are spliced, not walked
                if not _KEEP:
                    gc.unfreeze()  # back into the oldest generation, also O(1)
                gc.enable()
