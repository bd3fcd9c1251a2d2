"""The symbolic path imports no numpy (the command line starts fast: benchmarks/coldstart.py), the lazy names of
the package are the real functions, and the parser's cached tables are private, atomic and parse the same."""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import indexdiff as ix

NUMERIC = ("numpy", "opt_einsum")


def _modules_after(code: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; return its output (``out``) and the top-level modules it imported."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json as _json, sys as _sys
        print(_json.dumps(sorted({m.partition(".")[0] for m in _sys.modules})))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
    )
    assert proc.returncode == 0, proc.stderr
    *out, modules = proc.stdout.splitlines()
    return {"out": "\n".join(out), "modules": set(json.loads(modules))}


def test_parse_diff_grad_print_import_no_numpy():
    run = _modules_after(
        """
        import indexdiff as ix
        e = ix.parse("x_i A_ij x_j")
        print(ix.diff(e, "x"), "|", ix.diff(e, "x", "x"), "|", ix.diff(ix.parse("softmax_j(z_ij) + inv(A_ij)"), "A"))
        p = ix.parse("h_bi = tanh(W_ij x_bj); L = sum_bi(h_bi^2)")
        print(ix.grad(p, "L", wrt=["W"]).statements[-1], "|", ix.diff(p, "x").statements[-1])
        """
    )
    assert not run["modules"] & set(NUMERIC), run["modules"] & set(NUMERIC)
    lines = str(run["out"]).split(" | ")
    assert lines[0] == "A_ik x_i + A_kj x_j" and lines[1].startswith("A_kl + A_lk")


@pytest.mark.parametrize(
    "argv",
    [
        ["x_i A_ij x_j", "--wrt", "x"],
        ["x_i A_ij x_j", "--wrt", "x,x", "--wrt", "A"],
        ["sum_i(log(1 + exp(-y_i X_ij w_j)))"],
        ["-f", "-", "--wrt", "W", "--wrt", "x"],  # a program: the backward pass
    ],
)
def test_command_line_symbolic_path_imports_no_numpy(argv):
    program = "z_bi = W_ij x_bj\nh_bi = sigmoid(z_bi)\nL = sum_bi(h_bi^2)\n"
    run = _modules_after(
        f"""
        import io, sys
        sys.stdin = io.StringIO({program!r})
        from indexdiff.cli import main
        assert main({argv!r}) == 0
        """
    )
    assert not run["modules"] & set(NUMERIC), run["modules"] & set(NUMERIC)
    assert run["out"]  # the result was printed


def test_computing_imports_numpy_and_lazy_names_are_the_functions():
    # the subprocess guard above would pass vacuously if the check were wrong: computing does import numpy
    run = _modules_after(
        "import indexdiff as ix, numpy as np; print(ix.evaluate(ix.parse('x_i x_i'), {'x': np.ones(3)}))"
    )
    assert "numpy" in run["modules"] and run["out"] == "3.0"
    # importing the submodules binds them on the package; ix.compile etc. must stay the functions
    names = ("check", "compile", "cost", "evaluate", "codegen", "custom")
    modules = {name: importlib.import_module(f"indexdiff.{name}") for name in names}
    for name, module in list(modules.items())[:-1]:
        assert getattr(ix, name) is getattr(module, name) and callable(getattr(ix, name))
    assert ix.Compiled is modules["compile"].Compiled and ix.CheckReport is modules["check"].CheckReport
    assert ix.function is modules["custom"].function
    assert set(ix.__all__) <= set(dir(ix))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        _ = ix.nonsense  # type: ignore[attr-defined]


CORPUS = [
    "x_i A_ij x_j",
    "sum_i(log(1 + exp(-y_i X_ij w_j)))",
    "z_bi = W_ij x_bj + c_i; L = sum_bi((sigmoid(z_bi) - t_bi)^2)",
    "f_ij = softmax_j(S_ij) + mean_k(y_ijk) - 0.5 x_i^-2 / (1 + δ_ll)  # comment",
    "A_{row,col} x_{col,}",
]


def _fresh(env: dict[str, str]) -> str:
    code = f"import indexdiff as ix\nfor t in {CORPUS!r}: print(repr(ix.parser.parse_syntax(t)), ix.parse(t))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env={**os.environ, **env}
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_parser_tables_cached_privately_and_parse_the_same(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    first = _fresh(env)  # builds the tables and keeps them
    files = list((tmp_path / "indexdiff").iterdir())
    assert [f.name.startswith("parser-") and f.suffix == ".pickle" for f in files] == [True]
    assert stat.S_IMODE(files[0].stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((tmp_path / "indexdiff").stat().st_mode) & 0o077 == 0
    before = files[0].stat().st_mtime_ns
    assert _fresh(env) == first  # loads them
    assert files[0].stat().st_mtime_ns == before
    # built without a cache (XDG_CACHE_HOME is a file: no directory can be made): the same parses
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert _fresh({"XDG_CACHE_HOME": str(blocker)}) == first


def test_parser_tables_loaded_and_a_writable_or_linked_file_never(tmp_path, monkeypatch):
    # A file someone else could have written (group/world-writable, or a link) is not unpickled: the tables are
    # built again and replace it. A private file is loaded (Lark does not build the tables), and parses the same.
    import lark

    from indexdiff import larkcache
    from indexdiff.parser import _Build, _grammar_text, _Lexer

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    options = {"lexer": _Lexer, "transformer": _Build(), "maybe_placeholders": False}
    reference = repr(lark.Lark(_grammar_text(), parser="lalr", **options).parse(CORPUS[2]))
    larkcache.cached_lark(_grammar_text(), **options)
    (path,) = (tmp_path / "indexdiff").iterdir()
    marker = tmp_path / "pwned"
    payload = f"exec(\"open({str(marker)!r}, 'w').close()\")"
    evil = b"c__builtin__\neval\n(V" + payload.encode() + b"\ntR."
    for plant in ("writable", "link", "damaged", "another key"):
        if plant == "writable":
            path.write_bytes(evil)
            path.chmod(0o666)
        elif plant == "link":
            path.unlink()
            (tmp_path / "target").write_bytes(evil)
            path.symlink_to(tmp_path / "target")
        elif plant == "damaged":
            path.write_bytes(path.read_bytes()[:-100])
        else:  # tables under this name for another key (a grammar whose checksum collides): not used
            raw = path.read_bytes()
            stream = io.BytesIO(raw)
            pickle.load(stream)
            path.write_bytes(pickle.dumps("another grammar") + raw[stream.tell() :])
        built = []
        with monkeypatch.context() as m:  # each planted file is passed over: the tables are built again
            init = lark.Lark.__init__
            m.setattr(lark.Lark, "__init__", lambda *a, b=built, i=init, **k: b.append(1) or i(*a, **k))
            parser = larkcache.cached_lark(_grammar_text(), **options)
        assert built == [1], plant
        assert not marker.exists()
        assert repr(parser.parse(CORPUS[2])) == reference
        assert path.is_file() and not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
        with monkeypatch.context() as m:  # the file written is loaded: building is not needed
            m.setattr(lark.Lark, "__init__", lambda *a, **k: pytest.fail("the tables were built, not loaded"))
            assert repr(larkcache.cached_lark(_grammar_text(), **options).parse(CORPUS[2])) == reference
    assert sorted(p.name for p in (tmp_path / "indexdiff").iterdir()) == [path.name]  # no temporary file left
    # the planted payload is live: unpickled, it would have run
    pickle.loads(evil)
    assert marker.exists()


def test_parser_tables_a_shared_directory_is_not_used(tmp_path, monkeypatch):
    shared = tmp_path / "indexdiff"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from indexdiff import larkcache

    assert larkcache.cache_directory() is None
    shared.chmod(0o700)
    assert larkcache.cache_directory() == shared
    assert Path(str(shared)).is_dir()


def test_importing_a_submodule_leaves_the_public_functions_in_place():
    # indexdiff.compile (and check, cost, codegen, evaluate) are functions, whatever submodules were imported.
    code = (
        "import importlib, indexdiff as ix\n"
        "for m in ('check', 'compile', 'cost', 'codegen', 'evaluate', 'custom', 'data'):\n"
        "    importlib.import_module('indexdiff.' + m)\n"
        "print(all(callable(getattr(ix, n)) and not isinstance(getattr(ix, n), type(ix))"
        " for n in ('check', 'compile', 'cost', 'codegen', 'evaluate', 'function')))\n"
    )
    assert _modules_after(code)["out"].strip() == "True"
