"""Whether a process still runs (for locks and claims left by processes that died)."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True while process `pid` exists on this host (someone else's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
