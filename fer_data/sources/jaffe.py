"""JAFFE: the Japanese Female Facial Expression database, as distributed.

Layout: one flat folder of 213 `.tiff` files, 256x256, named `KA.AN1.39.tiff` =
subject (2 letters) . expression code + repeat number . serial number. Expression codes:
AN DI FE HA NE SA SU. Some files are palette TIFFs (PIL mode "P"), which fer_data.imageio
decodes through their palette. JAFFE has no official split.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from fer_data import labels
from fer_data.demo import DemoFaces, write_image
from fer_data.params import Float, param
from fer_data.sources.base import KeyedSource, Reject, Sample, SourceParams, relative_locator

LABELS = {
    "AN": labels.ANGER,
    "DI": labels.DISGUST,
    "FE": labels.FEAR,
    "HA": labels.HAPPINESS,
    "NE": labels.NEUTRAL,
    "SA": labels.SADNESS,
    "SU": labels.SURPRISE,
}

NAME = re.compile(r"^(?P<subject>[A-Za-z]{2})\.(?P<expr>[A-Za-z]{2})(?P<repeat>\d+)\.(?P<serial>\d+)\.tiff?$")


class JAFFEParams(SourceParams):
    expected_face_fraction: Float = param(
        0.5, "a number in (0, 1]", "face width / image side, for the detection scale", gt=0, le=1
    )


class JAFFE(KeyedSource):
    name = "jaffe"
    # Faces fill about half of the 256 px frame.
    params_model = JAFFEParams
    label_tables: ClassVar[Mapping[str, Mapping]] = {"codes": LABELS}

    def keys(self) -> Iterator[str]:
        files = (p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in (".tif", ".tiff"))
        yield from sorted(relative_locator(self.root, p) for p in files)

    def items(self, key: str) -> Iterator[Sample | Reject]:
        m = NAME.match(Path(key).name)
        if not m:
            yield self.reject(key, "unparseable_name", "expected SUBJECT.EXPRn.SERIAL.tiff, e.g. KA.AN1.39.tiff")
            return
        code = m["expr"].upper()
        try:
            label = labels.to_canonical(LABELS, code)
        except labels.UnknownLabel as exc:
            yield self.reject(key, "unknown_label", f"{exc} (JAFFE codes: {', '.join(LABELS)})")
            return
        yield Sample(
            source=self.name,
            locator=key,
            label_native=code,
            label=label,
            subject_id=m["subject"].upper(),
            path=str(self.root / key),
            expected_face_fraction=float(self.params["expected_face_fraction"]),
        )

    @classmethod
    def write_demo(cls, out_dir: Path, faces: DemoFaces) -> None:
        """3 subjects x 7 expressions x 2 repeats; every third subject's files are palette TIFFs."""
        serial = 1
        for s, subject in enumerate(("KA", "KL", "KM")):
            for e, code in enumerate(LABELS):
                for repeat in (1, 2):
                    grey = faces.portrait(s * 14 + e * 2 + repeat, 256, face_fraction=0.5)
                    path = out_dir / f"{subject}.{code}{repeat}.{serial}.tiff"
                    if subject == "KM":
                        from PIL import Image

                        path.parent.mkdir(parents=True, exist_ok=True)
                        Image.fromarray(grey).convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(path)
                    else:
                        write_image(path, grey)
                    serial += 1
