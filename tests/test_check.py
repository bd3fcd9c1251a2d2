"""The public numerical checker: it passes right derivatives and catches wrong ones."""

from __future__ import annotations

import numpy as np

import indexdiff as ix
from indexdiff.check import _central


def test_check_passes_and_reports_sizes():
    report = ix.check(ix.parse("x_i A_ij x_j"), "x", "x", dims={"i": 4})
    assert report.ok and len(report.results) == 2
    assert report.dims == {"i": 4, "j": 4}
    assert "d/dx/dx: ok" in str(report)


def test_check_with_given_arrays_reports_their_sizes(rng):
    A, x = rng.normal(size=(5, 2)), rng.normal(size=2)
    report = ix.check(ix.parse("A_ij x_j"), "x", arrays={"A": A, "x": x})
    assert report.ok and report.dims == {"i": 5, "j": 2}


def test_central_differences_catch_a_wrong_derivative(rng):
    e = ix.parse("x_i A_ij x_j")
    A, x = rng.normal(size=(3, 3)), rng.normal(size=3)
    numeric = _central(lambda a: ix.evaluate(e, a), {"A": A, "x": x}, "x")
    assert np.allclose(numeric, (A + A.T) @ x, atol=1e-8)
    assert not np.allclose(numeric, 2 * A @ x, atol=1e-3)  # the classic mistake for non-symmetric A
