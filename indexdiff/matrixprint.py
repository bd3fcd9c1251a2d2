"""Matrix-notation trees (``matrixtree``) printed as text, LaTeX and NumPy code.

Text precedence, loosest first: ``+ -``, unary minus, ``∘ ./ /``, juxtaposition (matrix product), ``^ .^``, postfix
``ᵀ ⁻¹ ⁻ᵀ``, atoms. The ones vector prints ``1`` where a scalar 1 could not stand (``1ᵀ``, ``A 1``, ``1 xᵀ``)
and ``vector(1)`` elsewhere; the identity matrix is ``eye``; a term with no matrix form is ``[index: ...]``.
"""

from __future__ import annotations

from fractions import Fraction

from .matrixtree import Call, Eye, Fn, Had, Index, M, Name, Num, Ones, Plus, Power, Prod, T, negated, negative, shape
from .printer import latex_name, number_text

__all__ = ["to_text", "to_latex"]

_ADD, _NEG, _HAD, _PROD, _POW, _POST, _ATOM = range(7)
_SCALAR = (False, False)


def _split_denominators(factors: tuple[M, ...]) -> tuple[list[M], list[M]]:
    num, den = [], []
    for f in factors:
        if isinstance(f, Power) and f.exponent < 0:
            den.append(f.base if f.exponent == -1 else Power(f.base, -f.exponent))
        else:
            num.append(f)
    return num, den


class _Text:
    """The plain-text printer; ``_Latex`` overrides the tokens."""

    transpose = "ᵀ"
    inverse = "⁻¹"
    inverse_t = "⁻ᵀ"
    circ = " ∘ "
    odiv = " ./ "
    sdiv = " / "
    eye = "eye"
    one = "1"
    ones = "vector(1)"

    def paren(self, text: str) -> str:
        return f"({text})"

    def at(self, e: M, level: int) -> str:
        text, own = self.print(e)
        return self.paren(text) if own < level else text

    def name(self, e: Name) -> str:
        return e.name

    def number(self, value: Fraction) -> tuple[str, int]:
        text = number_text(value)
        if "/" in text:
            return self.paren(text), _ATOM
        return text, (_NEG if value < 0 else _ATOM)

    def call(self, name: str, arg: str) -> str:
        return f"{name}({arg})"

    def fn(self, name: str, arg: str) -> str:
        return f"{name}({arg})"

    def power(self, base: str, exponent: Fraction, elementwise: bool) -> str:
        text = number_text(exponent)
        text = f"({text})" if "/" in text else text
        return f"{base}{'.^' if elementwise else '^'}{text}"

    def index(self, e: Index) -> str:
        return f"[index: {e.text}]"

    def postfix(self, base: str, mark: str) -> str:
        return base + mark

    def print(self, e: M) -> tuple[str, int]:
        """``e``'s text and the precedence level it binds at."""
        if isinstance(e, Name):
            return self.name(e), _ATOM
        if isinstance(e, Num):
            return self.number(e.value)
        if isinstance(e, Eye):
            return self.eye, _ATOM
        if isinstance(e, Ones):
            return self.ones, _ATOM
        if isinstance(e, T):
            if isinstance(e.arg, Ones):
                return self.postfix(self.one, self.transpose), _POST
            return self.postfix(self.at(e.arg, _ATOM), self.transpose), _POST
        if isinstance(e, Call) and e.name == "inv":
            if isinstance(e.arg, T) and isinstance(e.arg.arg, Name):
                return self.postfix(self.name(e.arg.arg), self.inverse_t), _POST
            return self.postfix(self.at(e.arg, _ATOM), self.inverse), _POST
        if isinstance(e, Call):
            return self.call(e.name, self.print(e.arg)[0]), _ATOM
        if isinstance(e, Fn):
            return self.fn(e.name, self.print(e.arg)[0]), _ATOM
        if isinstance(e, Power):
            return self.power(self.at(e.base, _POST), e.exponent, shape(e.base) != _SCALAR), _POW
        if isinstance(e, Prod):
            return self.product(e)
        if isinstance(e, Had):
            num, den = _split_denominators(e.factors)
            text = self.circ.join(self.at(f, _POW) for f in num) if num else self.one
            for d in den:
                text += self.odiv + self.at(d, _POW)
            return text, _HAD
        if isinstance(e, Plus):
            text = self.at(e.terms[0], _NEG)
            for t in e.terms[1:]:
                text += " - " + self.at(negated(t), _HAD) if negative(t) else " + " + self.at(t, _NEG)
            return text, _ADD
        assert isinstance(e, Index)
        return self.index(e), _ATOM

    def product(self, e: Prod) -> tuple[str, int]:
        factors = list(e.factors)
        coef = Fraction(1)
        if isinstance(factors[0], Num):
            coef = factors.pop(0).value
        scalar_dens = [f for f in factors if isinstance(f, Power) and f.exponent < 0 and shape(f) == _SCALAR]
        factors = [f for f in factors if not any(f is d for d in scalar_dens)]
        words: list[str] = []
        acc = _SCALAR
        for k, f in enumerate(factors):
            if isinstance(f, Ones):
                after = next((shape(g) for g in factors[k + 1 :] if shape(g) != _SCALAR), _SCALAR)
                words.append(self.one if acc[1] or (acc == _SCALAR and after == (False, True)) else self.ones)
            else:
                words.append(self.at(f, _POW))
            s = shape(f)
            if s != _SCALAR:
                acc = s if acc == _SCALAR else (acc[0], s[1])
        body = " ".join(words)
        if coef == 1:
            text = body or self.one
        elif coef == -1 and len(factors) == 1:  # -(y ∘ z) is -y ∘ z: unary minus binds looser than ∘
            text = "-" + self.at(factors[0], _HAD)
        elif coef == -1:
            text = "-" + (body or self.one)
        else:
            text = f"{self.number(coef)[0]} {body}".strip()
        level = _NEG if coef < 0 else _PROD
        for d in scalar_dens:
            base = d.base if d.exponent == -1 else Power(d.base, -d.exponent)
            text = (self.paren(text) if level < _HAD else text) + self.sdiv + self.at(base, _POW)
            level = _HAD
        return text, level


class _Latex(_Text):
    transpose = r"^{\top}"
    inverse = "^{-1}"
    inverse_t = r"^{-\top}"
    circ = r" \circ "
    odiv = r" \oslash "
    sdiv = " / "
    eye = "I"
    one = r"\mathbf{1}"
    ones = r"\mathbf{1}"

    def paren(self, text: str) -> str:
        return rf"\left({text}\right)"

    def name(self, e: Name) -> str:
        return latex_name(e.name)

    def number(self, value: Fraction) -> tuple[str, int]:
        text = number_text(abs(value))
        if "/" in text:
            n, d = text.split("/")
            text = rf"\frac{{{n}}}{{{d}}}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            text = (rf"{mantissa} \cdot " if mantissa != "1" else "") + f"10^{{{exponent}}}"
        return ("-" + text if value < 0 else text), (_NEG if value < 0 else _ATOM)

    def call(self, name: str, arg: str) -> str:
        names = {"det": r"\det", "logdet": r"\log\det"}
        return names.get(name, r"\operatorname{" + name + "}") + rf"\left({arg}\right)"

    def fn(self, name: str, arg: str) -> str:
        from .functions import FUNCTIONS

        if name == "sqrt":
            return rf"\sqrt{{{arg}}}"
        spec = FUNCTIONS.get(name)
        head = spec.latex if spec else r"\operatorname{" + name + "}"
        return head + rf"\left({arg}\right)"

    def power(self, base: str, exponent: Fraction, elementwise: bool) -> str:
        circ = "\\circ " if elementwise else ""
        return f"{{{base}}}^{{{circ}{self.number(exponent)[0]}}}"

    def index(self, e: Index) -> str:
        from .printer import to_latex as index_latex

        return rf"\left[{index_latex(e.expr)}\right]_{{\text{{index}}}}"

    def postfix(self, base: str, mark: str) -> str:
        return f"{{{base}}}{mark}"


def to_text(e: M) -> str:
    """``e`` in the matrix text syntax."""
    return _Text().print(e)[0]


def to_latex(e: M) -> str:
    """``e`` in LaTeX (``^{\\top}``, ``\\circ``, ``\\oslash``, ``\\operatorname{diag}``)."""
    return _Latex().print(e)[0]
