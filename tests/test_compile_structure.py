"""What compiled plans compute once: an operator whatever its indices are called (softmax's vector-Jacobian
product computes softmax once), a factor every term of a sum multiplies (factoring.py, also in reverse mode's
adjoints), a number every term carries."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from fuzz_routes import Case, fuzz_settings
from hypothesis import given
from strategies import rich_case

import indexdiff as ix
from indexdiff import operators
from indexdiff.byhand import plan_by_hand
from indexdiff.check import random_arrays, sizes_for
from indexdiff.expr import Add, Mul, Sum, Tensor
from indexdiff.factoring import common_factor


def _softmax(a: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture
def operator_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the operators compiled numpy code applies, in order."""
    calls: list[str] = []
    apply = operators.apply

    def counted(name, value, axes):
        calls.append(name)
        return apply(name, value, axes)

    monkeypatch.setattr(operators, "apply", counted)
    return calls


def test_softmax_vjp_computes_softmax_once(operator_calls: list[str]) -> None:
    d = ix.diff(ix.parse("sum_bj(c_bj softmax_j(a_bj))"), "a")
    # The derivative names softmax three times, as softmax_l(a_kl) and as softmax_j(a_kj).
    assert str(d).count("softmax") == 3
    rng = np.random.default_rng(0)
    a, c = rng.normal(size=(4, 7)) * 30, rng.normal(size=(4, 7))
    f = ix.compile(d)
    for _ in range(2):
        operator_calls.clear()
        got = f(a=a, c=c)
        assert operator_calls == ["softmax"]
        p = _softmax(a, 1)
        np.testing.assert_allclose(got, p * (c - (c * p).sum(1, keepdims=True)), rtol=1e-12, atol=1e-15)


def test_an_operator_over_a_transposed_argument_is_the_transposed_value(operator_calls: list[str]) -> None:
    # softmax_j(a_ij) and softmax_i(a_ji) are one value, transposed; softmax_i(a_ij) is another.
    f = ix.compile(
        ix.parse("F_ij = softmax_j(a_ij)"), ix.parse("G_ij = softmax_i(a_ji)"), ix.parse("H_ij = softmax_i(a_ij)")
    )
    a = np.random.default_rng(1).normal(size=(3, 5))
    F, G, H = f(a=a)
    assert operator_calls.count("softmax") == 2
    np.testing.assert_allclose(F, _softmax(a, 1), rtol=1e-12)
    np.testing.assert_allclose(G, _softmax(a, 1).T, rtol=1e-12)
    np.testing.assert_allclose(H, _softmax(a, 0), rtol=1e-12)


ATTENTION = """
S_bij = 0.125 Q_bia K_bja
P_bij = softmax_j(S_bij)
O_bia = P_bij V_bja
L = sum_bia(O_bia G_bia)
"""


def test_attention_adjoint_is_factored_and_agrees_with_the_standard_backward() -> None:
    program = ix.grad(ix.parse(ATTENTION), wrt=["Q", "K", "V"])
    dS = next(s for s in program.statements if s.name == "dS")
    # P (dP - Σ P dP): the product of P and a sum, not a sum of two products with P.
    assert isinstance(dS.node, Mul) and any(isinstance(f, Add) for f in dS.node.factors)
    assert Tensor("P", dS.free) in dS.node.factors
    rng = np.random.default_rng(2)
    a = {k: rng.normal(size=(2, 5, 3)) for k in "QKVG"}
    loss, dQ, dK, dV = ix.compile(program)(**a)
    P = _softmax(0.125 * a["Q"] @ a["K"].transpose(0, 2, 1), 2)
    dP = a["G"] @ a["V"].transpose(0, 2, 1)
    dS_hand = P * (dP - (P * dP).sum(2, keepdims=True)) * 0.125
    np.testing.assert_allclose(loss, np.sum((P @ a["V"]) * a["G"]), rtol=1e-12)
    np.testing.assert_allclose(dQ, dS_hand @ a["K"], rtol=1e-10)
    np.testing.assert_allclose(dK, dS_hand.transpose(0, 2, 1) @ a["Q"], rtol=1e-10)
    np.testing.assert_allclose(dV, P.transpose(0, 2, 1) @ a["G"], rtol=1e-10)
    # The factored adjoint prints and parses back to the same numbers.
    again = ix.Program(ix.parse(str(program)).statements, program.outputs)
    for x, y in zip(ix.compile(again)(**a), (loss, dQ, dK, dV)):
        np.testing.assert_allclose(x, y, rtol=1e-12)


@pytest.mark.parametrize(
    ("text", "factored"),
    [
        ("f_ij = a_ij b_ij x_ij + a_ij b_ij y_j", True),
        ("f_ij = P_ij d_ij - P_ij P_ir d_ir", True),
        ("f_i = x_i y_i + 2 x_i", True),
        ("f_i = x_j A_ij + x_j B_ij", False),  # x_j is under each term's Σ_j
        ("f_i = x_i + y_i", False),
        ("f_i = 2 x_i - 2 y_i", False),  # numbers stay in the terms
    ],
)
def test_common_factor_takes_out_what_every_term_multiplies(text: str, factored: bool) -> None:
    e = ix.parse(text)
    out = common_factor(e.node)
    assert (out is not e.node) == factored
    if factored:
        assert isinstance(out, Mul) and isinstance(out.factors[-1], Add)
        assert not any(isinstance(t, Sum) and t.free != t.body.free - set(t.indices) for t in out.factors)
    rng = np.random.default_rng(3)
    arrays = {n: rng.normal(size=(3,) * r) for n, r in e.variables.items()}
    again = ix.Expr(out, e.free, e.name, e.variables, e.origins)
    np.testing.assert_allclose(ix.evaluate(again, arrays), ix.evaluate(e, arrays), rtol=1e-12)
    np.testing.assert_allclose(ix.compile(e)(**arrays), ix.evaluate(e, arrays), rtol=1e-12)


def test_a_number_every_term_carries_multiplies_the_sum_once() -> None:
    e = ix.parse("f_bi = 2 h_bi - 2 y_bi + 2 sum_j(A_ij h_bj)")
    f = ix.compile(e)
    rng = np.random.default_rng(4)
    h, y, A = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.normal(size=(4, 4))
    for _ in range(2):
        np.testing.assert_allclose(f(h=h, y=y, A=A), 2 * (h - y + h @ A.T), rtol=1e-12)
    # One multiplication by 2 (the last step), none inside the terms.
    plan = next(iter(f._plans.values()))
    assert sum(2.0 in [getattr(c, "cell_contents", None) for c in step.__closure__ or ()] for step in plan.steps) == 1


def test_plan_by_hand_multiplies_vectors_then_makes_one_matrix_product() -> None:
    # Σ_i X_ik X_il y_i s_i: y s element-wise, into X (broadcast), then Xᵀ X.
    plan = plan_by_hand([("i", "k"), ("i", "l"), ("i",), ("i",)], ("k", "l"))
    assert plan.groups == ((("i", "k"), (0,)), (("i", "l"), (1,)), (("i",), (2, 3)))
    assert plan.moves == ((2, 0),) and plan.final is not None
    # y_i X_ij w_j: the product X w, then times y.
    plan = plan_by_hand([("i",), ("i", "j"), ("j",)], ("i",))
    assert plan.moves == ((0, None),) and plan.final is not None
    # Σ_jk A_ij B_jk c_k: c stays (its index is summed with B alone): no broadcast, einsum's order.
    plan = plan_by_hand([("i", "j"), ("j", "k"), ("k",)], ("i",))
    assert plan.moves == () and plan.final is None


@pytest.mark.parametrize(
    "text",
    [
        "f_kl = sum_i(X_ik X_il y_i^2 sigmoid(X_ij w_j) (1 - sigmoid(X_ij w_j)))",
        "f_i = y_i X_ij w_j",
        "f_i = A_ij B_jk c_k",
        "f_kl = sum_i(X_ik X_il y_i) + sum_i(X_ik c_k X_il)",
        "f_ikl = X_ik y_i X_il",
    ],
)
def test_products_run_as_by_hand_agree_with_the_evaluator(text: str) -> None:
    # Large enough for the planned path (more than steps.SMALL multiply-adds), called twice (in place).
    e = ix.parse(text)
    rng = np.random.default_rng(5)
    shapes = {"X": (40, 30), "y": (40,), "w": (30,), "A": (40, 35), "B": (35, 30), "c": (30,)}
    arrays = {n: rng.normal(size=shapes[n]) for n in e.variables}
    f = ix.compile(e)
    want = ix.evaluate(e, arrays)
    for _ in range(2):
        np.testing.assert_allclose(f(**arrays), want, rtol=1e-10, atol=1e-12)
    for dtype in (np.float32, np.float64):  # and the generated module
        namespace: dict = {}
        exec(compile(ix.codegen(e), "generated", "exec"), namespace)  # noqa: S102 - the code under test
        got = namespace["evaluate"](**{n: a.astype(dtype) for n, a in arrays.items()})
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-4)


@fuzz_settings(80, 800)
@given(rich_case())
def test_random_expressions_at_lengths_that_take_the_planned_path_agree_with_the_evaluator(text: str) -> None:
    e = ix.parse(text)
    dims = sizes_for(e)
    if len(dims) > 4:
        return  # 9 per index: at most 9^4 elements in a product
    arrays = random_arrays(e, dict.fromkeys(dims, 9))
    case = Case(arrays, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = ix.evaluate(e, arrays, case.dims(e))
        if not np.all(np.isfinite(want)) or np.max(np.abs(want), initial=0.0) > 1e6:
            return
        f = ix.compile(e, dims=case.dims(e))
        for _ in range(2):
            np.testing.assert_allclose(f(**{n: arrays[n] for n in f.inputs}), want, rtol=1e-8, atol=1e-9)
