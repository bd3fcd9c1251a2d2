"""Matrix-notation output (matrixform, matrixprint, matrixnumpy, matrixcode): every matrix form is evaluated by an
independent interpreter of the matrix tree written here, and its generated NumPy code is run, and both are compared
with ``ix.evaluate`` of the index-notation derivative."""

from __future__ import annotations

import numpy as np
import pytest
from fuzz_routes import draw_wrt, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from strategies import case, rich_case

import indexdiff as ix
from indexdiff.cli import main
from indexdiff.data import random_arrays, sizes_for
from indexdiff.expr import Expr
from indexdiff.matrixcode import matrix_code
from indexdiff.matrixform import MatrixForm, to_matrix
from indexdiff.matrixtree import Call, Eye, Fn, Had, Index, M, Name, Num, Ones, Plus, Power, Prod, T
from indexdiff.names import tensors

_FUNCS = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
    "relu": lambda a: np.maximum(a, 0),
    "step": lambda a: (a > 0).astype(float),
    "softplus": lambda a: np.log1p(np.exp(a)),
    "sin": np.sin,
    "cos": np.cos,
    "sqrt": np.sqrt,
}


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def value(e: M, arrays: dict[str, np.ndarray], sizes: dict[str, int]) -> np.ndarray:
    """The matrix tree's value, vectors as (n, 1) columns (a row is (1, n)), scalars as (1, 1): matrix algebra
    by the book, independent of the library's own code."""
    if isinstance(e, Name):
        a = np.asarray(arrays[e.name], dtype=float)
        return a.reshape(1, 1) if e.rank == 0 else a.reshape(-1, 1) if e.rank == 1 else a
    if isinstance(e, Num):
        return np.array([[float(e.value)]])
    if isinstance(e, Eye):
        return np.eye(sizes[e.index])
    if isinstance(e, Ones):
        return np.ones((sizes[e.index], 1))
    if isinstance(e, T):
        return value(e.arg, arrays, sizes).T
    if isinstance(e, Prod):
        out = np.array([[1.0]])
        for f in e.factors:
            v = value(f, arrays, sizes)
            out = out * v if out.shape == (1, 1) or v.shape == (1, 1) else out @ v
        return out
    if isinstance(e, Had):
        out = value(e.factors[0], arrays, sizes)
        for f in e.factors[1:]:
            v = value(f, arrays, sizes)
            assert v.shape == out.shape or v.shape == (1, 1) or out.shape == (1, 1)
            out = out * v
        return out
    if isinstance(e, Power):
        return value(e.base, arrays, sizes) ** float(e.exponent)
    if isinstance(e, Plus):
        return sum((value(t, arrays, sizes) for t in e.terms), start=np.zeros((1, 1)))
    if isinstance(e, Fn):
        return _FUNCS[e.name](value(e.arg, arrays, sizes))
    if isinstance(e, Call):
        a = value(e.arg, arrays, sizes)
        if e.name == "diag":
            return np.diag(a[:, 0]) if a.shape[1] == 1 else np.diag(a).reshape(-1, 1)
        if e.name in ("tr", "sum", "det", "logdet"):
            f = {"tr": np.trace, "sum": np.sum, "det": np.linalg.det, "logdet": lambda m: np.log(np.linalg.det(m))}
            return np.array([[f[e.name](a)]])
        if e.name == "inv":
            return np.linalg.inv(a)
        if e.name == "softmax":
            return _softmax(a.T).T if a.shape[1] == 1 else _softmax(a)
        assert e.name == "logsumexp"
        m = a.max(axis=0 if a.shape[1] == 1 else 1, keepdims=True)
        rows = np.log(np.exp(a - m).sum(axis=0 if a.shape[1] == 1 else 1, keepdims=True)) + m
        return rows if a.shape[1] != 1 else rows.reshape(1, 1)
    assert isinstance(e, Index)
    assert isinstance(e.expr, Expr)
    v = np.asarray(ix.evaluate(e.expr, arrays))
    return v.reshape(1, 1) if v.ndim == 0 else v.reshape(-1, 1) if v.ndim == 1 else v


def _sizes(d: Expr, arrays: dict[str, np.ndarray]) -> dict[str, int]:
    sizes = {i: arrays[name].shape[axis] for i, (name, axis) in d.origins.items()}
    for t in tensors(d.node):
        for axis, i in enumerate(t.indices):
            sizes.setdefault(i, arrays[t.name].shape[axis])
    return sizes


def _form_value(d: Expr, form: MatrixForm, arrays: dict[str, np.ndarray]) -> np.ndarray:
    v = value(form.tree, arrays, _sizes(d, arrays))
    want = np.shape(ix.evaluate(d, arrays))
    if v.shape == (1, 1):
        v = v.reshape(())  # a scalar (a zero derivative prints 0) stands for every entry
    elif len(want) == 1:
        assert v.shape == (want[0], 1)  # a column vector
        v = v.reshape(-1)
    else:
        assert v.shape == want
    return np.broadcast_to(v, want)


def _check_numpy(e: Expr, chain: tuple[str, ...], arrays: dict[str, np.ndarray], want: np.ndarray) -> None:
    """The generated NumPy function of the last derivative returns ``want``, in its shape."""
    source = matrix_code(e, [list(chain)] if chain else [], "numpy")
    namespace: dict[str, object] = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - the code under test
    functions = [v for k, v in namespace.items() if callable(v) and k.startswith(("d", "f"))]
    got = np.asarray(functions[-1](**{k: arrays[k] for k in e.variables}))  # type: ignore[operator]
    assert got.shape == np.shape(want), source
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, err_msg=source)


# (expression, derivative chain): Matrix Cookbook identities, least squares, ridge, logistic regression, softmax
# cross-entropy, MLP layers, matrix functions. None of these needs a fallback.
CASES = [
    ("x_i A_ij x_j", "x"),
    ("x_i A_ij x_j", "A"),
    ("x_i A_ij x_j", "x,x"),
    ("(A_ij x_j - b_i)(A_ik x_k - b_i)", "x"),
    ("(A_ij x_j - b_i)(A_ik x_k - b_i)", "x,x"),
    ("(A_ij x_j - b_i)(A_ik x_k - b_i)", "A"),
    ("(A_ij x_j - b_i)(A_ik x_k - b_i)", "b"),
    ("sum_i((A_ij x_j - b_i)^2) + lam x_j x_j", "x"),
    ("sum_i((A_ij x_j - b_i)^2) + lam x_j x_j", "x,x"),
    ("sum_i(log(1 + exp(-y_i X_ij w_j)))", "w"),
    ("sum_i(log(1 + exp(-y_i X_ij w_j)))", "w,w"),
    ("sum_b(log(sum_j(exp(z_bj))) - z_bj t_bj)", "z"),
    ("sum_b(logsumexp_j(W_jk x_bk) - W_jk x_bk t_bj)", "W"),
    ("f_bi = W_ij x_bj + c_i", ""),
    ("sum_bi((sigmoid(W_ij x_bj) - y_bi)^2)", "W"),
    ("sum_i(tanh(W_ij x_j))", "W"),
    ("a_i x_i", "x"),
    ("a_i X_ij b_j", "X"),
    ("a_i X_ji b_j", "X"),
    ("X_ii", "X"),
    ("A_ij X_jk B_ki", "X"),
    ("X_ij X_ij", "X"),
    ("X_ij A_jk X_ik", "X"),
    ("b_i X_ij X_kj c_k", "X"),
    ("x_i inv(A_ij) x_j", "A"),
    ("x_i inv(A_ij) x_j", "x"),
    ("logdet(A_ij)", "A"),
    ("det(A_ij)", "A"),
    ("sum_i(exp(A_ij x_j))", "x"),
    ("x_i x_i", "x,x"),
    ("sum_i((x_i - y_i)^2) / c", "x"),
    ("sum_i((x_i - y_i)^2) / c", "c"),
    ("0.5 logdet(C_ij) + 0.5 r_i inv(C_ij) r_j", "C"),
    ("softmax_j(S_ij) V_jk", ""),
    ("sum_ik(softmax_j(S_ij) V_jk U_ik)", "V"),
    ("f_i = A_ij x_j + b_i", "x"),
    ("f_i = x_i y_i", "x"),
    ("x_i y_j", ""),
    ("A_ji", ""),
    ("A_ij B_jk C_ki", ""),
    ("sum_j(A_ij B_jk C_jl D_lk)", ""),
    ("f_i = relu(W_ij x_j)", "x"),
    ("sum_i(softplus(X_ij w_j) - y_i X_ij w_j) + 0.5 lam w_j w_j", "w,w"),
]


def _case(text: str, wrt: str) -> tuple[Expr, Expr, tuple[str, ...], dict[str, np.ndarray]]:
    e = ix.parse(text)
    assert isinstance(e, Expr)
    chain = tuple(wrt.split(",")) if wrt else ()
    d = ix.diff(e, *chain) if chain else e
    return e, d, chain, random_arrays(e, seed=3)


@pytest.mark.parametrize(("text", "wrt"), CASES)
def test_matrix_form_evaluates_to_the_index_form(text: str, wrt: str) -> None:
    e, d, chain, arrays = _case(text, wrt)
    form = to_matrix(d)
    assert isinstance(form, MatrixForm)
    assert form.fallback == () and "[index:" not in form.text, form.text
    want = ix.evaluate(d, arrays)
    np.testing.assert_allclose(_form_value(d, form, arrays), want, rtol=1e-9, atol=1e-12)
    _check_numpy(e, chain, arrays, want)


@pytest.mark.parametrize(
    ("text", "wrt", "expected"),
    [
        ("x_i A_ij x_j", "x", "(A + Aᵀ) x"),
        ("x_i A_ij x_j", "A", "x xᵀ"),
        ("x_i A_ij x_j", "", "xᵀ A x"),
        ("(A_ij x_j - b_i)(A_ik x_k - b_i)", "x", "2 Aᵀ (A x - b)"),
        ("A_ii", "", "tr(A)"),
        ("A_ii", "A", "eye"),
        ("logdet(A_ij)", "A", "A⁻ᵀ"),
        ("a_i X_ij b_j", "X", "a bᵀ"),
        ("A_ij B_jk C_ki", "", "tr(A B C) tr(B C A) tr(C A B)"),  # any cyclic order
        ("f_bi = W_ij x_bj + c_i", "", "x Wᵀ + 1 cᵀ"),
        ("sum_i((x_i - y_i)^2) / c", "x", "2 (x - y) / c"),
    ],
)
def test_required_spellings(text: str, wrt: str, expected: str) -> None:
    _, d, _, _ = _case(text, wrt)
    text = to_matrix(d).text
    assert text == expected or text.startswith("tr(") and text in expected


def test_logistic_hessian_is_x_transpose_diag_x() -> None:
    _, d, _, arrays = _case("sum_i(log(1 + exp(-y_i X_ij w_j)))", "w,w")
    text = to_matrix(d).text
    assert text.startswith("Xᵀ diag(") and text.endswith(") X")
    source = matrix_code(ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))"), [["w", "w"]], "numpy")
    assert "X.T * " in source and "@ X" in source and "einsum" not in source


def test_mlp_backward_pass_in_matrix_notation_and_numpy() -> None:
    p = ix.parse("z1_bi = W1_ij x_bj + b1_i; h1_bi = relu(z1_bi); z2_bi = W2_ij h1_bj + b2_i; L = sum_bi(z2_bi^2)")
    text = ix.codegen(p, "W1", "b1", "W2", format="matrix")
    assert "dW1 = dz1ᵀ x" in text.splitlines() and "dW2 = dz2ᵀ h1" in text.splitlines()
    source = ix.codegen(p, "W1", "b1", "W2", format="numpy")
    assert "dz1.T @ x" in source and "einsum" not in source
    namespace: dict[str, object] = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - the code under test
    rng = np.random.default_rng(1)
    arrays = {"x": rng.normal(size=(5, 3)), "W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=4)}
    arrays |= {"W2": rng.normal(size=(2, 4)), "b2": rng.normal(size=2)}
    got = namespace["gradients"](**arrays)  # type: ignore[operator]
    g = ix.grad(p, None, ["W1", "b1", "W2"])
    for a, name in zip(got, g.outputs):
        np.testing.assert_allclose(a, ix.evaluate(g, arrays, output=name), rtol=1e-10)


@pytest.mark.parametrize(
    ("text", "wrt", "kept"),
    [
        ("T_ijk x_k", "", 1),  # rank 3: the whole expression stays index notation
        ("T_ijk x_j x_k + A_ij x_j", "x", 2),  # A survives, the two T terms do not
        ("sum_j(A_ij B_jk C_jl)", "A", 1),  # rank 5 derivative
        ("f_i = sum_jlm(A_ij B_il C_im D_jl E_lm F_jm)", "", 1),  # every index in three matrices
        ("f_i = sigmoid(W_ij x_j)", "W", 1),  # rank 3 Jacobian
        ("mean_j(X_ij) y_i", "X", 1),  # mean has no matrix spelling
    ],
)
def test_fallback_is_visible_and_exact(text: str, wrt: str, kept: int) -> None:
    e, d, chain, arrays = _case(text, wrt)
    form = to_matrix(d)
    assert len(form.fallback) == kept and form.text.count("[index: ") == kept
    want = ix.evaluate(d, arrays)
    np.testing.assert_allclose(_form_value(d, form, arrays), want, rtol=1e-9, atol=1e-12)
    source = matrix_code(e, [list(chain)] if chain else [], "numpy")
    assert "np.einsum" in source
    _check_numpy(e, chain, arrays, want)


def test_latex_and_jupyter_display() -> None:
    d = ix.diff(ix.parse("x_i A_ij x_j"), "x")
    form = d.matrix()
    assert form.latex == r"\left(A + {A}^{\top}\right) x"
    assert form._repr_latex_() == f"$${form.latex}$$"
    lines = ix.codegen(ix.parse("x_i inv(A_ij) x_j"), "A", format="latex-matrix").splitlines()
    assert lines[1].startswith(r"\frac{\partial f}{\partial A_{kl}} = ") and "^{-\\top}" in lines[1]


@pytest.mark.parametrize("fmt", ["matrix", "latex-matrix", "numpy", "json"])
@pytest.mark.parametrize("args", [["x_i A_ij x_j", "--wrt", "x"], ["T_ijk x_k", "--wrt", "x"], ["A_ii"]])
def test_cli_formats(fmt: str, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*args, "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert out.strip()
    if fmt == "json":
        import json

        data = json.loads(out)
        assert "matrix" in data and all("matrix" in d for d in data["derivatives"])
    if args[0] == "T_ijk x_k" and fmt in ("matrix", "json"):
        assert "[index: " in out


def test_cli_program_matrix(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-f", "examples/mlp/net.idx", "--wrt", "W1", "--format", "matrix"]) == 0
    assert "dW1 = dz1ᵀ x" in capsys.readouterr().out


def test_bad_inputs() -> None:
    with pytest.raises(ix.IndexDiffError):
        ix.codegen(ix.parse("x_i"), format="matrices")
    with pytest.raises(ix.ArgumentError):
        to_matrix("x_i A_ij x_j")  # type: ignore[arg-type]


def test_reserved_names_fall_back() -> None:
    form = to_matrix(ix.parse("tr_ij x_j"))  # 'tr' would read as the trace
    assert form.fallback and form.text.startswith("[index: ")


@fuzz_settings(30, 2000)
@given(st.data())
def test_random_derivatives_matrix_forms_are_exact(data: st.DataObject) -> None:
    """Random expressions (tests/strategies.py) and their first and second derivatives: the matrix form (tree
    interpreter and generated numpy) equals ix.evaluate wherever the reference value is finite and moderate."""
    text = data.draw(rich_case() if data.draw(st.booleans()) else case())
    e = ix.parse(text)
    if not isinstance(e, Expr):
        return
    wrt = draw_wrt(data, e.variables)
    chain = wrt[: data.draw(st.integers(0, len(wrt)))]
    arrays = random_arrays(e, {i: 2 + n % 2 for i, n in sizes_for(e).items()})
    try:
        d = ix.diff(e, *chain)
        want = np.asarray(ix.evaluate(d, arrays))
    except ix.IndexDiffError:  # a length only dims knows, or a value outside a function's domain
        return
    if not np.all(np.isfinite(want)) or np.abs(want).max(initial=0) > 1e8:
        return
    form = to_matrix(d)
    assert isinstance(form, MatrixForm)
    if "n_" in matrix_code(e, [list(chain)] if chain else [], "numpy"):
        return  # the generated code asks for a length (n_b): covered by the einsum routes
    np.testing.assert_allclose(_form_value(d, form, arrays), want, rtol=1e-8, atol=1e-10, err_msg=form.text)
    _check_numpy(e, chain, arrays, want)


def test_a_program_has_a_matrix_form_like_an_expression():
    program = ix.parse("y_i = A_ij x_j\nL = y_i y_i")
    form = program.matrix()
    assert form.text.splitlines() == ["y = A x", "L = yᵀ y"] and not form.fallback
    assert "top" in form.latex  # transposes in LaTeX: {y}^{\top}
