"""The dependency rules of the code base, read from the source (ast), and the CLI's import cost.

pipelines builds on fer_data, never the reverse; the records and the face pipeline sit below
the sources (imageio and faces import Sample/Reject from fer_data.records).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import REPO

from fer_data import cli


def imports_of(path: Path) -> set[str]:
    """Every module a file imports (absolute names; function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def module_files(package: str) -> dict[str, Path]:
    root = REPO / package
    return {".".join(p.relative_to(REPO).with_suffix("").parts): p for p in sorted(root.rglob("*.py"))}


def edges(importer_prefix: str, imported_prefix: str) -> list[str]:
    out = []
    for name, path in module_files(importer_prefix.split(".")[0]).items():
        if name == importer_prefix or name.startswith(importer_prefix + "."):
            out += [
                f"{name} -> {m}"
                for m in imports_of(path)
                if m == imported_prefix or m.startswith(imported_prefix + ".")
            ]
    return sorted(out)


def test_the_library_never_imports_orchestration():
    assert edges("fer_data", "pipelines") == []
    assert edges("fer_data", "prefect") == []


@pytest.mark.parametrize("lower", ["fer_data.faces", "fer_data.imageio", "fer_data.records"])
def test_lower_layers_do_not_import_sources(lower):
    assert edges(lower, "fer_data.sources") == []


def test_the_edge_finder_sees_edges():
    assert "pipelines.curate_flow -> fer_data.curate" in edges("pipelines.curate_flow", "fer_data.curate")


def test_flow_commands_come_from_the_entry_point_group():
    commands = cli.plugin_commands()
    assert {"flow", "serve", "run-demo"} <= set(commands)
    assert all(target.startswith("pipelines.") for target in commands.values())
    res = CliRunner().invoke(cli.main, ["flow", "--help"])
    assert res.exit_code == 0 and "curate" in res.output and "validate" in res.output
    assert "run-demo" in CliRunner().invoke(cli.main, ["--help"]).output


def test_curate_runs_without_importing_prefect(tmp_path):
    """`fer-data curate` end to end in a fresh interpreter, with the project's params.yaml: no Prefect, Dask or GX.

    The orchestration and schedules blocks are still checked: their owners (pipelines.runners,
    pipelines.serve, found through entry points) import Prefect only inside their functions.
    """
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    script = f"""
import json, sys
from fer_data.cli import main
for args in (["demo", {str(tmp_path / "raw")!r}, "--source", "jaffe"],
             ["curate", "--source", "jaffe", "--root", {str(tmp_path / "raw" / "jaffe")!r},
              "--out", {str(tmp_path / "out")!r}, "--workers", "1", "--params", {str(params)!r}]):
    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
heavy = ("prefect", "dask", "distributed", "great_expectations", "dvc")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=True
    ).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []
    assert (tmp_path / "out" / "metrics.json").exists()


def test_a_command_whose_package_is_missing_fails_in_one_line(monkeypatch):
    monkeypatch.setattr(cli, "plugin_commands", lambda: {"report": "not_installed_pkg.cli:report"})
    res = CliRunner().invoke(cli.main, ["report"])
    assert res.exit_code == 1 and res.output.startswith("Error: `fer-data report` needs not_installed_pkg.cli:report")
    assert CliRunner().invoke(cli.main, ["curate", "--help"]).exit_code == 0  # the library's own commands still work
