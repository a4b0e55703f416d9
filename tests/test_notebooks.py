"""Every notebook in ``notebooks/`` runs clean top to bottom (nbval, lax outputs).

Why a subprocess: nbval is a pytest plugin that collects ``.ipynb`` files; running it
as its own ``pytest --nbval-lax`` keeps the main run's options and plugins untouched,
and lets each notebook start on a fresh ledger. ``RECON_DB`` and ``RECON_EXPORT_DIR``
point into a temporary folder, so a test run writes nothing into the repository;
the kernels inherit them. Lax: outputs carry ids and dates, so only errors fail.

All notebooks run in one nbval session, in name order, on one ledger (as an analyst
goes from 01 to 03), and then all again: analysts re-run notebooks, and a re-run
must replay (idempotency keys), not fail or record twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def run_nbval(notebooks: list[Path], tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RECON_DB": str(tmp / "recon.duckdb"),
        "RECON_EXPORT_DIR": str(tmp / "exports"),
        "MPLBACKEND": "agg",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("RECON_DB_KEY", None)
    cmd = [
        sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=300",
        "-p", "no:cacheprovider", "-q", "--rootdir", str(ROOT), *map(str, notebooks),
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_there_are_notebooks() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"01_client_ledger.ipynb", "02_era_batch_reconciliation.ipynb", "03_reports_and_export.ipynb"} <= names


@pytest.mark.slow
def test_notebooks_run_clean_twice(tmp_path: Path) -> None:
    for attempt in ("first run", "re-run"):
        result = run_nbval(NOTEBOOKS, tmp_path)
        assert result.returncode == 0, f"nbval ({attempt}):\n{result.stdout}\n{result.stderr}"
    assert "passed" in result.stdout
    # the ledger and the exports were the temporary ones, not the repository's
    assert (tmp_path / "recon.duckdb").exists()
    assert (tmp_path / "exports" / "ledger.xlsx").exists()
    # notebook 02 made its demo batch beside the temporary ledger and posted it once
    assert (tmp_path / "era_demo" / "bank_deposits.csv").exists()
