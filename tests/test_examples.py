"""The examples run and verify themselves (each exits non-zero when a check fails)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent / "examples"
EXAMPLES = sorted(p for p in [*ROOT.glob("*.py"), *ROOT.glob("mlp/*.py")] if not p.name.startswith("_"))
#: Examples that need an optional extra, by the module the extra installs (the test extra includes them).
NEEDS = {"out_of_core.py": "distributed"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    needed = NEEDS.get(script.name)
    if needed and importlib.util.find_spec(needed) is None:
        pytest.skip(f"{script.name} needs {needed}: pip install '.[dask]'")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_there_are_examples():
    names = {p.name for p in EXAMPLES}
    assert names >= {"quadratic_form.py", "least_squares.py", "logistic_regression.py", "train.py", "seed_paper.py"}
    assert names >= {"attention.py", "gaussian.py", "layer_norm.py", "newton_cg.py", "out_of_core.py"}
