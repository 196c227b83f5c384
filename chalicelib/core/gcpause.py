"""INIT's loads with Python's cyclic garbage collector paused.

Below a full vCPU, INIT imports the route modules, botocore and twilio.rest and builds clients
(chalicelib/runtime/warmup.py): hundreds of thousands of objects that live as long as the
process, so every full collection those allocations trigger walks all of them and frees
nothing. Pausing the collector for that INIT work takes about a tenth off it (`make bench`).
Measured and not done: pausing it for a lazy client build on a first event made that event
slower, not faster, so only INIT's preload is paused; requests run with the collector on.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """The collector off inside, back as it was after (a nested pause changes nothing)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
