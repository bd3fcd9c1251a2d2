"""A non-editable install into a fresh virtual environment ships the grammar: the CLI runs outside the repo."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(os.environ.get("INDEXDIFF_SKIP_INSTALL_TEST") == "1", reason="INDEXDIFF_SKIP_INSTALL_TEST=1")
def test_wheel_install_runs_cli_from_elsewhere(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=True).create(env_dir)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(ROOT)],
        check=True,
        cwd=tmp_path,
        capture_output=True,
    )
    cli = env_dir / "bin" / "indexdiff"
    proc = subprocess.run(
        [str(cli), "x_i A_ij x_j", "--wrt", "x"], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "A_ik x_i + A_kj x_j"
    where = subprocess.run(
        [str(python), "-c", "import indexdiff.parser as p; print(p.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert str(env_dir) in where  # the installed copy, not the source tree
    grammar = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.resources as r; "
            "print(r.files('indexdiff').joinpath('grammar').joinpath('indexdiff.lark').is_file())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert grammar.strip() == "True"
