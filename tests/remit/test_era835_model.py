"""The loop model: fields, CAS/PLB repetition, envelope checks, error messages."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from recon.remit.era835 import Adjustment, Claim, Remittance, read_835
from recon.remit.x12 import X12Error

ISA = ("ISA*00*          *00*          *ZZ*PAYER          *ZZ*PRACTICE       *240101*1200*^*00501"
       "*000000042*0*P*:")

BODY = [
    "BPR*I*245.5*C*ACH*CCP*01*011000015*DA*123*1512345678**01*021000021*DA*456*20240315",
    "TRN*1*EFT123*1512345678",
    "N1*PR*ACME HEALTH*XV*99999",
    "REF*2U*PAYER2U",
    "N1*PE*GOOD THERAPY*XX*1922164458",
    "LX*1",
    "CLP*INV-1*1*300*200*50*12*PCN1",
    "NM1*QC*1*DOE*JANE****MI*M1",
    "DTM*232*20240210",
    "SVC*HC:90837:GT:95*300*200",
    "CAS*CO*45*50",
    "CAS*PR*1*10*1*2*20**3*20",
    "CLP*INV-2*4*120*0**12*PCN2",
    "NM1*QC*1*ROE*RAY",
    "DTM*232*20240211",
    "SVC*HC:90834*120*0**2",
    "DTM*150*20240212",
    "CAS*CO*50*120",
    "CLP*INV-3*22*-80*-60**12*PCN3",
    "CAS*CO*45*-20",
    "PLB*1922164458*20241231*L6*-5.5*WO:PCN9*20",
]


def write(tmp_path: Path, body: list[str] | None = None, *, name: str = "claims.835",
          se: str | None = None, ge: str = "GE*1*7", iea: str = "IEA*1*000000042",
          tail: bool = True) -> Path:
    body = BODY if body is None else body
    segments = [ISA, "GS*HP*S*R*20240101*1200*7*X*005010X221A1", "ST*835*0001", *body,
                se or f"SE*{len(body) + 2}*0001"]
    if tail:
        segments += [ge, iea]
    f = tmp_path / name
    f.write_text("~\n".join(segments) + "~\n", encoding="utf-8")
    return f


def one(path: Path) -> Remittance:
    (rem,) = list(read_835(path))
    return rem


def test_header_fields(tmp_path: Path) -> None:
    rem = one(write(tmp_path))
    assert rem.envelope.file == "claims.835"
    assert (rem.envelope.interchange_control, rem.envelope.group_control,
            rem.envelope.transaction_control, rem.envelope.segment) == ("000000042", "7",
                                                                         "0001", 3)
    assert rem.amount == Decimal("245.50") and isinstance(rem.amount, Decimal)
    assert (rem.method, rem.payment_date, rem.trace_number) == ("ACH", date(2024, 3, 15),
                                                                 "EFT123")
    assert rem.originator_id == "1512345678"
    assert (rem.payer_name, rem.payer_ref_id, rem.payer_n1_id, rem.payer_id) == (
        "ACME HEALTH", "PAYER2U", "99999", "PAYER2U")
    assert (rem.payee_name, rem.payee_id) == ("GOOD THERAPY", "1922164458")
    assert not rem.notification_only and rem.defects == ()


def test_claims_lines_and_adjustments(tmp_path: Path) -> None:
    first, denied, reversal = one(write(tmp_path)).claims
    assert isinstance(first, Claim)
    assert (first.claim_id, first.status, first.charge, first.paid,
            first.patient_responsibility, first.payer_control_number) == (
        "INV-1", "1", Decimal("300.00"), Decimal("200.00"), Decimal("50.00"), "PCN1")
    assert (first.patient_name, first.patient_id, first.claim_date) == (
        "DOE, JANE", "M1", date(2024, 2, 10))
    (line,) = first.lines
    assert (line.qualifier, line.procedure_code, line.modifiers) == ("HC", "90837",
                                                                      ("GT", "95"))
    assert line.units == Decimal("1.00")  # SVC05 absent: one unit
    assert line.service_date == date(2024, 2, 10)  # no DTM*472: the claim date
    assert line.adjustments == (
        Adjustment("CO", "45", Decimal("50.00")),
        Adjustment("PR", "1", Decimal("10.00"), Decimal("1.00")),
        Adjustment("PR", "2", Decimal("20.00")),
        Adjustment("PR", "3", Decimal("20.00")),
    )
    assert denied.denied and denied.lines[0].service_date == date(2024, 2, 12)
    assert denied.lines[0].units == Decimal("2.00")
    assert denied.patient_responsibility == Decimal("0.00")
    assert reversal.reversal and reversal.lines == ()
    assert reversal.adjustments == (Adjustment("CO", "45", Decimal("-20.00")),)


def test_provider_adjustments(tmp_path: Path) -> None:
    plb = one(write(tmp_path)).provider_adjustments
    assert [(p.reason, p.reference, p.amount) for p in plb] == [
        ("L6", "", Decimal("-5.50")), ("WO", "PCN9", Decimal("20.00"))]
    assert plb[0].fiscal_period_end == date(2024, 12, 31)
    assert plb[0].segment == 24


def test_six_cas_triplets_and_six_plb_pairs(tmp_path: Path) -> None:
    cas = "CAS*CO*" + "*".join(f"{r}*1*" for r in range(1, 7)).rstrip("*")
    pairs = "*".join(f"L6:{i}*-1" for i in range(6))
    body = [*BODY[:6], "CLP*X*1*10*4**12", cas, f"PLB*1*20241231*{pairs}"]
    rem = one(write(tmp_path, body))
    assert [a.reason for a in rem.claims[0].adjustments] == ["1", "2", "3", "4", "5", "6"]
    assert len(rem.provider_adjustments) == 6


def test_frozen(tmp_path: Path) -> None:
    rem = one(write(tmp_path))
    with pytest.raises(AttributeError):
        rem.claims[0].paid = Decimal("1")  # type: ignore[misc]
    assert rem.claims[0] == one(write(tmp_path)).claims[0]


def test_notification_only(tmp_path: Path) -> None:
    body = ["BPR*H*0*C*NON************20240315", "TRN*1*T0*1512345678"]
    rem = one(write(tmp_path, body))
    assert rem.notification_only and rem.amount == Decimal("0.00")


def test_missing_date_and_bad_procedure_are_defects_not_errors(tmp_path: Path) -> None:
    """No BPR16, no DTM*405 to fall back on, an SVC01 without code: nothing to recover."""
    body = ["BPR*I*0*C*CHK", "TRN*1*T0*1", "CLP*A*1*10*0**12", "SVC*HC*10*0",
            "DTM*472*20241399", "CAS*CO*45*10", "SVC*HC>99213^GT*10*10"]
    rem = one(write(tmp_path, body))
    assert rem.payment_date is None and rem.warnings == ()
    assert rem.defects == (
        "claims.835: segment 4 (BPR) element 16: missing; expected the payment date as "
        "CCYYMMDD",
        "claims.835: segment 7 (SVC) element 1: 'HC' has no procedure code; expected "
        "qualifier:code (component separator ':' from ISA16)",
        "claims.835: segment 8 (DTM) element 2: '20241399' is not a date; expected the "
        "service date as CCYYMMDD",
        # two foreign separators: which one is meant is a guess, so no repair
        "claims.835: segment 10 (SVC) element 1: 'HC>99213^GT' has no procedure code; "
        "expected qualifier:code (component separator ':' from ISA16)",
    )


def test_payment_date_slid_into_bpr15_is_read_with_a_warning(tmp_path: Path) -> None:
    body = ["BPR*I*0*C*CHK***********20240315", "TRN*1*T0*1", "DTM*405*20240301"]
    rem = one(write(tmp_path, body))
    assert rem.payment_date == date(2024, 3, 15) and rem.defects == ()
    assert rem.warnings == (
        "claims.835: segment 4 (BPR) element 16: missing; the payment date 20240315 found "
        "in BPR15 was used",)


def test_impossible_payment_date_falls_back_to_production_date(tmp_path: Path) -> None:
    # BPR10 '24681012' parses as a date in 2468: not plausible, so not taken for BPR16
    body = ["BPR*I*0*C*ACH*CCP*01*888999777*DA*24681012*1935665544**01*1113*DA*1444*20002316",
            "TRN*1*T0*1", "DTM*405*20020314", "CLP*A*1*10*10**12", "DTM*405*20990101"]
    rem = one(write(tmp_path, body))
    assert rem.payment_date == date(2002, 3, 14) and rem.defects == ()
    assert rem.warnings == (
        "claims.835: segment 4 (BPR) element 16: '20002316' is not a date; the production "
        "date 20020314 from DTM*405 (segment 6) was used as the payment date",)


def test_svc01_with_another_component_separator_is_split_on_it(tmp_path: Path) -> None:
    body = [*BODY[:9], "SVC*HC>90837>GT>95*300*200", *BODY[10:]]
    rem = one(write(tmp_path, body))
    line = rem.claims[0].lines[0]
    assert (line.qualifier, line.procedure_code, line.modifiers) == ("HC", "90837",
                                                                      ("GT", "95"))
    assert rem.defects == ()
    assert rem.warnings == (
        "claims.835: segment 13 (SVC) element 1: 'HC>90837>GT>95' uses '>', not the "
        "component separator ':' declared in ISA16; read as 'HC:90837:GT:95'",)


@pytest.mark.parametrize("svc, code", [
    ("SVC*HC*90837*300*200**1", "90837"),          # SVC02 is no amount
    ("SVC*HC*24599.00*300*200.00**1", "24599.00"),  # SVC04 holds an amount: slid
])
def test_bare_qualifier_joined_with_its_code(tmp_path: Path, svc: str, code: str) -> None:
    body = [*BODY[:9], svc, *BODY[10:]]
    rem = one(write(tmp_path, body))
    line = rem.claims[0].lines[0]
    assert (line.qualifier, line.procedure_code, line.charge, line.paid, line.units) == (
        "HC", code, Decimal("300.00"), Decimal("200.00"), Decimal("1.00"))
    assert rem.defects == ()
    (warning,) = rem.warnings
    assert warning.startswith("claims.835: segment 13 (SVC) element 1: 'HC' is a bare "
                              f"qualifier and SVC02 {code!r} its code")


@pytest.mark.parametrize("svc", [
    "SVC*HC*300*200",            # an ordinary line without code: amounts in place
    "SVC*HC*300*200*0450*1",     # SVC04 a revenue code: the unshifted reading holds
    "SVC*XX*90837*300*200**1",   # not a product/service id qualifier
])
def test_bare_qualifier_not_joined_when_ambiguous(tmp_path: Path, svc: str) -> None:
    body = [*BODY[:9], svc, *BODY[10:]]
    rem = one(write(tmp_path, body))
    assert rem.warnings == ()
    assert len(rem.defects) == 1 and "has no procedure code" in rem.defects[0]


@pytest.mark.parametrize("segment, expected", [
    ("CLP*INV-1*1*abc*200*50*12", "segment 10 (CLP) element 3: 'abc' is not an amount"),
    ("CLP*INV-1*1*1.005*200*50*12", "segment 10 (CLP) element 3: '1.005' is not valid: "
                                    "at most two decimal places"),
    ("CLP*INV-1*1*1,000*200*50*12", "segment 10 (CLP) element 3: '1,000' is not an amount"),
    ("CLP*INV-1*1*300", "segment 10 (CLP) element 4: missing; expected an amount"),
    ("CLP*INV-1*1**200*5", "segment 10 (CLP) element 3: missing; expected an amount"),
    ("CLP*INV-1*1*12.5e3*200*5", "segment 10 (CLP) element 3: '12.5e3' is not an amount"),
    ("CLP*INV-1*1*NaN*200*5", "segment 10 (CLP) element 3: 'NaN' is not an amount"),
    ("CLP**1*300*200*5", "segment 10 (CLP) element 1: missing; expected a value"),
])
def test_malformed_values_name_file_segment_element(tmp_path: Path, segment: str,
                                                     expected: str) -> None:
    body = list(BODY)
    body[6] = segment
    with pytest.raises(X12Error) as info:
        list(read_835(write(tmp_path, body)))
    assert str(info.value) == f"claims.835: {expected}"


@pytest.mark.parametrize("segment, expected", [
    ("CAS*CO*45*x", "segment 14 (CAS) element 3: 'x' is not an amount"),
    ("CAS*CO*45", "segment 14 (CAS) element 2: missing; expected a reason code"),
    ("CAS**45*5", "segment 14 (CAS) element 1: missing; expected a group code"),
    ("CAS*CO*45*5**" + "*" * 18, "segment 14 (CAS) element 20: a CAS segment has at most"),
    ("SVC*HC:1*1", "segment 14 (SVC) element 3: missing; expected SVC01 to SVC03"),
])
def test_malformed_cas_and_svc(tmp_path: Path, segment: str, expected: str) -> None:
    body = list(BODY)
    body[10] = segment
    with pytest.raises(X12Error, match=expected.replace("(", r"\(").replace(")", r"\)")):
        list(read_835(write(tmp_path, body)))


@pytest.mark.parametrize("kwargs, expected", [
    ({"se": "SE*99*0001"}, "(SE) element 1: says '99' segments but ST..SE has 23"),
    ({"se": "SE*23*0002"}, "(SE) element 2: '0002' does not match ST02 '0001'"),
    ({"ge": "GE*2*7"}, "(GE) element 1: says '2' transactions (ST) but there are 1"),
    ({"ge": "GE*1*8"}, "(GE) element 2: '8' does not match GS06 '7'"),
    ({"iea": "IEA*2*000000042"}, "(IEA) element 1: says '2' functional groups (GS)"),
    ({"iea": "IEA*1*000000043"}, "(IEA) element 2: '000000043' does not match ISA13"),
])
def test_envelope_counts(tmp_path: Path, kwargs: dict[str, str], expected: str) -> None:
    with pytest.raises(X12Error) as info:
        list(read_835(write(tmp_path, **kwargs)))
    assert expected in str(info.value)


def test_truncated_files(tmp_path: Path) -> None:
    full = write(tmp_path).read_text()
    segments = full.split("~\n")[:-1]
    for keep in range(1, len(segments)):
        f = tmp_path / "cut.835"
        f.write_text("~\n".join(segments[:keep]) + "~\n")
        with pytest.raises(X12Error, match=r"truncated\?|no IEA|expected an ISA"):
            list(read_835(f))


def test_truncated_after_se_yields_first_then_fails(tmp_path: Path) -> None:
    reader = read_835(write(tmp_path, tail=False))
    assert next(reader).trace_number == "EFT123"
    with pytest.raises(X12Error, match=r"ends inside group 7 \(no GE\): truncated\?"):
        next(reader)


def test_other_transaction_sets_are_refused(tmp_path: Path) -> None:
    f = write(tmp_path)
    f.write_text(f.read_text().replace("ST*835*", "ST*837*"))
    with pytest.raises(X12Error, match="'837': not an 835 transaction"):
        list(read_835(f))


def test_structure_errors(tmp_path: Path) -> None:
    body = [*BODY[:5], "CAS*CO*45*1"]
    with pytest.raises(X12Error, match=r"segment 9 \(CAS\): adjustment outside a claim"):
        list(read_835(write(tmp_path, body)))
    with pytest.raises(X12Error, match="has no BPR"):
        list(read_835(write(tmp_path, BODY[1:])))
    with pytest.raises(X12Error, match="the file is empty"):
        empty = tmp_path / "empty.835"
        empty.write_text("\n")
        list(read_835(empty))
