"""A synthetic practice: the demo ledger, and practices of any size for benchmarks.

Everything is made from a seeded random generator, so the same size and seed give
the same files. Names, dates of birth and member ids are invented.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from recon.money import fmt
from recon.practice import TABLES
from recon.store import queries

if TYPE_CHECKING:
    from recon.services import Recon

FIRST = (
    "Avery",
    "Blake",
    "Casey",
    "Devon",
    "Emerson",
    "Finley",
    "Harper",
    "Jordan",
    "Kendall",
    "Logan",
    "Morgan",
    "Parker",
    "Quinn",
    "Reese",
    "Rowan",
    "Sawyer",
    "Skyler",
    "Taylor",
    "Jamie",
    "Riley",
)
LAST = (
    "Alvarez",
    "Bennett",
    "Chen",
    "Diaz",
    "Ellis",
    "Foster",
    "Garcia",
    "Hughes",
    "Ibrahim",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Morris",
    "Nguyen",
    "Okafor",
    "Patel",
    "Reyes",
    "Schmidt",
    "Tanaka",
    "Walsh",
)
PAYERS = (
    ("AETNA", "Aetna", "60054"),
    ("BCBS", "Blue Cross Blue Shield", "00570"),
    ("CIGNA", "Cigna Behavioral Health", "62308"),
    ("UHC", "UnitedHealthcare", "87726"),
    ("MEDICAID", "State Medicaid", "77027"),
)
# Behavioral-health CPT codes with a typical fee
SERVICES = (
    ("90791", "200.00"),
    ("90834", "130.00"),
    ("90837", "165.00"),
    ("90846", "120.00"),
    ("90847", "140.00"),
    ("90853", "60.00"),
    ("96127", "25.00"),
)
COPAYS = ("0.00", "15.00", "20.00", "25.00", "30.00", "40.00")
USERS = (
    ("ana", "Ana Billing", "billing;reports"),
    ("ben", "Ben Front Desk", "scheduling"),
    ("cara", "Cara Lead", "billing;reports;admin"),
)


@dataclass(frozen=True, slots=True)
class PracticeSize:
    clients: int
    invoices: int


DEMO = PracticeSize(clients=40, invoices=600)


def generate_practice(
    out: Path, size: PracticeSize = DEMO, seed: int = 7, start: date = date(2026, 5, 1), first_invoice: int = 1
) -> Path:
    """Write the five practice CSV files into ``out`` (created) and return it.

    ``first_invoice`` numbers the invoices from there, so that several practices of the
    same clients (same ``seed``) load one after another into one ledger: the clients
    reload unchanged and the invoices add up (bench/bench_scale.py's 10 million).
    """
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "users.csv", ("user_id", "name", "permissions"), USERS)
    _write(out / "insurance_providers.csv", ("payer_id", "name", "payer_identifier"), PAYERS)
    clients, policies = [], []
    for n in range(1, size.clients + 1):
        cid = f"C{n:05d}" if size.clients >= 1000 else f"C{n:03d}"
        dob = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55))
        clients.append((cid, rng.choice(FIRST), rng.choice(LAST), dob.isoformat(), rng.choice(COPAYS)))
        if rng.random() < 0.92:  # a few self-pay clients
            payers = rng.sample(PAYERS, 2 if rng.random() < 0.25 else 1)
            for priority, payer in zip(("primary", "secondary"), payers, strict=False):
                copay = rng.choice(COPAYS) if rng.random() < 0.2 else ""
                policies.append((cid, payer[0], f"M{rng.randrange(10**8, 10**9)}", priority, copay))
    _write(out / "clients.csv", TABLES["clients"], clients)
    _write(out / "client_insurance.csv", TABLES["client_insurance"], policies)
    span = max(1, min(365, size.invoices // max(1, size.clients) * 14))
    width = max(4, len(str(first_invoice + size.invoices - 1)))
    # the first batch keeps the stream it always had (the demo ledger's figures); later ones have their own
    batch = rng if first_invoice == 1 else random.Random(seed * 1_000_003 + first_invoice)
    _write(
        out / "invoices.csv",
        TABLES["invoices"],
        _invoices(batch, clients, size.invoices, start, span, width, first_invoice),
    )
    return out


def _invoices(
    rng: random.Random, clients: list[tuple[str, ...]], count: int, start: date, span: int, width: int, first: int = 1
) -> Iterator[tuple[str, ...]]:
    dated = sorted((start + timedelta(days=rng.randrange(span)), rng.choice(clients)[0]) for _ in range(count))
    for n, (day, cid) in enumerate(dated, start=first):
        code, fee = rng.choice(SERVICES)
        # defaults (payer, dues, claim) come from the client's policy on load
        yield (f"INV{n:0{width}d}", cid, day.isoformat(), code, "1", fee, "", "", "", "")


def _write(path: Path, header: tuple[str, ...], rows: object) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)  # type: ignore[arg-type]


def project_root() -> Path:
    """The checkout this package runs from (data/ and notebooks/ live there)."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def demo_source() -> Path:
    """``data/demo/`` of the checkout; made from the generator when missing."""
    folder = project_root() / "data" / "demo"
    if not (folder / "invoices.csv").exists():
        generate_practice(folder)
    return folder


DEMO_ADMIN = "cara"
"""The demo's billing lead: the admin its first load creates (users.csv), who loads it again and records payments."""


def ensure_demo_ledger(db_path: str | Path | None = None, rebuild: bool = False) -> Path | str:
    """Create the demo ledger (practice loaded, a few payments recorded) when missing."""
    return _build_demo(db_path, rebuild)[0]


def _build_demo(db_path: str | Path | None, rebuild: bool) -> tuple[Path | str, str | None]:
    """The demo ledger's path (or server URI), and the load's word on its first admin when this load created it."""
    from recon.services import Recon
    from recon.store.db import target

    path = target(db_path) if db_path else project_root() / "data" / "recon.duckdb"
    if rebuild and isinstance(path, str):
        from recon.errors import LedgerError

        raise LedgerError("--rebuild deletes a ledger file; a server ledger is not rebuilt (use a new database)")
    if rebuild and isinstance(path, Path) and path.exists():
        path.unlink()
        Path(str(path) + ".wal").unlink(missing_ok=True)
    with Recon.open(path) as recon:
        summary = recon.load_practice(demo_source(), DEMO_ADMIN)
        _demo_payments(recon)
    said = [line for line in str(summary).splitlines() if line.startswith("First load")]
    return path, said[0] if said else None


def _demo_payments(recon: Recon) -> list[str]:
    """A few payments through the public API, keyed so a second run records nothing."""
    from recon.model import InvoicePick, PaymentMethod, PaymentRequest

    # the requests are chosen from the open invoices, which the first run changes:
    # once the demo's payments exist, a re-run leaves them be
    if recon.one("SELECT 1 FROM payments WHERE idempotency_key LIKE 'demo-%' LIMIT 1"):
        return []
    ids = []
    clients = recon.con.execute(
        """SELECT ci.client_id, ci.payer_id FROM client_insurance ci
           WHERE ci.priority = 'primary' ORDER BY ci.client_id LIMIT 3"""
    ).fetchall()
    for n, (client_id, payer_id) in enumerate(clients):
        rows = [r for r in recon.ledger_rows(client_id) if r.payer_id == payer_id and r.ins_open > 0]
        if len(rows) < 3:
            continue
        if n == 0:  # two ticked invoices and a partial on a third
            picks = (
                InvoicePick(rows[0].invoice_id),
                InvoicePick(rows[1].invoice_id),
                InvoicePick(rows[2].invoice_id, (rows[2].ins_open / 2).quantize(Decimal("0.01"))),
            )
            request = PaymentRequest(
                client_id,
                payer_id,
                PaymentMethod.INSURANCE_CHECK,
                picks=picks,
                payment_number="CHK-10021",
                idempotency_key="demo-1",
            )
        elif n == 1:  # a lump sum applied oldest first, leaving unapplied credit
            total = sum((r.ins_open for r in rows), Decimal("0")) + Decimal("25.00")
            request = PaymentRequest(
                client_id,
                payer_id,
                PaymentMethod.INSURANCE_EFT_ACH,
                amount=total,
                payment_number="EFT-88310",
                idempotency_key="demo-2",
            )
        else:
            request = PaymentRequest(
                client_id,
                payer_id,
                PaymentMethod.INSURANCE,
                picks=(InvoicePick(rows[0].invoice_id),),
                payment_number="REF-4410",
                notes="phone payment",
                idempotency_key="demo-3",
            )
        ids.append(recon.record_payment(request, DEMO_ADMIN).payment_id)
    return ids


def run_demo(db_path: str | Path | None = None, rebuild: bool = False) -> str:
    """Build the demo ledger and describe it in a few lines."""
    from recon.services import Recon

    path, first_admin = _build_demo(db_path, rebuild)
    with Recon.open(path) as recon:
        recon_name = recon.name
        totals = recon.con.execute(
            f"SELECT count(*), sum(fee), sum(ins_amt_paid), sum(balance) FROM ({queries.ledger_sql()})"
        ).fetchone()
        pays = recon.con.execute(
            "SELECT count(*), coalesce(sum(amount), 0) FROM payments WHERE reverses IS NULL"
        ).fetchone()
        clients = recon.con.execute("SELECT count(*) FROM clients").fetchone()
        recent = recon.arrow(
            "SELECT payment_id, client_id, payer_id, method, payment_number, amount, applied, unapplied "
            f"FROM ({queries.payments_sql()}) "
            "ORDER BY payment_id DESC LIMIT 5"
        )
    from recon.output import render

    assert totals and pays and clients
    return (
        (f"{first_admin}\n" if first_admin else "") + f"recon demo ledger: {recon_name}\n"
        f"  {clients[0]} clients, {totals[0]} invoices, fees {fmt(totals[1])}\n"
        f"  {pays[0]} insurance payments recorded, {fmt(pays[1])} in all; ins paid on invoices {fmt(totals[2])}\n"
        f"  open balance across the practice {fmt(totals[3])}\n\n"
        f"Recent payments:\n{render(recent)}\n"
        "Next: `recon ledger C001`, `recon payments C001`, `recon export --out data/exports/ledger.xlsx`, "
        "or `recon lab` for the notebooks."
    )
