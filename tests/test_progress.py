"""``recon era`` and ``recon load`` show one updating progress line on a terminal's stderr, nothing otherwise.

The terminal is a real pseudo-terminal (``pty``): stderr is its slave end, what the
command wrote is read from the master end.
"""

from __future__ import annotations

import os
import pty
import select
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from recon.cli import main
from tests.conftest import PRACTICE, Run, write_practice
from tests.era.edi import claim, st, write_835


def two_835s(folder: Path) -> list[Path]:
    folder.mkdir()
    return [
        write_835(
            folder / f"{inv}.835",
            [st("0001", amount="100", trace=f"T-{inv}", claims=[claim(inv, "1", fee, "100", cas=[["CO", "45", co]])])],
        )
        for inv, fee, co in (("I1", "150", "50"), ("I2", "120", "20"))
    ]


class Terminal:
    """A pseudo-terminal: ``attach()`` makes it sys.stderr (in the test body: pytest's capture sets
    sys.stderr between setup and call), ``written()`` reads what the command wrote to it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.master, slave = pty.openpty()
        self.stream = os.fdopen(slave, "w", encoding="utf-8")

    def attach(self) -> None:
        self.monkeypatch.setattr(sys, "stderr", self.stream)

    def written(self) -> str:
        self.stream.flush()
        out = b""
        while select.select([self.master], [], [], 0.5)[0]:
            out += os.read(self.master, 65536)
        return out.decode("utf-8")


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Terminal]:
    term = Terminal(monkeypatch)
    yield term
    monkeypatch.undo()
    term.stream.close()
    os.close(term.master)


def test_era_and_load_print_nothing_extra_when_stderr_is_not_a_terminal(
    cli: Callable[..., Run], tmp_path: Path
) -> None:
    db = tmp_path / "l.duckdb"
    run = cli("load", write_practice(tmp_path / "practice", PRACTICE), "--db", db)
    assert run.code == 0 and run.err == ""
    run = cli("era", *two_835s(tmp_path / "era"), "--db", db, "--user", "ana")
    assert run.code == 0, run.err
    assert run.err == ""
    assert run.out.count("posted") >= 2


def test_era_shows_one_updating_line_on_a_terminal(db: Path, tmp_path: Path, terminal: Terminal) -> None:
    files = two_835s(tmp_path / "era")
    terminal.attach()
    assert main(["era", *map(str, files), "--db", str(db), "--user", "ana"]) == 0
    shown = terminal.written()
    assert "\rrecon era: 1/2 files (I1.835)" in shown and "\rrecon era: 2/2 files (I2.835)" in shown
    assert "\n" not in shown  # rewritten in place, never a line per file
    assert shown.endswith("\r") and shown.rstrip("\r ").endswith("(I2.835)")  # cleared before the summary


def test_load_shows_each_step_on_a_terminal(tmp_path: Path, terminal: Terminal) -> None:
    source = write_practice(tmp_path / "practice", PRACTICE)
    terminal.attach()
    assert main(["load", str(source), "--db", str(tmp_path / "t.duckdb")]) == 0
    shown = terminal.written()
    assert "\rrecon load: reading practice" in shown
    assert "\rrecon load: writing invoices (8 rows)" in shown
    assert "\n" not in shown and shown.endswith("\r")
