"""MathML: well-formed XML for every node type, names escaped, and markup that reads back as the same expression.

The reader below turns the MathML back into index notation by its structure alone (a subscript is a tensor's
indices, a fraction a quotient, ...): parsing what it reads must give an expression equal to the one printed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction

import numpy as np
import pytest
from fuzz_routes import fuzz_settings
from hypothesis import example, given
from op_strategies import op_case, op_program
from strategies import program, rich_case

import indexdiff as ix
from indexdiff.data import random_arrays
from indexdiff.expr import Add, Delta, Expr, Func, Mul, Number, Op, Pow, Program, Sum, Tensor
from indexdiff.mathml import NAMESPACE, to_mathml
from indexdiff.names import children

CASES = [
    "x_i A_ij x_j",
    "W_ij x_j + b_i",
    "z_i = y_i X_ij w_j",
    "z_bi = W_ij x_bj + c_i",
    "L = sum_i((z_i - t_i)^2)",
    "A_ji",
    "sum_i(log(1 + exp(-y_i X_ij w_j)))",
    "u_i / v_i",
    "0.5 x_i A_ij x_j - c",
    "A_ii",
    "1/3 x_i",
    "x^-0.5 + y^(1/3) - (2 x)^2",
    "x_i (y_j z_j)",
    "T_{i,row,k} x_{row,}",
    "δ_ij x_j",
    "δ_i",
    "exp((u_p^2)^2)",
    "a / (b c)",
    "-x_i y_i / 2",
    "(x_i - y_i)^2 / 2",
    "sqrt(x_i x_i) + tanh(a) sigmoid(b) - relu(c)",
    "2e-300 x + 1.5e20 y - 1/3 z - 7",
    "softmax_j(S_ij)",
    "logsumexp_j(z_ij) + mean_j(x_ij) + max_j(x_ij) - min_j(x_ij)",
    "softmax_jk(z_ijk)",
    "x_i inv(A_ij) x_j + logdet(C_ij) + det(A_ij)",
    "inv(A_ji)",
    "y_i inv(X_ni X_nj + lam δ_ij) y_j",
    "W1_{ij} h_j",
    "α_i β_i",
]


def _local(el: ET.Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


_MO = {"\u2062": " ", "\u2061": "", "\u2212": " - ", "+": " + ", "=": " = ", "\u00b7": " * ", "(": "(", ")": ")"}


def _indices(el: ET.Element) -> str:
    names = [c.text or "" for c in el.iter() if _local(c) == "mi"]
    if all(len(n) == 1 for n in names):
        return "_" + "".join(names)
    return "_{" + ",".join(names) + ("," if len(names) == 1 else "") + "}"


def read(el: ET.Element) -> str:
    """Index notation for a MathML element written by ``to_mathml``."""
    tag, kids = _local(el), list(el)
    if tag in ("math", "mrow", "mtd"):
        return "".join(read(c) for c in kids)
    if tag == "mtable":
        return "\n".join(read(c) for c in kids)
    if tag == "mtr":
        return "".join(read(c) for c in kids)
    if tag in ("mi", "mn"):
        return el.text or ""
    if tag == "mspace":  # between log and det
        return ""
    if tag == "mo":
        return _MO[el.text or ""]
    if tag == "msub":
        base, sub = kids
        if _local(base) == "mrow" and any(_local(c) == "msup" for c in base):  # (A⁻¹)_ij
            return f"inv({read(next(c for c in base if _local(c) == 'msup')[0])}{_indices(sub)})"
        return read(base) + _indices(sub)
    if tag == "msup":
        base, exponent = kids
        if _local(base) == "mn" and base.text == "10":  # 1.5 · 10^20
            return "1e" + read(exponent).replace(" ", "")
        return f"({read(base)})^({read(exponent)})"
    if tag == "mfrac":
        num, den = kids
        return f"(({read(num)}) / ({read(den)}))"
    if tag == "msqrt":
        return f"sqrt({''.join(read(c) for c in kids)})"
    if tag == "munder":
        assert kids[0].text == "\u2211"
        return "sum" + _indices(kids[1])
    raise AssertionError(f"unexpected element {tag}")


def _parsed(markup: str) -> ET.Element:
    root = ET.fromstring(markup)  # well-formed XML, or this raises
    assert root.tag == f"{{{NAMESPACE}}}math"
    return root


@pytest.mark.parametrize("text", CASES)
def test_reads_back_as_the_same_expression(text):
    e = ix.parse(text)
    assert ix.parse(read(_parsed(to_mathml(e)))) == e


@pytest.mark.parametrize("text", ["x_i A_ij x_j", "sum_i(log(1 + exp(-y_i X_ij w_j)))", "softmax_j(S_ij) T_ij"])
def test_derivatives_read_back(text):
    e = ix.parse(text)
    for wrt in sorted(e.variables):
        for chain in ([wrt], [wrt, wrt]):
            d = ix.diff(e, *chain)
            assert ix.parse(read(_parsed(to_mathml(d)))) == d


def test_every_node_type_is_covered():
    seen: set[type] = set()
    stack = [ix.parse(t).node for t in CASES]
    while stack:
        node = stack.pop()
        seen.add(type(node))
        stack.extend(children(node))
    assert {Number, Tensor, Delta, Func, Pow, Mul, Add, Sum, Op} <= seen
    ops = {n.name for t in CASES for n in _nodes(ix.parse(t).node) if isinstance(n, Op)}
    assert {"softmax", "logsumexp", "mean", "max", "min", "inv", "det", "logdet"} <= ops


def _nodes(node):
    yield node
    for c in children(node):
        yield from _nodes(c)


def test_program_is_a_table_of_statements():
    p = ix.parse("h_i = relu(W_ij x_j)\nL = sum_i((h_i - t_i)^2)")
    root = _parsed(to_mathml(p))
    rows = [r for r in root.iter() if _local(r) == "mtr"]
    assert len(rows) == 2 and all(len(list(r)) == 3 for r in rows)
    back = ix.parse(read(root))
    assert isinstance(back, Program)
    assert [str(s) for s in back.statements] == [str(s) for s in p.statements]
    g = ix.grad(p, wrt=["W"])
    assert [str(s) for s in ix.parse(read(_parsed(to_mathml(g)))).statements] == [str(s) for s in g.statements]


def test_a_program_statement_without_a_name():
    p = Program((ix.parse("h_i = tanh(x_i)"), ix.parse("h_i h_i")))
    root = _parsed(to_mathml(p))
    first, second = ([read(cell) for cell in row] for row in root.iter() if _local(row) == "mtr")
    assert first == ["h_i", " = ", "tanh(x_i)"] and second == ["", "", "h_i h_i"]


def test_names_are_escaped():
    node = Mul((Tensor("a<b&c", ("i",)), Func('f"<&>', Tensor("x", ("i",)))))
    markup = to_mathml(Expr(Sum(("i",), node), ()))
    root = _parsed(markup)
    assert "a<b&c" in [el.text for el in root.iter()]
    assert "a&lt;b&amp;c" in markup and "<b&" not in markup


def test_numbers():
    root = _parsed(to_mathml(Expr(Number(Fraction(-3, 7)), ())))
    assert [_local(el) for el in root.iter()][:4] == ["math", "mrow", "mrow", "mo"]
    assert [el.text for el in root.iter() if _local(el) == "mn"] == ["3", "7"]
    big = to_mathml(Expr(Number(Fraction(15 * 10**19)), ()))
    assert "<mn>1.5</mn>" in big and "<mn>10</mn>" in big and "<mn>20</mn>" in big
    assert ix.parse(read(_parsed(big))) == Expr(Number(Fraction(15 * 10**19)), ())


def test_inline_display_and_bad_display():
    assert 'display="inline"' in to_mathml(ix.parse("x_i"), display="inline")
    with pytest.raises(ValueError):
        to_mathml(ix.parse("x_i"), display="table")


def test_deep_expression():
    text = "x"
    for _ in range(100):
        text = f"tanh({text})"
    e = ix.parse(text)
    assert ix.parse(read(_parsed(to_mathml(e)))) == e


def test_tree_deeper_than_the_recursion_limit():
    node = Tensor("x", ())
    for _ in range(3000):
        node = Func("tanh", node)
    root = _parsed(to_mathml(Expr(node, ())))
    assert sum(1 for el in root.iter() if _local(el) == "mi" and el.text == "tanh") == 3000


def _same(a: Expr, b: Expr) -> None:
    """Equal expressions, or equal values at random data: the reader parenthesizes a fraction's numerator, which
    can nest a product differently (``2 (A_ij u_j) / u_p`` reads back as ``(2 A_ij u_j) / u_p``)."""
    if a == b:
        return
    assert a.free == b.free and a.name == b.name
    data = random_arrays(a)
    with np.errstate(all="ignore"):
        assert np.allclose(ix.evaluate(a, data), ix.evaluate(b, data), rtol=1e-9, atol=0, equal_nan=True)


def _same_after_reading(e: Expr | Program) -> None:
    back = ix.parse(read(_parsed(to_mathml(e))))
    if isinstance(e, Program):
        assert isinstance(back, Program) and len(back.statements) == len(e.statements)
        for a, b in zip(e.statements, back.statements):
            _same(a, b)
    else:
        _same(e, back)


@fuzz_settings(60, 2000)
@given(st_text=rich_case() | op_case())
def test_random_expressions_and_derivatives_read_back(st_text):
    e = ix.parse(st_text)
    _same_after_reading(e)
    for name in sorted(e.variables)[:2]:
        try:
            d = ix.diff(e, name)
        except ix.IndexDiffError:  # e.g. divides by zero everywhere
            continue
        _same_after_reading(d)


@fuzz_settings(20, 500)
@given(st_text=program() | op_program())
@example(st_text="H_i = (A_ij u_j) / (u_p / 2)\nL = a")  # found by the long run: read back nested differently
def test_random_programs_read_back(st_text):
    _same_after_reading(ix.parse(st_text))
