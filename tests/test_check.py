"""The public numerical checker: it passes right derivatives (also steep ones), catches wrong ones, says when its
data makes the check vacuous or the value overflows, and refuses checks too large to run."""

from __future__ import annotations

import importlib
import time
import warnings

import numpy as np
import pytest

import indexdiff as ix
from indexdiff.check import CheckResult, _compare, random_arrays

LOGISTIC = "sum_i(log(1 + exp(-y_i X_ij w_j)))"


def test_check_passes_and_reports_sizes():
    report = ix.check(ix.parse("x_i A_ij x_j"), "x", "x", dims={"i": 4})
    assert report.ok and len(report.results) == 2
    assert report.dims == {"i": 4, "j": 4}
    assert "d/dx/dx: ok" in str(report) and "random data" in str(report)


def test_check_with_given_arrays_reports_their_sizes(rng):
    A, x = rng.normal(size=(5, 2)), rng.normal(size=2)
    report = ix.check(ix.parse("A_ij x_j"), "x", arrays={"A": A, "x": x})
    assert report.ok and report.dims == {"i": 5, "j": 2} and "given arrays" in str(report)


def _wrong_by(text: str, x: list[float], factor: float) -> CheckResult:
    """The gradient of ``text`` times ``factor``, compared with the differences of ``text`` at ``x``."""
    e = ix.parse(text)
    data = {"x": np.array(x)}
    symbolic = factor * ix.evaluate(ix.diff(e, "x"), data)
    return _compare(lambda a: ix.evaluate(e, a), symbolic, data, "x", ("x",))


@pytest.mark.parametrize(
    ("text", "x"),
    [
        ("sum_i(tan(x_i)^3)", [0.3, 1.5, 1.56, 1.5705]),  # tan(1.5705) = 3.9e3: the cube's curvature is ~1e16
        ("sum_i(exp(5 x_i))", [-1.0, 0.5, 2.0, 3.0]),
        ("sum_i(log(x_i))", [1e-8, 1e-3, 1.0]),
        ("sum_i(sqrt(x_i))", [1e-6, 1e-3, 1.0]),
    ],
)
def test_steep_functions_pass_and_a_derivative_off_by_a_thousandth_fails(text, x):
    assert ix.check(ix.parse(text), "x", "x", arrays={"x": np.array(x)}).ok
    assert _wrong_by(text, x, 1.0).ok
    assert not _wrong_by(text, x, 1.001).ok
    assert not _wrong_by(text, x, 0.9999).ok


def test_random_data_keeps_each_contraction_of_order_one():
    dims = {"i": 20, "j": 300}
    data = random_arrays(ix.parse(LOGISTIC), dims)
    assert all(np.all(a > 0) for a in data.values())  # inside log's and sqrt's domain
    margins = ix.evaluate(ix.parse("X_ij w_j"), data)
    assert np.all((margins > 0.3) & (margins < 3))
    report = ix.check(ix.parse(LOGISTIC), "w", dims=dims)
    assert report.ok and not report.warnings
    assert report.results[0].largest > 1e-2  # the regression: 3.88e-61 passed vacuously


def test_a_check_whose_derivatives_are_all_tiny_says_so():
    data = {"X": np.ones((2, 300)), "y": np.ones(2), "w": np.ones(300)}  # sigmoid(-300): saturated
    report = ix.check(ix.parse(LOGISTIC), "w", arrays=data)
    assert report.ok and report.warnings
    assert "every derivative value checked is below 1e-12" in str(report) and "--data" in str(report)
    assert not ix.check(ix.parse("b_i x_i"), "x", "x").warnings  # an exactly zero Hessian is no warning


def test_overflow_is_the_reported_cause_without_numpy_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = ix.check(ix.parse("sum_i(exp(x_i))"), "x", arrays={"x": np.array([1000.0, 1.0])})
    (result,) = report.results
    assert not report.ok and result.cause is not None
    assert "NOT CHECKED: the value overflows at this data" in str(report) and "FAILED" not in str(report)


def test_random_data_that_would_not_fit_in_memory_is_refused_quickly():
    start = time.perf_counter()
    with pytest.raises(ix.ShapeError, match=r"74\.5 GiB .*A: 100000 x 100000") as info:
        ix.check(ix.parse("x_i A_ij x_j"), "x", dims={"i": 100000})
    assert "smaller sizes" in str(info.value) and time.perf_counter() - start < 5  # no allocation


def test_a_check_that_would_take_too_long_is_refused():
    with pytest.raises(ix.IndexDiffError, match="the check would take about") as info:
        ix.check(ix.parse("x_i A_ij x_j"), "x", "x", dims={"i": 30}, max_seconds=1e-9)
    assert "--dims" in str(info.value)


def test_long_checks_report_progress(monkeypatch):
    module = importlib.import_module("indexdiff.check")  # ix.check is the function
    monkeypatch.setattr(module, "_timed", lambda run: 1.0)  # pretend each evaluation takes a second
    seen: list[tuple[str, int, int]] = []
    report = ix.check(ix.parse("x_i A_ij x_j"), "x", "x", dims={"i": 4}, progress=lambda *a: seen.append(a))
    assert report.ok and ("d/dx", 4, 4) in seen and ("d/dx/dx", 4, 4) in seen


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"A": np.ones((2, 2))}, "no array given for 'x'"),
        ({"A": np.ones((2, 2)), "x": np.ones((2, 2))}, "'x' has 1 index but the array has 2 axes"),
        ({"A": np.ones((2, 2)), "x": np.array(["a", "b"])}, "the array for 'x' is not real numbers"),
        ({"A": np.ones((2, 2)), "x": np.ones(2) * 1j}, "the array for 'x' is not real numbers"),
        ({"A": np.ones((3, 3)), "x": np.ones(2)}, "has size 2 in x"),
    ],
)
def test_bad_given_arrays_are_shape_errors_naming_the_array(arrays, message):
    with pytest.raises(ix.ShapeError, match=message):
        ix.check(ix.parse("x_i A_ij x_j"), "x", arrays=arrays)
