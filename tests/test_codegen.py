"""Code generation: einsum text, LaTeX, and a standalone Python module that compiles, checks itself and agrees
with ix.compile."""

from __future__ import annotations

import importlib.util
import py_compile
import re
import subprocess
import sys

import numpy as np
import pytest

import indexdiff as ix
from indexdiff.check import random_arrays
from indexdiff.cli import main

CASES = [
    ("sum_i(log(1 + exp(-y_i X_ij w_j)))", ("w", "w,w")),
    ("x_i A_ij x_j", ("x", "A", "x,x")),
    ("h_bi = tanh(W_ij x_bj + c_i)", ("W", "c,W")),
    ("in_i A_{i,row} x_{row,} + np_i", ("x", "A")),  # Python keywords and taken names as tensor names
]


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("text", "wrt"), CASES)
def test_python_module_compiles_checks_itself_and_matches_compile(tmp_path, text, wrt):
    e = ix.parse(text)
    path = tmp_path / "generated.py"
    path.write_text(ix.codegen(e, *wrt), encoding="utf-8")
    py_compile.compile(str(path), doraise=True)
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count(": ok") == len(wrt)
    module = _load(path)
    arrays = random_arrays(e)
    names = {n: (n + "_" if n in ("in", "np") else n) for n in arrays}
    got = module.evaluate(**{names[n]: a for n, a in arrays.items()})
    chains = [w.split(",") for w in wrt]
    want = ix.compile(e, *(ix.diff(e, *c) for c in chains))(**arrays)
    for g, w in zip(got, want):
        assert np.allclose(g, w, rtol=1e-10, atol=1e-12)


def test_python_module_checks_shapes(tmp_path):
    path = tmp_path / "quad.py"
    path.write_text(ix.codegen(ix.parse("x_i A_ij x_j"), "x"), encoding="utf-8")
    module = _load(path)
    with pytest.raises(ValueError, match="index"):
        module.evaluate(x=np.ones(3), A=np.ones((3, 4)))
    with pytest.raises(ValueError, match="needs 2 axes"):
        module.evaluate(x=np.ones(3), A=np.ones(3))


def test_python_module_has_no_user_text_outside_identifiers_and_comments():
    # The comment after '#' is user text the parser drops; names are validated by the grammar.
    code = ix.codegen(ix.parse("x_i A_ij x_j  # __import__('os').system('echo pwned')"), "x")
    assert "pwned" not in code and "__import__" not in code


def test_latex():
    e = ix.parse("x_i A_ij x_j")
    lines = ix.codegen(e, "x", "x,x", format="latex").splitlines()
    assert lines[0] == "f = x_{i} A_{ij} x_{j}"
    assert lines[1] == r"\frac{\partial f}{\partial x_{k}} = A_{ik} x_{i} + A_{kj} x_{j}"
    assert lines[2] == r"\frac{\partial^{2} f}{\partial x_{k} \partial x_{l}} = A_{kl} + A_{lk}"
    assert r"\frac{u_{i}}{v_{i}}" in ix.codegen(ix.parse("u_i / v_i"), format="latex")
    assert ix.parse("sigmoid(W_ij x_j)")._repr_latex_() == r"$$\sigma\left(W_{ij} x_{j}\right)$$"


def test_einsum_format_lines_evaluate(rng):
    e = ix.parse("sum_i((A_ij x_j - b_i)^2)")
    code = ix.codegen(e, "x", "x,x", format="einsum").splitlines()
    A, x, b = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=4)
    env = {"np": np, "A": A, "x": x, "b": b}
    values = [eval(line, env) for line in code]  # noqa: S307 - our own generated code
    assert np.isclose(values[0], np.sum((A @ x - b) ** 2))
    assert np.allclose(values[1], 2 * A.T @ (A @ x - b))
    assert np.allclose(values[2], 2 * A.T @ A)


def test_cli_python_and_latex_formats(capsys, tmp_path):
    assert main(["x_i A_ij x_j", "--wrt", "x,x", "--format", "python"]) == 0
    path = tmp_path / "quad.py"
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    assert subprocess.run([sys.executable, str(path)], capture_output=True, check=False).returncode == 0
    assert main(["x_i A_ij x_j", "--wrt", "x", "--format", "latex"]) == 0
    assert re.search(r"\\frac\{\\partial f\}", capsys.readouterr().out)


def test_unknown_format():
    with pytest.raises(ix.IndexDiffError, match="unknown format"):
        ix.codegen(ix.parse("x"), format="fortran")


def test_program_module_has_forward_and_gradients_that_check_themselves(tmp_path, rng):
    text = "z1_bi = W1_ij x_bj + b1_i\nh1_bi = tanh(z1_bi)\nz2_b = w2_j h1_bj + b2\nL = sum_b(softplus(-y_b z2_b))"
    program = ix.parse(text)
    path = tmp_path / "net.py"
    path.write_text(ix.codegen(program, "W1", "b1", "w2", "b2"), encoding="utf-8")
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stdout.count(": ok") == 4, run.stdout + run.stderr
    module = _load(path)
    a = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=3), "w2": rng.normal(size=3), "b2": np.float64(0.3),
         "x": rng.normal(size=(5, 2)), "y": np.sign(rng.normal(size=5))}  # fmt: skip
    want = ix.compile(ix.grad(program, wrt=["W1", "b1", "w2", "b2"]))(**a)
    for g, w in zip(module.gradients(**a), want):
        assert np.allclose(g, w, rtol=1e-10, atol=1e-12)
    assert np.isclose(module.forward(**a), want[0])


def test_modules_with_keyword_names_and_unused_inputs_check_themselves(tmp_path):
    for name, code in [
        ("kw.py", ix.codegen(ix.parse("list_i x_i"), "list")),
        ("unused.py", ix.codegen(ix.parse("k_i = v_i\nL = u_i u_i"), "v", "u")),
    ]:
        path = tmp_path / name
        path.write_text(code, encoding="utf-8")
        run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
    with pytest.raises(ix.IndexDiffError, match="takes gradients by inputs"):
        ix.codegen(ix.parse("h_i = tanh(u_i)\nL = h_i h_i"), "h")


def _module(code: str) -> dict:
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own generated code
    return namespace


@pytest.mark.parametrize(
    ("text", "x"),
    [
        ("sum_i(tan(x_i)^3)", [1.5, 1.567, 0.3]),  # 0.004 from pi/2: the old 1e-5 step failed here
        ("sum_i(exp(5 x_i))", [1.4, 1.5, -1.0]),
        ("sum_i(1 / x_i)", [0.1, 0.11, 0.5]),
        ("f_i = tan(x_i)^2 + sqrt(x_i)", [1.56, 0.2, 1.0]),
    ],
)
def test_module_self_check_passes_steep_functions_and_catches_a_tenth_of_a_percent(text, x):
    x = np.array(x)
    module = _module(ix.codegen(ix.parse(text), "x", "x,x"))
    results = module["check"]({"x": x})
    assert all(ok for ok, _ in results.values()), results
    for chain in (("x",), ("x", "x")):
        right = module["_FUNCTIONS"][chain]
        module["_FUNCTIONS"][chain] = lambda right=right, **a: 1.001 * right(**a)
        assert not module["check"]({"x": x})[chain][0], chain
        module["_FUNCTIONS"][chain] = right


def test_program_module_self_check_passes_a_steep_tan_program_and_catches_a_wrong_gradient(tmp_path):
    program = ix.parse("h_i = tan(W_ij x_j)\nL = sum_i(h_i h_i)")
    code = ix.codegen(program, "x", "W")
    path = tmp_path / "tan.py"
    path.write_text(code, encoding="utf-8")
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stdout.count(": ok") == 2, run.stdout + run.stderr
    module = _module(code)
    W, x = np.array([[1.0, 0.515], [0.2, 0.1]]), np.array([1.0, 1.1])  # W x = (1.5665, 0.31): steep tan
    assert all(ok for ok, _ in module["check"]({"W": W, "x": x}).values())
    right = module["gradients"]
    module["gradients"] = lambda **a: (lambda r: (r[0], 1.001 * r[1], r[2]))(right(**a))
    results = module["check"]({"W": W, "x": x})
    assert not results["x"][0] and results["W"][0]


def test_program_module_takes_lengths_no_array_gives_as_size_parameters(tmp_path):
    code = ix.codegen(ix.parse("H = a\nL = a (δ_ii) + a c"), "a", "c")
    path = tmp_path / "sizes.py"
    path.write_text(code, encoding="utf-8")
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stdout.count(": ok") == 2, run.stdout + run.stderr
    module = _module(code)
    loss, da, dc = module["gradients"](a=np.array(2.0), c=np.array(5.0), n_i=4)  # L = a n_i + a c
    assert (loss, da, dc) == (18.0, 9.0, 2.0)
