"""Expressions and programs as MathML (Core), which browsers render natively.

The layout (which sums print implicitly, where a fraction stands, the left-hand side) is the index notation's
(``printer.py``); this module only says how each piece is written. Every name is escaped, so the markup is
well-formed XML whatever the tensors are called.
"""

from __future__ import annotations

from fractions import Fraction
from html import escape

from .expr import Expr, Node, Op, Program, Tensor, depth_safe
from .printer import _Printer, number_text, written

__all__ = ["to_mathml"]

NAMESPACE = "http://www.w3.org/1998/Math/MathML"
_MINUS = "<mo>\u2212</mo>"
_NEGATIVE = '<mo form="prefix">\u2212</mo>'  # a sign: no space after it
_APPLY = "<mo>\u2061</mo>"  # function application (invisible)


def _mi(name: str) -> str:
    return f"<mi>{escape(name)}</mi>"


def _row(*parts: str) -> str:
    return "<mrow>" + "".join(parts) + "</mrow>"


class _MathMLPrinter(_Printer):
    """The index notation's layout, written as MathML elements."""

    plus, minus, negative, times, equals = "<mo>+</mo>", _MINUS, _NEGATIVE, "<mo>\u2062</mo>", "<mo>=</mo>"

    def paren(self, text: str) -> str:
        return _row("<mo>(</mo>", text, "<mo>)</mo>")

    def number(self, value: Fraction) -> str:
        sign = _NEGATIVE if value < 0 else ""
        text = number_text(abs(value))
        if "/" in text:
            numerator, denominator = text.split("/")
            return _row(sign, f"<mfrac><mn>{numerator}</mn><mn>{denominator}</mn></mfrac>")
        if "e" in text:
            mantissa, exponent = text.split("e")
            power = f"<msup><mn>10</mn>{self.number(Fraction(exponent))}</msup>"
            return _row(sign, "" if mantissa == "1" else f"<mn>{mantissa}</mn><mo>\u00b7</mo>", power)
        return _row(sign, f"<mn>{text}</mn>") if sign else f"<mn>{text}</mn>"

    def _indices(self, indices: tuple[str, ...]) -> str:
        if all(len(i) == 1 for i in indices):
            return _row(*(_mi(i) for i in indices))
        return _row(*(('<mo separator="true">,</mo>' if k else "") + _mi(i) for k, i in enumerate(indices)))

    def tensor(self, name: str, indices: tuple[str, ...]) -> str:
        if not indices:
            return _mi(name)
        return f"<msub>{_mi(name)}{self._indices(indices)}</msub>"

    def delta(self, indices: tuple[str, ...]) -> str:
        return self.tensor("\u03b4", indices)

    def call(self, name: str, arg: str) -> str:
        if name == "sqrt":
            return f"<msqrt>{arg}</msqrt>"
        return _row(_mi(name), _APPLY, self.paren(arg))

    def operator(self, node: Op, arg: str) -> str:
        a = node.arg
        if node.name == "inv" and isinstance(a, Tensor) and len(set(a.indices)) == 2:  # inv(A_lk) is (A⁻¹)_lk
            inverse = self.paren(f"<msup>{_mi(a.name)}{_row(_NEGATIVE, '<mn>1</mn>')}</msup>")
            return f"<msub>{inverse}{self._indices(a.indices)}</msub>"
        # The inverse of any other argument is written inv(...): (...)⁻¹ would read as an element-wise power.
        if node.name == "logdet":
            return _row(_mi("log"), '<mspace width="0.1667em"/>', _mi("det"), _APPLY, self.paren(arg))
        name = _mi(node.name)
        if node.indices and node.name != "det":
            name = f"<msub>{name}{self._indices(node.indices)}</msub>"
        return _row(name, _APPLY, self.paren(arg))

    def power(self, base: str, exponent: Fraction) -> str:
        return f"<msup>{_row(base)}{self.number(exponent)}</msup>"

    def explicit(self, indices: tuple[str, ...], body: str) -> str:
        return _row(f"<munder><mo>\u2211</mo>{self._indices(indices)}</munder>", self.paren(body))

    def quotient(self, sign: str, coef: str, num: list[Node], den: list[Node], bound: frozenset[str]) -> str:
        numerator = coef + self._juxtapose(num, bound) if num else coef.removesuffix(self.times)
        denominator = self._juxtapose(den, bound)
        return _row(sign, f"<mfrac>{_row(numerator or '<mn>1</mn>')}{_row(denominator)}</mfrac>")


def _statement(expr: Expr) -> str:
    return written(expr, _MathMLPrinter())


@depth_safe
def to_mathml(expr: Expr | Program, display: str = "block") -> str:
    """``expr`` as one ``<math>`` element, with the same summation layout as ``str(expr)``; a program is a table
    of its statements, one row each (left-hand side, =, right-hand side in three cells).

    >>> import indexdiff as ix
    >>> to_mathml(ix.parse("u_i / v_i"), display="inline")  # doctest: +ELLIPSIS
    '<math xmlns=... display="inline">...<mfrac><mrow><msub><mi>u</mi>...</mfrac>...</math>'
    """
    if display not in ("block", "inline"):
        raise ValueError(f"display must be 'block' or 'inline', not {display!r}")
    if isinstance(expr, Program):
        rows = []
        for s in expr.statements:
            lhs, equals, rhs = _statement(s).partition(_MathMLPrinter.equals)
            if not equals:  # a bare expression (a Program built in Python may hold one): the right-hand cell
                lhs, rhs = "", lhs
            rows.append(f"<mtr><mtd>{lhs}</mtd><mtd>{equals}</mtd><mtd>{rhs}</mtd></mtr>")
        body = "<mtable>" + "".join(rows) + "</mtable>"
    else:
        body = _row(_statement(expr))
    return f'<math xmlns="{NAMESPACE}" display="{display}">{body}</math>'
