"""Symbolic work grows with the size of the input, not faster; deep trees neither hit the recursion limit nor crash.

No timings: the work is counted as Python function calls (deterministic), at a size and at twice it; this catches
rescans done in Python, not those inside one C call (a list.count per term). The timed growth series are in
benchmarks/scaling.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import pytest
from counting import calls

import indexdiff as ix
from indexdiff.expr import Add, Expr, Func, Mul, Node, Pow, Tensor, deep
from indexdiff.names import children, fresh


def growth(make: Callable[[int], Callable[[], object]], n: int) -> float:
    """Calls at 2n over calls at n (2 when the work is linear, 4 when quadratic)."""
    small, large = make(n), make(2 * n)  # built first: only the work is counted
    return calls(large) / calls(small)


def dag_size(node: Node) -> int:
    seen: dict[int, Node] = {}
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) not in seen:
            seen[id(n)] = n
            stack.extend(children(n))
    return sum(1 + len(children(n)) for n in seen.values())


def sum_of_terms(n: int, repeated: bool) -> str:
    return " + ".join(f"c{k % 10 if repeated else k} x_i x_i" for k in range(n))


@pytest.mark.parametrize("repeated", [False, True])
def test_derivative_of_a_long_sum_is_linear_in_its_terms(repeated):
    def make(n: int) -> Callable[[], object]:
        e = ix.parse(sum_of_terms(n, repeated))
        return lambda: ix.diff(e, "x")

    assert growth(make, 60) < 2.3
    g = ix.diff(ix.parse(sum_of_terms(40, repeated)), "x")
    c = {f"c{k}": float(k + 1) for k in range(40)}
    x = np.array([0.5, -1.5, 2.0])
    expected = 2 * x * sum(c[f"c{k % 10 if repeated else k}"] for k in range(40))
    assert np.allclose(ix.evaluate(g, {**c, "x": x}), expected)


def test_derivative_of_a_long_product_is_linear_in_its_factors():
    def make(n: int) -> Callable[[], object]:
        e = ix.parse("x_i y_i " + " ".join(f"c{k}" for k in range(n)))
        return lambda: ix.diff(e, "x")

    assert growth(make, 100) < 2.3


def tanh_nested(n: int) -> str:
    return "tanh(" * n + "x" + ")" * n


def test_second_derivative_of_nested_tanh_is_linear_in_the_result_size():
    def make(n: int) -> Callable[[], object]:
        e = ix.parse(tanh_nested(n))
        return lambda: ix.diff(e, "x", "x")

    size = {n: dag_size(ix.diff(ix.parse(tanh_nested(n)), "x", "x").node) for n in (12, 24)}
    assert growth(make, 12) < 1.25 * size[24] / size[12]
    # d²/dx² tanh(tanh(x)) at x = 0.3, against central differences of the first derivative
    g2, g1 = (ix.diff(ix.parse(tanh_nested(2)), *wrt) for wrt in (("x", "x"), ("x",)))
    h = 1e-5
    numeric = (ix.evaluate(g1, {"x": np.array(0.3 + h)}) - ix.evaluate(g1, {"x": np.array(0.3 - h)})) / (2 * h)
    assert np.isclose(ix.evaluate(g2, {"x": np.array(0.3)}), numeric, rtol=1e-6)


def test_shared_subtrees_are_differentiated_and_simplified_once():
    # tanh nested 30 deep: the first derivative is a product of 30 factors, each sharing the chain below it.
    e = ix.parse(tanh_nested(30))
    g = ix.diff(e, "x")
    assert dag_size(g.node) < 20 * 30  # shared: as a tree (and as text) it is quadratic in the depth
    assert len(str(g)) > 30 * 30 * 2
    value, expected = 0.7, 1.0
    for _ in range(30):
        value = np.tanh(value)
        expected *= 1 - value**2
    assert np.isclose(ix.evaluate(g, {"x": np.array(0.7)}), expected, rtol=1e-12)


def deep_chain(depth: int) -> Expr:
    """f_i = log(exp(log(exp(...x_i...)))): ``depth`` nested functions, whose derivative is δ_ik."""
    node: Node = Tensor("x", ("i",))
    for k in range(depth):
        node = Func("log" if k % 2 else "exp", node)
    return Expr(node, ("i",), None, {"x": 1}, {})


def test_deep_trees_differentiate_simplify_and_print_without_recursion_errors():
    e = deep_chain(2000)  # far beyond the parser's 150 levels: derivatives and programs build such trees
    assert str(e).count("log(exp(") == 1000
    assert e == deep_chain(2000)
    g = ix.diff(e, "x")
    assert str(g) == "δ_ik"
    x = np.array([0.1, 0.2])
    assert np.allclose(ix.evaluate(g, {"x": x}), np.eye(2))


def test_deep_products_and_powers():
    node: Node = Tensor("x", ())
    for k in range(1200):
        node = Add((Mul((Tensor(f"c{k % 3}", ()), node)), Pow(Tensor("y", ()), Fraction(2))))
    e = Expr(node, (), None, {"x": 0, "y": 0, "c0": 0, "c1": 0, "c2": 0}, {})
    assert str(ix.diff(e, "x")) == "c0^400 c1^400 c2^400"


def test_too_deep_is_an_index_diff_error_not_a_crash():
    def endless(n: int) -> int:
        return endless(n + 1)

    with pytest.raises(ix.IndexDiffError, match="nested too deeply"):
        deep(endless, 0)
    assert sys.getrecursionlimit() < 10_000  # the raised limit is put back


def test_fresh_names_are_bounded_and_skip_what_they_must_avoid():
    taken = [*"klmnpqrstuvwabcdefghij", *(f"{c}{n}" for n in range(1, 30) for c in "klmnpqrstuvwabcdefghij")]
    new = fresh(taken, 3)
    assert len(new) == 3 and not set(new) & set(taken)
    assert fresh(["k"], 0) == ()
    assert fresh(["k", "l"], 2, "kl") == ("k1", "l1")


def test_copies_of_one_term_are_differentiated_and_simplified_once():
    term = "a_a (A_ab + X_ac B_cd X_db) b_b"

    def make(n: int) -> Callable[[], object]:
        e = ix.parse(" + ".join([term] * n))
        return lambda: ix.diff(e, "X")

    one, hundred = make(1), make(100)
    assert calls(hundred) / 100 < calls(one) / 3  # each copy is only walked over, not differentiated again
    assert ix.diff(ix.parse(" + ".join([term] * 7)), "X") == ix.diff(ix.parse(f"7 {term}"), "X")


def test_every_public_function_takes_a_deep_tree():
    e, x = deep_chain(2000), np.array([0.1, 0.2])
    assert np.allclose(ix.evaluate(e, {"x": x}), x)
    assert np.allclose(ix.compile(e)(x=x), x)
    assert ix.cost(e, {"i": 2}).flops > 0
    assert ix.codegen(e, "x", format="einsum").count("np.log(np.exp(") == 1000
    assert ix.check(e, "x").ok
