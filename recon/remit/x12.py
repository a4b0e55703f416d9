"""A streaming X12 tokenizer.

X12 has no fixed separators: every interchange announces its own in the fixed-width
ISA segment (element separator at index 3, repetition separator ISA11, component
separator ISA16, segment terminator right after ISA16), and one file may hold several
interchanges written by different systems. So the separators are read again at every
ISA, never configured.

The file is read in chunks and each chunk is cut with ``str.split`` (C speed); only the
text after the last terminator is carried over, so memory stays flat however large the
file is. Each segment comes out as ``(ordinal, elements)`` where ``ordinal`` is the
segment's 1-based position in the file (what an analyst looks for in an editor) and
``elements[0]`` is the segment id.

Hostile input stays cheap: the file is scanned once, each interchange's segments are
split once (several interchanges in one chunk are not re-joined and re-split), a run
of text without a segment terminator is refused once it passes
:data:`MAX_SEGMENT_CHARS` (so memory stays bounded), and values are quoted in messages
through :func:`shown`, cut to about 60 characters.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TextIO

from recon.errors import FileFormatError, RemittanceError

ISA_LENGTH = 106
"""Characters in an ISA segment including its terminator (the standard fixes the width)."""

ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
"""The fixed widths of ISA01..ISA16."""
ISA_PEEK = 256
"""Characters handed to :func:`parse_isa`: enough to tell how long a malformed ISA is."""

CHUNK_CHARS = 1 << 20
MAX_SEGMENT_CHARS = 1 << 20
"""Longest run of text read without a segment terminator. No 835 segment comes near it
(the longest, PER or MIA, stay below 1,000 characters): past it the terminator is
missing or an element is absurdly long, and reading on would only fill memory."""
SHOWN_CHARS = 60
"""How much of a bad value a message quotes."""
_CRLF = "\r\n"
_LEADING_JUNK = "\ufeff\r\n"
_JUNK = re.compile("[\ufeff\r\n]*")


class X12Error(FileFormatError, RemittanceError):
    """A remittance file that breaks X12 syntax or the 835 rules at a known place.

    Both a :class:`FileFormatError` (bad input file) and a :class:`RemittanceError`
    (an 835 that cannot be used), so callers may catch either. The message reads
    ``claims.835: segment 14 (CLP) element 3: 'abc' is not an amount``.
    """

    def __init__(
        self,
        file: str,
        segment: int | None,
        segment_id: str | None,
        element: int | None,
        problem: str,
    ) -> None:
        super().__init__(file, segment, segment_id, problem)
        self.segment = segment
        self.segment_id = segment_id
        self.element = element
        where = file
        if segment is not None:
            where += f": segment {segment}"
            if segment_id:  # an id is 2 or 3 characters; garbage in its place is cut
                ok = len(segment_id) <= 3 and segment_id.isprintable()
                where += f" ({segment_id if ok else shown(segment_id, 10)})"
            if element is not None:
                where += f" element {element}"
        self.message = f"{where}: {problem}"
        self.args = (self.message,)


def shown(text: str, limit: int = SHOWN_CHARS) -> str:
    """A value as a message quotes it: ``repr`` of at most ``limit`` characters.

    A longer value is cut, with an ellipsis and its full length (``'11111…' (40,001
    characters)``), so one absurd element cannot fill a report or a terminal.
    """
    quoted = repr(text[:limit])
    cut = limit
    while len(quoted) > limit + 2 and cut > 1:  # escapes (\x00, \u2028) take more room
        cut //= 2
        quoted = repr(text[:cut])
    if cut >= len(text):
        return quoted
    return f"{quoted}… ({len(text):,} characters)"


def _blanks(text: str) -> str:
    """``'2 blanks'`` / ``'a tab'``: what leads ``text`` before its first visible character."""
    lead = text[: len(text) - len(text.lstrip(" \t"))]
    if lead == " ":
        return "a blank"
    if set(lead) == {" "}:
        return f"{len(lead)} blanks"
    return f"{len(lead)} blanks or tabs" if len(lead) > 1 else "a tab"


@dataclass(frozen=True, slots=True)
class Separators:
    """The four delimiters of one interchange. ``repetition`` is None before 00501."""

    element: str = "*"
    component: str = ":"
    repetition: str | None = "^"
    segment: str = "~"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the duration of a bulk read.

    A read allocates millions of small lists and tuples that are never cyclic; with
    the collector on, CPython rescans them all every few thousand allocations, which
    costs about a third of the parse time. Reference counting still frees them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_isa(text: str, file: str, ordinal: int) -> Separators:
    """Read the separators from the first 106 characters of an interchange.

    ``text`` may run on past the ISA (up to :data:`ISA_PEEK` characters are used): an
    ISA that is a character short or long is then reported with its real length and
    the field whose width is off, instead of being read with the wrong separators.
    """
    if not text.startswith("ISA"):
        if text.lstrip(" \t").startswith("ISA"):
            raise X12Error(
                file,
                ordinal,
                None,
                None,
                f"starts with {_blanks(text)} before 'ISA': an X12 segment starts with its id (is the file indented?)",
            )
        shown_text = text[:20].replace("\r", "\\r").replace("\n", "\\n")
        raise X12Error(file, ordinal, None, None, f"expected an ISA segment, found {shown_text!r}")
    if len(text) < ISA_LENGTH:
        shown_text = text[:20].replace("\r", "\\r").replace("\n", "\\n")
        raise X12Error(file, ordinal, None, None, f"expected an ISA segment, found {shown_text!r}")
    element = text[3]
    if element.isalnum() or element in " \r\n":
        raise X12Error(file, ordinal, "ISA", None, f"{element!r} cannot be an element separator")
    if text[103] != element:  # ISA16 is not the 105th character: the ISA is not 106 long
        raise X12Error(file, ordinal, "ISA", 16, _isa_shape(text, element))
    component = text[104]
    terminator = text[105]
    fields = text[:104].split(element)
    if len(fields) != 17 or len(fields[11]) != 1 or len(fields[13]) != 9:
        raise X12Error(
            file,
            ordinal,
            "ISA",
            None,
            f"the ISA is not the fixed {ISA_LENGTH}-character segment the standard requires",
        )
    if component.isalnum() or component in " \r\n":
        raise X12Error(file, ordinal, "ISA", 16, f"{component!r} cannot be a component separator")
    repetition: str | None = fields[11]
    if repetition is not None and (repetition.isalnum() or repetition == " "):
        repetition = None  # 00401 puts the "U" standards id here, not a separator
    if terminator.isalnum() or terminator == " ":
        raise X12Error(file, ordinal, "ISA", 16, f"{terminator!r} cannot end a segment")
    chosen = (element, component, terminator)
    if len(set(chosen)) != 3 or (repetition is not None and repetition in chosen):
        raise X12Error(file, ordinal, "ISA", None, "the ISA uses one character for two separators")
    return Separators(element, component, repetition, terminator)


def _isa_shape(text: str, element: str) -> str:
    """Why an ISA whose 104th character is not the element separator is refused.

    The 16 element separators give the ISA's real length (ISA16 and the terminator
    follow the last one) and which fixed-width fields are too short or too long.
    """
    at = [i for i, ch in enumerate(text[:ISA_PEEK]) if ch == element]
    if len(at) < 16:
        return (
            f"the ISA is not the fixed {ISA_LENGTH}-character segment the standard requires "
            f"(fewer than 16 element separators {element!r} in its first {ISA_PEEK} characters)"
        )
    length = at[15] + 3  # ISA16 and the segment terminator follow the 16th separator
    widths = [b - a - 1 for a, b in pairwise(at[:16])]  # ISA01..ISA15
    off = [
        f"ISA{k:02d} has {w} characters, not {ISA_WIDTHS[k - 1]}"
        for k, w in enumerate(widths[:15], start=1)
        if w != ISA_WIDTHS[k - 1]
    ]
    return (
        f"the ISA is {length} characters long, not the {ISA_LENGTH} the standard fixes: ISA16 "
        f"(the component separator) is character {length - 1} instead of {ISA_LENGTH - 1}, so "
        "the segment terminator after it cannot be read" + (f" ({'; '.join(off[:3])})" if off else "")
    )


class X12Reader:
    """Iterate the segments of one X12 file as ``(ordinal, elements)`` tuples.

    ``separators`` always holds the separators of the interchange the last segment
    came from, so a consumer can split composites (``SVC01``, ``PLB03``) with
    ``reader.separators.component``. ``name`` is how errors refer to the file.
    """

    def __init__(self, path: str | Path, *, name: str | None = None, chunk_chars: int = CHUNK_CHARS) -> None:
        self.path = Path(path)
        self.name = name if name is not None else self.path.name
        self.chunk_chars = chunk_chars
        self.separators = Separators()
        self.segments_read = 0

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        """One ``(ordinal, elements)`` per segment (convenient; ``batches`` is faster)."""
        for first, batch in self.batches():
            yield from enumerate(batch, start=first)

    def batches(self) -> Iterator[tuple[int, list[list[str]]]]:
        """Yield ``(ordinal of the first segment, segments)`` per chunk of the file.

        All segments of a batch share ``self.separators``. Cutting a whole chunk with two
        ``str.split`` calls and a list comprehension costs a fraction of handling each
        segment in Python, which is what makes a plain-Python reader fast.
        """
        for first, parts in self.raw_batches():
            el = self.separators.element
            yield first, [part.split(el) for part in parts]

    def raw_batches(self) -> Iterator[tuple[int, list[str]]]:
        """Like :meth:`batches` but each segment is left as one unsplit string.

        The 835 reader only needs the elements of about half the segments (AMT, REF,
        most NM1 and every segment it does not model are recognised by their first
        characters and skipped), so splitting is left to it: that is ~30% of the
        tokenizing work saved on a typical file.
        """
        try:
            handle = open(self.path, encoding="utf-8-sig", newline="")  # noqa: SIM115
        except OSError as exc:
            raise X12Error(self.name, None, None, None, f"cannot open the file ({exc.strerror})") from exc
        with handle:
            try:
                yield from self._batches(handle)
            except UnicodeDecodeError as exc:
                raise X12Error(
                    self.name,
                    self.segments_read + 1,
                    None,
                    None,
                    "the file is not UTF-8 text; is this an X12 file?",
                ) from exc

    def _batches(self, handle: TextIO) -> Iterator[tuple[int, list[str]]]:
        """Cut the text into segments, one interchange's separators at a time.

        ``buf[pos:]`` is the text not yet handed out. Each pass hands out the segments
        up to the last terminator in the buffer, or up to the IEA that ends the current
        interchange (the next ISA may choose other separators); each character is
        searched and split a bounded number of times, so time is linear in the file.
        """
        read = handle.read
        size = self.chunk_chars
        name = self.name
        n = 0
        buf = ""
        pos = 0
        eof = False
        term = ""  # "": the next thing must be an ISA
        iea = ""
        while True:
            if not term:
                pos = _JUNK.match(buf, pos).end()  # type: ignore[union-attr]
                while len(buf) - pos < ISA_PEEK and not eof:
                    more = read(size)
                    eof = not more
                    buf = buf[pos:] + more
                    pos = _JUNK.match(buf).end()  # type: ignore[union-attr]
                if pos >= len(buf):
                    return
                self.separators = seps = parse_isa(buf[pos : pos + ISA_PEEK], name, n + 1)
                term = seps.segment
                iea = "IEA" + seps.element
            cut = buf.rfind(term, pos)
            if cut < 0:
                if len(buf) - pos > MAX_SEGMENT_CHARS:
                    raise X12Error(
                        name,
                        n + 1,
                        None,
                        None,
                        f"{shown(buf[pos : pos + 20])} runs on for more than {MAX_SEGMENT_CHARS:,} "
                        f"characters without the segment terminator {term!r} that the ISA "
                        "declares: no 835 segment is that long (is the terminator missing?)",
                    )
                more = "" if eof else read(size)
                if not more:
                    tail = buf[pos:].strip(_LEADING_JUNK)
                    if tail:  # a last segment without terminator: let the checks judge it
                        self.segments_read = n + 1
                        yield n + 1, [tail]
                    return
                buf = buf[pos:] + more
                pos = 0
                continue
            end = cut
            ended = False
            k = buf.find(iea, pos, cut)
            while k >= 0:
                if _starts_segment(buf, k, pos, term):
                    end = buf.find(term, k)
                    ended = True
                    break
                k = buf.find(iea, k + 1, cut)
            text = buf[pos:end]
            pos = end + 1
            parts = _clean(text.split(term), "\n" in text or "\r" in text)
            if parts:
                self.segments_read = n + len(parts)
                yield n + 1, parts
                n += len(parts)
            if ended:
                term = ""


def _starts_segment(buf: str, k: int, pos: int, term: str) -> bool:
    """Whether ``buf[k:]`` begins a segment (only CR/LF between it and a terminator)."""
    m = k - 1
    while m >= pos and buf[m] != term and buf[m] in _CRLF:
        m -= 1
    return m < pos or buf[m] == term


def indented(file: str, ordinal: int, part: str) -> X12Error:
    """The error for a segment that starts with blanks or tabs (an indented file)."""
    rest = part.lstrip(" \t")
    if not rest:
        return X12Error(file, ordinal, None, None, f"{_blanks(part)} where a segment should start (blank padding?)")
    return X12Error(
        file,
        ordinal,
        None,
        None,
        f"starts with {_blanks(part)} before {shown(rest[:3])}: an X12 segment starts "
        "with its id (is the file indented?)",
    )


def _clean(parts: list[str], line_breaks: bool) -> list[str]:
    """Drop CR/LF around segments and empty segments (``~~`` or a final newline)."""
    if line_breaks:
        parts = [p.strip(_CRLF) for p in parts]
    if "" in parts:
        parts = [p for p in parts if p]
    return parts


def tokenize(path: str | Path, *, name: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """Shorthand for ``iter(X12Reader(path, name=name))``."""
    return iter(X12Reader(path, name=name))
