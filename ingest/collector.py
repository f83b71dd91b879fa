"""Pausing Python's cyclic garbage collector while building many objects at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building many values.

    Parsed JSON, file listings and the like hold no reference cycles, yet
    allocating millions of dicts, lists and tuples triggers collections that
    traverse all of them again and again (on a 100,000-record dump that costs
    more than the parse itself). Objects still die by reference counting; the
    collector is re-enabled on exit if it was on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
