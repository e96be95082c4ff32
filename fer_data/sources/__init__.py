"""Registry of dataset sources: `--source NAME` -> the class that reads that layout.

Entries are import paths, so listing the sources (CLI help) does not import every parser and
its dependencies. The class is all the rest of the code needs to know about a dataset: its
params schema (`params_model`, read by fer_data.params), its label tables (`label_tables`,
fer_data.labels.tables), its reject reasons (`reasons`, read by the validator and the flows
through `reasons()`) and its demo tree (`write_demo`, fer_data.demo).
"""

from __future__ import annotations

import importlib

from fer_data.records import Reason, reason_table
from fer_data.sources.base import Reject, Sample, Source

REGISTRY: dict[str, str] = {
    "fer2013": "fer_data.sources.fer2013:FER2013",
    "ferplus": "fer_data.sources.ferplus:FERPlus",
    "jaffe": "fer_data.sources.jaffe:JAFFE",
    "ckplus": "fer_data.sources.ckplus:CKPlus",
    "rafdb": "fer_data.sources.rafdb:RAFDB",
    "affectnet": "fer_data.sources.affectnet:AffectNet",
    "folder": "fer_data.sources.folder:ClassFolders",
    "tfeid": "fer_data.sources.tfeid:TFEID",
    "affwild2": "fer_data.sources.affwild2:AffWild2",
}


def names() -> list[str]:
    return sorted(REGISTRY)


def get(name: str) -> type[Source]:
    """The Source class registered under `name`."""
    try:
        module, attr = REGISTRY[name].split(":")
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(names())}") from None
    return getattr(importlib.import_module(module), attr)


def reasons(name: str | None = None) -> dict[str, Reason]:
    """The reject reasons a run of source NAME can give (of every registered source when None)."""
    chosen = [name] if name is not None else names()
    return reason_table(reason for n in chosen if n in REGISTRY for reason in get(n).reasons)


__all__ = ["REGISTRY", "Reject", "Sample", "Source", "get", "names", "reasons"]
