"""Read, balance and stage-format one 835 file in a reader process, for a posting batch.

``post_remittances`` with several files posts file k in DuckDB while a reader
process (``spawn``: never a fork of a process that has DuckDB open) prepares file
k+1 with :func:`prepare_file`: the reading pass (``read_835_stream``, the gate's
checks) and the staged rows as the delimited text chunk files of
:class:`recon.remit.stage.TextStager`, written into a folder the parent owns. What
comes back is small and picklable (:class:`Prepared`): one :class:`Header` per
transaction, the chunks' file names, and the reason the parent must read the file
itself when it must (a bad file, a value text cannot carry, an unexpected error),
so that every refusal is produced by the in-process path exactly as for one file.
The claims themselves travel only through the files; with an encrypted ledger (PHI
never written in plain text) they travel in memory instead, with the result.

The reader process must not outlive the posting process, however that ends (a
``kill -9`` included): :func:`watch_parent`, run first in the reader, ends it when its
parent is gone (``PR_SET_PDEATHSIG`` on Linux, and a thread that polls the parent).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from recon.errors import RemittanceError
from recon.remit.balance import plb_total
from recon.remit.era835 import ClaimBatch, Envelope, read_835_stream
from recon.remit.stage import TextStager
from recon.remit.x12 import gc_paused


@dataclass(frozen=True, slots=True)
class Header:
    """What posting needs of one transaction besides its claims (the Remittance fields of the same names)."""

    envelope: Envelope
    handling_code: str
    amount: Decimal
    method: str
    payment_date: date | None
    trace_number: str
    originator_id: str
    payer_name: str
    payer_ref_id: str
    payer_n1_id: str
    n_claims: int
    plb: Decimal
    warnings: tuple[str, ...]

    @property
    def notification_only(self) -> bool:
        return self.handling_code == "H"


@dataclass(slots=True)
class Prepared:
    """One file as a reader process left it: headers, chunk files (lo, hi, table -> path) or a reason."""

    headers: list[Header] = field(default_factory=list)
    chunks: list[tuple[int, int, dict[str, str | bytes]]] = field(default_factory=list)  # path, or the text
    in_process: str = ""  # non-empty: the parent reads the file itself (and refuses it, when bad)


PARENT_POLL = 0.5
"""Seconds between the reader's checks that its parent still runs (where no death signal exists)."""


def watch_parent(parent: int) -> None:
    """The reader process's initializer: end this process as soon as ``parent`` (the posting process) is gone.

    A reader blocked on its task queue never notices its parent's death by itself (it
    holds both ends of the queue's pipe), and keeps multiprocessing's resource tracker
    alive with it. Linux kills it with the parent (``PR_SET_PDEATHSIG``); everywhere
    a daemon thread also compares ``os.getppid()`` with the parent it was started by.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # died before the signal was armed
        os._exit(1)
    threading.Thread(target=_poll_parent, args=(parent,), name="recon-watch-parent", daemon=True).start()


def _poll_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL)
        if os.getppid() != parent:
            os._exit(1)


def prepare_file(
    path: str | os.PathLike[str], name: str, folder: str | None, chunk_rows: int | None = None, *, private: bool = False
) -> Prepared:
    """Read and check ``path``; stage its text into ``folder``, or in memory when ``private``. Never raises."""
    if private and not hasattr(os, "memfd_create"):
        return Prepared(in_process="no in-memory files here to stage PHI through")
    try:
        return _prepare(Path(path), name, folder, chunk_rows, private)
    except RemittanceError as exc:
        return Prepared(in_process=f"refused by the reader: {exc.message}")
    except Exception as exc:  # any error comes back as data; the parent reads the file itself
        return Prepared(in_process=f"reader error: {type(exc).__name__}: {exc}")


def _prepare(path: Path, name: str, folder: str | None, chunk_rows: int | None, private: bool) -> Prepared:
    stager = TextStager(folder, chunk_rows=chunk_rows, private=private)
    out = Prepared()
    with gc_paused():
        for part in read_835_stream(path, name=name):  # a few thousand claims in memory at a time
            if isinstance(part, ClaimBatch):
                stager.add_claims(part.st, part.claims)
                if stager.exact:
                    return Prepared(in_process="a value needs the exact staging path")
                continue
            rem = part.remittance
            if rem.defects or part.imbalances:
                return Prepared(in_process="the file does not pass validation")
            out.headers.append(
                Header(
                    rem.envelope,
                    rem.handling_code,
                    rem.amount,
                    rem.method,
                    rem.payment_date,
                    rem.trace_number,
                    rem.originator_id,
                    rem.payer_name,
                    rem.payer_ref_id,
                    rem.payer_n1_id,
                    part.claims,
                    plb_total(rem),
                    tuple(rem.warnings),
                )
            )
            stager.add_plb(part.st, rem.provider_adjustments)
        stager.flush()
    if stager.exact:
        return Prepared(in_process="a value needs the exact staging path")
    out.chunks = stager.written
    return out
