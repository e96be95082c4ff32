"""What other packages add to the library, found through entry-point groups, never imported by name here.

`pipelines` (Prefect flows) and `train` build on fer_data; they declare in pyproject.toml the
`fer-data` subcommands they add (`fer_data.commands`) and the params.yaml blocks they own
(`fer_data.params`), so the library can offer and validate them without depending on them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from fer_data.env import is_checkout

COMMANDS = "fer_data.commands"
PARAMS_BLOCKS = "fer_data.params"


def declared(group: str) -> dict[str, str]:
    """Entry name -> "module:attr" declared in GROUP (a copy: callers may extend it)."""
    return dict(_declared(group))


@cache
def _declared(group: str) -> dict[str, str]:
    """Entry name -> "module:attr" declared in GROUP, read once a process (installs do not change under it).

    Installed metadata first; in a source checkout its pyproject.toml wins, so an entry added
    there works before the editable install's metadata is rebuilt (run.py reinstalls on change).
    """
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=group)}
    checkout = Path(__file__).resolve().parents[1]
    if is_checkout(checkout):
        with open(checkout / "pyproject.toml", "rb") as fh:
            found |= tomllib.load(fh).get("project", {}).get("entry-points", {}).get(group, {})
    return found


def load(target: str) -> Any:
    """The object a "module:attr" path names (ImportError / AttributeError when it is not there)."""
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj
