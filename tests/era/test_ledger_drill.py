"""Client Ledger drill-down: per invoice who owes what, and each payer's adjudication behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon.services import Recon
from tests.era.test_claim_life import AET, UHC, Era, life_db, primary, secondary  # noqa: F401  (fixture)

pytest.importorskip("ipywidgets")


def test_drill_down_lists_adjudications_and_the_payer_waited_on(cli, life_db: Path, tmp_path: Path) -> None:  # noqa: F811
    from recon.ui.ledger import LedgerTable

    era = Era(cli, life_db, tmp_path)
    era.post(UHC, primary(), amount="100")
    with Recon.open(life_db) as recon:
        table = LedgerTable(recon, "P1")
        table.drill("J3")
        assert "insurance owes 60.00 (waiting on AET)" in table.detail.value
        assert "UHC" in table.detail.value and "stands" in table.detail.value
    era.post(AET, secondary(), amount="50")
    with Recon.open(life_db) as recon:
        table = LedgerTable(recon, "P1")
        table.drill("J3")
        assert "Client owes 10.00; insurance owes 0.00" in table.detail.value
        assert table.detail.value.count("stands") == 2
        table.drill("NOPE")
        assert "No invoice NOPE" in table.detail.value
