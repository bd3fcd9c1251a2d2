"""Every public function given arguments of the wrong type or value raises an IndexDiffError subclass whose
message says what is wrong (no AttributeError or numpy error from deep inside)."""

from __future__ import annotations

import numpy as np
import pytest

import indexdiff as ix

E = ix.parse("x_i A_ij x_j")
S = ix.parse("sum_i(sigmoid(x_i))")
P = ix.parse("h_i = W_ij x_j; L = sum_i(h_i^2)")
ARRAYS = {"x": np.ones(2), "A": np.ones((2, 2))}

CASES = [
    # (call, error class, a phrase of the message)
    (lambda: ix.parse(None), ix.ParseError, "expected a string"),
    (lambda: ix.parse(b"x_i"), ix.ParseError, "got bytes"),
    (lambda: ix.diff(None, "x"), ix.IndexDiffError, "parse"),
    (lambda: ix.diff("x_i x_i", "x"), ix.IndexDiffError, "parse"),
    (lambda: ix.diff(E, ["x", "x"]), ix.ArgumentError, "ix.diff(e, 'x', 'x')"),
    (lambda: ix.diff(E, None), ix.ArgumentError, "must be a string"),
    (lambda: ix.diff(E, 3), ix.ArgumentError, "must be a string"),
    (lambda: ix.grad(None), ix.IndexDiffError, "parse"),
    (lambda: ix.grad("L = x_i x_i", wrt=["x"]), ix.IndexDiffError, "parse"),
    (lambda: ix.grad(P, wrt=[["W", "x"]]), ix.ArgumentError, "wrt=['W', 'b']"),
    (lambda: ix.grad(P, wrt=[None]), ix.ArgumentError, "must be a string"),
    (lambda: ix.evaluate(None, ARRAYS), ix.IndexDiffError, "parse"),
    (lambda: ix.evaluate("x_i x_i", {"x": np.ones(3)}), ix.IndexDiffError, "parse"),
    (lambda: ix.evaluate(E, [np.ones(2), np.ones((2, 2))]), ix.IndexDiffError, "mapping"),
    (lambda: ix.evaluate(E, ARRAYS, dims=[2]), ix.IndexDiffError, "dims"),
    (lambda: ix.evaluate(ix.parse("x_i + 1"), {"x": np.ones(2)}, dims={"i": -2}), ix.ShapeError, "-2"),
    (lambda: ix.evaluate(ix.parse("x_i + 1"), {"x": np.ones(2)}, dims={"i": True}), ix.ShapeError, "True"),
    (lambda: ix.evaluate(E, {**ARRAYS, "x": np.array(["a", "b"])}), ix.ShapeError, "not numeric"),
    (lambda: ix.evaluate(E, {**ARRAYS, "x": None}), ix.ShapeError, "'x'"),
    (lambda: ix.evaluate(S, {"x": np.ones(3) * 1j}), ix.ShapeError, "complex"),
    (lambda: ix.compile(None), ix.IndexDiffError, "parse"),
    (lambda: ix.compile("x_i x_i"), ix.IndexDiffError, "parse"),
    (lambda: ix.compile(E)(x=np.array(["a", "b"]), A=np.ones((2, 2))), ix.ShapeError, "not numeric"),
    (lambda: ix.compile(S)(x=np.ones(3) * 1j), ix.ShapeError, "complex"),
    (lambda: ix.compile(E)(np.ones(2), np.ones((2, 2))), ix.IndexDiffError, "call it as f(A=..., x=...)"),
    (lambda: ix.cost(None, {"i": 3}), ix.ArgumentError, "ix.parse"),
    (lambda: ix.cost("x_i x_i", {"i": 3}), ix.ArgumentError, "ix.cost(ix.parse('x_i x_i'), ...)"),
    (lambda: ix.cost(E, [3, 3]), ix.ArgumentError, "dims must map index names to sizes"),
    (lambda: ix.cost(E, None), ix.ShapeError, "no size given"),
    (lambda: ix.cost(E, {"i": -3, "j": 3}), ix.ShapeError, "size -3"),
    (lambda: ix.cost(E, {"i": 0, "j": 3}), ix.ShapeError, "size 0"),
    (lambda: ix.cost(E, {"i": True, "j": 3}), ix.ShapeError, "size True"),
    (lambda: ix.cost(E, {"i": 2.5, "j": 3}), ix.ShapeError, "size 2.5"),
    (lambda: ix.codegen(None, "x"), ix.ArgumentError, "ix.parse"),
    (lambda: ix.codegen("x_i x_i", "x"), ix.ArgumentError, "ix.codegen(ix.parse('x_i x_i'), ...)"),
    (lambda: ix.codegen(E, ["x", "x"]), ix.ArgumentError, "ix.codegen(e, 'x', 'x')"),
    (lambda: ix.codegen(E, "x", format="rust"), ix.IndexDiffError, "unknown format"),
    (lambda: ix.check(None, "x"), ix.ArgumentError, "ix.parse"),
    (lambda: ix.check("x_i x_i", "x"), ix.ArgumentError, "ix.check(ix.parse('x_i x_i'), ...)"),
    (lambda: ix.check(E, ["x", "x"]), ix.ArgumentError, "ix.check(e, 'x', 'x')"),
    (lambda: ix.check(E), ix.DiffError, "no variable"),
    (lambda: ix.check(E, "x", dims=[3]), ix.ArgumentError, "dims must map"),
    (lambda: ix.check(E, "x", dims={"i": -3}), ix.ShapeError, "size -3"),
    (lambda: ix.check(E, "x", dims={"i": 0}), ix.ShapeError, "size 0"),
    (lambda: ix.check(E, "x", dims={"i": True}), ix.ShapeError, "size True"),
    (lambda: ix.check(E, "x", dims={3: 3}), ix.ArgumentError, "the key 3"),
    (lambda: ix.check(E, "x", seed=-1), ix.ArgumentError, "non-negative integer, got -1"),
    (lambda: ix.check(E, "x", seed="a"), ix.ArgumentError, "non-negative integer"),
    (lambda: ix.check(E, "x", seed=1.5), ix.ArgumentError, "non-negative integer"),
    (lambda: ix.check(E, "x", arrays=[np.ones(2)]), ix.ArgumentError, "arrays must map"),
    (lambda: ix.check(E, "x", arrays={**ARRAYS, "x": np.array(["a", "b"])}), ix.ShapeError, "'x' is not real"),
    (lambda: ix.check(S, "x", arrays={"x": np.ones(3) * 1j}), ix.ShapeError, "'x' is not real"),
    (lambda: ix.check(E, "x", rtol=-1.0), ix.ArgumentError, "tolerances"),
]


@pytest.mark.parametrize(("call", "kind", "phrase"), CASES)
def test_wrong_arguments_raise_an_indexdiff_error(call, kind, phrase):
    with pytest.raises(kind) as info:
        call()
    assert isinstance(info.value, ix.IndexDiffError)
    assert phrase in str(info.value)


def test_the_error_classes_are_exported_and_argument_errors_are_type_errors():
    for name in ("IndexDiffError", "ParseError", "IndexRuleError", "DiffError", "ShapeError", "ArgumentError"):
        assert name in ix.__all__ and issubclass(getattr(ix, name), ix.IndexDiffError)
    assert issubclass(ix.ArgumentError, TypeError) and issubclass(ix.IndexDiffError, ValueError)
