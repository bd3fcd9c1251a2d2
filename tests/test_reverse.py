"""ix.grad: the backward pass of programs, checked against hand-written numpy backprop and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix

MLP = """
z1_bi = W1_ij x_bj + b1_i
h1_bi = relu(z1_bi)
z2_bi = W2_ij h1_bj + b2_i
h2_bi = sigmoid(z2_bi)
L = sum_bi((h2_bi - y_bi)^2)
"""
WRT = ["W1", "b1", "W2", "b2"]


def _data(rng, batch=7, sizes=(5, 6, 3)):
    n_in, n_hidden, n_out = sizes
    return {
        "W1": rng.normal(size=(n_hidden, n_in)), "b1": rng.normal(size=n_hidden),
        "W2": rng.normal(size=(n_out, n_hidden)), "b2": rng.normal(size=n_out),
        "x": rng.normal(size=(batch, n_in)), "y": rng.uniform(size=(batch, n_out)),
    }  # fmt: skip


def _backprop(a):
    z1 = a["x"] @ a["W1"].T + a["b1"]
    h1 = np.maximum(z1, 0)
    z2 = h1 @ a["W2"].T + a["b2"]
    h2 = 1 / (1 + np.exp(-z2))
    dz2 = 2 * (h2 - a["y"]) * h2 * (1 - h2)
    dz1 = (dz2 @ a["W2"]) * (z1 > 0)
    return np.sum((h2 - a["y"]) ** 2), dz1.T @ a["x"], dz1.sum(0), dz2.T @ h1, dz2.sum(0)


def test_printed_backward_pass_is_the_textbook_one():
    g = ix.grad(ix.parse(MLP), wrt=WRT)
    adjoints = [str(s) for s in g.statements[5:]]
    assert "dz2_bi = dh2_bi h2_bi (1 - h2_bi)" in adjoints  # Eq. 53: d_σ ∘ u
    assert "dW2_ij = dz2_bi h1_bj" in adjoints  # (d_σ ∘ u) xᵀ
    assert "db2_i = sum_b(dz2_bi)" in adjoints
    assert "dz1_bi = dh1_bi step(z1_bi)" in adjoints
    assert g.outputs == ("L", "dW1", "db1", "dW2", "db2")


def test_mlp_gradients_match_hand_written_backprop(rng):
    a = _data(rng)
    got = ix.compile(ix.grad(ix.parse(MLP), wrt=WRT))(**a)
    for g, want in zip(got, _backprop(a)):
        assert np.allclose(g, want, rtol=1e-10, atol=1e-12)


def test_mlp_gradients_match_finite_differences():
    p = ix.parse(MLP)
    for w in WRT:
        assert ix.check(p, w).ok, w


def test_printed_gradient_program_reparses_and_evaluates_the_same(rng):
    g = ix.grad(ix.parse(MLP), wrt=WRT)
    again = ix.parse(str(g))
    assert again == g
    a = _data(rng)
    for name in g.outputs[1:]:
        assert np.allclose(ix.evaluate(again, a, output=name), ix.evaluate(g, a, output=name))


def test_gradient_program_is_itself_differentiable():
    g = ix.grad(ix.parse(MLP), wrt=["b2"])
    # the gradient of Σ db2 by W2 through the backward pass: a second-order quantity, checked numerically
    second = ix.parse(str(g) + "\nS = sum_i(db2_i)")
    assert ix.check(second, "W2").ok


def test_softmax_cross_entropy_is_stable_at_large_logits():
    p = ix.parse("z_bj = W_ji x_bi + c_j\nL = sum_b(log(sum_j(exp(z_bj))) - z_bj t_bj)")
    g = ix.grad(p, wrt=["W", "c"])
    x = np.array([[1000.0, -3.0], [0.5, 2.0]])
    W, c, t = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]]), np.zeros(3), np.eye(3)[[0, 2]]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dW, dc = ix.compile(g)(W=W, c=c, x=x, t=t)
    z = x @ W.T + c
    e = np.exp(z - z.max(1, keepdims=True))
    softmax = e / e.sum(1, keepdims=True)
    assert np.isfinite(loss)
    assert np.allclose(dW, (softmax - t).T @ x) and np.allclose(dc, (softmax - t).sum(0))
    assert ix.check(p, "W", "c").ok


def test_any_depth(rng):
    depth = 6
    lines = [f"h{k + 1}_bi = tanh(W{k}_ij h{k}_bj)" for k in range(depth)] + [f"L = sum_bi(h{depth}_bi^2)"]
    g = ix.grad(ix.parse("\n".join(lines)), wrt=["W0"])
    assert ix.check(ix.parse("\n".join(lines)), "W0", dims={"b": 2, "i": 3, "j": 3}).ok
    assert g.outputs == ("L", "dW0")
    assert len(g.statements) == 2 * depth + 2  # forward, one adjoint per intermediate, the gradient: linear


def test_grad_errors():
    p = ix.parse(MLP)
    with pytest.raises(ix.IndexDiffError, match="not a scalar"):
        ix.grad(p, loss="h1", wrt=["W1"])
    with pytest.raises(ix.IndexDiffError, match="does not depend on it"):
        ix.grad(p, wrt=["Q"])
    with pytest.raises(ix.IndexDiffError, match="defines no 'M'"):
        ix.grad(p, loss="M", wrt=["W1"])


def test_bad_programs_are_clear_errors(rng):
    with pytest.raises(ix.IndexDiffError, match="used before its definition"):
        ix.parse("h_i = g_i\ng_i = x_i\nL = h_i h_i")
    with pytest.raises(ix.IndexDiffError, match="defined twice"):
        ix.parse("h_i = x_i\nh_i = 2 x_i\nL = h_i h_i")
    with pytest.raises(ix.IndexDiffError, match="used with 2 indices"):
        ix.parse("h_i = x_i\nL = h_ij")
    f = ix.compile(ix.grad(ix.parse(MLP), wrt=WRT))
    a = _data(rng)
    with pytest.raises(ix.IndexDiffError, match="no array given for 'x'"):
        f(**{k: v for k, v in a.items() if k != "x"})
    with pytest.raises(ix.IndexDiffError, match="index 'j' has size"):
        f(**{**a, "x": a["x"][:, :-1]})


def test_unused_statements_and_variables(rng):
    p = ix.parse("h_bi = tanh(W_ij x_bj)\nunused_bi = V_ij x_bj\nL = sum_bi(h_bi^2)")
    g = ix.grad(p, wrt=["W", "V"])
    assert "dunused" not in str(g) and str(g.statements[-1]) == "dV_ij = 0"
    a = {"W": rng.normal(size=(3, 4)), "V": rng.normal(size=(3, 4)), "x": rng.normal(size=(2, 4))}
    loss, dW, dV = ix.compile(g)(**a)
    assert dV.shape == (3, 4) and not dV.any()
    h = np.tanh(a["x"] @ a["W"].T)
    assert np.allclose(dW, (2 * h * (1 - h**2)).T @ a["x"])
    assert ix.parse(str(g)) == g


def test_intermediate_as_variable_and_shadowed_sums():
    p = ix.parse("h_i = tanh(u_i)\nL = h_i h_i")
    assert str(ix.grad(p, wrt=["h"]).statements[-1]) == "dh_i = 2 h_i"
    q = ix.parse("F = v_i v_p (T_miq v_j T_qsj B_sm)\nL = F^2")
    g = ix.grad(q, wrt=["T"])
    assert ix.parse(str(g)) == g
