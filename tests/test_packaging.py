"""The package as users get it: the wheel's contents and metadata, one version, types that mypy sees, documents.

The wheel is built once per session from this tree (hatchling, which the test extra installs, without build
isolation: no network). mypy runs against the wheel's unpacked contents through a Python without this tree's
editable install on its path, so it can only see the types the wheel ships.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

import indexdiff
from indexdiff.cli import main

ROOT = Path(__file__).resolve().parent.parent
VERSION = indexdiff.__version__


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"building the wheel needs hatchling: pip install -e '.[test]'\n{proc.stderr}"
    (built,) = out.glob("indexdiff-*.whl")
    return built


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        return email.parser.Parser().parsestr(z.read(f"indexdiff-{VERSION}.dist-info/METADATA").decode())


def test_wheel_ships_the_grammar_the_types_marker_and_the_license(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        license_text = z.read(f"indexdiff-{VERSION}.dist-info/licenses/LICENSE").decode()
        grammar = z.read("indexdiff/grammar/indexdiff.lark").decode()
        matrix_grammar = z.read("indexdiff/grammar/matrix.lark").decode()
    assert "indexdiff/py.typed" in names
    assert "indexdiff/__init__.py" in names and "indexdiff/cli.py" in names
    assert grammar == (ROOT / "grammar" / "indexdiff.lark").read_text(encoding="utf-8")
    assert matrix_grammar == (ROOT / "grammar" / "matrix.lark").read_text(encoding="utf-8")
    assert license_text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License") and "Copyright (c) 2026 the indexdiff authors" in license_text
    assert not any(n.startswith(("tests/", "benchmarks/", "examples/")) for n in names)


def test_wheel_metadata_describes_the_project(wheel):
    meta = _metadata(wheel)
    assert meta["Name"] == "indexdiff"
    assert meta["Version"] == VERSION
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.10"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Documentation", "Repository", "Issues", "Changelog"}
    assert all(u.startswith("https://") for u in urls.values())
    assert urls["Changelog"].endswith("/CHANGELOG.md")
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert "Topic :: Scientific/Engineering :: Mathematics" in classifiers
    # the License-Expression replaces the deprecated License :: classifiers (PEP 639); they must not both appear
    assert not [c for c in classifiers if c.startswith("License ::")]
    pattern = re.compile(r"Programming Language :: Python :: (\d)\.(\d+)")
    versions = sorted((int(m[1]), int(m[2])) for c in classifiers if (m := pattern.fullmatch(c)))
    assert versions == [(3, 10), (3, 11), (3, 12), (3, 13)]  # from Requires-Python's 3.10 on, no gap
    assert meta["Author"] == "the indexdiff authors" and "einsum" in meta["Keywords"].split(",")


def test_the_version_is_written_in_one_place(capsys):
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?", VERSION)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^dynamic = \["version"\]', pyproject, flags=re.M)  # hatch reads it from __init__.py
    files = [ROOT / "pyproject.toml", *(ROOT / "indexdiff").glob("*.py")]
    assert [p.name for p in files if f'"{VERSION}"' in p.read_text(encoding="utf-8")] == ["__init__.py"]
    assert importlib.metadata.version("indexdiff") == VERSION  # reinstall (pip install -e .) after changing it
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"indexdiff {VERSION}"


def test_changelog_has_a_section_for_this_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert headings[0] == "Unreleased"
    assert headings[1] == VERSION  # the newest version section is the package's version
    assert "0.1.0" in headings
    body = text.split(f"## [{VERSION}]", 1)[1]
    assert "### Added" in body and "ix.grad" in body


def test_documents_stand_alone():
    """No document of the repository points outside it (the README once named a design document it lacked)."""
    outside = re.compile(r"\.\./shared|(?<![\w-])shared/|DESIGN\.md")
    documents = [ROOT / "README.md", ROOT / "CHANGELOG.md", *ROOT.glob("examples/**/*.md"), *ROOT.glob("docs/**/*.md")]
    documents += sorted((ROOT / "indexdiff").glob("*.py"))  # docstrings are documentation too
    found = [f"{p.relative_to(ROOT)}: {m[0]}" for p in documents for m in outside.finditer(p.read_text("utf-8"))]
    assert found == []
    assert outside.search("see ../shared/DESIGN.md")  # the pattern finds what it is meant to


USER_FILE = """\
import numpy as np

import indexdiff as ix

e = ix.parse("x_i A_ij x_j")
assert isinstance(e, ix.Expr)
g: ix.Expr = ix.diff(e, "x")
h: ix.Expr = ix.diff(g, "x_l")
free: tuple[str, ...] = h.free
value = ix.evaluate(g, {"A": np.eye(3), "x": np.ones(3)})
f: ix.Compiled = ix.compile(e, g, h)
report: ix.CheckReport = ix.check(e, "x")
p = ix.parse("h_bi = tanh(W_ij x_bj); L = sum_bi(h_bi^2)")
assert isinstance(p, ix.Program)
gp: ix.Program = ix.grad(p, "L", wrt=["W"])
dp: ix.Program = ix.diff(p, "W")
code: str = ix.codegen(e, "x", format="einsum")
cost: ix.Cost = ix.cost(h, {"i": 3, "j": 3, "k": 3, "l": 3})
try:
    ix.parse("x_i x_i x_i")
except ix.IndexDiffError as err:
    message: str = str(err)
"""

WRONG_FILE = """\
import indexdiff as ix

e = ix.parse("x_i")
assert isinstance(e, ix.Expr)
x: int = ix.parse("x_i")
g = ix.diff(e, 3)
"""


def _mypy(site: Path, tmp_path: Path) -> tuple[int, str]:
    """mypy --strict on the two user files, seeing indexdiff only as unpacked in ``site`` (and numpy)."""
    python = tmp_path / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():  # a bare interpreter: no site-packages .pth puts this tree on its path
        venv.EnvBuilder(with_pip=False).create(tmp_path / "venv")
    numpy_home = Path(np.__file__).resolve().parent.parent  # a plain path entry: its .pth files are not run
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(numpy_home)])
    cmd = [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--python-executable", str(python)]
    cmd += ["--cache-dir", str(tmp_path / "cache"), "user.py", "wrong.py"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_mypy_sees_the_types_the_wheel_ships(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    (tmp_path / "user.py").write_text(USER_FILE, encoding="utf-8")
    (tmp_path / "wrong.py").write_text(WRONG_FILE, encoding="utf-8")
    status, out = _mypy(site, tmp_path)
    assert status == 1, out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert not [e for e in errors if e.startswith("user.py")], out  # well-typed use of the API passes --strict
    assert len(errors) == 2, out
    assert errors[0].startswith("wrong.py:5:") and "Expr | Program" in errors[0] and "[assignment]" in errors[0]
    assert errors[1].startswith("wrong.py:6:") and "[call-overload]" in errors[1]
    # the control: the same wheel without its py.typed marker is untyped to mypy
    (site / "indexdiff" / "py.typed").unlink()
    status, out = _mypy(site, tmp_path)
    assert status == 1 and "[import-untyped]" in out and "user.py" in out, out
    assert "Expr | Program" not in out
    # and the user file does what it says at run time
    subprocess.run([sys.executable, "user.py"], cwd=tmp_path, check=True, capture_output=True, timeout=120)
