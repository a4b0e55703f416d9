"""Posting reads a file as a stream (a few thousand claims at a time) with the outcome of a whole read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recon.remit.era835 import STREAM_BATCH, read_835_checked
from recon.remit.generate import generate_835
from recon.remit.post import post_file, post_remittances
from recon.services import Recon
from tests.era.conftest import assert_invariant
from tests.era.edi import claim, st, write_835
from tests.era.test_post_pipeline import _state, _view


@pytest.mark.parametrize("engine", ["duckdb"])  # copies the ledger file itself
def test_streamed_posting_equals_a_whole_transaction_read(era_db: Path, tmp_path: Path) -> None:
    """Two STs of more than one batch each, the first already posted: the same outcome, warnings in
    the same order, the same ledger, as when each transaction is read whole."""
    per_st = STREAM_BATCH + 250
    first = generate_835(tmp_path / "first.835", n_claims=per_st, seed=9, trace="S1-1").path
    both = generate_835(tmp_path / "both.835", n_claims=2 * per_st, seed=9, trace="S1", transactions=2).path
    whole = tmp_path / "whole.duckdb"
    with Recon.open(era_db) as recon:
        assert post_remittances(recon, [first], "ana").files[0].status == "posted"
    shutil.copy(era_db, whole)
    with Recon.open(era_db) as recon:
        streamed = post_file(recon, both, "ana", write_off=("CO-45", "CO-253"))
        streamed_state = _state(recon)
        claims = recon.execute("SELECT claims FROM remittances WHERE trace_number = 'S1-2'").fetchall()
        assert_invariant(recon)
    with Recon.open(whole) as recon:
        read_whole = post_file(recon, both, "ana", write_off=("CO-45", "CO-253"), stream=False)
        whole_state = _state(recon)
    (_, _), (second, _) = read_835_checked(both)
    assert streamed.status == "posted" and claims == [(len(second.claims),)] and len(second.claims) > STREAM_BATCH
    assert any("S1-1 was already posted" in w for w in streamed.warnings)
    assert _view(streamed) == _view(read_whole)
    assert streamed_state == whole_state


def test_a_header_segment_after_a_claim_is_posted_as_a_whole_read(era_db: Path, tmp_path: Path) -> None:
    """An N1*PR after the first claim renames the payer at SE: posting must not keep what it read before."""
    segs = st(
        "0001",
        amount="100",
        trace="T77",
        claims=[
            claim("I1", "1", "150", "100", cas=[["CO", "45", "50"]]),
            claim("ZZ9", "1", "80", "0", cas=[["CO", "45", "80"]]),
        ],
    )
    second_lx = max(i for i, s in enumerate(segs) if s[0] == "LX")
    segs.insert(second_lx, ["N1", "PR", "AETNA BETTER HEALTH"])
    f = write_835(tmp_path / "late_n1.835", [segs])
    with Recon.open(era_db) as recon:
        out = post_remittances(recon, [f], "ana").files[0]
        row = recon.one("SELECT payer_name, claims FROM remittances WHERE trace_number = 'T77'")
        assert_invariant(recon)
    assert out.status == "posted", out.message
    assert row == ("AETNA BETTER HEALTH", 2)


def test_one_file_that_outgrows_the_era_memory_limit_is_posted_with_the_sessions(
    era_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """recon era holds DuckDB to ERA_MEMORY_LIMIT; a posting that runs out of it is rolled back and posted
    again with the session's limit, which the ledger keeps afterwards."""
    from recon.cli import main
    from recon.remit import era_cli

    f = write_835(
        tmp_path / "one.835",
        [st("0001", amount="100", trace="T88", claims=[claim("I1", "1", "150", "100", cas=[["CO", "45", "50"]])])],
    )
    monkeypatch.setattr(era_cli, "ERA_MEMORY_LIMIT", "2MB")  # DuckDB takes it, no posting fits in it
    assert main(["era", "--db", str(era_db), "--user", "ana", str(f)]) == 0
    assert "POSTED" in capsys.readouterr().out
    with Recon.open(era_db) as recon:
        assert recon.one("SELECT count(*) FROM remittances WHERE trace_number = 'T88'") == (1,)
        assert recon.one("SELECT count(*) FROM remit_claims") == (1,)
        assert_invariant(recon)
