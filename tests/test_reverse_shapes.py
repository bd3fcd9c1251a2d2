"""Reverse mode derives an adjoint once per shape: a later layer's adjoint is an earlier one's with the tensor
names replaced and its operands put in canonical order for those names. It must print exactly what deriving it
afresh prints, and compute the right numbers."""

from __future__ import annotations

import re

import numpy as np
import pytest
import strategies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import indexdiff as ix
from indexdiff import reverse
from indexdiff.names import tensors

PROGRAMS = {
    # names that sort differently in every layer (upper case before lower case): the canonical order changes
    "mlp": """
        h1_bi = relu(W_ij x_bj + c_i)
        h2_bi = relu(A_ij h1_bj + z_i)
        h3_bi = relu(m_ij h2_bj + B_i)
        h4_bi = relu(Z_ij h3_bj + a_i)
        L = sum_bi((h4_bi - y_bi)^2)
    """,
    # each layer used twice (two users per adjoint), sigmoid and tanh layers reused by name
    "residual": """
        u1_i = tanh(W_ij x_j) + x_i
        u2_i = tanh(V_ij u1_j) + u1_i
        u3_i = sigmoid(a_ij u2_j) + u2_i
        u4_i = sigmoid(B_ij u3_j) + u3_i
        L = u4_i u4_i + u2_i u3_i
    """,
    # a tensor used twice in one layer, and layers whose tensors coincide with another layer's
    "shared": """
        p_i = W_ij x_j W_ik x_k
        q_i = V_ij p_j V_ik p_k
        r_i = W_ij q_j W_ik p_k
        s_i = V_ij r_j V_ik q_k
        L = sum_i(s_i)
    """,
    # softmax statements of one shape
    "attention": """
        S1_ij = Q_ia K_ja
        P1_ij = softmax_j(S1_ij)
        S2_ij = P1_ia R_ja
        P2_ij = softmax_j(S2_ij)
        L = sum_ij(P2_ij T_ij)
    """,
}


def _inputs(program: ix.Program) -> list[str]:
    return sorted(program.inputs)


def _grad_without_shapes(monkeypatch: pytest.MonkeyPatch, program: ix.Program, wrt: list[str]) -> str:
    """The gradient program derived with every statement its own shape (its tensors keep their names)."""
    with monkeypatch.context() as m:
        m.setattr(reverse, "tensor_shape", lambda node: (node, tuple(dict.fromkeys(t.name for t in tensors(node)))))
        return str(ix.grad(program, wrt=wrt))


@pytest.mark.parametrize("name", PROGRAMS)
def test_adjoints_by_shape_print_as_derived_afresh(name, monkeypatch):
    program = ix.parse(PROGRAMS[name])
    for wrt in (_inputs(program), _inputs(program)[-1:]):
        fast = str(ix.grad(program, wrt=wrt))
        assert fast == _grad_without_shapes(monkeypatch, program, wrt)
        assert ix.parse(fast) == ix.grad(program, wrt=wrt)  # prints as index notation that parses back


@pytest.mark.parametrize("name", PROGRAMS)
def test_adjoints_by_shape_compute_the_gradient(name):
    program = ix.parse(PROGRAMS[name])
    wrt = [n for n in _inputs(program) if n not in ("y", "T")]
    for w in wrt:  # a program's derivative by w is its reverse-mode gradient, checked by central differences
        report = ix.check(program, w, dims={"b": 3, "i": 4, "j": 4, "k": 4, "a": 4})
        assert report.ok, str(report)


def test_deep_network_reuses_shapes_and_matches_numpy_backprop():
    depth = 30
    lines = [f"h{k + 1}_bi = tanh(W{k}_ij h{k}_bj + c{k}_i)" for k in range(depth)]
    text = "\n".join([*lines, f"L = sum_bi((h{depth}_bi - y_bi)^2)"])
    gradient = ix.grad(ix.parse(text), wrt=["W0", f"W{depth - 1}", "c3"])
    rng = np.random.default_rng(0)
    arrays = {f"W{k}": rng.normal(size=(3, 3)) / 2 for k in range(depth)}
    arrays |= {f"c{k}": rng.normal(size=3) for k in range(depth)}
    arrays |= {"h0": rng.normal(size=(2, 3)), "y": rng.normal(size=(2, 3))}
    loss, g_first, g_last, g_c3 = ix.compile(gradient)(**arrays)
    hs = [arrays["h0"]]
    for k in range(depth):
        hs.append(np.tanh(hs[-1] @ arrays[f"W{k}"].T + arrays[f"c{k}"]))
    d = 2 * (hs[-1] - arrays["y"])
    grads = {}
    for k in reversed(range(depth)):
        dz = d * (1 - hs[k + 1] ** 2)
        grads[f"W{k}"], grads[f"c{k}"] = dz.T @ hs[k], dz.sum(0)
        d = dz @ arrays[f"W{k}"]
    assert np.isclose(loss, np.sum((hs[-1] - arrays["y"]) ** 2))
    np.testing.assert_allclose(g_first, grads["W0"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_last, grads[f"W{depth - 1}"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g_c3, grads["c3"], rtol=1e-10, atol=1e-12)
    # every hidden layer's adjoint reads like the first one derived (dh29), with its own names
    by_name = {st.name: str(st) for st in gradient.statements}
    for k in (1, 5, depth - 1):
        assert by_name[f"dh{k}"] == f"dh{k}_bi = sum_n(W{k}_ni dh{k + 1}_bn (1 - h{k + 1}_bn^2))"


_TENSOR = re.compile(r"(?<![A-Za-z0-9_{,])(a|c|u|v|w|A|B|T|H)(?![A-Za-z0-9])")
#: Each layer's names for the strategy's tensors: single letters that are also index letters (k, m, p), names that
#: sort before and after the others, and names like h1.
_LAYER_NAMES = [
    {"a": "a", "c": "c", "u": "u", "v": "v", "w": "w", "A": "A", "B": "B", "T": "T"},
    {"a": "k", "c": "c2", "u": "z", "v": "v2", "w": "b", "A": "m", "B": "Z", "T": "T2"},
    {"a": "a3", "c": "p", "u": "u3", "v": "e", "w": "w3", "A": "D", "B": "n", "T": "t"},
]


@st.composite
def _layered(draw: st.DrawFn) -> str:
    """Three layers of one random shape, H1 = f(H0), H2 = f(H1), H3 = f(H2), each with its own tensor names."""
    names = {0: ["a", "c"], 1: ["u", "v", "w"], 2: ["A", "B", "H", "H"], 3: ["T"]}
    layer = strategies.expression(("i", "j"), frozenset("ij"), depth=3, positive=True, rich=True, names=names)
    body = draw(layer.filter(lambda text: "H_" in text))  # each layer uses the one before
    lines = []
    for k, rename in enumerate(_LAYER_NAMES, start=1):
        layer = _TENSOR.sub(lambda m, k=k, r=rename: f"H{k - 1}" if m[1] == "H" else r[m[1]], body)
        lines.append(f"H{k}_ij = {layer}")
    return "\n".join([*lines, "L = sum_ij(H3_ij)"])


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(_layered())
def test_layers_of_one_shape_print_as_derived_afresh(text):
    import _pytest.monkeypatch

    program = ix.parse(text)
    wrt = _inputs(program)
    with _pytest.monkeypatch.MonkeyPatch.context() as patch:
        try:
            fast = str(ix.grad(program, wrt=wrt))
        except ix.IndexDiffError as err:
            fast = f"error: {err}"
        try:
            slow = _grad_without_shapes(patch, program, wrt)
        except ix.IndexDiffError as err:
            slow = f"error: {err}"
    assert fast == slow
