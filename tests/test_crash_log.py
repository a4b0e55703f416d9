"""An internal error's log: the whole traceback, except with an encrypted ledger (RECON_DB_KEY).

Then a message or a value may be PHI and the log is a plain-text file in the temp
folder: it keeps only the exception types and code locations, and says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from recon.cli import _write_crash_log

PATIENT = "ZEPHYRINA"


def crash(patient: str) -> None:
    try:
        int(patient)  # a bug meeting a data value: the value is in the message
    except ValueError as exc:
        raise RuntimeError(f"could not read {patient}") from exc


def write_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    try:
        crash(PATIENT)
    except RuntimeError:
        log = _write_crash_log()
    assert log.parent == tmp_path
    return log.read_text()


def test_with_a_key_the_log_has_types_and_locations_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_DB_KEY", "correct horse battery staple")
    text = write_log(tmp_path, monkeypatch)
    assert PATIENT not in text and "could not read" not in text and "invalid literal" not in text
    assert "int(patient)" not in text  # no source lines either
    assert text.startswith("The ledger is encrypted (RECON_DB_KEY): this log holds only the exception types")
    assert "builtins.ValueError" in text and "builtins.RuntimeError" in text
    assert text.index("builtins.ValueError") < text.index("builtins.RuntimeError")  # oldest first, as Python
    assert f'File "{__file__}"' in text and ", in crash" in text


def test_without_a_key_the_log_is_the_whole_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECON_DB_KEY", raising=False)
    text = write_log(tmp_path, monkeypatch)
    assert f"RuntimeError: could not read {PATIENT}" in text and "int(patient)" in text


@pytest.mark.parametrize("key", [None, "correct horse battery staple"])
def test_the_stderr_line_quotes_the_error_only_without_a_key(
    key: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from recon import cli

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.delenv("RECON_DEBUG", raising=False)
    if key:
        monkeypatch.setenv("RECON_DB_KEY", key)
    else:
        monkeypatch.delenv("RECON_DB_KEY", raising=False)

    def broken(_args: object) -> int:
        crash(PATIENT)
        return 0

    monkeypatch.setitem(cli.COMMANDS, "clients", broken)
    assert cli.main(["clients", "--db", str(tmp_path / "l.duckdb")]) == 3
    err = capsys.readouterr().err
    assert "recon: internal error: RuntimeError" in err and len(err.strip().splitlines()) == 1
    assert (PATIENT in err) is (key is None)
