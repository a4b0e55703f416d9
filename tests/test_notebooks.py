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

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recon.notebook_files import LANGUAGE_INFO, normal_text, pre_save_hook

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
    # notebook 02 made its demo batch beside the temporary ledger, previewed it and posted
    # nothing: Run All never posts (posting is the analyst's click, or a flag flipped on purpose)
    assert (tmp_path / "era_demo" / "bank_deposits.csv").exists()
    import duckdb

    with duckdb.connect(str(tmp_path / "recon.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM remittances").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM deposits").fetchone() == (0,)


def test_committed_notebooks_are_in_the_form_jupyter_saves() -> None:
    """Outputs empty, execution_count null, the standard metadata: a run and a save change no byte."""
    for path in NOTEBOOKS:
        text = path.read_text(encoding="utf-8")
        assert text == normal_text(text), f"{path.name} is not in normal form: run python recon/notebook_files.py"


def test_a_lab_save_after_a_run_leaves_the_file_byte_identical(tmp_path: Path) -> None:
    """JupyterLab's save (its contents manager with recon lab's pre_save_hook) writes the committed bytes."""
    pytest.importorskip("jupyter_server")
    from jupyter_server.services.contents.filemanager import FileContentsManager

    folder = tmp_path / "notebooks"
    folder.mkdir()
    for path in NOTEBOOKS:
        (folder / path.name).write_bytes(path.read_bytes())
    manager = FileContentsManager(root_dir=str(tmp_path), pre_save_hook="recon.notebook_files.pre_save_hook")
    for path in NOTEBOOKS:
        model = manager.get(f"notebooks/{path.name}")
        nb = model["content"]
        # what a run in JupyterLab leaves in the model it autosaves
        nb["metadata"]["language_info"] = {**LANGUAGE_INFO, "version": "3.99.1"}
        nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
        for n, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
            cell["execution_count"] = n + 1
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "Ledger: /home/ana/x\n"}]
            cell["metadata"]["execution"] = {"iopub.status.busy": "2026-12-02T00:00:00Z"}
            cell["metadata"]["scrolled"] = True
        manager.save({"type": "notebook", "format": "json", "content": nb}, f"notebooks/{path.name}")
        assert (folder / path.name).read_bytes() == path.read_bytes(), f"{path.name} changed on save"


@pytest.mark.parametrize("path", ["mine.ipynb", "work/notebooks/mine.ipynb", "notebooks/data.json"])
def test_the_hook_leaves_other_files_alone(path: str) -> None:
    content = {"cells": [], "metadata": {"x": 1}, "nbformat": 4, "nbformat_minor": 5}
    model = {"type": "notebook" if path.endswith(".ipynb") else "file", "content": content}
    pre_save_hook(model, path)
    assert model["content"]["metadata"] == {"x": 1}


def test_the_git_filter_cleans_a_run_notebook() -> None:
    """The README's git filter: a notebook saved by any Jupyter is stored in normal form."""
    path = NOTEBOOKS[0]
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["Ledger: x\n"]}]
    nb["cells"][1]["execution_count"] = 7
    nb["metadata"]["language_info"]["version"] = "3.12.1"
    result = subprocess.run(
        [sys.executable, str(ROOT / "recon" / "notebook_files.py")],
        input=json.dumps(nb, indent=2).encode(),
        capture_output=True,
        check=True,
        cwd=ROOT,
    )
    assert result.stdout == path.read_bytes()
