"""train/ (and the GPU check script) run on a stock PyTorch image: torch, numpy, pyarrow, PyYAML and the standard library only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ALLOWED = {"torch", "numpy", "pyarrow", "yaml", "train"}
TRAIN = Path(__file__).resolve().parents[1] / "train"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_train_imports_only_the_stock_image_stack():
    files = sorted(TRAIN.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        foreign = _imports(path) - ALLOWED - set(sys.stdlib_module_names)
        assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_the_gpu_check_script_needs_nothing_more():
    script = TRAIN.parent / "bench" / "gpu_train_check.py"
    assert not _imports(script) - ALLOWED - set(sys.stdlib_module_names)


def test_no_module_under_train_is_left_out_of_the_check():
    assert not [p for p in TRAIN.rglob("*.py") if p.parent != TRAIN]  # the check above globs one level
