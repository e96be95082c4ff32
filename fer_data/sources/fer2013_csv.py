"""Reading FER2013-style pixel CSVs: exact line numbers, vectorised pixel parsing, byte-range shards.

FER2013 ships its 35,887 faces as text: one CSV row per 48x48 image, the 2,304 grey levels in
one space-separated field (~8.7 KB a row, ~290 MB in all). FER2013 itself (`fer2013.csv`,
`icml_face_data.csv`, Kaggle's `train.csv` / `test.csv`) and FER+ (which joins its votes to
`fer2013.csv` row by row) both read it through this module. Three things drive the design:

* Speed with bounded memory. Converting 2,304 tokens a row in a Python loop takes minutes for
  the whole file. Here rows are read in batches of `BATCH_ROWS`; the pixel fields of a batch are
  joined and converted by one C call (`numpy.fromstring` with a separator), so a batch costs a
  few milliseconds and only one batch of text and numbers is alive at a time. Only rows that
  fail that fast path are examined one by one (they are rare), to say exactly what is wrong.
* Exact provenance. Rejects and curated rows name the physical line (`fer2013.csv:637`, the
  header is line 1), so lines are read here in binary (`\\r\\n` tolerated, blank lines skipped
  but counted, a last line without line end read too), not by a CSV reader that hides line
  numbers. Field splitting of a line goes through the `csv` module when the line holds a quote,
  so quoted fields work; the common unquoted line is split with `bytes.split`.
* Sharding. `record_starts` makes one cheap pass over the file (numpy over 4 MiB blocks) that
  finds where each non-blank line starts. Shards are byte ranges cut at those starts that carry
  their first line number: a worker seeks to its start and reads up to its end.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

SIDE = 48
PIXELS = SIDE * SIDE
#: Rows parsed together: large enough that per-call overhead vanishes, small enough that a
#: batch (~9 MB of text, ~19 MB of int64 values) keeps the reader's memory flat.
BATCH_ROWS = 1024
#: Block size of the planning pass over a file.
PLAN_BLOCK = 1 << 22

_INT_TOKEN = re.compile(rb"[+-]?[0-9]+")
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True  # what bytes.strip() removes


@dataclass(frozen=True)
class Header:
    """Column names of a CSV (stripped, lower case: `icml_face_data.csv` writes ` Usage`)."""

    names: tuple[str, ...]
    data_start: int  # byte offset where line 2 begins

    def index(self, name: str) -> int | None:
        try:
            return self.names.index(name)
        except ValueError:
            return None


def read_header(path: Path) -> Header:
    """The first line's column names; an empty file has none."""
    with open(path, "rb") as fh:
        first = fh.readline()
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    try:
        fields = next(csv.reader([text]), []) if text.strip() else []
    except csv.Error:  # a stray carriage return or NUL: not a header, whatever it holds
        fields = [text]
    return Header(tuple(f.strip().lower() for f in fields), len(first))


class Line(NamedTuple):
    """One non-blank physical line: its number, its bytes without the line end, whether it had one."""

    number: int
    text: bytes
    ended: bool


def iter_lines(
    path: Path, start: int, first_line: int, end: int | None = None, limit: int | None = None
) -> Iterator[Line]:
    """Non-blank lines that start in [start, end), at most `limit` of them, with exact line numbers.

    `start` must be a line start and `first_line` its number. Blank (whitespace-only) lines
    are not records: they are skipped, but counted, so later numbers stay physical.
    """
    taken = 0
    with open(path, "rb") as fh:
        fh.seek(start)
        pos, number = start, first_line
        for raw in fh:
            if (end is not None and pos >= end) or (limit is not None and taken >= limit):
                return
            pos += len(raw)
            if raw.strip():
                yield Line(number, raw.rstrip(b"\r\n"), raw.endswith(b"\n"))
                taken += 1
            number += 1


def split_fields(text: bytes) -> list[bytes] | None:
    """CSV fields of one line (None when its quoting is broken, e.g. the file ends inside a quote)."""
    if b'"' not in text:
        return text.split(b",")
    try:
        # latin-1 maps every byte to one character and back, so field bytes stay exact.
        row = next(csv.reader([text.decode("latin-1")], strict=True))
    except csv.Error:
        return None
    return [f.encode("latin-1") for f in row]


@dataclass
class PixelRow:
    """One record of a pixel CSV: its line, its other fields, and its image or what is wrong."""

    line: int
    values: dict[str, str]  # non-pixel columns by (stripped, lower-case) header name, stripped
    pixels: np.ndarray | None = None  # (48, 48) uint8
    raw_sha256: str | None = None  # sha256 of the pixel field as written
    error: tuple[str, str] | None = None  # (reason code, detail)


@dataclass(frozen=True)
class RecordIndex:
    """Start offset and line number of every non-blank line after the header."""

    offsets: np.ndarray  # int64
    lines: np.ndarray  # int64
    size: int  # file size in bytes

    def __len__(self) -> int:
        return len(self.offsets)

    def position(self, k: int) -> tuple[int, int]:
        """(byte offset, line number) where record k starts; end of file when k is past the last."""
        if k >= len(self.offsets):
            return self.size, int(self.lines[-1]) + 1 if len(self.lines) else 2
        return int(self.offsets[k]), int(self.lines[k])


def record_starts(path: Path, start: int, first_line: int) -> RecordIndex:
    """One pass over the file from `start`: where each non-blank line begins, and its number.

    Newlines are found with numpy over 4 MiB blocks. A line whose first byte is not
    whitespace is a record; only the rare lines that start with whitespace are read again
    to see whether they are blank, with the same test as `iter_lines`, so both agree exactly.
    """
    starts: list[np.ndarray] = [np.array([start], dtype=np.int64)]
    firsts: list[np.ndarray] = []
    first_pending = True  # the first byte of the latest line start is in the next block
    pos = start
    with open(path, "rb") as fh:
        fh.seek(start)
        while block := fh.read(PLAN_BLOCK):
            b = np.frombuffer(block, dtype=np.uint8)
            if first_pending:
                firsts.append(b[:1])
            newlines = np.flatnonzero(b == 10)
            starts.append(pos + newlines + 1)
            inside = newlines[newlines + 1 < len(b)]
            firsts.append(b[inside + 1])
            first_pending = bool(len(newlines)) and int(newlines[-1]) == len(b) - 1
            pos += len(b)
    offsets = np.concatenate(starts)
    numbers = first_line + np.arange(len(offsets), dtype=np.int64)
    keep = offsets < pos  # a start at the end of the file is no line
    offsets, numbers = offsets[keep], numbers[keep]
    first_bytes = np.concatenate(firsts)[: len(offsets)] if firsts else np.zeros(0, np.uint8)
    maybe_blank = np.flatnonzero(_WHITESPACE[first_bytes])
    if len(maybe_blank):
        blank = _blank_lines(path, offsets[maybe_blank])
        keep = np.ones(len(offsets), dtype=bool)
        keep[maybe_blank[blank]] = False
        offsets, numbers = offsets[keep], numbers[keep]
    return RecordIndex(offsets, numbers, pos)


def _blank_lines(path: Path, offsets: np.ndarray) -> np.ndarray:
    """Which of the lines starting at `offsets` are whitespace only."""
    with open(path, "rb") as fh:
        out = []
        for off in offsets.tolist():
            fh.seek(off)
            out.append(not fh.readline().strip())
    return np.array(out, dtype=bool)


# --- pixels ------------------------------------------------------------------------------


def parse_pixel_batch(fields: Sequence[bytes]) -> list[np.ndarray | tuple[str, str]]:
    """Each pixel field as a (48, 48) uint8 image, or (reason, detail) when it is not one.

    Fast path: the whole batch is joined, with a sentinel value after each field, and parsed
    by one C call into int64 (wide enough that no token wraps into 0..255). The sentinels'
    positions give each field's length, so fields of exactly 2,304 values are taken from that
    one parse even when others in the batch are too short or too long (copies with a broken
    row every few hundred would otherwise send whole batches down the slow path: 3x the time).
    A batch holding a token that is not a number is halved until the parse succeeds. Fields
    that fail are examined one by one by `parse_pixel_field`, which names the exact problem.
    """
    stripped = [f.strip() for f in fields]
    out: list[np.ndarray | tuple[str, str] | None] = [None] * len(stripped)
    for index, values in _parse_fields(stripped, np.arange(len(stripped))):
        in_range = ((values >= 0) & (values <= 255)).all(axis=1)
        images = values.astype(np.uint8).reshape(-1, SIDE, SIDE)
        for i in np.flatnonzero(in_range):
            out[index[i]] = images[i].copy()
    return [parse_pixel_field(stripped[i]) if got is None else got for i, got in enumerate(out)]


#: Written after each field of a batch: outside 0..255, so no pixel can pass for it.
_SENTINEL = 999_999
_SEPARATOR = f" {_SENTINEL} ".encode()
#: Below this many fields a batch that does not parse is left to the per-field path.
_MIN_SPLIT = 8


def _parse_fields(fields: list[bytes], index: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(positions in the batch, (k, 2304) int64 values) for the fields holding exactly 2,304 integers."""
    try:
        values = np.fromstring(_SEPARATOR.join(fields) + _SEPARATOR, dtype=np.int64, sep=" ")
    except ValueError:  # a token that is not an integer somewhere: halve the batch and retry
        if len(fields) >= _MIN_SPLIT:
            half = len(fields) // 2
            yield from _parse_fields(fields[:half], index[:half])
            yield from _parse_fields(fields[half:], index[half:])
        return
    ends = np.flatnonzero(values == _SENTINEL)
    if len(ends) != len(fields):  # a field holds the sentinel value itself: per-field path
        return
    starts = np.concatenate([[0], ends[:-1] + 1])
    whole = ends - starts == PIXELS
    if whole.all():  # the common case: a plain reshape, no copy
        yield index, values.reshape(len(fields), PIXELS + 1)[:, :PIXELS]
    elif whole.any():
        keep = np.flatnonzero(whole)
        yield index[keep], values[starts[keep, None] + np.arange(PIXELS)]


def parse_pixel_field(text: bytes) -> np.ndarray | tuple[str, str]:
    """One pixel field on its own: the image, or the first thing wrong with it.

    Tolerates any whitespace between values (tabs, double spaces), which the batch path
    leaves to this function.
    """
    tokens = text.split()
    if len(tokens) != PIXELS:
        return "wrong_pixel_count", f"{len(tokens)} pixel values, expected {PIXELS} (48x48)"
    try:
        values = np.fromstring(b" ".join(tokens), dtype=np.int64, sep=" ")
    except ValueError:  # find the culprit token by token
        values = None
    if values is None or values.size != PIXELS:
        pos, tok = next(((i, t) for i, t in enumerate(tokens) if not _INT_TOKEN.fullmatch(t)), (-1, b""))
        if pos < 0:
            return "non_numeric_pixel", "the pixel values do not parse as integers"
        return "non_numeric_pixel", f"pixel {pos} is {tok.decode('latin-1')!r}, not an integer"
    bad = np.flatnonzero((values < 0) | (values > 255))
    if len(bad):
        first = int(bad[0])
        return "pixel_out_of_range", (
            f"pixel {first} is {tokens[first].decode('latin-1')}, outside 0..255 ({len(bad)} such value(s))"
        )
    return values.astype(np.uint8).reshape(SIDE, SIDE)


# --- files -------------------------------------------------------------------------------


class PixelCsv:
    """A pixel CSV file: its header, its records (parsed in batches), and its shard plan."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.header = read_header(self.path)
        self.pixel_column = self.header.index("pixels")

    @property
    def usable(self) -> bool:
        return self.pixel_column is not None

    def rows(
        self, start: int | None = None, first_line: int = 2, end: int | None = None, limit: int | None = None
    ) -> Iterator[PixelRow]:
        """Parsed records in [start, end) (default: all after the header), at most `limit`."""
        if not self.usable:
            raise ValueError(f"{self.path.name}: no 'pixels' column in header {self.header.names}")
        begin = self.header.data_start if start is None else start
        batch: list[Line] = []
        for line in iter_lines(self.path, begin, first_line, end, limit):
            batch.append(line)
            if len(batch) == BATCH_ROWS:
                yield from self._parse(batch)
                batch = []
        if batch:
            yield from self._parse(batch)

    def record_index(self) -> RecordIndex:
        return record_starts(self.path, self.header.data_start, 2)

    def _parse(self, batch: list[Line]) -> list[PixelRow]:
        names, col, n_fields = self.header.names, self.pixel_column, len(self.header.names)
        rows: list[PixelRow] = []
        pixel_fields: list[bytes] = []
        waiting: list[PixelRow] = []
        for line in batch:
            fields = split_fields(line.text)
            if fields is None or len(fields) != n_fields:
                rows.append(PixelRow(line.number, {}, error=("truncated_row", _field_problem(fields, n_fields, line))))
                continue
            values = {name: f.decode("latin-1").strip() for name, f in zip(names, fields) if name != "pixels"}
            row = PixelRow(line.number, values, raw_sha256=hashlib.sha256(fields[col]).hexdigest())
            rows.append(row)
            waiting.append(row)
            pixel_fields.append(fields[col])
        for row, parsed in zip(waiting, parse_pixel_batch(pixel_fields)):
            if isinstance(parsed, tuple):
                row.error = parsed
            else:
                row.pixels = parsed
        return rows


def _field_problem(fields: list[bytes] | None, expected: int, line: Line) -> str:
    what = "unterminated quote" if fields is None else f"{len(fields)} field(s), expected {expected}"
    if not line.ended:
        what += " (the file ends inside this line: cut short?)"
    return what
