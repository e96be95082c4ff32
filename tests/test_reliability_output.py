"""Publishing as one switch, one writer per output, disk failures in one line, same bytes on any machine."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from support import REPO, single_process

from fer_data import curate as engine
from fer_data import output
from fer_data.cli import main
from fer_data.curate import curate
from fer_data.demo import DemoFaces
from fer_data.sources import get

OUTPUTS = ["class_counts.csv", "curated.parquet", "metrics.json", "rejects.parquet"]
#: metrics.json keys that measure the run (time, memory), not the data: the only bytes allowed to differ.
TIMING_KEYS = ("seconds", "images_per_second", "worker_peak_rss_mb")


@pytest.fixture(scope="module")
def jaffe_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "jaffe"
    get("jaffe").write_demo(root, DemoFaces())
    return root


def output_bytes(out: Path) -> dict[str, bytes]:
    """Every file under OUT, metrics.json without its timing keys."""
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "metrics.json":
            m = json.loads(data)
            data = json.dumps({k: v for k, v in m.items() if k not in TIMING_KEYS}, sort_keys=True).encode()
        files[path.relative_to(out).as_posix()] = data
    return files


def consistent(out: Path) -> bool:
    """A complete output set whose metrics describe its tables (what a reader may ever see)."""
    if sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) != OUTPUTS:
        return False
    m = json.loads((out / "metrics.json").read_text())
    return (
        pq.read_table(out / "curated.parquet").num_rows == m["curated"]
        and pq.read_table(out / "rejects.parquet").num_rows == m["rejected"]
    )


def test_outputs_are_the_same_bytes_with_1_and_2_workers_and_on_a_rerun(jaffe_tree, tmp_path):
    curate("jaffe", jaffe_tree, tmp_path / "one", single_process())
    curate("jaffe", jaffe_tree, tmp_path / "two", single_process(run={"workers": 2}))
    curate("jaffe", jaffe_tree, tmp_path / "one", single_process())  # a re-run over its own output
    one, two = output_bytes(tmp_path / "one"), output_bytes(tmp_path / "two")
    assert sorted(one) == sorted(two) and len([n for n in one if n.startswith("curated.parquet/")]) > 1
    assert one == two


def test_the_plan_does_not_depend_on_the_core_count(jaffe_tree, monkeypatch):
    plans = []
    for cores in (1, 2, 64):
        monkeypatch.setattr(os, "cpu_count", lambda c=cores: c)
        plans.append(engine.plan_shards("jaffe", str(jaffe_tree), single_process(run={"workers": 0})))
    assert plans[0] == plans[1] == plans[2]


def test_publish_is_one_switch_and_a_failed_switch_keeps_the_old_set(jaffe_tree, tmp_path, monkeypatch):
    out = tmp_path / "o"
    curate("jaffe", jaffe_tree, out, single_process())
    (out / ".gitignore").write_text("/curated.parquet\n")  # what DVC keeps there: carried over
    before = output_bytes(out)

    def crash(staging, target):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(output, "_exchange", crash)
    with pytest.raises(OSError):
        curate("jaffe", jaffe_tree, out, single_process(labels={"target_set": "basic6"}))
    assert output_bytes(out) == before and consistent(out)
    assert not list(tmp_path.glob(".o.staging-*"))
    monkeypatch.undo()
    m = curate("jaffe", jaffe_tree, out, single_process(labels={"target_set": "basic6"}))
    assert consistent(out) and m["rejected_by_reason"]["label_outside_target_set"] == 6
    assert (out / ".gitignore").read_text() == "/curated.parquet\n" and not (out / output.MARKER).exists()


def test_a_retried_publish_after_the_switch_changes_nothing(jaffe_tree, tmp_path):
    out = tmp_path / "o"
    curate("jaffe", jaffe_tree, out, single_process())
    staging = engine.new_staging(out)
    counts = engine.run_shard("jaffe", str(jaffe_tree), single_process(), {"keys": []}, 0, str(staging))
    totals = engine.Stats.from_dict(counts)
    first = engine.publish(staging, out, totals, {"source": "jaffe"}, ("anger",))
    published = output_bytes(out)
    (out / output.MARKER).write_text(staging.name)  # as if the run died right after the exchange
    assert engine.publish(staging, out, totals, {"source": "jaffe"}, ("anger",)) == first
    assert output_bytes(out) == published and first["curated"] == 0


def test_the_two_rename_fallback_is_repaired_by_the_next_run(jaffe_tree, tmp_path):
    out = tmp_path / "o"
    curate("jaffe", jaffe_tree, out, single_process())
    before = output_bytes(out)
    os.rename(out, output.sibling(out, "old-123"))  # killed between the fallback's two renames
    (tmp_path / ".o.staging-abc").mkdir()  # and a staging folder of a killed run
    output.clean_stale(out)
    assert output_bytes(out) == before and sorted(p.name for p in tmp_path.iterdir() if p.name != ".o.lock") == ["o"]


def test_a_second_run_on_the_same_output_fails_at_once_with_a_clear_message(jaffe_tree, tmp_path):
    out = tmp_path / "o"
    busy = rf"{out} is being written by another fer-data run \(pid {os.getpid()}\)"
    with output.exclusive(out), pytest.raises(output.OutputError, match=busy):
        curate("jaffe", jaffe_tree, out, single_process())
    assert not out.exists()
    curate("jaffe", jaffe_tree, out, single_process())  # the lock went with its holder
    assert consistent(out)


def test_stale_staging_folders_are_cleaned_by_the_next_run(jaffe_tree, tmp_path):
    out = tmp_path / "o"
    for name in (".o.staging-0123456789ab", ".o.old-0123456789ab"):
        (tmp_path / name / "curated.parquet").mkdir(parents=True)
    (out / ".staging-legacy").mkdir(parents=True)  # the layout of earlier versions
    curate("jaffe", jaffe_tree, out, single_process())
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.lock", "o"]
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 kB tmpfs (needs root; skipped elsewhere)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_is_one_clear_message_naming_enospc(jaffe_tree, tiny_disk):
    out = tiny_disk / "o"
    with pytest.raises(output.OutputError, match=r"no space left on device \(ENOSPC\)"):
        curate("jaffe", jaffe_tree, out, single_process())
    assert not out.exists() and not list(tiny_disk.glob(".o.staging-*"))
    result = CliRunner().invoke(
        main, ["curate", "--source", "jaffe", "--root", str(jaffe_tree), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 1 and result.output.strip().startswith("Error: cannot write")
    assert "ENOSPC" in result.output and "Traceback" not in result.output and "Arrow" not in result.output


def test_a_read_only_output_is_one_clear_message_naming_erofs(jaffe_tree, tiny_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    with pytest.raises(output.OutputError, match=r"read-only file system \(EROFS\)"):
        curate("jaffe", jaffe_tree, tiny_disk / "o", single_process())


def test_a_full_disk_seen_by_arrow_in_a_worker_is_reported_with_its_cause(monkeypatch):
    arrow_style = OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")
    with pytest.raises(output.OutputError, match="ENOSPC"), output.disk_errors(Path("x")):
        raise arrow_style
    with pytest.raises(OSError, match="Input/output"), output.disk_errors(Path("x")):
        raise OSError(5, "Input/output error")  # not a disk condition: left as it is


def _descendants(pid: int) -> set[int]:
    """Every live process below PID (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _bigger_jaffe(root: Path) -> Path:
    """The demo JAFFE tree eight times (new serial numbers): a run long enough to be killed mid-way."""
    src = root.parent / "jaffe-x8"
    if not src.exists():
        src.mkdir()
        for path in root.iterdir():
            subj, expr, serial, ext = path.name.split(".")
            for copy in range(8):
                (src / f"{subj}.{expr}.{int(serial) + 1000 * copy}.{ext}").write_bytes(path.read_bytes())
    return src


def test_kill_9_at_random_points_leaves_no_orphan_workers_and_a_whole_output(jaffe_tree, tmp_path):
    """kill -9 of the command: the pool dies with it, OUT is the old set or the new one, the next run works."""
    tree = _bigger_jaffe(jaffe_tree)
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "fer_data.cli", "curate", "--source", "jaffe", "--root", str(tree), "--out", str(out)]
    cmd += ["--workers", "2"]
    rng = random.Random(9)
    pools_killed = 0
    for attempt in range(4):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        family: set[int] = set()
        if attempt:  # a random point once the pool is up (the first kill falls in start-up)
            deadline = time.monotonic() + 120
            while len(family) < 3 and time.monotonic() < deadline and proc.poll() is None:
                family |= _descendants(proc.pid)
                time.sleep(0.1)
        time.sleep(rng.uniform(0.2, 4.0))
        family |= _descendants(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        pools_killed += len(family) >= 3  # forkserver + 2 workers were running
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in family), f"orphans after kill {attempt}: {family}"
        assert not out.exists() or consistent(out)
    assert pools_killed, "no kill hit a running pool (the machine is too slow or too fast for these delays)"
    done = subprocess.run(cmd, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert consistent(out) and not list(tmp_path.glob(".o.staging-*"))


def test_a_concurrent_command_on_a_locked_output_exits_1_with_one_line(jaffe_tree, tmp_path):
    """Two processes: the command meets another run's lock and says so at once (it does not wait)."""
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "fer_data.cli", "curate", "--source", "jaffe", "--root", str(jaffe_tree)]
    with output.exclusive(out):
        started = time.monotonic()
        done = subprocess.run([*cmd, "--out", str(out)], env=env, capture_output=True, text=True, timeout=120)
        waited = time.monotonic() - started
    assert done.returncode == 1 and not out.exists()
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: {out} is being written by another fer-data run (pid {os.getpid()}); wait for it to finish or stop it"
    )
    assert "Traceback" not in done.stderr and waited < 60
