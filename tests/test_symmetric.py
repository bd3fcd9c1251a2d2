"""Symmetric matrices: declarations, simplification with S_ij = S_ji, the derivative by a symmetric matrix
(sym(G) = (G + Gᵀ)/2) against symmetric finite differences, and non-symmetric data refused on every route."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from fuzz_routes import fuzz_settings
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import case

import indexdiff as ix
from indexdiff.cli import main
from indexdiff.data import random_arrays

N = 4


def _spd(rng: np.random.Generator, n: int = N) -> np.ndarray:
    a = rng.normal(size=(n, n))
    return a @ a.T + n * np.eye(n)


@pytest.fixture
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {
        "S": _spd(rng),
        "A": rng.normal(size=(N, N)),
        "B": rng.normal(size=(N, N)),
        "x": rng.normal(size=N),
        "y": rng.normal(size=N),
        "r": rng.normal(size=(5, N)),
        "N": np.array(5.0),
        "c": np.array(1.3),
    }


# -- simplification with S_ij = S_ji ---------------------------------------------------------------------------


def test_quadratic_form_gradient_merges_to_one_term(data: dict[str, np.ndarray]) -> None:
    e = ix.parse("x_i S_ij x_j")
    plain, sym = ix.diff(e, "x"), ix.diff(e, "x", symmetric={"S"})
    assert str(plain) == "S_ik x_i + S_kj x_j"
    assert str(sym) == "2 S_kj x_j"
    assert str(ix.diff(e, "x", "x", symmetric="S")) == "2 S_kl"
    np.testing.assert_allclose(ix.evaluate(sym, data), 2 * data["S"] @ data["x"], rtol=1e-12)
    np.testing.assert_allclose(ix.evaluate(plain, data), ix.evaluate(sym, data), rtol=1e-12)


def test_like_terms_with_transposed_symmetric_tensors_merge(data: dict[str, np.ndarray]) -> None:
    e = ix.parse("y_k S_ik x_i + y_k S_kj x_j", symmetric="S")
    d = ix.diff(e, "y")
    assert "+" not in str(d) and str(d).startswith("2 S_")
    np.testing.assert_allclose(ix.evaluate(d, data), 2 * data["S"] @ data["x"], rtol=1e-12)
    # a symmetric tensor inside a function: exp(xᵀSx) (Sx + Sᵀx) is 2 exp(xᵀSx) S x
    f = ix.diff(ix.parse("exp(x_i S_ij x_j)", symmetric="S"), "x")
    assert str(f).count("S_") == 2 and "+" not in str(f)
    S, x = data["S"], data["x"]
    np.testing.assert_allclose(ix.evaluate(f, data), 2 * np.exp(x @ S @ x) * S @ x, rtol=1e-12)


def test_traces_canonicalize(data: dict[str, np.ndarray]) -> None:
    # tr(S A) + tr(S Aᵀ) + tr(Sᵀ A): one term, 3 tr(S A), once S is symmetric
    e = ix.parse("c (S_ij A_ji + S_ij A_ij + S_ji A_ij)", symmetric="S")
    d = ix.diff(e, "c")
    assert str(d).startswith("3 ") and "+" not in str(d)
    np.testing.assert_allclose(ix.evaluate(d, data), 3 * np.trace(data["S"] @ data["A"]), rtol=1e-12)
    assert str(ix.diff(ix.parse("c (S_ij A_ji + S_ij A_ij)"), "c")).count("+") == 1  # undeclared: two traces


def test_terms_that_differ_are_kept_apart(data: dict[str, np.ndarray]) -> None:
    # S T x and T S x differ although S and T are both symmetric
    e = ix.parse("x_i S_ij T_jk x_k", symmetric="S,T")
    d = ix.diff(e, "x")
    assert str(d).count("+") == 1
    T = _spd(np.random.default_rng(3))
    at = {**data, "T": T}
    np.testing.assert_allclose(ix.evaluate(d, at), (data["S"] @ T + T @ data["S"]) @ data["x"], rtol=1e-12)


def test_equality_sees_through_the_symmetry() -> None:
    a, b = ix.parse("S_ij x_j", symmetric={"S"}), ix.parse("S_ji x_j", symmetric={"S"})
    assert a == b and hash(a) == hash(b)
    assert ix.parse("S_ij x_j") != ix.parse("S_ji x_j")
    assert a != ix.parse("S_ij x_j")  # a declaration on a tensor the expression uses is part of it
    # one the expression no longer uses is not: ∂(xᵀSx)/∂S = x xᵀ whatever S was
    assert ix.diff(ix.parse("x_i S_ij x_j", symmetric="S"), "S") == ix.parse("x_k x_l")


def test_declaration_caches_are_kept_apart() -> None:
    e = ix.parse("x_i S_ij x_j")
    before = str(ix.diff(e, "x"))
    assert str(ix.diff(e, "x", symmetric="S")) == "2 S_kj x_j"
    assert str(ix.diff(e, "x")) == before == "S_ik x_i + S_kj x_j"


# -- the derivative by a symmetric matrix -------------------------------------------------------------------------

CASES = [
    "x_i S_ij x_j",  # xᵀSx
    "S_ij A_ji",  # tr(S A)
    "logdet(S_ij)",
    "sum_ij(inv(S_ij) A_ji)",  # tr(S⁻¹ A)
    "S_ij S_ij",  # Σ S_ij²
    "0.5 N logdet(S_ij) + 0.5 sum_n(r_ni inv(S_ij) r_nj)",  # Gaussian negative log-likelihood, covariance S
    "x_i inv(S_ij) x_j",
    "det(S_ij)",
    "A_ik S_kj B_ji",  # tr(A S B)
    "S_ii",  # tr(S)
    "S_ik S_kj A_ij",  # tr(S S Aᵀ)
    "exp(0.1 x_i S_ij y_j)",
    "sum_i(log(S_ii))",
    "tanh(S_ij) A_ij",
]


def _value(e: ix.Expr, data: dict[str, np.ndarray], S: np.ndarray) -> float:
    return float(ix.evaluate(e, {**data, "S": S}))


def _directional(e: ix.Expr, data: dict[str, np.ndarray], H: np.ndarray, h: float = 1e-5) -> float:
    """d/dt f(S + t H) at 0, by a fourth-order central difference."""
    S = data["S"]
    f = [_value(e, data, S + k * h * H) for k in (-2, -1, 1, 2)]
    return (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * h)


@pytest.mark.parametrize("text", CASES)
def test_derivative_by_symmetric_matrix_is_sym_of_the_gradient(text: str, data: dict[str, np.ndarray]) -> None:
    e = ix.parse(text, symmetric="S")
    g = ix.evaluate(ix.diff(e, "S"), data)
    np.testing.assert_allclose(g, g.T, rtol=1e-12, atol=1e-12)  # symmetric
    scale = max(1.0, float(np.abs(g).max()))
    # entry (k, l): f moved along S_kl and S_lk together moves by 2 g_kl (by g_kk on the diagonal)
    for k in range(N):
        for m in range(k, N):
            H = np.zeros((N, N))
            H[k, m] = H[m, k] = 1.0
            expected = g[k, m] * (1 if k == m else 2)
            assert abs(_directional(e, data, H) - expected) <= 1e-6 * scale, (k, m)
    # and ⟨g, H⟩ is the derivative along any symmetric H (the Frobenius gradient on symmetric matrices)
    H = np.random.default_rng(1).normal(size=(N, N))
    H = H + H.T
    assert abs(_directional(e, data, H) - float(np.sum(g * H))) <= 1e-6 * scale * np.abs(H).sum()
    # the library's own check moves S symmetrically too
    assert ix.check(e, "S", dims={"i": 3}).ok


def test_closed_forms(data: dict[str, np.ndarray]) -> None:
    S, A, x = data["S"], data["A"], data["x"]
    inv = np.linalg.inv(S)

    def grad(text: str) -> np.ndarray:
        return ix.evaluate(ix.diff(ix.parse(text, symmetric="S"), "S"), data)

    np.testing.assert_allclose(grad("x_i S_ij x_j"), np.outer(x, x), rtol=1e-12)
    np.testing.assert_allclose(grad("S_ij A_ji"), (A + A.T) / 2, rtol=1e-12)
    np.testing.assert_allclose(grad("logdet(S_ij)"), inv, rtol=1e-10)
    assert str(ix.diff(ix.parse("logdet(S_ij)", symmetric="S"), "S")) == "inv(S_kl)"  # S⁻¹, in the output's order
    np.testing.assert_allclose(grad("sum_ij(inv(S_ij) A_ji)"), -(inv @ A.T @ inv + inv @ A @ inv) / 2, rtol=1e-10)
    np.testing.assert_allclose(grad("S_ij S_ij"), 2 * S, rtol=1e-12)
    r, n = data["r"], float(data["N"])
    nll = "0.5 N logdet(S_ij) + 0.5 sum_n(r_ni inv(S_ij) r_nj)"
    np.testing.assert_allclose(grad(nll), 0.5 * n * inv - 0.5 * inv @ r.T @ r @ inv, rtol=1e-10)


def test_matrix_cookbook_convention_from_the_result(data: dict[str, np.ndarray]) -> None:
    # the Cookbook's ∂f/∂X_ij over the independent entries (X_ij = X_ji one variable) is 2 g - g ∘ I
    e = ix.parse("sum_ij(inv(S_ij) A_ji)", symmetric="S")
    g = ix.evaluate(ix.diff(e, "S"), data)
    cookbook = 2 * g - np.diag(np.diag(g))
    for k in range(N):
        for m in range(N):
            H = np.zeros((N, N))
            H[k, m] = H[m, k] = 1.0
            assert abs(_directional(e, data, H) - cookbook[k, m]) <= 1e-7 * max(1.0, np.abs(cookbook).max())


def test_higher_and_mixed_derivatives_check() -> None:
    assert ix.check(ix.parse("logdet(S_ij)", symmetric="S"), "S", "S").ok
    e = ix.parse("0.5 N logdet(S_ij) + 0.5 sum_n((y_ni - m_i) inv(S_ij) (y_nj - m_j))", symmetric="S")
    assert ix.check(e, "m", "S").ok
    assert ix.check(ix.parse("x_i S_ij T_jk x_k", symmetric="S,T"), "x", "T").ok


def test_wrong_convention_fails_the_check() -> None:
    # the unstructured gradient of tr(S A) is Aᵀ: against symmetric differences it fails, sym(Aᵀ) passes
    e = ix.parse("S_ij A_ji", symmetric="S")
    plain = ix.diff(ix.parse("S_ij A_ji"), "S")
    data = random_arrays(e, {"i": 3})
    g = ix.evaluate(ix.diff(e, "S"), data)
    assert not np.allclose(ix.evaluate(plain, data), g)
    np.testing.assert_allclose(g, (data["A"] + data["A"].T) / 2, rtol=1e-12)


# -- declarations -------------------------------------------------------------------------------------------------


def test_declaration_travels_with_the_expression() -> None:
    e = ix.parse("x_i S_ij x_j + x_i B_ij x_j", symmetric=["S"])
    assert e.symmetric == {"S"}
    d = ix.diff(e, "x")
    assert d.symmetric == {"S"} and ix.diff(d, "x").symmetric == {"S"}
    both = ix.diff(e, "x", symmetric="B")
    assert both.symmetric == {"S", "B"} and str(both) == "2 B_kj x_j + 2 S_kj x_j"
    assert ix.parse("S_ij x_j", symmetric=set()).symmetric == frozenset()
    assert "symmetric={'S'}" in repr(d)


def test_print_parse_round_trip_keeps_the_declaration_beside_the_text() -> None:
    # the text is index notation alone; parse(str(d), symmetric=d.symmetric) gives d back
    d = ix.diff(ix.parse("x_i S_ij x_j", symmetric="S"), "x")
    again = ix.parse(str(d), symmetric=d.symmetric)
    assert again == d and again.symmetric == d.symmetric
    assert ix.parse(str(d)).symmetric == frozenset() and ix.parse(str(d)) != d


@pytest.mark.parametrize(
    ("symmetric", "message", "caret_at"),
    [
        ("T", "has no tensor 'T'", "T"),
        ("S,T", "has no tensor 'T'", "S,T"),
        ("x", "'x' has 1 index", "x_i S_ij x_j"),
        ("c", "'c' has 0 indices", "c x_i S_ij x_j"),
        ("S,,x", "empty name", "S,,x"),
    ],
)
def test_bad_declarations(symmetric: str, message: str, caret_at: str) -> None:
    text = "c x_i S_ij x_j" if symmetric == "c" else "x_i S_ij x_j"
    with pytest.raises(ix.IndexDiffError, match=message) as err:
        ix.parse(text, symmetric=symmetric)
    shown = str(err.value)
    assert caret_at in shown and "^" in shown and err.value.hint
    with pytest.raises(ix.IndexDiffError, match=message):
        ix.diff(ix.parse(text), "x", symmetric=symmetric)


def test_declarations_that_are_not_names() -> None:
    with pytest.raises(ix.IndexDiffError, match="tensor names"):
        ix.parse("x_i S_ij x_j", symmetric=3)  # type: ignore[arg-type]
    with pytest.raises(ix.IndexDiffError, match="tensor names"):
        ix.parse("x_i S_ij x_j", symmetric=[1])  # type: ignore[list-item]
    with pytest.raises(ix.IndexDiffError, match="not to a program"):
        ix.parse("a = x_i S_ij x_j; b = a a", symmetric="S")


# -- data -----------------------------------------------------------------------------------------------------------


def test_random_data_is_square_and_symmetric() -> None:
    for text in ("x_i S_ij y_j", "x_i S_ij y_j + logdet(S_ij)"):
        S = random_arrays(ix.parse(text, symmetric="S"))["S"]
        assert S.shape[0] == S.shape[1] and np.array_equal(S, S.T)
    undeclared = random_arrays(ix.parse("x_i S_ij y_j"))["S"]
    assert undeclared.shape[0] != undeclared.shape[1]  # i and j get different lengths


@pytest.mark.parametrize("route", ["evaluate", "compile", "check"])
def test_non_symmetric_data_is_refused(route: str, data: dict[str, np.ndarray]) -> None:
    e = ix.parse("x_i S_ij x_j", symmetric="S")
    bad = {**data, "S": data["S"] + np.triu(np.ones((N, N)), 1)}
    run = {
        "evaluate": lambda a: ix.evaluate(ix.diff(e, "x"), a),
        "compile": lambda a: ix.compile(e, ix.diff(e, "x"))(S=a["S"], x=a["x"]),
        "check": lambda a: ix.check(e, "x", arrays={"S": a["S"], "x": a["x"]}),
    }[route]
    with pytest.raises(ix.ShapeError, match=r"'S' is declared symmetric but S - Sᵀ has max \|·\| = 1") as err:
        run(bad)
    assert "S + S.T" in (err.value.hint or "")
    square = {**data, "S": np.ones((N, N + 1))}
    with pytest.raises(ix.ShapeError, match=r"declared symmetric but its array has shape \(4, 5\)"):
        run(square)
    run(data)  # symmetric data passes, and so does an inverse with rounding in it
    assert np.abs(np.linalg.inv(data["S"]) - np.linalg.inv(data["S"]).T).max() < 1e-12
    run({**data, "S": np.linalg.inv(data["S"])})


def test_compiled_check_runs_on_every_call(data: dict[str, np.ndarray]) -> None:
    e = ix.parse("x_i S_ij x_j", symmetric="S")
    f = ix.compile(ix.diff(e, "x"))
    np.testing.assert_allclose(f(S=data["S"], x=data["x"]), 2 * data["S"] @ data["x"], rtol=1e-12)
    with pytest.raises(ix.ShapeError, match="declared symmetric"):
        f(S=data["A"], x=data["x"])  # same shapes: a plan exists, the check still runs
    np.testing.assert_allclose(
        f(S=data["S"].astype(np.float32), x=data["x"].astype(np.float32)), 2 * data["S"] @ data["x"], rtol=1e-5
    )


def test_torch_arrays_are_checked_too(data: dict[str, np.ndarray]) -> None:
    torch = pytest.importorskip("torch")
    f = ix.compile(ix.diff(ix.parse("x_i S_ij x_j", symmetric="S"), "x"))
    out = f(S=torch.tensor(data["S"]), x=torch.tensor(data["x"]))
    np.testing.assert_allclose(out.numpy(), 2 * data["S"] @ data["x"], rtol=1e-12)
    with pytest.raises(ix.ShapeError, match="declared symmetric"):
        f(S=torch.tensor(data["A"]), x=torch.tensor(data["x"]))


# -- command line ---------------------------------------------------------------------------------------------------


def test_cli_symmetric(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["x_i S_ij x_j", "--wrt", "x", "--symmetric", "S"]) == 0
    assert capsys.readouterr().out.strip() == "2 S_kj x_j"
    assert main(["x_i S_ij x_j + x_i B_ij x_j", "--wrt", "x", "--symmetric", "S", "--symmetric", "B"]) == 0
    assert capsys.readouterr().out.strip() == "2 B_kj x_j + 2 S_kj x_j"
    assert main(["x_i S_ij x_j + x_i B_ij x_j", "--wrt", "x", "--symmetric", "S,B"]) == 0
    assert capsys.readouterr().out.strip() == "2 B_kj x_j + 2 S_kj x_j"
    assert main(["logdet(S_ij)", "--wrt", "S", "--symmetric", "S", "--check"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "inv(S_kl)" and "check d/dS: ok" in captured.err
    assert main(["x_i S_ij x_j", "--wrt", "x", "--symmetric", "S", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["symmetric"] == ["S"] and out["derivatives"][0]["index"] == "2 S_kj x_j"
    assert main(["x_i S_ij x_j", "--wrt", "x", "--format", "json"]) == 0
    assert "symmetric" not in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symmetric", "T"], "has no tensor 'T'"),
        (["--symmetric", "x"], "'x' has 1 index"),
    ],
)
def test_cli_symmetric_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["x_i S_ij x_j", "--wrt", "x", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "hint:" in err and "Traceback" not in err


def test_generated_module_checks_and_uses_the_declaration(data: dict[str, np.ndarray]) -> None:
    e = ix.parse("S_ij A_ji + x_i S_ij x_j", symmetric="S")
    namespace: dict[str, object] = {"__name__": "generated"}
    exec(compile(ix.codegen(e, "S", "x,x", format="python"), "generated.py", "exec"), namespace)
    S, A, x = data["S"], data["A"], data["x"]
    value, d_s, d_xx = namespace["evaluate"](S=S, A=A, x=x)  # type: ignore[operator]
    np.testing.assert_allclose(value, np.trace(S @ A) + x @ S @ x, rtol=1e-12)
    np.testing.assert_allclose(d_s, (A + A.T) / 2 + np.outer(x, x), rtol=1e-12)
    np.testing.assert_allclose(d_xx, 2 * S, rtol=1e-12)
    with pytest.raises(ValueError, match="S is declared symmetric but S - S.T has max"):
        namespace["evaluate"](S=A, A=A, x=x)  # type: ignore[operator]
    with pytest.raises(ValueError, match="S axis 0 has length 4, S axis 1 has 5|declared symmetric but has shape"):
        namespace["evaluate"](S=np.ones((N, N + 1)), A=np.ones((N + 1, N)), x=np.ones(N))  # type: ignore[operator]
    assert namespace["main"]() == 0  # type: ignore[operator]  # its self-check: symmetric data and differences


def test_symmetry_check_edges() -> None:
    e = ix.parse("x_i S_ij x_j", symmetric="S")
    f = ix.compile(e, ix.diff(e, "x"))
    with pytest.raises(ix.ShapeError, match="declared symmetric"):
        f(S=[[1, 2], [0, 1]], x=[1.0, 1.0])  # nested lists are read as numpy reads them
    value, grad = f(S=[[1, 2], [2, 1]], x=[1.0, 1.0])
    assert value == 6 and list(grad) == [6, 6]
    huge = np.array([[1e300, 2e300], [2e300, 1e300]])
    assert np.isfinite(ix.evaluate(e, {"S": huge, "x": np.ones(2)}))  # the tolerance is relative
    with pytest.raises(ix.ShapeError, match="declared symmetric"):
        ix.evaluate(e, {"S": huge * [[1, 1], [1 - 1e-6, 1]], "x": np.ones(2)})
    with np.errstate(invalid="ignore"):
        assert ix.evaluate(e, {"S": np.full((2, 2), np.inf), "x": np.ones(2)}) == np.inf  # as numpy computes
    assert ix.evaluate(e, {"S": np.zeros((0, 0)), "x": np.zeros(0)}) == 0


def test_named_indices_and_shifted_matrices() -> None:
    e = ix.parse("x_i S_ij x_j", symmetric="S")
    d = ix.diff(e, "S_lk")
    assert d.free == ("l", "k") and ix.check(e, "S_lk").ok
    shifted = ix.parse("logdet(S_ij + lam δ_ij)", symmetric="S")
    assert str(ix.diff(shifted, "S")) == "inv(S_kl + lam δ_kl)" and ix.check(shifted, "S").ok


# -- differential: a declaration never changes a value at symmetric data ----------------------------------------


@fuzz_settings(15, 2000)
@given(data=st.data())
def test_declaring_changes_no_value_at_symmetric_data(data: st.DataObject) -> None:
    """For random expressions using the matrix A: with A declared symmetric, each derivative evaluated at
    symmetric A equals the undeclared one, and the derivative by A equals sym of the undeclared (the canonical form
    merges only what the symmetry makes equal)."""
    e = ix.parse(data.draw(case()))
    assume(isinstance(e, ix.Expr) and e.variables.get("A") == 2)
    declared = ix.parse(str(e), symmetric="A")
    arrays = random_arrays(declared)
    wrt = data.draw(st.sampled_from(sorted(declared.variables)))
    with np.errstate(all="ignore"):
        got = ix.evaluate(ix.diff(declared, wrt), arrays)
        want = ix.evaluate(ix.diff(e, wrt), arrays)
    assume(np.all(np.isfinite(want)))
    if wrt == "A":
        want = (want + np.swapaxes(want, -1, -2)) / 2
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"{e} by {wrt}")


@fuzz_settings(15, 2000)
@given(data=st.data())
def test_flipping_a_symmetric_matrix_gives_an_equal_expression(data: st.DataObject) -> None:
    """Any of A's occurrences written A_ji instead of A_ij: the same expression once A is declared symmetric
    (the canonical form is complete for the flips, not only sound)."""
    text = data.draw(case())
    e = ix.parse(text)
    assume(isinstance(e, ix.Expr) and e.variables.get("A") == 2)
    found = list(re.finditer(r"A_(\w)(\w)", text))
    flips = data.draw(st.lists(st.booleans(), min_size=len(found), max_size=len(found)))
    pieces, last = [], 0
    for m, flip in zip(found, flips):
        pieces += [text[last : m.start()], f"A_{m.group(2)}{m.group(1)}" if flip else m.group(0)]
        last = m.end()
    flipped = "".join(pieces) + text[last:]
    assert ix.parse(text, symmetric="A") == ix.parse(flipped, symmetric="A"), (text, flipped)
