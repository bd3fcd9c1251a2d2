"""Every route gives the same, right number: ix.evaluate, ix.compile, the einsum code and the generated module,
each against an independent numpy reference (issue 7's silent wrong numbers, refused inputs and crashing code)."""

from __future__ import annotations

import itertools
import keyword
import string
import subprocess
import sys
import warnings
from fractions import Fraction

import numpy as np
import pytest
from routes import assert_routes

import indexdiff as ix
from indexdiff.codegen import python_names
from indexdiff.einsumcode import einsum_text
from indexdiff.errors import IndexDiffError, ShapeError
from indexdiff.expr import Mul, Number, Pow, Tensor


def _central(f, x, h=1e-6):
    """Central differences of the scalar function f at x (numpy by hand)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        g[idx] = (f(up) - f(down)) / (2 * h)
    return g


def test_step_is_a_number_in_the_inputs_float_type_on_every_route():
    x, y = np.array([1.0, -1.0, 2.0, 0.0]), np.array([1.0, 1.0, -3.0, 5.0])
    assert_routes(ix.parse("sum_i(step(x_i) step(y_i))"), {"x": np.ones(2), "y": np.ones(2)}, 2.0)
    assert_routes(ix.parse("sum_i(step(x_i) step(y_i))"), {"x": x, "y": y}, np.sum((x > 0) * (y > 0)))
    assert_routes(ix.parse("exp(step(x_i))"), {"x": x}, np.exp((x > 0).astype(float)))
    positive = np.array([0.5, 2.0, 3.0])
    assert_routes(ix.parse("y_i / step(x_i)"), {"x": positive, "y": positive}, positive)
    for dtype in (np.float32, np.float64):
        for e in ("exp(step(x_i))", "sum_i(step(x_i) step(x_i))", "y_i / step(x_i)", "step(x_i) y_i"):
            arrays = {n: positive.astype(dtype) for n in ix.parse(e).variables}
            for value in (ix.evaluate(ix.parse(e), arrays), ix.compile(ix.parse(e))(**arrays)):
                assert value.dtype == dtype, (e, value.dtype)


def test_dims_reach_summed_indices_that_evaluation_renamed_apart():
    x, m = np.array([1.0, 2.0, 4.0]), np.array(0.5)
    assert_routes(ix.parse("sum_b(x_b) + sum_b(m δ_b)"), {"x": x, "m": m}, x.sum() + 3 * 0.5, dims={"b": 3})
    assert_routes(ix.parse("(x_i x_i) / δ_ii"), {"x": x}, x @ x / 3, dims={"i": 3})
    # The inner Σ_i repeats the outer i, a different index: it prints (and is) Σ_k, and dims name it so.
    e = ix.parse("-(δ_ij (δ_j δ_i δ_i))")
    assert str(e) == "-δ_ij (δ_j δ_k δ_k)"
    assert_routes(e, {}, [-3.0, -3.0, -3.0], dims={"i": 3, "j": 3, "k": 3})
    with pytest.raises(ShapeError, match=r"size of index 'k' is unknown(.|\n)*dims=\{'k'"):
        ix.evaluate(e, {}, dims={"i": 3, "j": 3})
    with pytest.raises(ShapeError, match="size of index 'b' is unknown"):
        ix.compile(ix.parse("sum_b(x_b) + sum_b(m δ_b)"))(x=x, m=m)  # no dims: b's second length is unknown


def test_dims_by_the_printed_name_reach_a_renamed_trace_and_its_derivatives(capsys):
    from indexdiff.cli import main

    e = ix.parse("(δ_ii) / u_i")  # the trace's i is another index than u's: it prints as j
    u = np.array([1.0, 2.0])
    assert str(e) == "sum_j(δ_j) / u_i"
    assert_routes(e, {"u": u}, 3 / u, dims={"j": 3})
    d = ix.diff(e, "u")
    assert_routes(d, {"u": u}, np.diag(-3 / u**2), dims={"j": 3})
    assert ix.check(e, "u", "u", dims={"j": 3}).ok
    assert main(["(δ_ii) / u_i", "--wrt", "u", "--check", "--dims", "j=3"]) == 0
    capsys.readouterr()


def test_dims_reach_check_and_the_cli(tmp_path, capsys):
    from indexdiff.cli import main

    assert ix.check(ix.parse("sum_b(x_b) + sum_b(m δ_b)"), "x", dims={"b": 3}).ok
    assert main(["(x_i x_i) / δ_ii", "--wrt", "x", "--check", "--dims", "i=3"]) == 0
    capsys.readouterr()
    assert main(["(x_i x_i) / δ_ii", "--wrt", "x", "--format", "python"]) == 0
    path = tmp_path / "generated.py"
    path.write_text(capsys.readouterr().out, encoding="utf-8")
    run = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and ": ok" in run.stdout, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("L = sum_b((m δ_b + x_b)^2)", lambda m, x: np.sum((m + x) ** 2)),
        ("L = (x_b - m δ_b)(x_b - m δ_b)", lambda m, x: np.sum((x - m) ** 2)),
    ],
)
def test_a_derivative_keeps_the_length_only_a_delta_carried(text, reference):
    x, m = np.array([0.3, -1.2, 2.0, 0.7]), np.array(0.25)
    d = ix.diff(ix.parse(text), "m")
    want = _central(lambda mm: reference(mm, x), m)
    assert_routes(d, {"x": x, "m": m}, want, rtol=1e-7)  # no dims needed: a witness keeps b's length
    assert_routes(d, {"x": x, "m": m}, want, dims={"b": 4}, rtol=1e-7)


def test_a_summed_index_name_does_not_change_the_result():
    B = np.arange(6.0).reshape(2, 3) + 1  # k = 2, i = 3
    for text in ("sum_i(1 + δ_ki) B_ki", "sum_j(1 + δ_kj) B_ki", "sum_q(1 + δ_kq) B_ki"):
        assert_routes(ix.parse(text), {"B": B}, 3 * B.sum(axis=0))  # Σ_k (Σ_j (1 + δ_kj)) B_ki, n_k + 1 = 3


def test_deltas_over_summed_indices_in_derivatives_on_every_route():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3))
    d = ix.diff(ix.parse("L = sum_bd(x_bd - sum_e(x_be))"), "x")
    assert_routes(d, {"x": x}, _central(lambda y: np.sum(y) - y.shape[1] * np.sum(y), x), rtol=1e-7)
    a, b, A, B, X = rng.normal(size=3), rng.normal(size=3), *rng.normal(size=(3, 3, 3))
    d = ix.diff(ix.parse("a_a (A_ab + X_ac B_cd X_db) b_b"), "X")
    want = np.outer(a, B @ X @ b) + np.outer(B.T @ X.T @ a, b)
    assert np.allclose(want, _central(lambda Y: a @ (A + Y @ B @ Y) @ b, X), rtol=1e-7)
    assert_routes(d, {"a": a, "b": b, "A": A, "B": B, "X": X}, want)
    assert_routes(ix.parse("δ_i δ_ij x_j"), {"x": a}, a.sum())


def test_broadcast_indexing_of_a_power_is_valid_python():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 4.0])
    e = ix.parse("f_ij = x_i^2 + y_j")
    code = einsum_text(e)
    compile(code, "<einsum>", "eval")  # noqa: S102 - a SyntaxError here is the bug
    assert_routes(e, {"x": x, "y": y}, x[:, None] ** 2 + y[None, :])
    assert_routes(
        ix.parse("f_ij = (x_i + 1)^-1 - sqrt(y_j)^3"), {"x": x, "y": y + 5}, 1 / (x[:, None] + 1) - (y + 5) ** 1.5
    )


def test_more_than_52_index_names_in_one_expression():
    names = ["".join(p) for p in itertools.product(string.ascii_lowercase, repeat=2)][:61]
    rng = np.random.default_rng(2)
    # 30 terms, each its own pair of summed indices: 60 names, 2 per einsum call.
    text = " + ".join(
        f"A{k}_{{{names[2 * k]},{names[2 * k + 1]}}} B{k}_{{{names[2 * k + 1]},{names[2 * k]}}}" for k in range(30)
    )
    arrays = {f"A{k}": rng.normal(size=(2, 3)) for k in range(30)} | {
        f"B{k}": rng.normal(size=(3, 2)) for k in range(30)
    }
    e = ix.parse(text)
    assert ix.codegen(e, format="einsum").isascii()
    assert_routes(e, arrays, sum(np.trace(arrays[f"A{k}"] @ arrays[f"B{k}"]) for k in range(30)))
    # A chain of 60 matrices: one product with 61 indices, written as pairwise einsum calls.
    chain = ix.parse(
        f"f_{{{names[0]},{names[60]}}} = " + " ".join(f"M{k}_{{{names[k]},{names[k + 1]}}}" for k in range(60))
    )
    arrays = {f"M{k}": rng.normal(size=(2, 2)) for k in range(60)}
    assert ix.codegen(chain, format="einsum").isascii()
    assert_routes(chain, arrays, np.linalg.multi_dot(list(arrays.values())), rtol=1e-9)
    ones = {name: np.full((1, 1), 0.5) for name in arrays}  # tiny: compile's direct np.einsum path
    assert_routes(chain, ones, np.full((1, 1), 0.5**60))


def _expr(node, free=("i",)):
    return ix.Expr(node, free, None, {"x": 1}, {"i": ("x", 0)})


@pytest.mark.parametrize(
    ("coef", "exponent", "reference"),
    [
        (Fraction(1), Fraction(-1), lambda x: 1 / x),
        (Fraction(1, 3), Fraction(1), lambda x: x / 3),
        (Fraction(1, 10**300), Fraction(1), lambda x: 1e-300 * x),
        (Fraction(10**300), Fraction(1), lambda x: 1e300 * x),
        (Fraction(-(10**300)), Fraction(2), lambda x: -1e300 * x**2),
        (Fraction(-7, 2), Fraction(3), lambda x: -3.5 * x**3),
        (Fraction(1), Fraction(2**40), lambda x: np.power(x, 2.0**40)),
        (Fraction(1), Fraction(-(2**40) - 1), lambda x: np.power(x, -(2.0**40) - 1)),
    ],
)
def test_numbers_the_library_accepts_never_crash_generated_code(coef, exponent, reference):
    x = np.array([0.5, 1.0, 1.0 + 1e-13, 2.0])
    e = _expr(Mul((Number(coef), Pow(Tensor("x", ("i",)), exponent))))
    with np.errstate(all="ignore"):
        assert_routes(e, {"x": x}, reference(x), rtol=1e-12)


def test_zero_to_a_negative_power_is_inf_in_generated_code():
    x = np.array([0.0, 2.0])
    with np.errstate(divide="ignore"):
        assert_routes(ix.parse("x_i^-1"), {"x": x}, [np.inf, 0.5])
        assert_routes(ix.parse("(x_i - y_i)^-2"), {"x": x, "y": x}, [np.inf, np.inf])
        # The parser refuses a literal 0^-1, but code for a tree that holds one gives inf, not ZeroDivisionError.
        e = _expr(Mul((Pow(Number(Fraction(0)), Fraction(-1)), Tensor("x", ("i",)))))
        assert np.array_equal(eval(einsum_text(e), {"np": np}, {"x": x + 1}), [np.inf, np.inf])  # noqa: S307


def test_python_names_terminate_and_are_distinct_identifiers():
    weird = {"x\u03a2": 1, "in": 1, "x": 1, "xu03a2": 1, "np": 0, "Ϋ\u03a2": 2}
    names = python_names(weird)
    assert len(set(names.values())) == len(weird)
    assert all(n.isidentifier() and not keyword.iskeyword(n) for n in names.values())
    assert names["x\u03a2"] == "xu03a2_" or names["xu03a2"] == "xu03a2_"  # U+03A2 (unassigned) spelled out
    assert names["in"] == "in_" and names["np"] == "np_" and names["x"] == "x"
    e = ix.Expr(Mul((Tensor("x\u03a2", ("i",)), Tensor("x", ("i",)))), (), None, {"x\u03a2": 1, "x": 1}, {})
    module: dict = {}
    exec(ix.codegen(e, "x", format="python"), module)  # noqa: S102 - generated code
    u, v = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    value, grad = module["evaluate"](**{names["x\u03a2"]: u, "x": v})
    assert value == u @ v and np.array_equal(grad, u)


def test_a_positional_call_shows_the_keyword_call():
    f = ix.compile(ix.parse("A_ij x_j"))
    with pytest.raises(IndexDiffError, match=r"f\(A=\.\.\., x=\.\.\.\)"):
        f(np.ones((2, 2)), np.ones(2))


@pytest.mark.parametrize("text", ["sigmoid(x_i)", "relu(x_i)", "step(x_i)", "softplus(x_i)", "exp(x_i)", "abs(x_i)"])
@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([1 + 2j, 3.0]), "complex"),
        (np.array(["a", "b"]), "not numeric"),
        (np.array([object(), 1], dtype=object), "not numeric"),
    ],
)
def test_complex_string_and_object_arrays_are_refused_naming_the_tensor(text, array, message):
    e = ix.parse(text)
    for route in (lambda: ix.evaluate(e, {"x": array}), lambda: ix.compile(e)(x=array)):
        with pytest.raises(ShapeError, match=message) as err:
            route()
        assert "'x'" in str(err.value)


def test_empty_and_zero_dimensional_arrays():
    assert_routes(ix.parse("x_i A_ij x_j"), {"x": np.ones(0), "A": np.ones((0, 0))}, 0.0)
    assert_routes(ix.parse("A_ij x_j"), {"x": np.ones(0), "A": np.ones((2, 0))}, np.zeros(2))
    z = np.zeros((2, 0))
    assert_routes(ix.parse("f_b = log(sum_j(exp(z_bj)))"), {"z": z}, np.full(2, -np.inf))
    assert_routes(ix.parse("c x_i"), {"c": np.float64(2.0), "x": np.array([1.0, 3.0])}, [2.0, 6.0])
    assert_routes(ix.parse("c x_i"), {"c": 2, "x": np.array([1, 3])}, [2.0, 6.0])  # Python and numpy ints


def test_float32_stays_float32_and_ints_compute_in_float64():
    e = ix.parse("sum_i(sigmoid(A_ij x_j) + softplus(x_i) + step(x_i))")
    A, x = np.arange(9, dtype=np.float32).reshape(3, 3) / 10, np.array([1, -2, 3], dtype=np.float32)
    for value in (ix.evaluate(e, {"A": A, "x": x}), ix.compile(e)(A=A, x=x)):
        assert value.dtype == np.float32
    ints = {"A": np.arange(9).reshape(3, 3), "x": np.array([1, -2, 3])}
    for value in (ix.evaluate(e, ints), ix.compile(e)(**ints)):
        assert value.dtype == np.float64
    a, y = ints["A"].astype(float), ints["x"].astype(float)
    want = np.sum(1 / (1 + np.exp(-(a @ y))) + np.log1p(np.exp(y)) + (y > 0))
    assert_routes(e, ints, want)


def test_inf_and_nan_propagate_like_numpy():
    x = np.array([np.inf, -np.inf, np.nan, 1.0])
    with np.errstate(invalid="ignore"):
        assert_routes(ix.parse("sigmoid(x_i)"), {"x": x}, [1.0, 0.0, np.nan, 1 / (1 + np.exp(-1.0))])
        assert_routes(ix.parse("softplus(x_i)"), {"x": x}, [np.inf, 0.0, np.nan, np.log1p(np.e)])
        assert_routes(ix.parse("relu(x_i)"), {"x": x}, [np.inf, 0.0, np.nan, 1.0])
        assert_routes(ix.parse("x_i y_i"), {"x": x, "y": np.ones(4)}, np.nan)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_and_tiny_values_through_sigmoid_softplus_and_log_sum_exp(dtype):
    big = 1e4 if dtype == np.float64 else 100.0
    z = np.array([[big, -big, 0.0], [-big, -big, -big], [1e-30, -1e-30, 3.0]], dtype=dtype)
    ref = z.astype(np.float64)
    m = ref.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(ref - m).sum(axis=1, keepdims=True)))[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning on the way to a right number
        for text, want in [
            (
                "f_bj = sigmoid(z_bj)",
                np.where(ref >= 0, 1 / (1 + np.exp(-np.abs(ref))), np.exp(-np.abs(ref)) / (1 + np.exp(-np.abs(ref)))),
            ),
            ("f_bj = softplus(z_bj)", np.maximum(ref, 0) + np.log1p(np.exp(-np.abs(ref)))),
            ("f_b = log(sum_j(exp(z_bj)))", lse),
            ("P_bj = exp(z_bj - log(sum_i(exp(z_bi))))", np.exp(ref - lse[:, None])),
        ]:
            e = ix.parse(text)
            tol = 1e-6 if dtype == np.float32 else 1e-12
            for value in (ix.evaluate(e, {"z": z}), ix.compile(e)(z=z)):
                assert value.dtype == dtype
                assert np.allclose(value, want, rtol=tol, atol=tol), (text, value, want)
            assert_routes(e, {"z": z.astype(np.float64)}, want, rtol=tol, atol=tol)


def test_a_free_index_joined_only_by_a_delta_power_keeps_its_length():
    A = np.arange(6.0).reshape(3, 2)
    e = ix.parse("A_jl δ_ji^0")  # i has A's first length through δ_ji^0
    assert_routes(e, {"A": A}, np.broadcast_to(A.sum(axis=0), (3, 2)))
    assert_routes(ix.diff(e, "A", "A"), {"A": A}, np.zeros((3, 2, 3, 2, 3, 2)))  # 0, still with i's length
    B = np.arange(6.0).reshape(2, 3)
    e = ix.parse("δ_mi (δ_mi B_ji)")  # the outer i reaches B through m and the inner (another) i
    assert_routes(e, {"B": B}, B.T)
    assert_routes(ix.diff(e, "B", "B"), {"B": B}, np.zeros((3, 2, 2, 3, 2, 3)))


def test_compile_runs_a_statement_as_written_where_simplifying_lost_a_length():
    u, a = np.array([1.0, 2.0, 3.0]), np.array(0.5)
    # Σ_p (u_p - exp(δ_p a)) splits into two sums; the second knows p's length only from the first.
    assert_routes(ix.parse("F = u_p - exp(δ_p a)"), {"u": u, "a": a}, u.sum() - 3 * np.exp(0.5))
    d = ix.diff(ix.parse("L = sum_p(u_p - exp(δ_p a))"), "a")  # the derivative keeps a witness of p's length
    assert_routes(d, {"u": u, "a": a}, -3 * np.exp(0.5))


def test_a_witness_stays_where_only_some_terms_carry_the_index():
    B = np.arange(6.0).reshape(2, 3) / 7
    d = ix.diff(ix.parse("F_i = sum_j(B_ij - B_im δ_j δ_m)"), "B")  # F_i = Σ_j B_ij - n_j Σ_m B_im
    jac = np.zeros((2, 2, 3))  # ∂F_i/∂B_kl = δ_ik (1 - n_j)
    for k in range(2):
        jac[k, k, :] = 1 - B.shape[1]
    assert_routes(d, {"B": B}, jac)


def test_lengths_reach_through_deltas_inside_functions_and_sums():
    u = np.array([1.0, 2.0, 3.0])
    d = ix.diff(ix.parse("sum_i(δ_ij u_j - a)"), "a")  # -n_i, n_i known only through δ_ij u_j
    assert_routes(d, {"u": u, "a": np.array(1.0)}, -3.0)
    e = ix.parse("F_ij = u_j tan(sigmoid(δ_ij))")  # i has u's length through the δ inside the functions
    assert_routes(e, {"u": u}, u[None, :] * np.tan(1 / (1 + np.exp(-np.eye(3)))))
    assert_routes(ix.diff(e, "u", "u"), {"u": u}, np.zeros((3, 3, 3, 3)))
