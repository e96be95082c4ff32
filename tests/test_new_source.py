"""A new dataset is one module plus one registry line: a tiny source defined here runs through demo,
params validation, curation and the validation suites without an edit anywhere else."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from fer_data import labels, params, sources
from fer_data import validate as gxv
from fer_data.curate import curate
from fer_data.demo import DemoFaces, write_demo, write_image
from fer_data.params import Float, Int, param
from fer_data.records import Kind, Reason
from fer_data.sources.base import KeyedSource, Reject, Sample, SourceParams, relative_locator

#: A file is CODE_NN.png; the code is the label, `p_` files are withheld by the dataset's own policy.
NAME = re.compile(r"^(?P<code>[hsx])_(?P<n>\d+)\.png$")


class TinyParams(SourceParams):
    expected_face_fraction: Float = param(0.5, "a number in (0, 1]", "face width / image side", gt=0, le=1)
    max_files: Int = param(0, "an integer >= 0 (0: all)", "read at most this many files", ge=0)


class Tiny(KeyedSource):
    """`happy/h_01.png`-style files: one code letter, the label."""

    name = "tiny"
    params_model = TinyParams
    label_tables: ClassVar = {"codes": {"h": labels.HAPPINESS, "s": labels.SADNESS, "x": labels.NOT_AN_EMOTION}}
    reasons = (Reason("withheld", Kind.POLICY, "the dataset's authors withhold this image from training"),)

    def keys(self) -> Iterator[str]:
        found = sorted(relative_locator(self.root, p) for p in self.root.glob("*.png"))
        yield from found[: self.params["max_files"] or None]

    def items(self, key: str) -> Iterator[Sample | Reject]:
        if key.startswith("p_"):
            yield self.reject(key, "withheld", "p_ files are withheld")
            return
        m = NAME.match(key)
        if not m:
            yield self.reject(key, "unparseable_name", "expected h_01.png, s_02.png or x_03.png")
            return
        code = m["code"]
        yield Sample(
            source=self.name,
            locator=key,
            label_native=code,
            label=labels.to_canonical(self.label_tables["codes"], code),
            path=str(self.root / key),
            expected_face_fraction=self.params["expected_face_fraction"],
        )

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        for i in range(6):
            write_image(out_dir / f"{'hs'[i % 2]}_{i:02d}.png", faces.portrait(i, 160, face_fraction=0.5))
        write_image(out_dir / "x_06.png", faces.portrait(6, 160))
        write_image(out_dir / "p_07.png", faces.portrait(7, 160))
        write_image(out_dir / "tiny_08.png", faces.portrait(8, 160))


@pytest.fixture
def tiny_registered(monkeypatch):
    monkeypatch.setitem(sources.REGISTRY, "tiny", f"{__name__}:Tiny")


def test_a_source_defined_here_runs_end_to_end(tiny_registered, tmp_path):
    roots = write_demo(tmp_path / "raw", ["tiny"])
    raw = {
        "labels": {"target_set": "all8"},
        "run": {"workers": 1},
        "sources": {"tiny": {"root": str(roots["tiny"]), "expected_face_fraction": 0.5}},
    }
    p = params.resolve(raw)
    metrics = curate("tiny", roots["tiny"], tmp_path / "curated" / "tiny", p)
    assert metrics["read"] == 9 and metrics["curated"] >= 5
    assert metrics["rejected_by_reason"]["withheld"] == 1 and metrics["rejected_by_reason"]["not_an_emotion"] == 1
    assert metrics["rejected_by_reason"]["unparseable_name"] == 1

    report = gxv.validate_tables([gxv.TableRef.from_dir(tmp_path / "curated" / "tiny")], p, raw, tmp_path / "report")
    (result,) = report.sources
    # `withheld` is the source's own policy reason: outside the reject rate, like not_an_emotion.
    data_rejects = 1 + metrics["read"] - metrics["curated"] - 3
    assert result.rates["reject_rate"] == pytest.approx(data_rejects / (metrics["read"] - 2), abs=1e-4)
    assert "tiny.codes" in labels.tables()


def test_its_params_are_validated_from_its_own_schema(tiny_registered):
    with pytest.raises(params.ParamsError, match=r"sources\.tiny\.max_files: must be an integer >= 0 \(0: all\)"):
        params.resolve({"sources": {"tiny": {"max_files": -2}}})
    with pytest.raises(params.ParamsError, match=r"sources\.tiny\.max_file: unknown key; known: root, "):
        params.resolve({"sources": {"tiny": {"max_file": 2}}})
