"""The element-wise functions: accurate in the tails against an independent reference (mpmath, or Python's math
where mpmath is absent), no overflow warnings, the input's float type kept, nan and inf as numpy has them; and
users' functions registered with ix.function through every route (parse, print, evaluate, compile, derivatives,
check, generated code) with errors for bad registrations."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from routes import routes

import indexdiff as ix
from indexdiff.functions import FUNCTIONS, logsumexp
from indexdiff.printer import to_latex

try:
    import mpmath
except ImportError:  # pragma: no cover - the reference falls back to Python's math
    mpmath = None

HERE = Path(__file__).parent
BUILT_IN = ["exp", "log", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "step", "softplus", "sqrt", "abs", "sign"]
BIG = {np.float64: 1e4, np.float32: 100.0}


def _reference(name: str, x: float) -> float:
    """f(x) to double precision, computed independently of numpy (mpmath at 40 digits, or math's branches)."""
    if name in ("relu", "step", "abs", "sign"):
        return {"relu": max(x, 0.0), "step": float(x > 0), "abs": abs(x), "sign": float((x > 0) - (x < 0))}[name]
    if mpmath is not None:
        with mpmath.workdps(40):
            v = mpmath.mpf(x)
            if name == "sigmoid":
                return float(1 / (1 + mpmath.exp(-v)))
            if name == "softplus":
                return float(mpmath.log1p(mpmath.exp(v)))
            return float(getattr(mpmath, name)(v))
    if name == "sigmoid":
        return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
    if name == "softplus":
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    return getattr(math, name)(x)


def _derivative_reference(name: str, x: float) -> float:
    """f'(x): sigmoid's as sigmoid(x) sigmoid(-x) (accurate in both tails), the others by mpmath's numerical
    derivative at 40 digits, or their formulas with Python's math."""
    if name == "sigmoid":
        return _reference("sigmoid", x) * _reference("sigmoid", -x)
    if name in ("relu", "step", "abs", "sign"):
        return {"relu": float(x > 0), "step": 0.0, "abs": float((x > 0) - (x < 0)), "sign": 0.0}[name]
    if mpmath is not None:
        with mpmath.workdps(40):
            f = {"softplus": lambda v: mpmath.log1p(mpmath.exp(v))}.get(name) or getattr(mpmath, name)
            return float(mpmath.diff(f, mpmath.mpf(x)))
    exact = {
        "exp": math.exp,
        "log": lambda v: 1 / v,
        "sin": math.cos,
        "cos": lambda v: -math.sin(v),
        "tan": lambda v: 1 / math.cos(v) ** 2,
        "tanh": lambda v: 1 / math.cosh(v) ** 2 if abs(v) < 700 else 0.0,
        "softplus": lambda v: _reference("sigmoid", v),
        "sqrt": lambda v: 0.5 / math.sqrt(v),
    }
    return exact[name](x)


def _points(name: str, dtype: type) -> np.ndarray:
    """Arguments across the function's domain, tails included, where its value is finite."""
    big = BIG[dtype]
    top = 700.0 if dtype == np.float64 else 85.0  # exp stays finite
    if name in ("log", "sqrt"):
        return np.array([1e-30, 1e-5, 0.5, 1.0, 3.0, 1e5, 1e30], dtype=dtype)
    if name == "exp":
        return np.array([-big, -top, -30.0, -1.0, 0.0, 1e-30, 1.0, 30.0, top], dtype=dtype)
    if name == "tan":
        return np.array([-1.5, -1.0, -1e-30, 0.0, 0.5, 1.2, 1.5], dtype=dtype)
    if name == "cos":  # away from cos's zeros, where a value's relative error is not the function's fault
        return np.array([-3.0, -1.0, 0.0, 1e-30, 0.5, 1.0, 3.0], dtype=dtype)
    middle = [-745.0, -720.0, -100.0] if dtype == np.float64 else [-88.0]
    return np.array([-big, *middle, -40.0, -30.0, -1.0, -1e-30, 0.0, 1e-30, 1.0, 30.0, 40.0, big], dtype=dtype)


def _close(got: np.ndarray, want: np.ndarray, dtype: type, ulps: float, floor: float = 0.0) -> None:
    """Within ``ulps`` units in the last place of ``want`` (where it is a normal number), else within the
    smallest normal number (subnormal results); ``floor`` is an absolute tolerance on top."""
    info = np.finfo(dtype)
    want = want.astype(dtype)
    tol = np.maximum(ulps * info.eps * np.abs(want), info.smallest_normal) + floor
    assert np.all(np.abs(got.astype(np.float64) - want) <= tol), (got, want)


@contextlib.contextmanager
def _no_warnings() -> Iterator[None]:
    """numpy warnings raise: overflow, invalid and division (underflow to 0 is the right answer there)."""
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", BUILT_IN)
def test_each_function_is_accurate_in_its_tails_without_warnings(name, dtype):
    x = _points(name, dtype)
    want = np.array([_reference(name, float(v)) for v in x])
    e = ix.parse(f"{name}(a_i)")
    with _no_warnings():
        outs = [FUNCTIONS[name].numpy(x), ix.evaluate(e, {"a": x}), ix.compile(e)(a=x)]
    for got in outs:
        assert got.dtype == dtype
        # float32 trig functions reduce their argument less carefully than float64's: a few more ulps
        _close(got, want, dtype, ulps=4 if dtype == np.float64 else 8)


@pytest.mark.parametrize("name", BUILT_IN)
def test_generated_code_is_as_accurate_in_the_tails(name):
    """The einsum code (eval'd) and the generated module: the same tails, no warnings (float64: modules compute
    in float64)."""
    x = _points(name, np.float64)
    want = np.array([_reference(name, float(v)) for v in x])
    with _no_warnings():
        got = routes(ix.parse(f"{name}(a_i)"), {"a": x})
    for route in ("einsum", "module"):
        _close(got[route], want, np.float64, ulps=4)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", BUILT_IN)
def test_each_derivative_as_indexdiff_computes_it_is_stable(name, dtype):
    """f'(a_k) from ix.diff, evaluated and compiled: finite, no warnings, within a few ulps of max(|f'|, 1)
    (the derivative formulas, as JAX's, subtract from 1: sigmoid (1 - sigmoid), 1 - tanh^2)."""
    x = _points(name, dtype)
    d = ix.diff(ix.parse(f"sum_i({name}(a_i))"), "a")
    want = np.array([_derivative_reference(name, float(v)) for v in x])
    with _no_warnings():
        outs = [ix.evaluate(d, {"a": x}), ix.compile(d)(a=x)]
    for got in outs:
        assert got.dtype == dtype and np.all(np.isfinite(got))
        _close(got, want, dtype, ulps=8, floor=8 * np.finfo(dtype).eps)
        if name in ("sigmoid", "softplus"):  # sigmoid's own left tail: relative accuracy
            left = x <= 0
            _close(got[left], want[left], dtype, ulps=8)


def test_the_tails_the_issue_names():
    sig, soft = FUNCTIONS["sigmoid"].numpy, FUNCTIONS["softplus"].numpy
    with _no_warnings():
        values = {
            "sigmoid(-30)": (sig(np.array([-30.0]))[0], _reference("sigmoid", -30.0)),
            "softplus(-40)": (soft(np.array([-40.0]))[0], _reference("softplus", -40.0)),
            "softplus(1e4)": (soft(np.array([1e4]))[0], 1e4),
            "sigmoid(-1e4)": (sig(np.array([-1e4]))[0], 0.0),
            "sigmoid(-100) float32": (sig(np.array([-100.0], np.float32))[0], _reference("sigmoid", -100.0)),
        }
    for label, (got, want) in values.items():
        assert abs(got - want) <= 4e-16 * abs(want) + 1e-45, label
    assert values["sigmoid(-30)"][1] == pytest.approx(9.357622968839299e-14, rel=1e-12)


def _lse_reference(row: np.ndarray) -> float:
    finite = [float(v) for v in row if v != -np.inf]
    if any(v == np.inf for v in finite):
        return np.inf
    if not finite:
        return -np.inf
    if mpmath is not None:
        with mpmath.workdps(40):
            return float(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in finite)))
    m = max(finite)
    return m + math.log(math.fsum(math.exp(v - m) for v in finite))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_sum_exp_in_the_tails_with_masks_and_both_paths(dtype):
    big = BIG[dtype]
    rows = np.array(
        [
            [0.5, -1.0, 2.0, 0.0],  # the plain formula
            [big, 0.0, -big, 1.0],  # the shifted one
            [-big, -big, -big, -big],
            [-np.inf, 1.0, 2.0, -np.inf],  # a mask: the row's maximum decides
            [-np.inf] * 4,
            [-80.0, -80.0, -85.0, -90.0],  # tiny terms: shifted (float32) or plain (float64)
            [big / 2, big / 2, big / 2, big / 2],
        ],
        dtype=dtype,
    )
    want = np.array([_lse_reference(r) for r in rows])
    with _no_warnings():
        outs = [logsumexp(rows, (1,))]
        for text in ("f_b = logsumexp_j(z_bj)", "f_b = log(sum_j(exp(z_bj)))"):
            e = ix.parse(text)
            outs += [ix.evaluate(e, {"z": rows}), ix.compile(e)(z=rows)]
    for got in outs:
        assert got.dtype == dtype
        finite = np.isfinite(want)
        assert np.array_equal(got[~finite], want[~finite].astype(dtype))
        _close(got[finite], want[finite], dtype, ulps=8)
    plain = np.random.default_rng(0).normal(0, 3, (50, 40)).astype(dtype)
    shifted = plain.copy()
    shifted[0, 0] = -np.inf  # the same rows otherwise, through the row-maximum check
    with _no_warnings():
        assert np.allclose(logsumexp(plain, (1,))[1:], logsumexp(shifted, (1,))[1:], rtol=0, atol=0)
    assert logsumexp(np.zeros((2, 0), dtype), (1,)).tolist() == [-np.inf, -np.inf]
    assert logsumexp(np.zeros((0, 3), dtype), (1,)).shape == (0,)


@pytest.mark.parametrize("name", BUILT_IN)
def test_dtypes_scalars_nan_and_inf_as_numpy_has_them(name):
    f = FUNCTIONS[name].numpy
    naive = {
        "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
        "softplus": lambda a: np.log1p(np.exp(a)),
        "relu": lambda a: np.maximum(a, 0),
        "step": lambda a: np.where(a > 0, 1.0, 0.0),
    }.get(name, getattr(np, name, None))
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0])
    with np.errstate(all="ignore"):
        want = naive(special)
        got = f(special)
    assert np.array_equal(got, want, equal_nan=True)
    for dtype in (np.float16, np.float32, np.float64, np.longdouble):
        x = np.array([0.25, 0.5, 3.0], dtype=dtype)
        assert f(x).dtype == dtype, dtype
    ints = np.array([1, 2, 3])
    assert f(ints).dtype == naive(ints).dtype  # as numpy computes them: float64, ints for relu, abs and sign
    scalar = f(np.float64(0.5))
    assert np.ndim(scalar) == 0 and scalar == pytest.approx(_reference(name, 0.5), rel=1e-15)


# -- users' functions: ix.function -----------------------------------------------------------------------------

SQRT_HALF = 0.7071067811865476


def erf_numpy(a: np.ndarray) -> np.ndarray:
    """erf element by element with Python's math.erf (slow and exact: the tests' numpy implementation)."""
    return np.vectorize(math.erf, otypes=[float])(a)


def gelu_numpy(a: np.ndarray) -> np.ndarray:
    return 0.5 * a * (1 + erf_numpy(a * SQRT_HALF))


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _gelu_derivatives(x: float) -> tuple[float, float, float]:
    """gelu, gelu' and gelu'' by their own formulas: x Φ(x), Φ(x) + x φ(x), (2 - x²) φ(x)."""
    cdf = 0.5 * (1 + math.erf(x * SQRT_HALF))
    return x * cdf, cdf + x * _phi(x), (2 - x * x) * _phi(x)


ERF_DERIVATIVE = "1.1283791670955126 exp(-u^2)"  # 2 / sqrt(pi)
GELU_DERIVATIVE = "0.5 (1 + erf(0.7071067811865476 u)) + 0.3989422804014327 u exp(-0.5 u^2)"


@pytest.fixture
def gelu():
    with (
        ix.function("erf", numpy=erf_numpy, derivative=ERF_DERIVATIVE) as erf,
        ix.function("gelu", numpy=gelu_numpy, derivative=GELU_DERIVATIVE, latex=r"\mathrm{GELU}") as g,
    ):
        yield types.SimpleNamespace(erf=erf, gelu=g)


def test_a_registered_gelu_parses_prints_and_evaluates(gelu):
    e = ix.parse("sum_i(gelu(W_ij x_j + b_i))")
    assert ix.parse(str(e)) == e
    assert r"\mathrm{GELU}\left(" in to_latex(e) and r"\operatorname{erf}" in to_latex(ix.diff(e, "x"))
    rng = np.random.default_rng(1)
    W, x, b = rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=4)
    z = W @ x + b
    want = sum(_gelu_derivatives(float(v))[0] for v in z)
    arrays = {"W": W, "x": x, "b": b}
    assert ix.evaluate(e, arrays) == pytest.approx(want, rel=1e-13)
    assert ix.compile(e)(**arrays) == pytest.approx(want, rel=1e-13)
    # the first and second derivatives against gelu' and gelu'' by their own formulas
    d1, d2 = ix.diff(e, "b"), ix.diff(e, "b", "b")
    want1 = [_gelu_derivatives(float(v))[1] for v in z]
    want2 = np.diag([_gelu_derivatives(float(v))[2] for v in z])
    for route in (lambda d: ix.evaluate(d, arrays), lambda d: ix.compile(d)(**arrays)):
        assert np.allclose(route(d1), want1, rtol=1e-13, atol=1e-15)
        assert np.allclose(route(d2), want2, rtol=1e-12, atol=1e-14)
    report = ix.check(e, "W", "x", arrays=arrays)
    assert report.ok and len(report.results) == 2, str(report)
    assert "gelu" in repr(gelu.gelu) and gelu.gelu.derivative == GELU_DERIVATIVE and gelu.gelu.numpy is gelu_numpy


def test_gelu_in_a_program_by_reverse_mode(gelu):
    p = ix.parse("z_bi = W_ij x_bj\nh_bi = gelu(z_bi)\nL = sum_bi(h_bi^2)")
    rng = np.random.default_rng(2)
    W, x = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    _, dW = ix.compile(ix.grad(p, "L", ["W"]))(W=W, x=x)
    z = x @ W.T
    g = np.vectorize(lambda v: _gelu_derivatives(v)[0])(z)
    dg = np.vectorize(lambda v: _gelu_derivatives(v)[1])(z)
    assert np.allclose(dW, (2 * g * dg).T @ x, rtol=1e-12)


def _module(text: str) -> types.ModuleType:
    module = types.ModuleType("generated")
    exec(text, module.__dict__)  # noqa: S102 - generated code
    return module


def test_generated_code_imports_the_implementation_and_checks_itself(gelu, tmp_path):
    e = ix.parse("sum_i(gelu(W_ij x_j))")
    text = ix.codegen(e, "x", "x,x")
    assert f"from {__name__} import gelu_numpy as gelu" in text and f"from {__name__} import erf_numpy as erf" in text
    rng = np.random.default_rng(3)
    W, x = rng.normal(size=(3, 2)), rng.normal(size=2)
    value, grad, hess = _module(text).evaluate(W=W, x=x)
    assert value == pytest.approx(ix.evaluate(e, {"W": W, "x": x}), rel=1e-14)
    assert np.allclose(grad, ix.evaluate(ix.diff(e, "x"), {"W": W, "x": x}), rtol=1e-13)
    assert np.allclose(hess, ix.evaluate(ix.diff(e, "x", "x"), {"W": W, "x": x}), rtol=1e-13)
    assert "gelu(np.einsum(" in ix.codegen(e, "x", format="einsum")
    path = tmp_path / "gelu_module.py"
    path.write_text(text)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0 and proc.stdout.count(": ok") == 2, proc.stdout + proc.stderr


def test_a_function_that_cannot_be_imported_is_assigned_to_the_module():
    with ix.function("cube", numpy=lambda a: a**3, derivative="3 u^2"):
        e = ix.parse("sum_i(cube(x_i))")
        module = _module(ix.codegen(e, "x"))
        with pytest.raises(NotImplementedError, match="assign its numpy implementation"):
            module.evaluate(x=np.ones(2))
        module.cube = lambda a: a**3
        results = module.check({"x": np.array([0.5, -1.5])})
        assert all(ok for ok, _ in results.values()) and results
        assert module.evaluate(x=np.array([1.0, 2.0]))[1].tolist() == [3.0, 12.0]


def test_derivatives_that_use_the_function_itself_recurse_through_the_registry():
    with (
        ix.function("myexp", numpy=np.exp, derivative="myexp(u)"),
        ix.function("mysig", numpy=FUNCTIONS["sigmoid"].numpy, derivative="mysig(u) (1 - mysig(u))"),
    ):
        e = ix.parse("sum_i(myexp(x_i) + mysig(x_i))")
        x = np.array([-0.7, 0.2, 1.1])
        third = ix.evaluate(ix.diff(e, "x", "x", "x"), {"x": x})
        s = 1 / (1 + np.exp(-x))
        want = np.exp(x) + s * (1 - s) * (1 - 6 * s + 6 * s * s)
        diagonal = third[np.arange(3), np.arange(3), np.arange(3)]
        assert np.allclose(diagonal, want, rtol=1e-13)
        assert np.count_nonzero(third) == 3
        assert ix.check(e, "x", "x", "x").ok


def test_registration_is_idempotent_replaceable_and_removable():
    first = ix.function("twice", numpy=lambda a: 2 * a, derivative="2")
    try:
        assert ix.function("twice", numpy=first.numpy, derivative="2").spec is first.spec  # the same again
        with pytest.raises(ix.IndexDiffError, match="already registered") as err:
            ix.function("twice", numpy=lambda a: 2 * a, derivative="2")
        assert "replace=True" in str(err.value)
        e = ix.parse("sum_i(twice(x_i))")
        x = {"x": np.ones(2)}
        assert ix.evaluate(ix.diff(e, "x"), x).tolist() == [2.0, 2.0]
        with ix.function("twice", numpy=lambda a: 3 * a, derivative="3", replace=True):
            assert ix.evaluate(e, x) == 6.0
            assert ix.evaluate(ix.diff(e, "x"), x).tolist() == [3.0, 3.0]  # not the derivative cached before
        assert ix.evaluate(e, x) == 4.0 and ix.evaluate(ix.diff(e, "x"), x).tolist() == [2.0, 2.0]  # back
    finally:
        first.remove()
    with pytest.raises(ix.ParseError, match="unknown function 'twice'"):
        ix.parse("twice(x_i)")
    for route in (lambda: ix.evaluate(e, x), lambda: ix.compile(e)(**x), lambda: ix.diff(e, "x")):
        with pytest.raises(ix.IndexDiffError, match="not registered") as err:
            route()
        assert "ix.function('twice'" in str(err.value)
    ix.parse("twice_i + x_i")  # the name is free for tensors again


def test_a_registered_name_is_reserved_and_removal_respects_users(gelu):
    with pytest.raises(ix.IndexDiffError, match="'gelu' is a function, not a tensor") as err:
        ix.parse("gelu_i x_i")
    assert "^^^^" in str(err.value)
    with pytest.raises(ix.IndexDiffError, match="the derivative of gelu uses it"):
        gelu.erf.remove()
    assert "erf" in FUNCTIONS
    again = ix.function("erf", numpy=erf_numpy, derivative=ERF_DERIVATIVE)  # the same definition: no change
    again.remove()  # so removing it changes nothing either
    assert FUNCTIONS["erf"] is gelu.erf.spec


@pytest.mark.parametrize(
    ("kwargs", "message", "caret"),
    [
        ({"name": "exp"}, "'exp' is a built-in function", None),
        ({"name": "softmax"}, "reserved name", None),
        ({"name": "sum"}, "reserved name", None),
        ({"name": "Σ"}, "reserved name", None),
        ({"name": "inv"}, "reserved name", None),
        ({"name": "my_f"}, "cannot name a function", None),
        ({"name": "2f"}, "cannot name a function", None),
        ({"name": ""}, "cannot name a function", None),
        ({"name": "u"}, "names the argument", None),
        ({"name": "len"}, "Python name", None),
        ({"name": "evaluate"}, "Python name", None),
        ({"derivative": "2 (u"}, "the derivative of .fn.: ", None),
        ({"derivative": "pi u"}, "uses the tensor 'pi'", "^^"),
        ({"derivative": "3 u_i"}, "gives u indices", "^^^"),
        ({"derivative": "u delta_ii"}, "uses the index 'i'", None),
        ({"derivative": "sum_i(u)"}, "'i' is not a free index", None),
        ({"derivative": "g = 2 u"}, "not a statement", None),
        ({"derivative": "nosuch(u)"}, "unknown function 'nosuch'", "^^^^^^"),
    ],
)
def test_bad_registrations_are_errors_with_a_hint(kwargs, message, caret):
    args = {"name": "fn", "numpy": np.tanh, "derivative": "1 - fn(u)^2", **kwargs}
    with pytest.raises(ix.IndexDiffError, match=message) as err:
        ix.function(args.pop("name"), **args)
    assert "hint:" in str(err.value)
    if caret:
        lines = str(err.value).splitlines()
        text = kwargs["derivative"]
        marked = lines[2].index("^") - lines[1].index(text[0])
        assert lines[2].strip() == caret and text[marked:].startswith(("pi", "u_i", "nosuch"))
    assert "fn" not in FUNCTIONS  # nothing half-registered


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"numpy": "np.tanh"}, "must be a function"),
        ({"numpy": math.erf}, "fails on the array"),
        ({"numpy": lambda a: float(np.sum(a))}, "maps an array of shape"),
        ({"numpy": lambda a: a > 0}, "maps an array of shape"),
        ({"derivative": 3}, "must be index notation"),
        ({"latex": 3}, "latex= must be a string"),
        ({"name": 3}, "must be a string"),
    ],
)
def test_wrong_argument_types_are_argument_errors(kwargs, message):
    args = {"name": "fn", "numpy": np.tanh, "derivative": "1 - fn(u)^2", **kwargs}
    with pytest.raises(ix.ArgumentError, match=message):
        ix.function(args.pop("name"), **args)
    assert "fn" not in FUNCTIONS


def test_custom_functions_refuse_other_array_libraries(gelu):
    jnp = pytest.importorskip("jax.numpy")  # the numpy counterpart: every other test here
    with pytest.raises(ix.IndexDiffError, match="numpy implementation only"):
        ix.compile(ix.parse("gelu(x_i)"))(x=jnp.ones(3))
