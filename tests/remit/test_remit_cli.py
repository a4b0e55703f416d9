"""``recon validate`` as the checker runs it: the real CLI, in a fresh process."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "tests" / "data" / "835"
MANIFEST = SAMPLES / "MANIFEST.tsv"


def recon(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RECON_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "recon.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def samples() -> list[Path]:
    with MANIFEST.open(encoding="utf-8") as fh:
        return [SAMPLES / row["file"] for row in csv.DictReader(fh, delimiter="\t")]


def test_every_public_sample_passes() -> None:
    files = samples()
    done = recon("validate", *files)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr and done.stderr == ""
    for f in files:
        assert f"\n{f.name}: OK" in "\n" + done.stdout
    assert "REJECTED" not in done.stdout
    assert done.stdout.count("warnings (read as the payer meant") == 4
    assert "lfh__tertiary-payment.835: OK with 2 warnings" in done.stdout
    assert ("lfh__tertiary-payment.835: segment 20 (SVC) element 1: 'HC' is a bare qualifier"
            in done.stdout)


def test_bad_files_fail_without_traceback(tmp_path: Path) -> None:
    source = SAMPLES / "badx12__X221-multiple-claims-single-check.edi"
    text = source.read_text(encoding="utf-8")
    unbalanced = tmp_path / "unbalanced.835"
    unbalanced.write_text(text.replace("CLP*7722337*1*226*", "CLP*7722337*1*227*", 1))
    truncated = tmp_path / "truncated.835"
    truncated.write_text(text[: text.index("SE*")])
    not_x12 = tmp_path / "notes.txt"
    not_x12.write_text("hello\n")
    good = SAMPLES / "lfh__demo.835"
    done = recon("validate", unbalanced, good, truncated, not_x12, tmp_path / "missing.835")
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "Traceback" not in out
    assert "unbalanced.835: REJECTED (1 problem)" in out
    assert ("unbalanced.835: ST 35681 claim 7722337 (segment 13): claim does not balance: "
            "CLP03 227.00 − claim + line CAS 94.00 = 133.00, but the file says 132.00 "
            "(off by 1.00)") in out
    assert "lfh__demo.835: OK" in out
    assert "truncated.835: REJECTED" in out and "truncated?" in out
    assert "notes.txt: REJECTED" in out and "expected an ISA segment" in out
    assert "missing.835: cannot open the file" in out
    assert out.count(": REJECTED") == 4


def test_strict_flag_is_accepted() -> None:
    done = recon("validate", "--strict", SAMPLES / "lfh__demo.835")
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout.startswith("lfh__demo.835: ")
    assert "guide" in done.stdout or "pyx12 not installed" in done.stdout


def test_validate_needs_a_file() -> None:
    done = recon("validate")
    assert done.returncode == 2 and "FILE" in done.stderr
