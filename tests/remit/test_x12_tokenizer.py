"""The tokenizer reads separators from every ISA and never alters element text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.errors import FileFormatError, RemittanceError
from recon.remit.x12 import Separators, X12Error, X12Reader, parse_isa


def isa(seps: Separators, control: str = "000000001") -> str:
    fields = ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", "SENDER".ljust(15), "ZZ",
              "RECEIVER".ljust(15), "240101", "1200", seps.repetition or "U", "00501",
              control, "0", "P", seps.component]
    text = seps.element.join(fields)
    assert len(text) == 105
    return text


def interchange(seps: Separators, control: str = "000000001", after: str = "") -> str:
    e, c = seps.element, seps.component
    segments = [
        isa(seps, control),
        e.join(["GS", "HP", "S", "R", "20240101", "1200", "7", "X", "005010X221A1"]),
        e.join(["ST", "835", "0001"]),
        e.join(["N1", "PR", "ACME  HEALTH "]),  # inner and trailing spaces are data
        e.join(["SVC", f"HC{c}90834{c}GT", "100", "80"]),
        e.join(["SE", "4", "0001"]),
        e.join(["GE", "1", "7"]),
        e.join(["IEA", "1", control]),
    ]
    return "".join(s + seps.segment + after for s in segments)


def read(path: Path, **kw: int) -> list[tuple[int, list[str]]]:
    return list(X12Reader(path, **kw))


VARIANTS = [
    Separators("*", ":", "^", "~"),
    Separators("|", ">", "^", "~"),
    Separators("*", ">", "^", "~"),
    Separators("^", ">", "{", "~"),
    Separators("*", ":", "^", "\n"),
    Separators("|", "\\", "^", "'"),
    Separators("*", ":", None, "~"),
]


@pytest.mark.parametrize("seps", VARIANTS, ids=repr)
def test_every_separator_variant(tmp_path: Path, seps: Separators) -> None:
    f = tmp_path / "a.835"
    f.write_text(interchange(seps), encoding="utf-8")
    reader = X12Reader(f)
    segments = list(reader)
    assert [n for n, _ in segments] == list(range(1, 9))
    assert [e[0] for _, e in segments] == ["ISA", "GS", "ST", "N1", "SVC", "SE", "GE", "IEA"]
    assert segments[3][1] == ["N1", "PR", "ACME  HEALTH "]
    assert segments[4][1][1].split(reader.separators.component) == ["HC", "90834", "GT"]
    assert segments[0][1][16] == seps.component
    assert reader.separators == seps


def test_bom_and_crlf_after_terminators_are_dropped(tmp_path: Path) -> None:
    seps = Separators()
    f = tmp_path / "bom.835"
    f.write_bytes(b"\xef\xbb\xbf" + interchange(seps, after="\r\n").encode())
    segments = read(f)
    assert segments[0][1][2] == " " * 10
    assert segments[3][1] == ["N1", "PR", "ACME  HEALTH "]
    assert len(segments) == 8


def test_newline_terminator_with_crlf_file(tmp_path: Path) -> None:
    seps = Separators("*", ":", "^", "\n")
    f = tmp_path / "nl.835"
    f.write_bytes(interchange(seps).replace("\n", "\r\n").encode())
    segments = read(f)
    assert [e[0] for _, e in segments][-1] == "IEA"
    assert segments[3][1] == ["N1", "PR", "ACME  HEALTH "]


def test_several_interchanges_with_different_separators(tmp_path: Path) -> None:
    a = Separators("*", ":", "^", "~")
    b = Separators("|", ">", "^", "\n")
    c = Separators("^", "\\", "{", "'")
    f = tmp_path / "multi.835"
    f.write_text(interchange(a, "000000001", "\n") + interchange(b, "000000002")
                 + "\ufeff" + interchange(c, "000000003", "\r\n"), encoding="utf-8")
    for chunk in (7, 105, 106, 1 << 20):  # chunk edges must not matter
        segments = read(f, chunk_chars=chunk)
        assert [n for n, _ in segments] == list(range(1, 25))
        svc = [e for _, e in segments if e[0] == "SVC"]
        assert [s[1] for s in svc] == ["HC:90834:GT", "HC>90834>GT", "HC\\90834\\GT"]
        assert [e[2] for _, e in segments if e[0] == "IEA"] == [
            "000000001", "000000002", "000000003"]


@settings(max_examples=40, deadline=None)
@given(chunk=st.integers(min_value=1, max_value=400),
       seps=st.sampled_from(VARIANTS), crlf=st.booleans())
def test_chunk_size_never_changes_segments(tmp_path_factory: pytest.TempPathFactory,
                                           chunk: int, seps: Separators, crlf: bool) -> None:
    f = tmp_path_factory.mktemp("chunks") / "x.835"
    text = interchange(seps, after="\r\n" if crlf and seps.segment != "\n" else "")
    f.write_text(text + text.replace("000000001", "000000002"), encoding="utf-8")
    assert read(f, chunk_chars=chunk) == read(f)


def test_last_segment_without_terminator_is_read(tmp_path: Path) -> None:
    f = tmp_path / "t.835"
    f.write_text(interchange(Separators())[:-1], encoding="utf-8")
    assert read(f)[-1][1] == ["IEA", "1", "000000001"]


@pytest.mark.parametrize("text, problem", [
    ("hello world, this is not an X12 file at all" * 3, "expected an ISA segment"),
    ("ISA*00*short~", "expected an ISA segment"),
    ("ISA*00*" + "x" * 120, "fixed 106-character"),
])
def test_not_x12(tmp_path: Path, text: str, problem: str) -> None:
    f = tmp_path / "bad.835"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(X12Error, match=problem) as info:
        read(f)
    assert isinstance(info.value, RemittanceError)
    assert isinstance(info.value, FileFormatError)
    assert str(info.value).startswith("bad.835: segment 1")


def test_garbage_after_an_interchange_names_its_segment(tmp_path: Path) -> None:
    f = tmp_path / "junk.835"
    f.write_text(interchange(Separators()) + "GARBAGE" * 20, encoding="utf-8")
    with pytest.raises(X12Error, match=r"junk.835: segment 9: expected an ISA"):
        read(f)


def test_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "bin.835"
    f.write_bytes(interchange(Separators()).encode() + b"\xff\xfe\x00")
    with pytest.raises(X12Error, match="not UTF-8"):
        read(f)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(X12Error, match="cannot open"):
        read(tmp_path / "nope.835")


def test_parse_isa_refuses_shared_separators() -> None:
    text = isa(Separators("*", "*", "^", "~")) + "~"
    with pytest.raises(X12Error):
        parse_isa(text, "f", 1)
