"""The ERA batch's bank-file upload takes a BAI2 file named .txt (banks often send one so).

BAI2 is recognised by its content (a ``01,`` file header), not by its name, so the
upload accepts ``.txt`` and the deposits load as BAI2.
"""

from __future__ import annotations

from datetime import UTC, datetime

from recon.services import Recon
from recon.ui.era_batch import era_batch

BAI2 = b"""01,BANK,PRACTICE,260305,0800,1,,,2/
02,PRACTICE,BANK,1,260305,,USD,2/
03,123456789,USD,,,,/
16,165,10000,Z,BREF1,CREF1,TRN*1*T1*1512345678\\
16,165,7700,Z,BREF2,,HCCLAIMPMT UHC
16,475,500,Z,CHK9,,CHECK PAID
49,18200,5/
98,18200,1,7/
99,18200,1,9/
"""


def test_a_bai2_file_named_txt_is_taken_and_loaded_as_bai2(recon: Recon) -> None:
    view = era_batch(recon, "ana")
    assert ".txt" in view.deposit_upload.accept.split(",")
    view.deposit_upload.value = (
        {"name": "bank_statement.txt", "type": "text/plain", "size": len(BAI2), "content": memoryview(BAI2),
         "last_modified": datetime(2026, 3, 7, tzinfo=UTC)},
    )  # fmt: skip
    view.post_button.click()
    assert "deposits: 2 new, 0 unchanged" in view.message.value, view.message.value
    rows = recon.execute("SELECT amount, trace_number FROM deposits ORDER BY amount").fetchall()
    assert [(str(a), t) for a, t in rows] == [("77.00", None), ("100.00", "T1")]
    assert recon.one("SELECT count(*) FROM other_bank_activity") == (1,)  # the check paid, kept apart
