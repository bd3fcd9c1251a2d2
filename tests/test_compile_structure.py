"""What compiled plans compute once: an operator whatever its indices are called (softmax's vector-Jacobian
product computes softmax once), a factor every term of a sum multiplies (factoring.py, also in reverse mode's
adjoints), a number every term carries."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix
from indexdiff import operators
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
