"""A ledger opened in a notebook kernel is let go when the kernel is idle."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

from recon.services import Recon

PROBE = (
    "import sys; from recon.services import Recon; r = Recon.open(sys.argv[1]); print(r.client('C1').name); r.close()"
)


def other_process_can_open(db: Path) -> bool:
    run = subprocess.run([sys.executable, "-c", PROBE, str(db)], capture_output=True, text=True)
    return run.returncode == 0 and "Avery Chen" in run.stdout


def test_idle_release_lets_another_process_open(db: Path) -> None:
    async def notebook_turn() -> None:
        recon = Recon.open(db, hold=False)
        assert recon.client("C1").name == "Avery Chen"
        assert not other_process_can_open(db)  # held while the "cell" runs
        await asyncio.sleep(0)  # the kernel goes idle
        assert other_process_can_open(db)  # the CLI can use the ledger now
        assert recon.client("C1").name == "Avery Chen"  # re-attached on demand
        await asyncio.sleep(0)
        recon.close()

    # a thread of its own: another test in this worker may have left an event loop running
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(notebook_turn())
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def test_held_outside_a_kernel(db: Path) -> None:
    recon = Recon.open(db)
    try:
        assert recon.hold
        assert not other_process_can_open(db)
    finally:
        recon.close()
    assert other_process_can_open(db)
