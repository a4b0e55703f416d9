"""A ledger made by the version before adjudications opens, and its remittances keep posting."""

from __future__ import annotations

from pathlib import Path

from recon.remit.post import post_remittances
from recon.services import Recon
from tests.era.conftest import assert_invariant, ledger
from tests.era.test_post import file_a, file_c


def test_a_ledger_without_the_adjudication_tables_opens_and_posts(era_db: Path, tmp_path: Path) -> None:
    with Recon.open(era_db) as recon:
        post_remittances(recon, [file_a(tmp_path)], "ana")
        # back to the earlier schema: no adjudication records, no per-line exception columns
        recon.execute("DROP VIEW exception_status")
        for table in ("adjudications", "adjudication_reversals", "billing_decisions", "exception_cas"):
            recon.execute(f"DROP TABLE {table}")
        recon.execute("ALTER TABLE exceptions DROP COLUMN line_no")
        recon.execute("ALTER TABLE exceptions DROP COLUMN detail")
        recon.execute("UPDATE meta SET value = 'earlier' WHERE key = 'schema'")
        recon.execute("DROP TABLE schema_migrations")  # made before versioned migrations
    with Recon.open(era_db) as recon:
        assert recon.one("SELECT count(*) FROM adjudications")[0] == 0
        assert recon.one("SELECT count(*) FROM exception_status")[0] == 3
        out = post_remittances(recon, [file_c(tmp_path)], "ana").files[0]
        assert (out.status, out.claims_reversed, out.claims_posted) == ("posted", 1, 1), out.message
        assert ledger(recon)["I1"] == ("0.00", "0.00", "150.00", "110.00", "30.00", "10.00")
        assert_invariant(recon)
