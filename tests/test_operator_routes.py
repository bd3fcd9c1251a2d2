"""Operators on every output route: ix.evaluate, ix.compile (with and without dims), the einsum code, the generated
Python module (its values and its own self-check), print -> parse -> evaluate and ix.check, each against an
independent numpy reference (hand-written formulas with np.linalg; derivatives by central differences of that
formula), and against the fuzzers' cross-route harness. Stability at large logits, errors at singular matrices,
random data for matrix functions, FLOP counts. (torch, jax and cupy arrays: test_operator_backends.py.)"""

from __future__ import annotations

import contextlib
import io
import types
from collections.abc import Callable

import numpy as np
import pytest
from fuzz_routes import check_expression, check_program
from op_numpy import lse, softmax, spd
from routes import assert_routes, routes

import indexdiff as ix
from indexdiff.check import matrix_axes, random_arrays
from indexdiff.cli import main
from indexdiff.einsumcode import einsum_text

Arrays = dict[str, np.ndarray]

_rng = np.random.default_rng(8)


def _normal(*shape: int) -> np.ndarray:
    return _rng.normal(size=shape)


def _logdet(m: np.ndarray) -> float:
    sign, value = np.linalg.slogdet(m)
    assert sign > 0
    return value


# text, the variable to differentiate by, the data, and the value by hand-written numpy
CASES: list[tuple[str, str, Arrays, Callable[[Arrays], np.ndarray]]] = [
    ("softmax_j(z_ij)", "z", {"z": _normal(3, 4)}, lambda a: softmax(a["z"], 1)),
    ("logsumexp_j(z_ij)", "z", {"z": _normal(3, 4)}, lambda a: lse(a["z"], 1)),
    ("mean_j(x_ij)", "x", {"x": _normal(3, 4)}, lambda a: a["x"].mean(1)),
    ("max_j(x_ij)", "x", {"x": _normal(3, 4)}, lambda a: a["x"].max(1)),
    ("min_i(x_ij)", "x", {"x": _normal(3, 4)}, lambda a: a["x"].min(0)),
    ("softmax_jk(z_ijk)", "z", {"z": _normal(2, 3, 2)}, lambda a: softmax(a["z"].reshape(2, 6), 1).reshape(2, 3, 2)),
    (
        "x_i inv(A_ij) x_j",
        "A",
        {"x": _normal(3), "A": spd(_rng, 3) + 0.3 * _normal(3, 3)},
        lambda a: a["x"] @ np.linalg.inv(a["A"]) @ a["x"],
    ),
    (
        "inv(X_ni X_nj + lam δ_ij)",
        "X",
        {"X": _normal(4, 2), "lam": np.array(0.7)},
        lambda a: np.linalg.inv(a["X"].T @ a["X"] + a["lam"] * np.eye(2)),
    ),
    ("det(A_ij)", "A", {"A": spd(_rng, 3) + 0.3 * _normal(3, 3)}, lambda a: np.linalg.det(a["A"])),
    ("logdet(A_ik A_jk + δ_ij)", "A", {"A": _normal(3, 4)}, lambda a: _logdet(a["A"] @ a["A"].T + np.eye(3))),
    (
        "0.5 logdet(C_ij) + 0.5 sum_n(r_ni inv(C_ij) r_nj)",
        "C",
        {"C": spd(_rng, 3), "r": _normal(4, 3)},
        lambda a: 0.5 * _logdet(a["C"]) + 0.5 * np.sum((a["r"] @ np.linalg.inv(a["C"])) * a["r"]),
    ),
    (
        "sum_ij(softmax_j(S_ij) V_jk W_ik)",
        "S",
        {"S": _normal(3, 4), "V": _normal(4, 2), "W": _normal(3, 2)},
        lambda a: np.sum((softmax(a["S"], 1) @ a["V"]) * a["W"]),
    ),
    ("logsumexp_j(log(softmax_j(z_ij)))", "z", {"z": _normal(3, 4)}, lambda a: np.zeros(3)),
    (  # simplified, the argument lacks k: the operator's argument is broadcast along it
        "f_ij = logsumexp_k(x_i + 0 y_k) + z_ij",
        "x",
        {"x": _normal(2), "y": _normal(3), "z": _normal(2, 4)},
        lambda a: a["x"][:, None] + np.log(3) + a["z"],
    ),
    (
        "softmax_j(log(softmax_j(z_ij)) + y_ij)",
        "z",
        {"z": _normal(3, 4), "y": _normal(3, 4)},
        lambda a: softmax(a["z"] + a["y"], 1),
    ),
    (
        "mean_j(softmax_j(z_ij) w_j)",
        "z",
        {"z": _normal(3, 4), "w": _normal(4)},
        lambda a: (softmax(a["z"], 1) * a["w"]).mean(1),
    ),
    ("max_i(softmax_j(z_ij))", "z", {"z": _normal(3, 4)}, lambda a: softmax(a["z"], 1).max(0)),
    ("logdet(inv(A_ij))", "A", {"A": spd(_rng, 3)}, lambda a: -_logdet(a["A"])),
    (
        "det(A_ik B_kj + δ_ij)",
        "B",
        {"A": _normal(3, 2), "B": _normal(2, 3)},
        lambda a: np.linalg.det(a["A"] @ a["B"] + np.eye(3)),
    ),
    (
        "inv(A_ji) y_j",
        "A",
        {"A": spd(_rng, 3) + 0.3 * _normal(3, 3), "y": _normal(3)},
        lambda a: np.linalg.solve(a["A"].T, a["y"]),
    ),
]
IDS = [text for text, *_ in CASES]


def _moved(arrays: Arrays, name: str, steps: dict[tuple[int, ...], float]) -> Arrays:
    x = np.array(arrays[name], dtype=float)
    for idx, h in steps.items():
        x[idx] += h
    return {**arrays, name: x}


def _gradient(f: Callable[[Arrays], np.ndarray], arrays: Arrays, name: str, h: float = 1e-6) -> np.ndarray:
    """∂f/∂arrays[name] by central differences; axes f's, then the variable's."""
    base = np.asarray(f(arrays))
    x = np.asarray(arrays[name])
    out = np.empty(base.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        up, down = f(_moved(arrays, name, {idx: h})), f(_moved(arrays, name, {idx: -h}))
        out[(..., *idx)] = (np.asarray(up) - np.asarray(down)) / (2 * h)
    return out


def _hessian(f: Callable[[Arrays], np.ndarray], arrays: Arrays, name: str, h: float = 1e-4) -> np.ndarray:
    """∂²f/∂x∂x by mixed central differences of f itself (not of a derivative ix computed)."""
    base = np.asarray(f(arrays))
    x = np.asarray(arrays[name])
    out = np.empty(base.shape + x.shape + x.shape)
    for a in np.ndindex(*x.shape):
        for b in np.ndindex(*x.shape):

            def at(sa: float, sb: float, a: tuple[int, ...] = a, b: tuple[int, ...] = b) -> np.ndarray:
                steps: dict[tuple[int, ...], float] = {a: sa}
                steps[b] = steps.get(b, 0.0) + sb
                return np.asarray(f(_moved(arrays, name, steps)))

            out[(..., *a, *b)] = (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h)
    return out


def _all_dims(e: ix.Expr, arrays: Arrays) -> dict[str, int]:
    """Every index of ``e`` with its length, read off the arrays (for the routes given dims)."""
    return {i: arrays[t].shape[k] for t, k_i in _axes_of(e).items() for k, i in k_i}


def _axes_of(e: ix.Expr) -> dict[str, list[tuple[int, str]]]:
    from indexdiff.names import tensors

    out: dict[str, list[tuple[int, str]]] = {}
    for t in tensors(e.node):
        out.setdefault(t.name, []).extend(enumerate(t.indices))
    return out


def _every_route(e: ix.Expr, arrays: Arrays, want: np.ndarray, rtol: float, atol: float, dims: bool) -> None:
    """evaluate, compile, einsum code and module (and with ``dims``, again given every length), and print -> parse
    -> evaluate."""
    assert_routes(e, arrays, want, rtol=rtol, atol=atol)
    if dims:
        assert_routes(e, arrays, want, dims=_all_dims(e, arrays), rtol=rtol, atol=atol)
    again = ix.parse(str(e))
    assert again == e
    got = ix.evaluate(again, {n: arrays[n] for n in again.variables}, dict(zip(e.free, np.shape(want))))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize(("text", "wrt", "arrays", "reference"), CASES, ids=IDS)
def test_value_and_derivatives_on_every_route_match_numpy(text, wrt, arrays, reference) -> None:
    e = ix.parse(text)
    _every_route(e, arrays, reference(arrays), rtol=1e-10, atol=1e-12, dims=True)
    d1, d2 = ix.diff(e, wrt), ix.diff(e, wrt, wrt)
    _every_route(d1, arrays, _gradient(reference, arrays, wrt), rtol=1e-6, atol=1e-7, dims=False)
    _every_route(d2, arrays, _hessian(reference, arrays, wrt), rtol=1e-5, atol=1e-6, dims=False)


@pytest.mark.parametrize(("text", "wrt"), [(text, wrt) for text, wrt, *_ in CASES], ids=IDS)
def test_routes_agree_with_each_other_and_with_central_differences(text, wrt) -> None:
    # The fuzzers' harness: compile in float64 and float32, the einsum lines of ix.codegen, the generated module,
    # print -> parse, diff of diff, all at ix.check's random data (square matrices where inv/det/logdet need them).
    check_expression(text, (wrt, wrt))


PROGRAMS = [
    ("S_ij = Q_ik K_jk\nP_ij = softmax_j(S_ij)\nO_ik = P_ij V_jk\nL = sum_ik(O_ik T_ik)", ("Q", "K")),
    ("C_ij = A_ik A_jk + δ_ij\nL = 0.5 logdet(C_ij) + 0.5 r_i inv(C_ij) r_j", ("A", "r")),
    ("m_b = mean_j(x_bj)\nh_bj = x_bj - m_b\nL = sum_b(logsumexp_j(h_bj) + max_j(h_bj))", ("x", "x")),
]


@pytest.mark.parametrize(("text", "wrt"), PROGRAMS)
def test_programs_with_operators_on_every_route(text, wrt) -> None:
    # evaluate, compile, diff against central differences, ix.grad, the program module and its einsum lines
    check_program(text, wrt)


# Each operator at least once (the cases above whose checks are quick).
CHECKED = [
    ("softmax_j(z_ij)", "z"),
    ("logsumexp_j(z_ij)", "z"),
    ("mean_j(x_ij)", "x"),
    ("min_i(x_ij)", "x"),
    ("x_i inv(A_ij) x_j", "A"),
    ("det(A_ik B_kj + δ_ij)", "B"),
    ("0.5 logdet(C_ij) + 0.5 sum_n(r_ni inv(C_ij) r_nj)", "C"),
]


@pytest.mark.parametrize(("text", "wrt"), CHECKED)
def test_check_and_the_generated_module_check_pass(text, wrt) -> None:
    e = ix.parse(text)
    report = ix.check(e, wrt, wrt)
    assert report.ok and len(report.results) == 2, str(report)
    module = types.ModuleType("generated")
    exec(ix.codegen(e, wrt, f"{wrt},{wrt}", format="python"), module.__dict__)  # noqa: S102 - generated code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = module.main()
    assert status == 0 and out.getvalue().count(": ok") == 2, out.getvalue()
    assert "import" not in "".join(line for line in module.__doc__ or "")  # the docstring is notation only


def test_generated_module_imports_only_numpy() -> None:
    code = ix.codegen(ix.parse("0.5 logdet(C_ij) + 0.5 r_i inv(C_ij) r_j + logsumexp_i(r_i)"), "C", "r")
    imports = {line.split()[1] for line in code.splitlines() if line.startswith(("import ", "from "))}
    assert imports == {"sys", "numpy"}
    assert "def _inv(m):" in code and "def _logdet(m):" in code
    assert "_inv(" not in ix.codegen(ix.parse("softmax_j(z_ij)"), "z")  # helpers only where used


@pytest.mark.parametrize(
    ("text", "solves", "inverses"),
    [
        ("x_i inv(A_ij) x_j", ["np.linalg.solve(A, x)"], 0),
        ("inv(A_ji) y_j", ["np.linalg.solve(A.T, y)"], 0),
        ("y_i inv(A_ji)", ["np.linalg.solve(A, y)"], 0),
        ("inv(A_ij) B_jk", ["np.linalg.solve(A, B)"], 0),
        ("r_ni inv(C_ij) r_nj", ["np.linalg.solve(C, r.T)"], 0),
        ("sum_j(inv(A_ij) B_jk C_j)", [], 1),  # j is summed over three factors: the inverse itself
        ("inv(A_ij)", [], 1),
    ],
)
def test_generated_code_solves_where_an_inverse_meets_a_vector_or_matrix(text, solves, inverses) -> None:
    code = einsum_text(ix.parse(text))
    assert all(s in code for s in solves) and code.count("np.linalg.solve(") == len(solves), code
    assert code.count("np.linalg.inv(") == inverses, code
    # A module solves where the inverse is used once (used more often, it is computed once: test_codegen_sharing).
    module = ix.codegen(ix.parse("0.5 r_i inv(C_ij) r_j"), format="python")
    assert "_solve(" in module and "_inv(" not in module and "def _solve(m, b):" in module


# -- data for matrix functions ------------------------------------------------------------------------------------


def test_check_gives_a_matrix_functions_indices_one_length() -> None:
    report = ix.check(ix.parse("det(A_ij)"), "A", dims={"i": 4})
    assert report.ok and report.dims == {"i": 4, "j": 4}
    assert ix.check(ix.parse("det(A_ij)"), "A").ok
    with pytest.raises(ix.ShapeError, match="same axis"):
        ix.check(ix.parse("det(A_ij)"), "A", dims={"i": 3, "j": 4})


def test_random_matrices_are_diagonally_dominant_with_positive_determinant() -> None:
    e = ix.parse("logdet(A_ij + B_ji) + x_i inv(C_ij) x_j + logdet(X_ni X_nj)")
    assert matrix_axes(e) == {"A": (0, 1), "B": (0, 1), "C": (0, 1)}  # X is not square: X^T X is SPD anyway
    data = random_arrays(e, {"i": 6, "n": 9}, seed=3)
    for name in ("A", "B", "C"):
        m = data[name]
        off = np.abs(m).sum(axis=1) - np.abs(np.diag(m))
        assert np.all(np.diag(m) > off) and np.linalg.det(m) > 0 and np.linalg.cond(m) < 3
    assert np.all(data["X"] > 0) and data["X"].shape == (9, 6)


def test_program_statements_feeding_a_matrix_function_get_matrix_data() -> None:
    # B is no matrix function's argument itself, but M is, and M is made of B: positive data alone would give
    # M = B + Bᵀ a negative determinant at some seeds.
    p = ix.parse("N_ij = B_ij + 0.5 C_ij\nM_ij = N_ji + N_ij\nL = logdet(M_ij) + x_i inv(M_ij) x_j")
    for seed in range(4):
        assert ix.check(p, "B", seed=seed).ok
    module = types.ModuleType("generated")
    exec(ix.codegen(p, "B", "C", format="python"), module.__dict__)  # noqa: S102 - generated code
    with contextlib.redirect_stdout(io.StringIO()):
        assert module.main() == 0


def test_check_says_when_its_random_data_leaves_a_matrix_function_undefined(capsys) -> None:
    with pytest.raises(ix.ShapeError, match="negative, at the random data") as info:
        ix.check(ix.parse("logdet(-A_ij)"), "A")  # det(-A) = -det(A) for 3x3
    assert "--data" in str(info.value) and "^^^^^^" in str(info.value)
    assert main(["logdet(-A_ij)", "--wrt", "A", "--check"]) == 2
    assert "at the random data" in capsys.readouterr().err
    with pytest.raises(ix.ShapeError, match="singular matrix") as info:  # the user's own arrays: no such remark
        ix.check(ix.parse("x_i inv(A_ij) x_j"), "x", arrays={"A": np.ones((2, 2)), "x": np.ones(2)})
    assert "random data" not in str(info.value)


def test_cli_check_of_matrix_functions(capsys) -> None:
    assert main(["0.5 logdet(C_ij) + 0.5 r_i inv(C_ij) r_j", "--wrt", "C", "--wrt", "r,r", "--check"]) == 0
    err = capsys.readouterr().err
    assert err.count(": ok") == 3 and "i=3, j=3" in err


# -- stability ----------------------------------------------------------------------------------------------------


def _logits(scale: float, dtype: type) -> np.ndarray:
    z = np.array([[1.0, -1.0, 0.5, 0.0], [1.0, 1.0, -1.0, 0.25], [-1.0, -0.5, -1.0, -0.75]]) * scale
    return z.astype(dtype)


@pytest.mark.parametrize(("scale", "dtype", "tol"), [(1e4, np.float64, 1e-12), (100.0, np.float32, 1e-5)])
def test_softmax_and_logsumexp_are_stable_on_every_route(scale: float, dtype: type, tol: float) -> None:
    z = _logits(scale, dtype)
    exact = z.astype(np.float64)
    e_lse = ix.parse("logsumexp_j(z_ij)")
    s = softmax(exact, 1)
    jacobian = np.einsum("ij,jl,ik->ijkl", s, np.eye(4), np.eye(3)) - np.einsum("ij,il,ik->ijkl", s, s, np.eye(3))
    for e, want in (
        (e_lse, lse(exact, 1)),
        (ix.diff(e_lse, "z"), np.einsum("ik,il->ikl", np.eye(3), s)),
        (ix.parse("softmax_j(z_ij)"), s),
        (ix.diff(ix.parse("softmax_j(z_ij)"), "z"), jacobian),
        (ix.diff(e_lse, "z", "z"), jacobian[:, None] * np.eye(3)[:, :, None, None, None]),
    ):
        for route, got in routes(e, {"z": z}).items():
            assert np.all(np.isfinite(got)), (str(e), route)
            scale_of = max(1.0, float(np.max(np.abs(want))))
            assert np.allclose(got, want, rtol=tol, atol=tol * scale_of), (str(e), route, got, want)
        for value in (ix.evaluate(e, {"z": z}), ix.compile(e)(z=z)):
            assert value.dtype == dtype


def test_einsum_line_of_logsumexp_is_stable_alone() -> None:
    z = _logits(1e4, np.float64)
    line = einsum_text(ix.parse("f_i = logsumexp_j(z_ij) + sum_j(softmax_j(z_ij) z_ij)"))
    got = eval(line, {"np": np, "z": z})  # noqa: S307 - generated code
    assert np.allclose(got, lse(z, 1) + np.sum(softmax(z, 1) * z, axis=1), rtol=1e-12)


def test_logdet_where_det_overflows_and_of_an_ill_conditioned_matrix_on_every_route() -> None:
    q, _ = np.linalg.qr(_rng.normal(size=(100, 100)))
    eigenvalues = np.logspace(0, -8, 100)  # condition number 1e8
    spd = (q * eigenvalues) @ q.T
    spd = (spd + spd.T) / 2
    e = ix.parse("logdet(C_ij)")
    assert_routes(e, {"C": spd}, np.sum(np.log(eigenvalues)), rtol=1e-7)
    assert_routes(e, {"C": 10 * np.eye(320)}, 320 * np.log(10))  # det(C) = 1e320 overflows float64
    with np.errstate(over="ignore"):
        assert_routes(ix.parse("det(C_ij)"), {"C": 10 * np.eye(320)}, np.inf)


# -- errors -------------------------------------------------------------------------------------------------------


SINGULAR = [
    ("x_i inv(A_ij) x_j", {"A": np.ones((3, 3)), "x": np.ones(3)}, "inv of a singular matrix", "inv"),
    ("x_i x_i + logdet(A_ij)", {"A": -np.eye(3), "x": np.ones(3)}, "determinant is negative", "logdet"),
    ("logdet(A_ij)", {"A": np.zeros((2, 2))}, "determinant is zero", "logdet"),
]


@pytest.mark.parametrize(("text", "arrays", "message", "operator"), SINGULAR)
def test_a_singular_matrix_is_a_clear_error_on_every_route(text, arrays, message, operator) -> None:
    e = ix.parse(text)
    for run in (lambda: ix.evaluate(e, arrays), lambda: ix.compile(e)(**arrays)):
        with pytest.raises(ix.ShapeError, match=message) as info:
            run()
        shown = str(info.value)
        assert text in shown and "^" * len(operator) in shown and "hint:" in shown
    module = types.ModuleType("generated")
    exec(ix.codegen(e, format="python"), module.__dict__)  # noqa: S102 - generated code
    with pytest.raises(ValueError, match=message):
        module.evaluate(**arrays)


def test_einsum_lines_follow_numpy_at_a_singular_matrix() -> None:
    # A line of einsum code stands alone: inv raises numpy's LinAlgError (a ValueError), logdet of a negative
    # determinant is nan, as np.log of a negative number is.
    inv = einsum_text(ix.parse("x_i inv(A_ij) x_j"))
    with pytest.raises(np.linalg.LinAlgError):
        eval(inv, {"np": np, "A": np.ones((2, 2)), "x": np.ones(2)})  # noqa: S307 - generated code
    logdet = einsum_text(ix.parse("logdet(A_ij)"))
    with np.errstate(invalid="ignore"):
        assert np.isnan(eval(logdet, {"np": np, "A": -np.eye(3)}))  # noqa: S307 - generated code
    assert eval(logdet, {"np": np, "A": 2 * np.eye(3)}) == pytest.approx(3 * np.log(2))  # noqa: S307


def test_compile_names_a_non_square_matrix() -> None:
    with pytest.raises(ix.ShapeError, match="square") as info:
        ix.compile(ix.parse("det(A_ij)"))(A=np.ones((2, 3)))
    assert "det(A_ij)" in str(info.value) and "^^^" in str(info.value)


# -- cost ---------------------------------------------------------------------------------------------------------


def test_cost_of_operators() -> None:
    assert ix.cost(ix.parse("softmax_j(z_ij)"), {"i": 10, "j": 100}).flops == 5 * 1000
    assert ix.cost(ix.parse("logsumexp_j(z_ij)"), {"i": 10, "j": 100}).flops == 4 * 1000 + 10
    assert ix.cost(ix.parse("mean_j(z_ij)"), {"i": 10, "j": 100}).flops == 1000
    assert ix.cost(ix.parse("det(A_ij)"), {"i": 300}).flops == 2 * 300**3 // 3  # one LU factorization
    assert ix.cost(ix.parse("logdet(A_ij)"), {"i": 300}).flops == 2 * 300**3 // 3
    quadratic = ix.cost(ix.parse("x_i inv(A_ij) x_j"), {"i": 300})
    assert 2 * 300**3 <= quadratic.flops <= 2 * 300**3 + 4 * 300**2  # the inverse, then two matrix-vector passes
    # -x_i x_j inv(A_ik) inv(A_lj): one inversion, as compiled code does it (the second is its transpose)
    derivative = ix.cost(ix.diff(ix.parse("x_i inv(A_ij) x_j"), "A"), {"i": 300, "k": 300, "l": 300})
    assert 2 * 300**3 <= derivative.flops < 2 * 300**3 + 300**3  # not two inversions
    gaussian = ix.diff(ix.parse("0.5 logdet(C_ij) + 0.5 r_i inv(C_ij) r_j"), "C")
    assert 2 * 50**3 <= ix.cost(gaussian, {"i": 50, "k": 50}).flops < 4 * 50**3
