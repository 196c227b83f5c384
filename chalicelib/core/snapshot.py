"""SnapStart: what must differ between the execution environments restored from one snapshot.

With SnapStart (`"snapstart": true`, see devkit/package.py), Lambda runs the INIT phase once, when
a version is published, and restores every new execution environment from that snapshot. What
INIT holds is therefore shared by all of them. INIT here (importing app.py) reads no parameter
or secret (the gate reads them on a request), builds no AWS client or connection, and makes no
id (message ids, writer and generation tokens come from os.urandom on each call; see
docs/performance.md). One shared thing is outside our code: `random`'s global generator, seeded
from the OS when the module is first imported. If anything imports it during INIT, every
restored environment would draw the same sequence (botocore's retry jitter, the hold-music
shuffle), so it is reseeded after each restore.
"""

from __future__ import annotations

import os


def reseed_after_restore() -> bool:
    """Under SnapStart's INIT, register a reseed of `random` to run after every restore.

    Returns whether it registered: elsewhere (local runs, tests, functions without SnapStart)
    nothing is imported and nothing runs.
    """
    if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != "snap-start":
        return False
    # Lambda's Python runtimes (3.12+) ship this library for SnapStart's runtime hooks.
    from snapshot_restore_py import register_after_restore

    register_after_restore(_reseed)
    return True


def _reseed() -> None:
    import random

    random.seed()  # from os.urandom: this environment's own sequence
