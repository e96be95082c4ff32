import json
import re

from click.testing import CliRunner
from support import rows

from fer_data.cli import main


def test_demo_then_curate(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["demo", str(tmp_path / "raw"), "--source", "jaffe"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "raw" / "jaffe" / "KA.AN1.1.tiff").exists()
    params = tmp_path / "p.yaml"
    params.write_text("run:\n  workers: 1\nlabels:\n  target_set: all8\n")
    res = runner.invoke(
        main,
        [
            "curate",
            "--source",
            "jaffe",
            "--root",
            str(tmp_path / "raw" / "jaffe"),
            "--out",
            str(tmp_path / "out"),
            "--params",
            str(params),
        ],
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.stdout[res.stdout.index("{") :])
    assert metrics["read"] == 42 and metrics["curated"] == len(rows(tmp_path / "out" / "curated.parquet"))


def test_curate_needs_a_root(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("sources: {}\n")
    res = CliRunner().invoke(main, ["curate", "--source", "jaffe", "--out", str(tmp_path), "--params", str(params)])
    assert res.exit_code != 0 and "no --root" in res.output


def test_schema_is_documented():
    res = CliRunner().invoke(main, ["schema"])
    assert res.exit_code == 0 and "sample_id" in res.output and "row-major" in res.output
    assert "reason" in CliRunner().invoke(main, ["schema", "--rejects"]).output


def test_reasons_and_params_are_listed_from_the_registry():
    out = CliRunner().invoke(main, ["reasons", "--source", "ckplus"]).output
    assert re.search(r"^between_neutral_and_peak +policy ", out, re.M) and re.search(r"^no_face +no_face ", out, re.M)
    assert "unannotated" not in out  # Aff-Wild2's, not CK+'s
    out = CliRunner().invoke(main, ["params", "--source", "jaffe"]).output.splitlines()
    assert (
        "sources.jaffe.expected_face_fraction: 0.5  [a number in (0, 1]]  face width / image side, for the detection scale"
        in out
    )
    assert any(line.startswith("sources.jaffe.follow_symlinks_outside_root: False") for line in out)  # shared keys
    assert any(
        line.startswith("align.border: 'edge'") for line in CliRunner().invoke(main, ["params"]).output.splitlines()
    )
