"""Programs statement by statement: derivative programs (ix.diff), check, cost, codegen and the CLI, all linear in
the program's length and checked numerically; the stable softmax gradient; --wrt indices on programs."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import numpy as np
import pytest

import indexdiff as ix
from indexdiff.check import random_arrays
from indexdiff.cli import main
from indexdiff.forward import shape_expr
from indexdiff.program import inline


def residual(layers: int) -> str:
    """Each layer uses the previous one twice: inlining doubles the tree per layer."""
    lines = ["h1_i = tanh(W1_ij x_j) + x_i"]
    lines += [f"h{k}_i = tanh(W{k}_ij h{k - 1}_j) + h{k - 1}_i" for k in range(2, layers + 1)]
    return "\n".join([*lines, f"L = sum_i(h{layers}_i h{layers}_i)"])


def chain(n: int) -> str:
    """``a_k = a_{k-1} a_{k-1} + a_{k-1}``, scaled to stay finite."""
    return "\n".join(f"a{k} = a{k - 1} a{k - 1} / 8 + a{k - 1}" for k in range(1, n + 1))


def long_program(n: int) -> str:
    lines = ["s1_i = x_i + 1"] + [f"s{k}_i = s{k - 1}_i + tanh(s{k - 1}_i) / 1000" for k in range(2, n + 1)]
    return "\n".join([*lines, f"L = sum_i(s{n}_i s{n}_i)"])


def data(p: ix.Program, seed: int = 1, dims: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    return random_arrays(shape_expr(p), dims or {}, seed)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


CASES = [
    ("h_i = tanh(W_ij x_j)\ny_i = h_i + x_i", [["x"], ["x", "x"], ["W"], ["W", "x"]]),
    ("h_k = A_kj x_j\nL = h_i h_i", [["x"], ["x", "x"], ["A"], ["x", "A", "x"]]),
    (residual(2), [["x"], ["W1"], ["x", "x"], ["W1", "W2"]]),
    (chain(3), [["a0"], ["a0", "a0"], ["a0", "a0", "a0"]]),
    ("S_ij = A_ik B_kj\nP_ij = exp(S_ij) / sum_k(exp(S_ik))\nL = sum_ij(P_ij T_ij)", [["A"], ["B", "A"], ["T"]]),
    ("P_ij = exp(S_ij) / sum_k(exp(S_ik))\nQ_ij = P_ij P_ij", [["S"], ["S", "S"]]),
    ("z_bi = W_ij x_bj + c_i\nh_bi = sigmoid(z_bi)\nL = sum_bi(h_bi^2)", [["c"], ["W"], ["c", "c"]]),
    ("h_i = x_i^2\ng_ij = h_i h_j\nL = g_ii", [["x"], ["x", "x"]]),
    ("h_i = x_i\nL = sum_i(h_i) + y", [["y"], ["x"], ["y", "x"]]),
]


@pytest.mark.parametrize(("text", "chains"), CASES)
def test_derivative_programs_equal_the_inlined_derivatives(text, chains):
    p = ix.parse(text)
    a = data(p)
    for wrt in chains:
        d = ix.diff(p, *wrt)
        assert isinstance(d, ix.Program) and ix.parse(str(d)) == d
        want = ix.evaluate(ix.diff(inline(p), *wrt), a)  # the old route, fine at this size
        got = ix.evaluate(d, a)
        f = ix.compile(d)
        assert got.shape == want.shape and np.allclose(got, want, rtol=1e-10, atol=1e-12), (wrt, str(d))
        assert np.allclose(f(**{k: v for k, v in a.items() if k in f.inputs}), want, rtol=1e-10, atol=1e-12)
        assert d.statements[-1].free[: len(p.statements[-1].free)] == p.statements[-1].free


@pytest.mark.parametrize(("text", "chains"), CASES[:4])
def test_program_checks_pass_against_central_differences(text, chains):
    p = ix.parse(text)
    for wrt in chains:
        assert ix.check(p, *wrt).ok, wrt


def test_derivative_program_layout_names_and_indices():
    p = ix.parse("h_i = tanh(W_ij x_j)\ny_i = h_i + x_i")
    d = ix.diff(p, "x")
    assert [s.name for s in d.statements] == ["h", "y", "dhdx", "dydx"]
    assert str(d.statements[-1]) == "dydx_ik = dhdx_ik + δ_ik"
    assert "h_i^2" in str(d.statements[-2])  # tanh' reuses h by name
    assert ix.diff(p, "x_q").statements[-1].free == ("i", "q")
    assert ix.diff(p, "x_q", "W_{r,s}").statements[-1].free == ("i", "q", "r", "s")
    # names already taken get a number; every name stays a valid tensor name
    taken = ix.parse("dhdx_i = tanh(W_ij x_j)\ny_i = dhdx_i + x_i")
    d = ix.diff(taken, "x")
    assert len(set(d.names)) == len(d.names) and ix.parse(str(d)) == d
    # a scalar output: the gradient by reverse mode, in the variable's shape
    g = ix.diff(ix.parse("h_k = A_kj x_j\nL = h_i h_i"), "x")
    assert g.statements[-1].free == ("l",) and str(g.statements[-1]).startswith("dx_l =")


def test_derivative_by_an_intermediate_holds_its_definition_fixed(rng):
    p = ix.parse("h_i = tanh(W_ij x_j)\ny_i = h_i + x_i\nz_i = y_i h_i")
    d = ix.diff(p, "h")
    assert str(d.statements[-1]) == "dzdh_ik = dydh_ik h_i + y_i δ_ik"
    cut = ix.parse("y_i = h_i + x_i\nz_i = y_i h_i")  # h as an input: the same derivative
    a = {"W": rng.normal(size=(3, 3)), "x": rng.normal(size=3)}
    a["h"] = np.tanh(a["W"] @ a["x"])
    assert np.allclose(ix.evaluate(d, a), ix.evaluate(ix.diff(cut, "h"), a))
    assert ix.check(p, "h", "x").ok
    g = ix.parse("h_i = tanh(W_ij x_j)\nL = h_i h_i")
    assert str(ix.diff(g, "h").statements[-1]) == "dh_k = 2 h_k"  # ix.grad's, with a fresh index
    assert str(ix.grad(g, wrt=["h"]).statements[-1]) == "dh_i = 2 h_i"


def test_program_diff_errors():
    p = ix.parse("h_i = tanh(W_ij x_j)\ny_i = h_i + x_i")
    with pytest.raises(ix.IndexDiffError, match="has 1 index but 2"):
        ix.diff(p, "x_kl")
    with pytest.raises(ix.IndexDiffError, match="does not contain it"):
        ix.diff(p, "q")
    with pytest.raises(ix.IndexDiffError, match="already an output index"):
        ix.diff(p, "x_i")
    with pytest.raises(ix.IndexDiffError, match="no variable"):
        ix.diff(p)


def test_derivative_programs_grow_linearly():
    # inlining doubled the tree per layer (2^20 here); statement by statement each layer adds a few statements
    for text, wrt, per in ((residual(20), ("x", "x"), 5), (chain(20), ("a0", "a0"), 4), (residual(20), ("W1",), 2)):
        d = ix.diff(ix.parse(text), *wrt)
        assert len(d.statements) <= per * 21 + 2 and ix.parse(str(d)) == d


def test_long_programs_recurse_no_deeper_than_one_statement(capsys, tmp_path):
    n = 70
    p = ix.parse(long_program(n))
    f = tmp_path / "long.idx"
    f.write_text(long_program(n))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 60)  # fewer frames than statements
    try:
        d = ix.diff(p, "x")
        report = ix.check(p, "x", dims={"i": 2})
        flops = ix.cost(p, {"i": 5}).flops
        code = ix.codegen(p, "x", format="einsum")
        cli = run(capsys, "-f", str(f), "--wrt", "x", "--format", "json", "--check", "--cost", "--dims", "i=2")
    finally:
        sys.setrecursionlimit(limit)
    assert len(d.statements) <= 2 * (n + 1) + 1 and report.ok and flops > 0 and len(code.splitlines()) > n
    assert cli[0] == 0 and json.loads(cli[1])["check"][0]["ok"]


def test_compile_of_several_programs_shares_statements_and_renames_clashes(rng):
    p = ix.parse("h_i = tanh(W_ij x_j)\ny_i = h_i + x_i")
    q = ix.parse("h_i = 2 W_ij x_j\ny_i = h_i")  # other statements under the same names
    d, dd = ix.diff(p, "x"), ix.diff(p, "x", "W")
    a = {"W": rng.normal(size=(3, 3)), "x": rng.normal(size=3)}
    out = ix.compile(p, d, dd, q, ix.parse("x_i x_i"))(**a)
    wants = [ix.evaluate(e, a) for e in (p, d, dd, q)] + [a["x"] @ a["x"]]
    assert all(o.shape == w.shape and np.allclose(o, w) for o, w in zip(out, wants, strict=True))
    assert np.allclose(out[3], 2 * a["W"] @ a["x"])
    with pytest.raises(ix.IndexDiffError, match="compile them separately"):
        ix.compile(p, ix.parse("h_i h_i"))


def test_grad_takes_named_indices():
    p = ix.parse("h_i = tanh(W_ij x_j)\nL = sum_i(h_i h_i)")
    g = ix.grad(p, wrt=["x_q", "W_{r,s}", "h_p"])
    assert [str(s).split(" =")[0] for s in g.statements[-3:]] == ["dh_p", "dx_q", "dW_rs"]
    assert ix.parse(str(g)) == g
    with pytest.raises(ix.IndexDiffError, match="has 1 index but 2 were given"):
        ix.grad(p, wrt=["x_kl"])
    with pytest.raises(ix.IndexDiffError, match="given twice"):
        ix.grad(p, wrt=["W_kk"])


def test_program_check_estimates_its_time_from_compiled_runs():
    # compiling the program takes far longer than running it; the estimate must not count the compiling
    p = ix.parse(long_program(40))
    assert ix.check(p, "x", dims={"i": 40}, max_seconds=5).ok


def test_program_cost_is_the_sum_of_its_statements():
    p = ix.parse("h_i = W_ij x_j\nL = h_i h_i")
    dims = {"i": 100, "j": 50}
    parts = ix.cost(ix.parse("W_ij x_j"), dims).flops + ix.cost(ix.parse("h_i h_i"), {"i": 100}).flops
    assert ix.cost(p, dims).flops == parts
    one, two = ix.cost(ix.parse(residual(10)), {"i": 30}), ix.cost(ix.parse(residual(20)), {"i": 30})
    assert 1.8 < two.flops / one.flops < 2.2
    g = ix.cost(ix.diff(ix.parse(residual(10)), "W1"), {"i": 30})
    assert g.flops < 4 * one.flops  # reverse mode: a few times the forward pass


def test_program_einsum_code_runs(rng):
    p = ix.parse(residual(3))
    a = {**{f"W{k}": rng.normal(size=(4, 4)) / 2 for k in (1, 2, 3)}, "x": rng.normal(size=4)}
    code = ix.codegen(p, "x", "W2", format="einsum")
    scope = {"np": np, **a}
    exec(code, scope)  # noqa: S102 - our own generated code
    assert np.allclose(scope["L"], ix.evaluate(p, a))
    assert np.allclose(scope["dx"], ix.evaluate(ix.diff(p, "x"), a))
    assert np.allclose(scope["dW2"], ix.evaluate(ix.diff(p, "W2"), a))
    latex = ix.codegen(p, "x", format="latex")
    assert r"\tanh" in latex and len(latex.splitlines()) == len(ix.diff(p, "x").statements)


def test_program_python_module_without_and_with_gradients(tmp_path):
    p = ix.parse("h_i = tanh(W_ij x_j)\ny_i = h_i + x_i")
    f = tmp_path / "forward.py"
    f.write_text(ix.codegen(p, format="python"))
    proc = subprocess.run([sys.executable, str(f)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(ix.IndexDiffError, match="computes gradients"):
        ix.codegen(ix.parse(residual(2)), "x,x", format="python")


# --- softmax: as stable as the forward value ---------------------------------------------------------------------

SOFTMAX = "P_ij = exp(S_ij) / sum_k(exp(S_ik))\nL = sum_ij(P_ij T_ij)"


def _softmax_vjp(S: np.ndarray, T: np.ndarray) -> np.ndarray:
    e = np.exp(S - S.max(axis=1, keepdims=True))
    P = e / e.sum(axis=1, keepdims=True)
    return P * (T - np.sum(T * P, axis=1, keepdims=True))


@pytest.mark.parametrize(("scale", "dtype", "atol"), [(1e4, np.float64, 1e-12), (100.0, np.float32, 1e-5)])
def test_softmax_gradient_is_stable_at_large_logits(rng, scale, dtype, atol):
    # rows far out (exp overflows, or underflows to 0/0) with a spread that keeps the softmax far from one-hot
    S = (np.array([[scale], [-scale], [scale / 2], [0.0]]) + rng.normal(scale=2.0, size=(4, 5))).astype(dtype)
    T = rng.normal(size=(4, 5)).astype(dtype)
    want = _softmax_vjp(S.astype(np.float64), T.astype(np.float64))
    assert np.abs(want).max() > 0.05
    for program in (ix.grad(ix.parse(SOFTMAX), wrt=["S"]), ix.diff(ix.parse(SOFTMAX), "S")):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out = ix.compile(program)(S=S, T=T)
        got = out[-1] if isinstance(out, tuple) else out
        assert got.dtype == dtype and np.all(np.isfinite(got))
        assert np.allclose(got, want, rtol=1e-4, atol=atol)


def test_softmax_gradient_reuses_p_by_name(rng):
    g = ix.grad(ix.parse("S_ij = A_ik B_kj\n" + SOFTMAX), wrt=["A"])
    derived = [str(s) for s in g.statements[3:]]
    dS = next(s for s in derived if s.startswith("dS_"))
    assert "P_" in dS and all("exp" not in s for s in derived), derived
    forward = ix.diff(ix.parse("S_ij = A_ik B_kj\nP_ij = exp(S_ij) / sum_k(exp(S_ik))\nO_ik = P_ij V_jk"), "A")
    assert all("exp" not in str(s) for s in forward.statements[3:]) and "P_" in str(forward.statements[4])
    p = ix.parse("S_ij = A_ik B_kj\n" + SOFTMAX)
    assert ix.check(p, "A").ok and ix.check(p, "B", "A").ok
    a = {"A": rng.normal(size=(3, 2)) * 300, "B": rng.normal(size=(2, 4)), "T": rng.normal(size=(3, 4))}
    with np.errstate(over="raise", invalid="raise"):
        dA = ix.compile(g)(**a)[1]
    assert np.allclose(dA, _softmax_vjp(a["A"] @ a["B"], a["T"]) @ a["B"].T)


# --- the CLI -----------------------------------------------------------------------------------------------------


def test_cli_wrt_indices_on_a_program(capsys, tmp_path):
    f = tmp_path / "prog.idx"
    f.write_text("h_i = tanh(W_ij x_j)\nL = sum_i(h_i h_i)\n")
    code, out, err = run(capsys, "-f", str(f), "--wrt", "x_kl")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "'x' has 1 index but 2 were given" in err and "x_kl\n    ^^" in err and "x_k" in err
    code, out, _ = run(capsys, "-f", str(f), "--wrt", "x_q", "--wrt", "W_{r,s}")
    lines = out.splitlines()
    assert code == 0 and lines[-2].startswith("dx_q = ") and lines[-1].startswith("dW_rs = ")
    g = ix.parse(out)
    a = data(ix.parse(f.read_text()))
    want = ix.evaluate(ix.diff(ix.parse(f.read_text()), "x"), a)
    assert np.allclose(ix.evaluate(g, a, output="dx"), want)


def test_cli_program_formats_check_and_cost(capsys, tmp_path):
    f = tmp_path / "res.idx"
    f.write_text(residual(3))
    code, out, _ = run(capsys, "-f", str(f), "--wrt", "x", "--format", "json", "--check", "--cost", "--dims", "i=3")
    result = json.loads(out)
    assert code == 0 and result["derivatives"][0]["free"] == ["k"] and all(r["ok"] for r in result["check"])
    assert ix.parse(result["derivatives"][0]["index"]) == ix.diff(ix.parse(residual(3)), "x")
    code, out, err = run(capsys, "-f", str(f), "--wrt", "x,x", "--check")
    assert code == 0 and "d/dx/dx: ok" in err
    assert len(ix.parse(out).statements[-1].free) == 2
    code, out, _ = run(capsys, "-f", str(f), "--wrt", "W1", "--cost", "--dims", "i=10")
    assert code == 0 and "d/dW1" in out


def test_a_compiled_program_accepts_and_ignores_inputs_only_unused_statements_take() -> None:
    p = ix.parse("H_ij = A_ij; L = a")
    f = ix.compile(p)
    assert f(A=np.ones((2, 2)), a=np.array(2.0)) == 2.0
    assert f(a=np.array(2.0)) == 2.0
    with pytest.raises(ix.ShapeError, match="unexpected array 'B'"):
        f(a=np.array(2.0), B=np.ones(2))


def test_a_generated_program_module_leaves_out_statements_the_loss_does_not_use() -> None:
    p = ix.parse("G_i = δ_i + c; L = c T_ii")  # G's length only dims could give: the module must not ask for it
    T = np.arange(4.0).reshape(2, 2)
    for wrt in ((), ("c",)):
        namespace: dict = {}
        exec(ix.codegen(p, *wrt, format="python"), namespace)
        assert "n_i" not in namespace["forward"].__code__.co_varnames
        assert float(namespace["forward"](c=np.array(1.5), T=T)) == pytest.approx(1.5 * np.trace(T))
    loss, dc = namespace["gradients"](c=np.array(1.5), T=T)
    assert float(dc) == pytest.approx(np.trace(T))
