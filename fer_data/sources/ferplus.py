"""FER+ (Microsoft, Barsoum et al. 2016): ten crowd votes for every FER2013 face.

Layouts (`pixels` in params; `auto` takes the first that is there):
* `fer2013_csv`: the FER+ repository's files plus FER2013's `fer2013.csv` (the pixels; FER+
  does not redistribute them). `fer2013_csv` in params names it, relative to the root or absolute.
* `png`: the folders FER+'s own `generate_training_data.py` writes: `data/FER2013{Train,Valid,
  Test}/fer0000000.png` beside each folder's `label.csv` (also how FER+ copies are passed
  around). Votes and face boxes come from label.csv, the split from the folder; a sample's
  locator is its PNG's path. fer2013.csv and fer2013new.csv are not needed.

* `fer2013new.csv`: `Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,
  contempt,unknown,NF`, one row per row of fer2013.csv, in the same order. An empty
  `Image name` means "not a face" (173 rows). Image names are NOT row numbers: FER+ numbered
  the faces with gaps and a few repeats (`fer0000059.png` is on data row 60, and 4 names occur
  twice), so rows are paired by position, as FER+'s own `generate_training_data.py` does, and
  both files are streamed in lockstep, never loaded whole.
* `data/FER2013{Train,Valid,Test}/label.csv` (no header: `fer0000000.png,"(0, 0, 48, 48)",v1..v10`,
  the face box being optional): the votes FER+'s training code reads. They differ from
  fer2013new.csv's on ~4.5% of the faces (1,602 of 35,710). With `votes: label_csv` they are
  used instead; fer2013new.csv is then still needed, for the image name of each row. These
  small files are read into a dict by image name (label.csv is sorted by name, fer2013.csv is
  not).

Label modes (`label_mode`):
* `majority` (FER+'s `_process_data`): drop the votes of classes with one vote or none, then
  a class wins only with more than half of the remaining votes; else `no_majority`.
* `plurality`: the class with the most (raw) votes; a tie at the top is `no_majority`.
A winning `unknown` or `NF` (not a face) is rejected as `not_an_emotion`.

In every mode, `extra["label_votes"]` holds the raw vote distribution over the 8 emotions,
in `labels.CANONICAL` order (neutral, anger, contempt, disgust, fear, happiness, sadness,
surprise), summing to 1 (unknown / NF votes left out), for soft-label training.

In the fer2013_csv layout a sample's locator is its fer2013.csv line (`fer2013.csv:637`), as for the fer2013 source
(the source name keeps the sample ids apart). Rejects name the line where the problem is: the
fer2013.csv line, or the fer2013new.csv / label.csv line for a broken vote row.

Rejects (besides FER2013's pixel-row reasons, see fer_data.sources.fer2013_csv): `not_a_face`
(empty image name), `no_majority`, `not_an_emotion`, `bad_votes` (a vote row with the wrong
number of fields or a non-number in it), `misaligned_rows` (the two files disagree on a row's
Usage: they are not in the same order), `missing_votes` / `missing_pixels` (one file has rows
the other lacks; `unmatched_rows: summary` reports such a tail as one reject per shard instead
of one per row, for working with a slice of fer2013.csv), `unknown_split`; a missing
fer2013new.csv is one `missing_label_file` reject, one without the vote columns one
`bad_header` reject. In the png layout: `missing_image` (a label.csv row whose PNG is absent),
`bad_votes`, and the rules' own reasons.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import zip_longest
from pathlib import Path
from typing import Any, ClassVar, Literal

from fer_data import labels
from fer_data.demo import DemoFaces, write_image
from fer_data.params import Str, param
from fer_data.records import Kind, Reason
from fer_data.sources.base import Reject, Sample, Source, SourceParams, relative_locator
from fer_data.sources.fer2013 import USAGE_SPLITS, demo_usage, write_fer2013_csv
from fer_data.sources.fer2013_csv import (
    Line,
    PixelCsv,
    PixelRow,
    iter_lines,
    read_header,
    record_starts,
    records_per_shard,
    split_fields,
)

#: FER+ vote columns, in the order they appear in fer2013new.csv / label.csv.
VOTE_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
LABELS = {
    "neutral": labels.NEUTRAL,
    "happiness": labels.HAPPINESS,
    "surprise": labels.SURPRISE,
    "sadness": labels.SADNESS,
    "anger": labels.ANGER,
    "disgust": labels.DISGUST,
    "fear": labels.FEAR,
    "contempt": labels.CONTEMPT,
    "unknown": labels.NOT_AN_EMOTION,
    "NF": labels.NOT_AN_EMOTION,
}

log = logging.getLogger("fer_data.sources.ferplus")

NAME = "ferplus"
VOTES_FILE = "fer2013new.csv"
#: FER+'s label.csv folders and the FER2013 Usage each holds.
LABEL_DIRS = {"FER2013Train": "Training", "FER2013Valid": "PublicTest", "FER2013Test": "PrivateTest"}
MODES = ("majority", "plurality")
EMOTION_COLUMNS = VOTE_COLUMNS[:8]
#: fer2013new.csv columns read (header names, lower case).
VOTES_WANTED = ("usage", "image name", *(c.lower() for c in VOTE_COLUMNS))


class BadVotes(ValueError):
    """A vote row that does not hold ten non-negative numbers."""


def parse_votes(fields: Sequence[str]) -> tuple[float, ...]:
    if len(fields) != len(VOTE_COLUMNS):
        raise BadVotes(f"{len(fields)} vote values, expected {len(VOTE_COLUMNS)} ({', '.join(VOTE_COLUMNS)})")
    votes = []
    for name, text in zip(VOTE_COLUMNS, fields):
        try:
            v = float(text)
        except ValueError:
            raise BadVotes(f"{name} vote {text.strip()!r} is not a number") from None
        if not v >= 0 or v == float("inf"):
            raise BadVotes(f"{name} vote {text.strip()!r} is not a count")
        votes.append(v)
    return tuple(votes)


def majority(votes: Sequence[float]) -> int | None:
    """FER+'s rule: ignore single votes, then a class needs more than half of what remains."""
    kept = [v if v > 1 else 0.0 for v in votes]
    total, top = sum(kept), max(kept)
    if total <= 0 or top <= 0.5 * total:
        return None
    return kept.index(top)


def plurality(votes: Sequence[float]) -> int | None:
    """The class with the most votes; None on a tie at the top or no votes."""
    top = max(votes)
    if top <= 0 or list(votes).count(top) > 1:
        return None
    return list(votes).index(top)


WINNERS = {"majority": majority, "plurality": plurality}


def vote_distribution(votes: Sequence[float]) -> list[float] | None:
    """Votes of the 8 emotions as fractions, in labels.CANONICAL order (None without any)."""
    by_label = {LABELS[c]: v for c, v in zip(EMOTION_COLUMNS, votes)}
    total = sum(by_label.values())
    if total <= 0:
        return None
    return [by_label[c] / total for c in labels.CANONICAL]


def describe(votes: Sequence[float]) -> str:
    return ", ".join(f"{c} {v:g}" for c, v in zip(VOTE_COLUMNS, votes) if v)


@dataclass(frozen=True)
class LabelEntry:
    """One row of a label.csv: where it is, the Usage its folder stands for, its vote fields."""

    locator: str
    usage: str
    votes: tuple[str, ...]
    box: tuple[int, int, int, int] | None


def parse_box(text: str) -> tuple[int, int, int, int] | None:
    """`(0, 0, 48, 48)` -> (left, top, right, bottom); None when it is not such a box."""
    parts = text.strip().strip("()").split(",")
    try:
        box = tuple(int(float(p)) for p in parts)
    except ValueError:
        return None
    return box if len(box) == 4 else None  # type: ignore[return-value]


def _covers(box: tuple[int, int, int, int] | None, w: int, h: int) -> bool:
    """Whether a label.csv face box is the whole w x h frame (FER+ writes (0, 0, 48, 48) for most)."""
    return box is None or (box[0] <= 0 and box[1] <= 0 and box[2] >= w and box[3] >= h)


class _Tail:
    """Rows one file has and the other lacks: a reject each, or one summary reject per reason."""

    def __init__(self, source: Source, summarise: bool):
        self.source = source
        self.summarise = summarise
        self.seen: dict[str, list] = {}  # reason -> [count, first locator, last locator, detail]

    def add(self, reason: str, locator: str, detail: str) -> Iterator[Reject]:
        if not self.summarise:
            yield self.source.reject(locator, reason, detail)
            return
        entry = self.seen.setdefault(reason, [0, locator, locator, detail])
        entry[0] += 1
        entry[2] = locator

    def close(self) -> Iterator[Reject]:
        for reason, (count, first, last, detail) in self.seen.items():
            yield self.source.reject(first, reason, f"{count} row(s) from {first} to {last}: {detail}")


class FERPlusParams(SourceParams):
    pixels: Literal["auto", "fer2013_csv", "png"] = param(
        "auto",
        "auto, fer2013_csv or png",
        "fer2013.csv joined by row, or FER+'s PNG folders; auto: fer2013_csv when that file exists",
    )
    label_mode: Literal["majority", "plurality"] = param(
        "majority", "majority or plurality", "FER+'s majority rule, or the most votes (ties rejected)"
    )
    votes: Literal["fer2013new", "label_csv"] = param(
        "fer2013new", "fer2013new or label_csv", "fer2013_csv layout: votes from fer2013new.csv or label.csv"
    )
    fer2013_csv: Str = param("fer2013.csv", "a file path", "FER2013's pixels, relative to the root or absolute")
    unmatched_rows: Literal["reject", "summary"] = param(
        "reject", "reject or summary", "rows one file has and the other lacks: a reject each, or one a shard"
    )


class FERPlus(Source):
    name = NAME
    reasons = (
        Reason("not_a_face", Kind.POLICY, "FER+ annotators marked the FER2013 image not a face"),
        Reason("no_majority", Kind.POLICY, "no class wins the votes under label_mode"),
    )
    params_model = FERPlusParams
    label_tables: ClassVar[Mapping[str, Mapping]] = {"vote_columns": LABELS}

    def __init__(self, root: str | Path, params: Mapping[str, Any] | None = None):
        super().__init__(root, params)
        self.mode = self.params["label_mode"]
        if self.mode not in MODES:
            raise ValueError(f"{NAME}: label_mode must be one of {MODES}, got {self.mode!r}")
        self.pixels_path = self.root / self.params["fer2013_csv"]  # an absolute path stays absolute
        self.votes_path = self.root / VOTES_FILE
        self.layout = self._layout()
        if self.layout == "png":
            return
        if not self.pixels_path.is_file():
            raise FileNotFoundError(
                f"{NAME}: {self.pixels_path} not found; it holds FER2013's pixels (set "
                f"sources.ferplus.fer2013_csv, or use FER+'s PNG folders: pixels: png)"
            )
        self.pixels = PixelCsv(self.pixels_path)
        if not self.pixels.usable:
            raise ValueError(f"{NAME}: {self.pixels_path} has no 'pixels' column: {self.pixels.header.names}")
        self.pixels_name = self._name_of(self.pixels_path)
        self.votes_problem = self._votes_problem()
        if self.votes_problem is None:
            self.votes_header = read_header(self.votes_path)
            self.columns = {w: self.votes_header.names.index(w) for w in VOTES_WANTED}
        if self.params["votes"] == "label_csv" and not self.label_files:
            raise FileNotFoundError(
                f"{NAME}: votes: label_csv, but no data/{{{','.join(LABEL_DIRS)}}}/label.csv in {self.root}"
            )

    def _layout(self) -> str:
        """fer2013_csv or png: as set, or under `auto` the one whose pixels are there."""
        chosen = self.params["pixels"]
        if chosen == "auto":
            chosen = "png" if not self.pixels_path.is_file() and self.png_folders else "fer2013_csv"
        if chosen == "png" and not self.png_folders:
            raise FileNotFoundError(
                f"{NAME}: pixels: png, but no data/{{{','.join(LABEL_DIRS)}}}/ folder in {self.root} "
                "holds a label.csv and its PNGs"
            )
        return chosen

    def _votes_problem(self) -> tuple[str, str] | None:
        """(reason, detail) when fer2013new.csv cannot give votes at all: one reject, not a crash."""
        if not self.votes_path.is_file():
            return "missing_label_file", f"{VOTES_FILE} not found in {self.root}: it holds FER+'s votes and image names"
        names = read_header(self.votes_path).names
        missing = [w for w in VOTES_WANTED if w not in names]
        if missing:
            return "bad_header", f"{VOTES_FILE} header {names} lacks {missing}"
        return None

    def _name_of(self, path: Path) -> str:
        try:
            return relative_locator(self.root, path)
        except ValueError:
            return path.name

    # --- shards ----------------------------------------------------------------------------

    def _whole(self) -> dict[str, Any]:
        if self.layout == "png":
            return {"png": [[folder, 0, 1, None] for folder in self.label_files]}
        if self.votes_problem is not None:
            return {"votes_problem": True}
        return {
            "start": self.pixels.header.data_start,
            "first_line": 2,
            "votes_start": self.votes_header.data_start,
            "votes_first_line": 2,
            "count": None,
            "last": True,
        }

    def __iter__(self) -> Iterator[Sample | Reject]:
        return self.iter_shard(self._whole())

    def shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        """Record ranges [k, k + size) of both files: each shard seeks to record k in each."""
        if self.layout == "png":
            return self._png_shards(max_items, min_shards)
        if self.votes_problem is not None:
            return [self._whole()]
        pix = self.pixels.record_index()
        votes = record_starts(self.votes_path, self.votes_header.data_start, 2)
        n = max(len(pix), len(votes))
        if n == 0:
            return [self._whole()]
        size = records_per_shard(n, max_items, min_shards)
        plan = []
        for k in range(0, n, size):
            (start, line), (vstart, vline) = pix.position(k), votes.position(k)
            plan.append(
                {
                    "start": start,
                    "first_line": line,
                    "votes_start": vstart,
                    "votes_first_line": vline,
                    "count": min(size, n - k),
                    "last": k + size >= n,
                }
            )
        return plan

    def iter_shard(self, shard: Mapping[str, Any]) -> Iterator[Sample | Reject]:
        if "png" in shard:
            yield from self._png_items(shard["png"])
            return
        if "votes_problem" in shard:
            yield self.reject(f"{VOTES_FILE}:1" if self.votes_path.is_file() else VOTES_FILE, *self.votes_problem)
            return
        count = shard["count"]
        pix = self.pixels.rows(shard["start"], shard["first_line"], limit=count)
        votes = iter_lines(self.votes_path, shard["votes_start"], shard["votes_first_line"], limit=count)
        tail = _Tail(self, self.params["unmatched_rows"] == "summary")
        for p, v in zip_longest(pix, votes):
            if v is None:
                yield from tail.add(
                    "missing_votes", f"{self.pixels_name}:{p.line}", f"{VOTES_FILE} has no row for this row"
                )
            elif p is None:
                yield from tail.add(
                    "missing_pixels", f"{VOTES_FILE}:{v.number}", f"{self.pixels_name} has no row for this row"
                )
            else:
                yield self.join(p, v)
        yield from tail.close()
        if shard["last"] and self.params["votes"] == "label_csv":
            yield from self._unused_label_rows()

    # --- one row ---------------------------------------------------------------------------

    def join(self, p: PixelRow, v: Line) -> Sample | Reject:
        """A pixel row and its vote row (same position) as a sample, or why not."""
        locator, vloc = f"{self.pixels_name}:{p.line}", f"{VOTES_FILE}:{v.number}"
        fields = split_fields(v.text)
        if fields is None or len(fields) != len(self.votes_header.names):
            got = "broken quoting" if fields is None else f"{len(fields)} fields"
            return self.reject(vloc, "bad_votes", f"{got}, expected {len(self.votes_header.names)}")
        cols = [f.decode("latin-1").strip() for f in fields]
        image = cols[self.columns["image name"]]
        own_usage, their_usage = p.values.get("usage", ""), cols[self.columns["usage"]]
        if own_usage and their_usage and own_usage != their_usage:
            return self.reject(
                locator,
                "misaligned_rows",
                f"Usage {own_usage!r} here but {their_usage!r} on {vloc}: the two files are not in the same row order",
            )
        usage = own_usage or their_usage
        if not image:
            return self.reject(locator, "not_a_face", f"{vloc} has no image name: FER+ annotators marked it not a face")
        got = self._votes(cols, image, usage, locator, vloc)
        if isinstance(got, Reject):
            return got
        votes, box = got
        if p.error is not None:
            return self.reject(locator, *p.error)
        if usage not in USAGE_SPLITS:
            return self.reject(locator, "unknown_split", f"Usage {usage!r} is not one of {', '.join(USAGE_SPLITS)}")
        return self._labelled(p, locator, image, votes, box, usage)

    def _votes(
        self, cols: list[str], image: str, usage: str, locator: str, vloc: str
    ) -> tuple[tuple[float, ...], tuple[int, int, int, int] | None] | Reject:
        """The row's ten votes (and face box from label.csv), from the configured file."""
        if self.params["votes"] == "fer2013new":
            fields, where, box = [cols[self.columns[c.lower()]] for c in VOTE_COLUMNS], vloc, None
        else:
            entry = self.label_votes.get(image)
            if entry is None:
                return self.reject(locator, "missing_votes", f"{image} ({vloc}) is in no data/FER2013*/label.csv")
            if entry.usage != usage:
                return self.reject(
                    entry.locator,
                    "misaligned_rows",
                    f"{image} is listed for {entry.usage} but its row ({vloc}) is {usage}",
                )
            fields, where, box = list(entry.votes), entry.locator, entry.box
        try:
            return parse_votes(fields), box
        except BadVotes as exc:
            return self.reject(where, "bad_votes", str(exc))

    def _winner(self, locator: str, image: str, votes: tuple[float, ...]) -> tuple[str, str] | Reject:
        """(FER+ column, canonical label) the votes elect under the label mode, or why none."""
        winner = WINNERS[self.mode](votes)
        if winner is None:
            rule = (
                "more than half of the votes left after dropping single votes"
                if self.mode == "majority"
                else "the most votes alone"
            )
            return self.reject(locator, "no_majority", f"{image}: no class has {rule} ({describe(votes)})")
        column = VOTE_COLUMNS[winner]
        label = LABELS[column]
        if label == labels.NOT_AN_EMOTION:
            return self.reject(
                locator, "not_an_emotion", f"{image}: the {self.mode} vote is {column!r} ({describe(votes)})"
            )
        return column, label

    def _labelled(
        self,
        p: PixelRow,
        locator: str,
        image: str,
        votes: tuple[float, ...],
        box: tuple[int, int, int, int] | None,
        usage: str,
    ) -> Sample | Reject:
        won = self._winner(locator, image, votes)
        if isinstance(won, Reject):
            return won
        h, w = p.pixels.shape
        return Sample(
            source=self.name,
            locator=locator,
            label_native=won[0],
            label=won[1],
            split=USAGE_SPLITS[usage],
            split_original=usage,
            pixels=p.pixels,
            raw_sha256=p.raw_sha256,
            precropped=True,
            face_box=None if _covers(box, w, h) else box,
            extra={"label_votes": vote_distribution(votes)},
        )

    # --- label.csv -------------------------------------------------------------------------

    @cached_property
    def label_files(self) -> dict[str, Path]:
        found = {d: self.root / "data" / d / "label.csv" for d in LABEL_DIRS}
        return {d: p for d, p in found.items() if p.is_file()}

    @cached_property
    def label_votes(self) -> dict[str, LabelEntry]:
        """Image name -> its label.csv row (about 1.7 MB for all of FER+: read once per worker)."""
        table: dict[str, LabelEntry] = {}
        for folder in self.label_files:
            for name, entry in self._label_rows(folder):
                if name in table:
                    log.warning(
                        "%s: %s is listed twice (%s and %s); the first is used",
                        NAME,
                        name,
                        table[name].locator,
                        entry.locator,
                    )
                    continue
                table[name] = entry
        return table

    def _label_rows(
        self, folder: str, start: int = 0, first_line: int = 1, count: int | None = None
    ) -> Iterator[tuple[str, LabelEntry]]:
        """(image name, row) for `count` rows of a folder's label.csv from byte `start` (line `first_line`)."""
        path = self.label_files[folder]
        rel = relative_locator(self.root, path)
        for line in iter_lines(path, start, first_line, limit=count):
            fields = [f.decode("latin-1") for f in (split_fields(line.text) or [line.text])]
            name, rest = fields[0].strip(), fields[1:]
            box = None
            if rest and rest[0].strip().startswith("("):  # the optional face box column
                box, rest = parse_box(rest[0]), rest[1:]
            yield name, LabelEntry(f"{rel}:{line.number}", LABEL_DIRS[folder], tuple(rest), box)

    # --- the png layout ------------------------------------------------------------------------

    @cached_property
    def png_folders(self) -> list[str]:
        """The data/FER2013* folders holding a label.csv and at least one PNG (the png layout is there)."""
        return [d for d, path in self.label_files.items() if next(path.parent.glob("*.png"), None) is not None]

    def _png_shards(self, max_items: int, min_shards: int) -> list[dict[str, Any]]:
        """Record ranges of the label.csv files, as (folder, byte offset, line, count); a shard may
        span the end of one file and the start of the next."""
        # Every label.csv, also one whose folder has no PNG: its rows are missing_image rejects, not skipped.
        index = {d: record_starts(path, 0, 1) for d, path in self.label_files.items()}
        size = records_per_shard(sum(map(len, index.values())), max_items, min_shards)
        plan: list[dict[str, Any]] = []
        room = 0  # rows the last shard can still take
        for folder, records in index.items():
            k = 0
            while k < len(records):
                if room == 0:
                    plan.append({"png": []})
                    room = size
                take = min(room, len(records) - k)
                plan[-1]["png"].append([folder, *records.position(k), take])
                k, room = k + take, room - take
        return plan or [self._whole()]

    def _png_items(self, ranges: Sequence[Sequence[Any]]) -> Iterator[Sample | Reject]:
        for folder, start, first_line, count in ranges:
            for image, entry in self._label_rows(folder, start, first_line, count):
                yield self._png_sample(folder, image, entry)

    def _png_sample(self, folder: str, image: str, entry: LabelEntry) -> Sample | Reject:
        path = self.label_files[folder].parent / image
        locator = relative_locator(self.root, path) if image else entry.locator
        try:
            votes = parse_votes(entry.votes)
        except BadVotes as exc:
            return self.reject(entry.locator, "bad_votes", str(exc))
        if not image or not path.is_file():
            return self.reject(
                locator, "missing_image", f"{entry.locator} names {image or 'no image'}, not in {folder}/"
            )
        won = self._winner(locator, image, votes)
        if isinstance(won, Reject):
            return won
        return Sample(
            source=self.name,
            locator=locator,
            label_native=won[0],
            label=won[1],
            split=USAGE_SPLITS[entry.usage],
            split_original=entry.usage,
            path=str(path),
            precropped=True,
            face_box=None if _covers(entry.box, 48, 48) else entry.box,
            extra={"label_votes": vote_distribution(votes)},
        )

    def _unused_label_rows(self) -> Iterator[Reject]:
        """label.csv rows whose image no row of fer2013new.csv names (so no pixels are known)."""
        named = set()
        col = self.columns["image name"]
        for line in iter_lines(self.votes_path, self.votes_header.data_start, 2):
            fields = split_fields(line.text)
            if fields is not None and len(fields) > col:
                named.add(fields[col].decode("latin-1").strip())
        for image, entry in self.label_votes.items():
            if image not in named:
                yield self.reject(
                    entry.locator, "missing_pixels", f"no row of {VOTES_FILE} names {image}, so its pixels are unknown"
                )

    # --- demo ------------------------------------------------------------------------------

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """fer2013.csv (60 faces) + fer2013new.csv + data/FER2013*/label.csv, as in the FER+ repository,
        and the PNGs FER+'s generate_training_data.py writes beside each label.csv (the png layout).

        Votes give each face a clear winner cycling through the 8 emotions, except: rows 5
        and 33 are not faces (empty image name, 10 NF votes), row 12 has a plurality but no
        majority, row 44 is a tie, row 20 is mostly `unknown`. Image names skip the non-faces,
        as FER+'s do.
        """
        n = 60
        write_fer2013_csv(out_dir / "fer2013.csv", faces, n, broken=False)
        rows = [demo_votes(i) for i in range(n)]
        usage = [demo_usage(i, n) for i in range(n)]
        header = "Usage,Image name," + ",".join(VOTE_COLUMNS)
        lines, per_dir, face_no = [header], {d: [] for d in LABEL_DIRS}, 0
        for i, votes in enumerate(rows):
            name = ""
            if votes[-1] < 10:
                name = f"fer{face_no:07d}.png"
                folder = next(d for d, u in LABEL_DIRS.items() if u == usage[i])
                per_dir[folder].append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
                write_image(out_dir / "data" / folder / name, faces.face(i, 48))  # the pixels of fer2013.csv row i
                face_no += 1
            lines.append(f"{usage[i]},{name}," + ",".join(map(str, votes)))
        (out_dir / VOTES_FILE).write_text("\n".join(lines) + "\n")
        for folder, rows_ in per_dir.items():
            path = out_dir / "data" / folder / "label.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(rows_) + "\n")


def demo_votes(i: int) -> list[int]:
    """Ten votes for demo row i (see FERPlus.write_demo)."""
    votes = [0] * len(VOTE_COLUMNS)
    if i in (5, 33):
        votes[-1] = 10  # NF
    elif i == 12:
        votes[:4] = [4, 3, 2, 1]  # plurality: neutral; majority: 4 of 9 kept votes is not above half
    elif i == 44:
        votes[1], votes[2] = 5, 5  # a tie: no winner in either mode
    elif i == 20:
        votes[8], votes[0] = 7, 3  # unknown wins
    else:
        votes[i % 8] = 6 + i % 3
        votes[(i + 3) % 8] += 10 - votes[i % 8] - 1
        votes[8] += 1
    return votes
