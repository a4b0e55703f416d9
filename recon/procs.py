"""Whether a process is still running: the one check behind stale staging, ledger waiters and recon lab."""

from __future__ import annotations

import os
from pathlib import Path


def running(pid: int) -> bool:
    """True while ``pid`` runs (another user's process counts); a zombie has exited and does not."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process
    try:  # a zombie only waits for its parent to reap it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
