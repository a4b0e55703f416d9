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
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from recon.errors import FileFormatError, RemittanceError

ISA_LENGTH = 106
"""Characters in an ISA segment including its terminator (the standard fixes the width)."""

CHUNK_CHARS = 1 << 20
_CRLF = "\r\n"
_LEADING_JUNK = "\ufeff\r\n"


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
            if segment_id:
                where += f" ({segment_id})"
            if element is not None:
                where += f" element {element}"
        self.message = f"{where}: {problem}"
        self.args = (self.message,)


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
    """Read the separators from the first 106 characters of an interchange."""
    if len(text) < ISA_LENGTH or not text.startswith("ISA"):
        shown = text[:20].replace("\r", "\\r").replace("\n", "\\n")
        raise X12Error(file, ordinal, None, None, f"expected an ISA segment, found {shown!r}")
    element = text[3]
    component = text[104]
    terminator = text[105]
    if element.isalnum() or element == " ":
        raise X12Error(file, ordinal, "ISA", None, f"{element!r} cannot be an element separator")
    fields = text[:104].split(element)
    if len(fields) != 17 or len(fields[11]) != 1 or len(fields[13]) != 9:
        raise X12Error(
            file, ordinal, "ISA", None,
            f"the ISA is not the fixed {ISA_LENGTH}-character segment the standard requires",
        )
    repetition: str | None = fields[11]
    if repetition is not None and (repetition.isalnum() or repetition == " "):
        repetition = None  # 00401 puts the "U" standards id here, not a separator
    if terminator.isalnum() or terminator == " ":
        raise X12Error(file, ordinal, "ISA", 16, f"{terminator!r} cannot end a segment")
    chosen = (element, component, terminator)
    if len(set(chosen)) != 3 or (repetition is not None and repetition in chosen):
        raise X12Error(file, ordinal, "ISA", None, "the ISA uses one character for two separators")
    return Separators(element, component, repetition, terminator)


class X12Reader:
    """Iterate the segments of one X12 file as ``(ordinal, elements)`` tuples.

    ``separators`` always holds the separators of the interchange the last segment
    came from, so a consumer can split composites (``SVC01``, ``PLB03``) with
    ``reader.separators.component``. ``name`` is how errors refer to the file.
    """

    def __init__(self, path: str | Path, *, name: str | None = None,
                 chunk_chars: int = CHUNK_CHARS) -> None:
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
            raise X12Error(self.name, None, None, None,
                           f"cannot open the file ({exc.strerror})") from exc
        with handle:
            try:
                yield from self._batches(handle)
            except UnicodeDecodeError as exc:
                raise X12Error(
                    self.name, self.segments_read + 1, None, None,
                    "the file is not UTF-8 text; is this an X12 file?",
                ) from exc

    def _batches(self, handle: TextIO) -> Iterator[tuple[int, list[str]]]:
        read = handle.read
        size = self.chunk_chars
        n = 0
        buf = ""
        term: str | None = None  # None: the next thing must be an ISA
        el = iea = "*"
        eof = False
        while True:
            if term is None:
                buf = buf.lstrip(_LEADING_JUNK)
                while len(buf) < ISA_LENGTH and not eof:
                    more = read(size)
                    eof = not more
                    buf = (buf + more).lstrip(_LEADING_JUNK)
                if not buf:
                    return
                self.separators = seps = parse_isa(buf, self.name, n + 1)
                term, el = seps.segment, seps.element
                iea = "IEA" + el
            else:
                more = read(size)
                if not more:
                    tail = buf.strip(_LEADING_JUNK)
                    if tail:  # a last segment without terminator: let the checks judge it
                        self.segments_read = n + 1
                        yield n + 1, [tail]
                    return
                buf += more
            cut = buf.rfind(term)
            if cut < 0:
                continue
            text = buf[:cut]
            buf = buf[cut + 1:]
            raw = text.split(term)
            ended = False
            if iea in text:
                for i, part in enumerate(raw):
                    if part.lstrip(_CRLF).startswith(iea):
                        # The next interchange may use other separators: re-read its ISA.
                        rest = raw[i + 1:]
                        if rest:
                            buf = term.join(rest) + term + buf
                        del raw[i + 1:]
                        ended = True
                        break
            parts = _clean(raw, "\n" in text or "\r" in text)
            if parts:
                self.segments_read = n + len(parts)
                yield n + 1, parts
                n += len(parts)
            if ended:
                term = None


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
