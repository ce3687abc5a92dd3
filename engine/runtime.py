"""Process-level helpers shared by the stages that handle a whole run at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["gc_paused"]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: billing a run, reading or writing its rows and
    unpickling it allocate hundreds of thousands of acyclic objects, which the collector would
    otherwise scan again and again (with everything else the process holds) for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
