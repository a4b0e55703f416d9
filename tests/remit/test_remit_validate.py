"""validate_file reports every problem and never lets a traceback out."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.errors import ReconError, RemittanceError
from recon.remit.generate import generate_835
from recon.remit.validate import InvalidRemittanceFile, format_report, require_valid, validate_file


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_835(tmp_path_factory.mktemp("v") / "small.835", n_claims=25, seed=4,
                        transactions=2).path


def test_clean_report(small: Path) -> None:
    report = validate_file(small)
    assert report.ok and report.errors == () and report.problems == ()
    assert [c.name for c in report.checks] == ["envelope", "content", "line", "claim", "file"]
    assert all(c.passed for c in report.checks)
    assert report.total_paid == sum(s.amount for s in report.summaries)
    require_valid(report)
    text = format_report(report)
    assert text.startswith("small.835: OK") and "ST 0002" in text


def test_unbalanced_file_reports_every_problem(small: Path, tmp_path: Path) -> None:
    text = small.read_text()
    bad = tmp_path / "bad.835"
    # change every BPR02 so both STs fail the file check; keep everything else
    parts = text.split("~")
    for i, seg in enumerate(parts):
        if seg.startswith("BPR*"):
            e = seg.split("*")
            e[2] = "1.23"
            parts[i] = "*".join(e)
    bad.write_text("~".join(parts))
    report = validate_file(bad)
    assert not report.ok and len(report.problems) == 2
    assert {p.transaction for p in report.problems} == {"0001", "0002"}
    assert all("file does not balance" in e and "the file says 1.23" in e
               for e in report.errors)
    assert next(c for c in report.checks if c.name == "file").failed == 2
    with pytest.raises(InvalidRemittanceFile,
                       match=r"\(and 1 more problem\); nothing of bad.835 was posted"):
        require_valid(report)
    assert "REJECTED (2 problems)" in format_report(report)


def test_format_error_is_reported_not_raised(small: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cut.835"
    text = small.read_text()
    bad.write_text(text[: text.rindex("~SE*") + 1])
    report = validate_file(bad)
    assert not report.ok and report.transactions == 1  # the first ST was fine
    assert "truncated?" in report.errors[0]
    assert not next(c for c in report.checks if c.name == "envelope").passed


def test_strict_without_pyx12(small: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyx12", None)
    report = validate_file(small, strict=True)
    assert report.ok
    assert report.notes == ("pyx12 not installed: implementation-guide validation skipped",)
    assert "pyx12 not installed" in format_report(report)


def test_strict_reports_pyx12_findings(tmp_path: Path) -> None:
    pytest.importorskip("pyx12")
    f = generate_835(tmp_path / "st03.835", n_claims=3, seed=1).path
    f.write_text(f.read_text().replace("ST*835*0001~", "ST*835*0001*005010X221A1~"))
    report = validate_file(f, strict=True)
    assert not report.ok
    assert any("pyx12" in e and "ST03" in e for e in report.errors), report.errors


FUZZ_EXAMPLES = int(os.environ.get("REMIT_FUZZ_EXAMPLES", "150"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mangled_files_never_trace_back(small: Path, tmp_path_factory: pytest.TempPathFactory,
                                        data: st.DataObject) -> None:
    text = small.read_text()[:3000] + "~GE*1*5~IEA*1*000000001~"
    pos = data.draw(st.integers(0, len(text) - 1))
    edit = data.draw(st.sampled_from(["delete", "insert", "replace", "cut"]))
    junk = data.draw(st.text(alphabet="*:~^-.0123456789ABCZ \r\n\ufeff", min_size=1,
                             max_size=4))
    if edit == "delete":
        text = text[:pos] + text[pos + len(junk):]
    elif edit == "insert":
        text = text[:pos] + junk + text[pos:]
    elif edit == "replace":
        text = text[:pos] + junk + text[pos + len(junk):]
    else:
        text = text[:pos]
    f = tmp_path_factory.mktemp("fuzz") / "m.835"
    f.write_text(text, encoding="utf-8")
    report = validate_file(f)  # must not raise
    for message in report.errors:
        assert message.startswith("m.835")
    try:
        require_valid(report)
    except RemittanceError as exc:
        assert isinstance(exc, ReconError)
