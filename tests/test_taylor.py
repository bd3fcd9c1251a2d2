"""Taylor polynomials (ix.taylor, --taylor N): the error of the order-n polynomial shrinks as |h|^(n+1), exact for
polynomials of that degree, every route, float32, the command line and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from routes import assert_routes

import indexdiff as ix
from indexdiff.cli import main

LOGISTIC = "sum_i(log(1 + exp(-y_i X_ij w_j)))"
CASES = [
    (LOGISTIC, "w", {"y": (20,), "X": (20, 4), "w": (4,)}),
    ("sum_j(softmax_j(W_jk x_k) t_j)", "x", {"W": (5, 3), "x": (3,), "t": (5,)}),
    ("sum_i(tanh(W_ij x_j)^2) + exp(a_j x_j)", "x", {"W": (3, 4), "x": (4,), "a": (4,)}),
    ("logsumexp_j(W_jk x_k)", "x", {"W": (5, 3), "x": (3,)}),
]


def _data(shapes, rng):
    data = {n: rng.normal(size=s) / np.sqrt(s[-1]) for n, s in shapes.items()}
    if "y" in data:
        data["y"] = np.sign(data["y"])
    return data


@pytest.mark.parametrize(("text", "x", "shapes"), CASES)
@pytest.mark.parametrize("order", [1, 2, 3])
def test_error_shrinks_as_the_step_to_the_order_plus_one(text, x, shapes, order, rng):
    e = ix.parse(text)
    t = ix.compile(ix.taylor(e, x, order=order, step="h"))
    f = ix.compile(e)
    data = _data(shapes, rng)
    direction = rng.normal(size=shapes[x])
    steps = np.array([0.04, 0.02, 0.01, 0.005])
    errors = []
    for s in steps:
        h = s * direction
        exact = f(**{**data, x: data[x] + h})
        errors.append(abs(float(t(**data, h=h)) - float(exact)))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - (order + 1)) < 0.35, (slope, errors)


def test_exact_for_polynomials_of_its_degree(rng):
    A, x, h = rng.normal(size=(4, 4)), rng.normal(size=4), rng.normal(size=4)
    quadratic = ix.parse("x_i A_ij x_j")
    assert np.isclose(ix.evaluate(ix.taylor(quadratic, "x"), {"A": A, "x": x, "h": h}), (x + h) @ A @ (x + h))
    linear = ix.evaluate(ix.taylor(quadratic, "x", order=1), {"A": A, "x": x, "h": h})
    assert not np.isclose(linear, (x + h) @ A @ (x + h))  # order 1 misses h A h
    cubic = ix.parse("sum_i(x_i^3) + x_i x_i")
    got = ix.evaluate(ix.taylor(cubic, "x", order=3, step="d"), {"x": x, "d": h})
    assert np.isclose(got, np.sum((x + h) ** 3) + (x + h) @ (x + h))
    # higher orders of a polynomial add nothing
    assert ix.taylor(cubic, "x", order=5, step="d") == ix.taylor(cubic, "x", order=3, step="d")


def test_order_zero_is_the_expression_and_orders_build_on_each_other():
    e = ix.parse(LOGISTIC)
    data = {"X": np.ones((3, 2)), "y": np.array([1.0, -1.0, 1.0]), "w": np.array([0.5, -2.0])}
    zero = ix.taylor(e, "w", order=0)
    assert "h" not in zero.variables and np.isclose(ix.evaluate(zero, data), ix.evaluate(e, data))
    t1 = ix.taylor(e, "w", order=1)
    assert str(t1).count("h_") == 1 and "h" in t1.variables


@pytest.mark.parametrize(("text", "x", "shapes"), CASES)
def test_every_route_and_print_parse(text, x, shapes, rng):
    t = ix.taylor(ix.parse(text), x, order=2)
    assert ix.parse(str(t)) == t
    data = {**_data(shapes, rng), "h": 0.1 * rng.normal(size=shapes[x])}
    want = ix.evaluate(t, data)
    assert_routes(t, data, want)
    assert_routes(ix.parse(str(t)), data, want)
    got = ix.compile(t)(**{n: a.astype(np.float32) for n, a in data.items()})
    assert got.dtype == np.float32 and np.allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_vector_valued_expression_keeps_its_indices(rng):
    e = ix.parse("softmax_j(W_jk x_k)")
    t = ix.taylor(e, "x", order=2)
    assert t.free == e.free == ("j",)
    W, x, h = rng.normal(size=(4, 3)), rng.normal(size=3), 1e-3 * rng.normal(size=3)
    z = W @ (x + h)
    want = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert np.allclose(ix.evaluate(t, {"W": W, "x": x, "h": h}), want, atol=1e-8)


def test_command_line(capsys):
    assert main([LOGISTIC, "--taylor", "2", "--wrt", "w"]) == 0
    out = capsys.readouterr().out.strip()
    assert ix.parse(out) == ix.taylor(ix.parse(LOGISTIC), "w", order=2)
    assert main([LOGISTIC, "--taylor", "1", "--wrt", "w", "--along", "d", "--format", "einsum"]) == 0
    assert "d" in capsys.readouterr().out
    assert main([LOGISTIC, "--taylor", "2", "--wrt", "w", "--cost", "--dims", "i=2000,j=500"]) == 0
    value = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("value"))
    assert float(value.split()[1]) < 3e7  # three O(n·d) orders, no d×d Hessian (that alone is 1e9)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--taylor", "2", "--wrt", "w,w"], "one variable"),
        (["--taylor", "2", "--wrt", "w", "--wrt", "X"], "one variable"),
        (["--taylor", "2"], "one variable"),
        (["--taylor", "-1", "--wrt", "w"], "from 0 to 10"),
        (["--taylor", "11", "--wrt", "w"], "from 0 to 10"),
        (["--taylor", "2", "--wrt", "w", "--along", "X"], "already a tensor"),
        (["--taylor", "2", "--wrt", "w", "--along", "a,b"], "one step name"),
        (["--taylor", "2", "--wrt", "w", "--check"], "--taylor prints a polynomial"),
        (["--taylor", "2", "--wrt", "q"], "does not contain"),
    ],
)
def test_command_line_errors(argv, message, capsys):
    assert main([LOGISTIC, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "hint:" in err and "Traceback" not in err


def test_bad_input():
    e = ix.parse(LOGISTIC)
    for order in (-1, 11, 1.5, True, "2"):
        with pytest.raises(ix.ArgumentError, match="order"):
            ix.taylor(e, "w", order=order)
    with pytest.raises(ix.DiffError, match="already a tensor"):
        ix.taylor(e, "w", step="y")
    with pytest.raises(ix.DiffError, match="must name a new tensor"):
        ix.taylor(e, "w", step="h_k")
    with pytest.raises(ix.DiffError, match="name alone"):
        ix.taylor(e, "w_k")
    for order in (0, 2):
        with pytest.raises(ix.DiffError, match="does not contain"):
            ix.taylor(e, "q", order=order)
    with pytest.raises(ix.DiffError, match="empty"):
        ix.taylor(e, " ")
    with pytest.raises(ix.ArgumentError, match="one variable"):
        ix.taylor(e, ["w"])
    with pytest.raises(ix.ArgumentError, match="not a program"):
        ix.taylor(ix.parse("z_i = X_ij w_j\nL = z_i z_i"), "w")
    with pytest.raises(ix.ArgumentError, match="parse it first"):
        ix.taylor(LOGISTIC, "w")
