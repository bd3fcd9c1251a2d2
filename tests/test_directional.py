"""Directional derivatives and Hessian-vector products (ix.diff(e, "w", along="v")): against central differences
along v, against the full derivative contracted with v, on every route, in float32, at huge and tiny values, their
cost, programs, the command line and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fuzz_routes import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from routes import assert_routes
from strategies import case

import indexdiff as ix
from indexdiff.cli import main
from indexdiff.data import random_arrays

LOGISTIC = "sum_i(log(1 + exp(-y_i X_ij w_j)))"

# (expression, variable, shapes of the tensors); the direction has the variable's shape.
CASES = [
    ("x_i A_ij x_j", "x", {"x": (4,), "A": (4, 4)}),
    (LOGISTIC, "w", {"y": (30,), "X": (30, 5), "w": (5,)}),
    ("sum_b(logsumexp_j(W_jk x_bk) - t_bj W_jk x_bk)", "W", {"W": (3, 4), "x": (6, 4), "t": (6, 3)}),
    ("sum_b(softmax_j(W_jk x_bk) t_bj)", "W", {"W": (3, 4), "x": (6, 4), "t": (6, 3)}),
    ("sum_i(sigmoid(U_ij tanh(W_jk x_k)))", "W", {"U": (3, 4), "W": (4, 5), "x": (5,)}),
    ("x_i inv(A_ij) x_j + logdet(A_ij)", "A", {"x": (4,), "A": (4, 4)}),
    ("tanh(a W_ij x_j) + a^2 b_i", "a", {"W": (3, 4), "x": (4,), "a": (), "b": (3,)}),
]


def _data(shapes, rng, scale=1.0):
    data = {n: scale * rng.normal(size=s) / np.sqrt(max(1, s[-1] if s else 1)) for n, s in shapes.items()}
    if "A" in data:
        data["A"] = np.eye(4) + 0.1 * data["A"]  # invertible, positive determinant
    if "y" in data:
        data["y"] = np.sign(data["y"])
    return data


def _central(e, data, w, v, eps=1e-4):
    """Richardson-extrapolated central difference of e along v (an independent numerical reference)."""

    def at(t):
        return np.asarray(ix.evaluate(e, {**data, w: data[w] + t * v}), dtype=float)

    d1 = (at(eps) - at(-eps)) / (2 * eps)
    d2 = (at(eps / 2) - at(-eps / 2)) / eps
    return (4 * d2 - d1) / 3


@pytest.mark.parametrize(("text", "w", "shapes"), CASES)
def test_directional_derivative_is_the_central_difference_along_v(text, w, shapes, rng):
    e = ix.parse(text)
    d = ix.diff(e, w, along="v")
    assert d.free == e.free and d.variables["v"] == e.variables[w]
    data = _data(shapes, rng)
    v = rng.normal(size=shapes[w])
    want = _central(e, data, w, v)
    assert_routes(d, {**data, "v": v}, want, rtol=1e-6, atol=1e-8)
    assert np.allclose(ix.evaluate(ix.parse(str(d)), {**data, "v": v}), want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("text", "w", "shapes"), CASES)
def test_hvp_is_the_hessian_times_v_and_the_difference_of_gradients(text, w, shapes, rng):
    e = ix.parse(text)
    hv = ix.diff(e, w, w, along="v")
    rank = len(shapes[w])
    assert hv.free == (*e.free, *ix.diff(e, w).free[len(e.free) :])
    data = _data(shapes, rng)
    v = rng.normal(size=shapes[w])
    hessian = np.asarray(ix.evaluate(ix.diff(e, w, w), data))
    full = np.tensordot(hessian, v, axes=rank) if rank else hessian * v
    assert_routes(hv, {**data, "v": v}, full, rtol=1e-9, atol=1e-10)
    assert np.allclose(ix.evaluate(ix.parse(str(hv)), {**data, "v": v}), full, rtol=1e-9, atol=1e-10)
    assert np.allclose(full, _central(ix.diff(e, w), data, w, v), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("text", "w", "shapes"), CASES[:5])
def test_float32_stays_float32_and_agrees(text, w, shapes, rng):
    e = ix.parse(text)
    hv = ix.diff(e, w, w, along="v")
    data = _data(shapes, rng)
    v = rng.normal(size=shapes[w])
    want = ix.evaluate(hv, {**data, "v": v})
    got = ix.compile(hv)(**{n: np.asarray(a, dtype=np.float32) for n, a in {**data, "v": v}.items()})
    assert got.dtype == np.float32
    assert np.allclose(got, want, rtol=2e-4, atol=2e-5 * np.max(np.abs(want)))


def test_contracting_each_derivative_gives_u_h_v_and_mixed_derivatives(rng):
    e = ix.parse(LOGISTIC)
    X, y, w = rng.normal(size=(40, 6)), np.sign(rng.normal(size=40)), rng.normal(size=6) / 3
    u, v = rng.normal(size=6), rng.normal(size=6)
    data = {"X": X, "y": y, "w": w}
    hessian = ix.evaluate(ix.diff(e, "w", "w"), data)
    uhv = ix.diff(e, "w", "w", along=("u", "v"))
    assert uhv.free == ()
    assert np.isclose(ix.evaluate(uhv, {**data, "u": u, "v": v}), u @ hessian @ v, rtol=1e-10)
    assert np.isclose(ix.evaluate(ix.diff(e, "w", "w", along=("v", "v")), {**data, "v": v}), v @ hessian @ v)
    # along on the first variable: the same H v (derivatives commute), with the free index named as diff names it
    first = ix.diff(e, "w", "w", along=("v", None))
    assert first.free == ("k",) == ix.diff(e, "w", "w", along="v").free
    assert np.allclose(ix.evaluate(first, {**data, "v": v}), hessian @ v)
    # a mixed derivative: ∂/∂X (∂e/∂w_k v_k), against differences of the directional derivative by X
    mixed = ix.diff(e, "X", "w", along="v")
    d = ix.diff(e, "w", along="v")
    dX = rng.normal(size=X.shape)
    want = _central(d, {**data, "v": v}, "X", dX)
    assert np.isclose(np.sum(ix.evaluate(mixed, {**data, "v": v}) * dX), want, rtol=1e-6)


def test_named_indices_and_new_index_order():
    e = ix.parse("W_ij x_j")
    d = ix.diff(e, "W", "x_p", along=(None, "v"))
    assert d.free == ("i", "k", "l")  # e's, then W's new ones: x's p is summed with v
    data = {"W": np.arange(6.0).reshape(2, 3), "x": np.ones(3), "v": np.array([1.0, -2.0, 0.5])}
    got = ix.evaluate(d, data)
    want = np.einsum("ik,l->ikl", np.eye(2), data["v"])  # ∂(W_ij v_j)/∂W_kl = δ_ik v_l
    assert np.allclose(got, want)


def test_hvp_cost_is_linear_in_the_data_not_the_hessian():
    e = ix.parse(LOGISTIC)
    hv = ix.diff(e, "w", "w", along="v")
    dims = {"i": 2000, "j": 500, "k": 500, "l": 500}
    used = {i: n for i, n in dims.items() if i in str(hv) or i in hv.free}
    hvp = ix.cost(hv, used).flops
    hessian = ix.cost(ix.diff(e, "w", "w"), {"i": 2000, "j": 500, "k": 500, "l": 500}).flops
    gradient = ix.cost(ix.diff(e, "w"), {"i": 2000, "j": 500, "k": 500}).flops
    assert hvp < 1e7 and hvp <= 2.5 * gradient  # O(n·d): X_il v_l, then X_ik d_i (about 8e6 FLOPs)
    assert hessian > 5e8  # the Hessian alone would be one n·d² product


@pytest.mark.parametrize(
    ("text", "w", "dims"),
    [
        ("sum_b(softmax_j(W_jk x_bk) t_bj)", "W", {"b": 256, "j": 10, "k": 784}),
        ("sum_i(sigmoid(U_ij tanh(W_jk x_k)))", "W", {"i": 100, "j": 200, "k": 300}),
        ("sum_bi(tanh(W_ij x_bj)^2)", "W", {"b": 100, "i": 50, "j": 60}),
    ],
)
def test_hvp_never_costs_a_hessian(text, w, dims):
    e = ix.parse(text)
    shapes = {t: tuple(dims[i] for i in idx) for t, idx in (("W", "jk" if "W_jk" in text else "ij"),)}
    hv = ix.diff(e, w, w, along="V")

    def sizes(x):
        from indexdiff.names import all_indices, tensors

        out = {}
        for t in tensors(x.node):
            shape = shapes.get("W" if t.name == "V" else t.name)
            if shape is None:
                continue
            out.update(zip(t.indices, shape))
        for t in tensors(ix.parse(text).node):
            out.update({i: dims[i] for i in t.indices})
        out.update({i: shapes["W"][a] for i, (_, a) in x.origins.items()})
        return {i: out.get(i, dims.get(i)) for i in all_indices(x.node) | set(x.free)}

    hvp = ix.cost(hv, sizes(hv)).flops
    hessian = ix.cost(ix.diff(e, w, w), sizes(ix.diff(e, w, w))).flops
    gradient = ix.cost(ix.diff(e, w), sizes(ix.diff(e, w))).flops
    assert hvp < 10 * gradient < hessian


def test_program_hvp_is_forward_over_reverse_and_agrees(rng):
    p = ix.parse("z_i = X_ij w_j\nL = sum_i(log(1 + exp(-y_i z_i)))")
    hv = ix.diff(p, "w", "w", along="v")
    assert isinstance(hv, ix.Program)
    assert "v" in str(hv) and all(len(s.free) <= 1 for s in hv.statements)  # no d×d statement
    d = ix.diff(p, "w", along="v")
    assert d.statements[-1].free == ()
    X, y, w, v = rng.normal(size=(50, 4)), np.sign(rng.normal(size=50)), rng.normal(size=4), rng.normal(size=4)
    data = {"X": X, "y": y, "w": w, "v": v}
    e = ix.parse(LOGISTIC)
    want = ix.evaluate(ix.diff(e, "w", "w"), data) @ v
    assert np.allclose(ix.compile(hv)(**data), want)
    assert np.allclose(ix.evaluate(hv, data), want)
    assert np.allclose(ix.evaluate(ix.parse(str(hv)), data), want)
    assert np.isclose(ix.compile(d)(**data), ix.evaluate(ix.diff(e, "w"), data) @ v)


def test_program_with_a_vector_output_gives_its_jvp(rng):
    p = ix.parse("h_i = tanh(W_ij x_j)\ny_i = h_i + x_i")
    jvp = ix.diff(p, "x", along="v")
    W, x, v = rng.normal(size=(3, 3)), rng.normal(size=3), rng.normal(size=3)
    want = ((1 - np.tanh(W @ x) ** 2)[:, None] * W + np.eye(3)) @ v
    assert np.allclose(ix.compile(jvp)(W=W, x=x, v=v), want)


@pytest.mark.parametrize("scale", [1e3, 1e-8])
def test_huge_and_tiny_values(scale, rng):
    e = ix.parse(LOGISTIC)
    hv = ix.compile(ix.diff(e, "w", "w", along="v"))
    X, y, v = rng.normal(size=(60, 5)), np.sign(rng.normal(size=60)), rng.normal(size=5)
    w = scale * rng.normal(size=5)
    z = y * (X @ w)
    p = np.exp(-np.logaddexp(0, z))  # sigmoid(-z), stable
    want = X.T @ (p * (1 - p) * (X @ v))
    for dtype in (np.float64, np.float32):
        got = hv(X=X.astype(dtype), y=y.astype(dtype), w=w.astype(dtype), v=v.astype(dtype))
        assert np.all(np.isfinite(got))
        assert np.allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-6 * np.abs(want).max())


def test_command_line(capsys):
    assert main([LOGISTIC, "--wrt", "w,w", "--along", "v"]) == 0
    out = capsys.readouterr().out.strip()
    assert ix.parse(out) == ix.diff(ix.parse(LOGISTIC), "w", "w", along="v")
    assert main([LOGISTIC, "--wrt", "w", "--wrt", "w,w", "--along", "v", "--cost", "--dims", "i=2000,j=500"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("d/dw/dw along v"))
    assert float(row.split()[3]) < 1e7  # FLOPs of the HVP
    assert main([LOGISTIC, "--wrt", "w,w", "--along", "u,v"]) == 0
    assert "u_" in capsys.readouterr().out
    assert main([LOGISTIC, "--wrt", "w,w", "--wrt", "w", "--along", "u,v", "--along", "v", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [d["along"] for d in out["derivatives"]] == [["u", "v"], "v"]
    # one --along per --wrt; an empty one leaves that derivative whole
    assert main([LOGISTIC, "--wrt", "w,w", "--wrt", "w,w", "--along", "v", "--along", ""]) == 0
    hvp, hessian = capsys.readouterr().out.splitlines()
    assert ix.parse(hessian) == ix.diff(ix.parse(LOGISTIC), "w", "w") and ix.parse(hvp).free == ("k",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wrt", "w", "--along", "w"], "already a tensor"),
        (["--wrt", "w", "--along", "y"], "already a tensor"),
        (["--along", "v"], "--along needs --wrt"),
        (["--wrt", "w", "--wrt", "w", "--wrt", "w", "--along", "u", "--along", "v"], "2 --along for 3 --wrt"),
        (["--wrt", "w,w", "--along", "a,b,c"], "3 names for the 2 variables"),
        (["--wrt", "w", "--along", "v_k"], "must name a new tensor"),
        (["--wrt", "w", "--along", "exp"], "must name a new tensor"),
        (["--wrt", "w", "--along", "1v"], "must name a new tensor"),
        (["--wrt", "w", "--along", "v", "--format", "latex"], "not available with --along"),
        (["--wrt", "w", "--along", "v", "--steps"], "not available with --along"),
        (["--wrt", "w", "--along", "v", "--format", "python"], "not available with --along"),
    ],
)
def test_command_line_errors(argv, message, capsys):
    assert main([LOGISTIC, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "hint:" in err and "Traceback" not in err


def test_bad_input_is_an_indexdiff_error():
    e = ix.parse("x_i A_ij x_j")
    with pytest.raises(ix.DiffError, match="already a tensor"):
        ix.diff(e, "x", along="A")
    with pytest.raises(ix.DiffError, match="one tensor cannot have both shapes"):
        ix.diff(e, "x", "A", along=("v", "v"))
    with pytest.raises(ix.ArgumentError, match="2 entries but there are 1"):
        ix.diff(e, "x", along=("u", "v"))
    with pytest.raises(ix.ArgumentError, match="names no tensor"):
        ix.diff(e, "x", along=(None,))
    with pytest.raises(ix.ArgumentError, match="tensor name or a sequence"):
        ix.diff(e, "x", along=3)
    for bad in ("", "v w", "v_k", "sum", "δ", "2"):
        with pytest.raises(ix.DiffError, match="must name a new tensor") as err:
            ix.diff(e, "x", along=bad)
        assert err.value.hint
    assert str(ix.diff(e, "x", along=" v ")) == str(ix.diff(e, "x", along="v"))  # spaces around a name
    with pytest.raises(ix.DiffError, match="does not contain"):
        ix.diff(e, "z", along="v")
    with pytest.raises(ix.DiffError, match="no variable"):
        ix.diff(e, along="v")
    with pytest.raises(ix.ArgumentError):
        ix.diff("x_i x_i", "x", along="v")
    p = ix.parse("z_i = A_ij x_j\nL = z_i z_i")
    with pytest.raises(ix.DiffError, match="already a tensor"):
        ix.diff(p, "x", along="z")  # a statement's name


def test_zero_directional_derivative_keeps_the_shape():
    e = ix.parse("b_i x_i + c_k")
    d = ix.diff(e, "x", "x", along="v")
    assert d.free == ("k", "l")
    got = ix.evaluate(d, {"b": np.ones(2), "x": np.ones(2), "c": np.ones(3), "v": np.ones(2)})
    assert got.shape == (3, 2) and not got.any()


def test_a_symmetric_matrix_keeps_its_declaration_and_convention(rng):
    e = ix.parse("x_i S_ij x_j + logdet(S_ij)", symmetric={"S"})
    d, hv = ix.diff(e, "S", along="V"), ix.diff(e, "S", "S", along="V")
    assert d.symmetric == hv.symmetric == ix.taylor(e, "S", step="V").symmetric == frozenset({"S"})
    A, B, x = rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), rng.normal(size=3)
    S, V = 3 * np.eye(3) + (A + A.T) / 4, (B + B.T) / 2  # a symmetric step
    data = {"x": x, "S": S}
    assert np.isclose(ix.evaluate(d, {**data, "V": V}), _central(e, data, "S", V), rtol=1e-8)
    g = ix.diff(e, "S")  # sym(G): the Hessian-vector product is the difference of it along V
    assert np.allclose(ix.evaluate(hv, {**data, "V": V}), _central(g, data, "S", V), rtol=1e-6, atol=1e-9)


def test_check_along_passes_right_and_fails_wrong_derivatives(monkeypatch, capsys):
    from indexdiff import alongcheck
    from indexdiff.expr import Expr, Mul, Number

    e = ix.parse(LOGISTIC)
    report = alongcheck.check_along(e, ["w", "w"], "v", dims={"i": 20, "j": 3})
    assert report.ok and [str(r).split(":")[0] for r in report.results] == ["d/dw along v", "d/dw/dw along v"]
    assert all(r.max_abs_error < 1e-8 for r in report.results)
    both = alongcheck.check_along(e, ["w", "w"], ("u", "v"), dims={"i": 20, "j": 3})
    assert both.ok and len(both.results) == 2
    assert main([LOGISTIC, "--wrt", "w,w", "--along", "v", "--check", "--dims", "i=20,j=3"]) == 0
    assert "check d/dw/dw along v: ok" in capsys.readouterr().err
    step = alongcheck._expr_step

    def off_by_a_thousandth(expr, spec, v, reserved):
        d = step(expr, spec, v, reserved)
        return Expr(Mul((Number(ix.parse("1.001").node.value), d.node)), d.free, None, d.variables, d.origins)

    monkeypatch.setattr(alongcheck, "_expr_step", off_by_a_thousandth)
    wrong = alongcheck.check_along(e, ["w"], "v", dims={"i": 20, "j": 3})
    assert not wrong.ok and "FAILED" in str(wrong)
    with pytest.raises(ix.ArgumentError, match="program"):
        alongcheck.check_along(ix.parse("z_i = X_ij w_j\nL = z_i z_i"), ["w"], "v")


def test_check_along_at_given_arrays(rng):
    from indexdiff.alongcheck import check_along

    e = ix.parse("sum_b(softmax_j(W_jk x_bk) t_bj)")
    arrays = {"W": rng.normal(size=(3, 4)), "x": rng.normal(size=(5, 4)), "t": rng.normal(size=(5, 3))}
    assert check_along(e, ["W", "W"], "V", arrays=arrays).ok
    assert check_along(e, ["W", "W"], "V", arrays={**arrays, "V": np.ones((3, 4))}).ok


@fuzz_settings(15, 500)
@given(case(), st.data())
def test_random_expressions_contract_like_their_full_derivatives(text, data):
    """On the differential fuzzer's expressions: the directional derivative, the HVP and vᵀHv against the full
    gradient and Hessian contracted with v, evaluated and compiled."""
    e = ix.parse(text)
    if not e.variables:
        return
    x = data.draw(st.sampled_from(sorted(e.variables)))
    arrays = random_arrays(e, None, 0)
    rank = e.variables[x]
    d = np.random.default_rng(1).normal(size=arrays[x].shape)
    with np.errstate(all="ignore"):
        g = np.asarray(ix.evaluate(ix.diff(e, x), arrays))
        hess = np.asarray(ix.evaluate(ix.diff(e, x, x), arrays))
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(hess))):
        return
    hv = np.tensordot(hess, d, axes=rank) if rank else hess * d
    wants = {
        "dd": np.tensordot(g, d, axes=rank) if rank else g * d,
        None: hv,
        ("dd", "dd"): np.tensordot(hv, d, axes=rank) if rank else hv * d,
    }
    for along, want in wants.items():
        expr = ix.diff(e, x, along="dd") if along == "dd" else ix.diff(e, x, x, along=along or "dd")
        a = {**arrays, "dd": d}
        scale = max(1.0, float(np.abs(want).max(initial=0.0)))
        for got in (ix.evaluate(expr, a), ix.compile(expr)(**{n: a[n] for n in expr.variables})):
            assert np.shape(got) == np.shape(want), (text, x, along)
            assert np.allclose(got, want, rtol=1e-8, atol=1e-9 * scale), (text, x, along, got, want)


@pytest.mark.parametrize(
    "argv",
    [
        ["x_i S_ij x_j", "--wrt", "S", "--along", "V"],
        ["logdet(S_ij)", "--wrt", "S,S", "--along", "V"],
        ["x_i S_ij x_j + S_ij S_jk S_ki", "--wrt", "S,S", "--along", ",V"],
    ],
)
def test_check_along_a_symmetric_matrix_moves_it_symmetrically(argv, capsys):
    # The check's random direction and its differences keep a declared-symmetric matrix symmetric, so its own data
    # passes the symmetry check (it once failed with "S is declared symmetric but S - Sᵀ ...").
    assert main([*argv, "--symmetric", "S", "--check"]) == 0
    err = capsys.readouterr().err
    assert "ok (max abs error" in err and "declared symmetric" not in err


def test_numpy_format_is_refused_with_along_not_printed_as_matrix_text(capsys):
    assert main(["x_i A_ij x_j", "--wrt", "x,x", "--along", "v", "--format", "numpy"]) == 2
    err = capsys.readouterr().err
    assert "--format numpy is not available with --along" in err and "--along v" in err
