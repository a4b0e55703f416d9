"""Write small 835 files inline: segments as lists, envelopes and counts computed."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def st(control: str, *, amount: str, trace: str, paid_on: str = "20260301", method: str = "ACH",
       payer: tuple[str, str] = ("AETNA", "60054"), ref_2u: bool = True, claims: list[list[list[str]]] = (),
       plb: list[list[str]] = (), handling: str = "I") -> list[list[str]]:
    """One ST..SE (without SE) with the header an 835 needs; ``claims`` are segment lists."""
    name, ident = payer
    segs = [["ST", "835", control],
            ["BPR", handling, amount, "C", method, "", "", "", "", "", "", "", "", "", "", "", paid_on],
            ["TRN", "1", trace, "1" + ident.rjust(9, "0")],
            ["N1", "PR", name]]
    if ref_2u:
        segs.append(["REF", "2U", ident])
    segs.append(["N1", "PE", "PRACTICE", "XX", "1922164458"])
    for n, claim in enumerate(claims, start=1):
        segs.append(["LX", str(n)])
        segs.extend(claim)
    segs.extend(plb)
    return segs


def claim(clp01: str, status: str, charge: str, paid: str, patient: str = "", *, cas: list[list[str]] = (),
          lines: list[tuple[Any, ...]] = (), pcn: str | None = None) -> list[list[str]]:
    """A CLP with claim CAS and SVC lines (composite, charge, paid, date, line CAS[, SVC06 composite]);
    ':' composites. CLP07 is ``pcn``, else "PCN" + CLP01."""
    segs = [["CLP", clp01, status, charge, paid, patient, "12", pcn if pcn is not None else "PCN" + clp01, "11", "1"],
            ["NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", "M1"]]
    segs.extend(["CAS", *c] for c in cas)
    for composite, line_charge, line_paid, when, line_cas, *billed in lines:
        segs.append(["SVC", composite, line_charge, line_paid, "", "1", *(billed[:1])])
        segs.append(["DTM", "472", when])
        segs.extend(["CAS", *c] for c in line_cas)
    return segs


def write_835(path: Path, transactions: list[list[list[str]]], *, element: str = "*", component: str = ":",
              terminator: str = "~", newline: bool = False, truncate_at: int | None = None) -> Path:
    """A whole interchange; composites written with ':' are rewritten to ``component``."""
    isa = ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", "PAYER".ljust(15), "ZZ", "PRACTICE".ljust(15), "260301",
           "1200", "^", "00501", "000000101", "0", "P", component]
    segs = [isa, ["GS", "HP", "PAYER", "PRACTICE", "20260301", "1200", "7", "X", "005010X221A1"]]
    for tx in transactions:
        body = [[e.replace(":", component) if s[0] in ("SVC", "PLB") else e for e in s] for s in tx]
        segs.extend(body)
        segs.append(["SE", str(len(body) + 1), tx[0][2]])
    segs += [["GE", str(len(transactions)), "7"], ["IEA", "1", "000000101"]]
    end = terminator + ("\n" if newline else "")
    text = end.join(element.join(s) for s in segs) + end
    if truncate_at is not None:
        text = text[:truncate_at]
    path.write_text(text)
    return path
