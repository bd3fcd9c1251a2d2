"""Explicit nodes -> index notation text that parses back to the same expression.

A ``Sum`` prints implicitly (Einstein) when each summed index occurs exactly twice in its product and nowhere
deeper where the parser would sum it again; otherwise as ``sum_j(...)``.  An element-wise (Hadamard) product over
an index needs that index bound: ``u_i / v_i`` prints with ``/``, and an expression whose output indices need
binding, or are not in sorted order, prints as a statement with a left-hand side.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from .errors import IndexDiffError
from .expr import Add, Delta, Expr, Func, Mul, Node, Number, Op, Pow, Sum, Tensor, negate
from .names import children, separate, tensors
from .syntax import NUMBER_RULE, representable

__all__ = ["to_text", "to_latex", "written", "latex_name", "node_text", "number_text", "indices_text", "check_numbers"]

# Precedence of the context a sub-expression is printed in (loosest first).
_ADD, _TERM, _FACTOR, _POWER, _ATOM = 0, 1, 2, 3, 4


def _integer_text(n: int) -> str:
    """A non-negative integer: its digits, or ``1.2e301`` when it is long and ends in zeros."""
    if n.bit_length() > 10_000:  # far beyond representable numbers (and beyond str()'s digit limit)
        return f"(about 2^{n.bit_length()})"
    digits = str(n)
    mantissa = digits.rstrip("0")
    if len(digits) > 16 and mantissa != digits:
        return f"{mantissa[0]}{'.' + mantissa[1:] if len(mantissa) > 1 else ''}e{len(digits) - 1}"
    return digits


def _decimal_text(n: int, d: int) -> str | None:
    """``n/d`` (positive) as an exact decimal (``0.25``, ``1.5e-20``), or None when it does not terminate."""
    twos = fives = 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return None
    shift = max(twos, fives)
    digits = str(n * 2 ** (shift - twos) * 5 ** (shift - fives))
    lead = len(digits) - shift - 1  # the power of ten of the leading digit
    if -5 <= lead < 16:
        digits = digits.rjust(shift + 1, "0")
        return f"{digits[:-shift]}.{digits[-shift:]}"
    mantissa = digits.rstrip("0")
    return f"{mantissa[0]}{'.' + mantissa[1:] if len(mantissa) > 1 else ''}e{lead}"


def _significant(decimal: str) -> int:
    return len(decimal.split("e")[0].replace(".", "").strip("0"))


def number_text(value: Fraction) -> str:
    """An exact number as the notation writes it: 2, -0.5, 1e-300, 1/3. For every representable number
    (``syntax.representable``) the text parses back to ``value``."""
    sign = "-" if value < 0 else ""
    n, d = abs(value.numerator), value.denominator
    if d == 1:
        return sign + _integer_text(n)
    fraction = f"{_integer_text(n)}/{_integer_text(d)}"
    decimal = _decimal_text(n, d) if representable(value) else None
    if decimal is not None and (_significant(decimal) <= 12 or len(decimal) <= len(fraction)):
        return sign + decimal
    return sign + fraction


def _short(value: Fraction) -> str:
    """A number for a message: exact when short, else its order of magnitude."""
    text = number_text(value)
    if len(text) <= 24:
        return text
    n, d = abs(value.numerator), value.denominator
    return f"about {'-' if value < 0 else ''}1e{round((n.bit_length() - d.bit_length()) * 0.30103)}"


def check_numbers(node: Node) -> Node:
    """``node``, after checking that each of its numbers and exponents is representable, so that it prints as
    text that parses back: constant folding (x^a x^b, coefficients multiplied or added) can leave the range.
    A power of 0 with a negative exponent (``(a - a)^-1`` simplified) divides by zero everywhere: an error too."""
    seen: set[int] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        value = n.value if isinstance(n, Number) else n.exponent if isinstance(n, Pow) else None
        if value is not None and not representable(value):
            raise IndexDiffError(
                f"a number of the result is out of range: {_short(value)}",
                hint=f"{NUMBER_RULE.capitalize()}; rescale the expression's constants",
            )
        if isinstance(n, Pow) and n.exponent < 0 and isinstance(n.base, Number) and n.base.value == 0:
            raise IndexDiffError(
                f"the expression divides by zero everywhere: it simplifies to 0^{number_text(n.exponent)}",
                hint="the base of a negative power (or a divisor) simplifies to 0; check the expression",
            )
        stack.extend(children(n))
    return node


def indices_text(indices: tuple[str, ...]) -> str:
    """``('i','j')`` -> ``_ij``; multi-letter names -> ``_{row,col}``; none -> ``''``."""
    if not indices:
        return ""
    if all(len(i) == 1 for i in indices):
        return "_" + "".join(indices)
    return "_{" + ",".join(indices) + ("," if len(indices) == 1 else "") + "}"


def _counts(factors: tuple[Node, ...]) -> Counter[str]:
    """How often a product mentions each index, as the parser counts (a tensor counts repeats)."""
    c: Counter[str] = Counter()
    for f in factors:
        c.update(f.indices if isinstance(f, (Tensor, Delta)) else f.free)
    return c


def _split(factors: tuple[Node, ...]) -> tuple[list[Node], list[Node]]:
    """Numerator and denominator factors (negative powers, by their positive power).

    ``a / b`` parses as ``a b^-1`` unless b is a number (the parser folds it into the coefficient) or a product
    (the parser inverts each of its factors): powers of those stay powers, so that the text parses back the same.
    """
    num, den = [], []
    for f in factors:
        if isinstance(f, Pow) and f.exponent < 0 and not isinstance(f.base, (Number, Mul)):
            den.append(f.base if f.exponent == -1 else Pow(f.base, -f.exponent))
        else:
            num.append(f)
    return num, den


class _Layout:
    """Decides, once per node, how it prints and which indices it needs bound around it."""

    def __init__(self) -> None:
        # Memos keyed by id(); each entry keeps its node alive so an id is never reused while cached.
        self._needs: dict[int, tuple[Node, frozenset[str]]] = {}
        self._implicit: dict[int, tuple[Node, frozenset[str]]] = {}

    def needs(self, node: Node) -> frozenset[str]:
        entry = self._needs.get(id(node))
        if entry is None:
            entry = self._needs[id(node)] = (node, self._compute(node))
        return entry[1]

    def implicit(self, node: Sum) -> frozenset[str]:
        """The summed indices of ``node`` that print implicitly (each occurs twice in its product)."""
        self.needs(node)
        return self._implicit[id(node)][1]

    def _inner(self, factors: tuple[Node, ...]) -> frozenset[str]:
        return frozenset().union(*(self.needs(f) for f in factors))

    def mul_needs(self, factors: tuple[Node, ...]) -> frozenset[str]:
        inner = self._inner(factors)
        num, den = _split(factors)
        if den:
            cn, cd = _counts(tuple(num)), _counts(tuple(den))
            return inner | {i for i in cn.keys() | cd.keys() if cn[i] > 1 or cd[i] > 1}
        return inner | {i for i, n in _counts(factors).items() if n > 1}

    def _compute(self, node: Node) -> frozenset[str]:
        if isinstance(node, Tensor):
            return frozenset(i for i, n in Counter(node.indices).items() if n > 1)
        if isinstance(node, Func):
            return self.needs(node.arg)
        if isinstance(node, Op):  # the operator's indices are bound inside its argument
            return self.needs(node.arg) - frozenset(node.indices)
        if isinstance(node, Pow):
            return self.needs(node.base)
        if isinstance(node, Add):
            # A term lacking some of the sum's indices is broadcast along them: only legal where they are bound.
            broadcast = {i for t in node.terms if t.free for i in node.free - t.free}
            return self._inner(node.terms) | broadcast
        if isinstance(node, Mul):
            return self.mul_needs(node.factors)
        if isinstance(node, Sum):
            summed = frozenset(node.indices)
            body = node.body
            implicit: frozenset[str] = frozenset()
            if isinstance(body, (Mul, Tensor)):
                factors = body.factors if isinstance(body, Mul) else (body,)
                counts = _counts(factors)
                # A tensor's own repeated index (A_ii) is summed there by rule 1 like any pair: only what other
                # factors need bound keeps a summed index explicit (a product of traces prints A_ii X_jj).
                inner = self._inner(tuple(f for f in factors if not isinstance(f, Tensor)))
                implicit = frozenset(j for j in summed if counts[j] == 2 and j not in inner)
            self._implicit[id(node)] = (node, implicit)
            if implicit:
                repeated = {i for i, n in counts.items() if n > 1 and i not in implicit}
                return (inner | repeated) - summed
            return self.needs(body) - summed
        return frozenset()


class _Printer:
    """Index notation. The layout (which sums print implicitly, where '/' may stand) is decided by _Layout; the
    token methods (``number``, ``tensor``, ``call``, ``power``, ``explicit``, ``quotient``, ``paren``) say how
    each piece is written, so another notation (LaTeX, MathML) overrides only those."""

    plus, minus, negative, times, equals = " + ", " - ", "-", " ", " = "  # the separators between pieces

    def __init__(self) -> None:
        self.layout = _Layout()

    # -- tokens -------------------------------------------------------------------------------------------
    def paren(self, text: str) -> str:
        return f"({text})"

    def number(self, value: Fraction) -> str:
        return number_text(value)

    def tensor(self, name: str, indices: tuple[str, ...]) -> str:
        return name + indices_text(indices)

    def delta(self, indices: tuple[str, ...]) -> str:
        return "δ" + indices_text(indices)

    def call(self, name: str, arg: str) -> str:
        return f"{name}({arg})"

    def operator(self, node: Op, arg: str) -> str:
        if not node.indices or node.name in ("det", "logdet"):
            return f"{node.name}({arg})"
        return f"{node.name}{indices_text(node.indices)}({arg})"

    def power(self, base: str, exponent: Fraction) -> str:
        return base + "^" + _exponent(exponent)

    def explicit(self, indices: tuple[str, ...], body: str) -> str:
        return f"sum{indices_text(indices)}({body})"

    def quotient(self, sign: str, coef: str, num: list[Node], den: list[Node], bound: frozenset[str]) -> str:
        numerator = coef + self._numerator(num, den, bound) if num else coef.strip() or "1"
        denominator = self.fmt(den[0], _POWER, bound) if len(den) == 1 else self.paren(self._juxtapose(den, bound))
        return f"{sign}{numerator} / {denominator}"

    # -- layout -------------------------------------------------------------------------------------------
    def fmt(self, node: Node, level: int, bound: frozenset[str] = frozenset()) -> str:
        if isinstance(node, Number):
            text = self.number(node.value)
            if (node.value < 0 and level >= _FACTOR) or (level >= _POWER and node.value.denominator != 1):
                return self.paren(text)
            return text
        if isinstance(node, Tensor):
            return self.tensor(node.name, node.indices)
        if isinstance(node, Delta):
            return self.delta(node.indices)
        if isinstance(node, Func):
            return self.call(node.name, self.fmt(node.arg, _ADD, bound))
        if isinstance(node, Op):
            return self.operator(node, self.fmt(node.arg, _ADD, bound | frozenset(node.indices)))
        if isinstance(node, Pow):
            text = self.power(self.fmt(node.base, _ATOM, bound), node.exponent)
            return self.paren(text) if level >= _ATOM else text
        if isinstance(node, Add):
            text = self.add(node, bound)
            return self.paren(text) if level > _ADD else text
        if isinstance(node, Mul):
            text = self.product(node.factors, frozenset(), bound)
            return self.paren(text) if level >= _FACTOR else text
        if isinstance(node, Sum):
            return self.sum(node, level, bound)
        raise AssertionError(node)

    def sum(self, node: Sum, level: int, bound: frozenset[str]) -> str:
        implicit = self.layout.implicit(node)
        explicit = tuple(j for j in node.indices if j not in implicit)
        body = node.body
        inside = bound | frozenset(explicit)
        if implicit:
            factors = body.factors if isinstance(body, Mul) else (body,)
            text = self.product(factors, implicit, inside)
            if explicit:
                return self.explicit(explicit, text)
            return self.paren(text) if level >= _FACTOR else text
        if explicit:
            return self.explicit(explicit, self.fmt(body, _ADD, inside))
        return self.fmt(body, level, bound)

    def add(self, node: Add, bound: frozenset[str]) -> str:
        parts: list[str] = []
        for k, term in enumerate(_terms(node)):
            if k and _negative(term):
                parts.append(self.minus + self.fmt(negate(term), _TERM, bound))
            else:
                text = self.fmt(term, _TERM, bound)
                parts.append(self.plus + text if k else text)
        return "".join(parts)

    def product(self, factors: tuple[Node, ...], summed: frozenset[str], bound: frozenset[str]) -> str:
        """A product; ``summed`` are the indices it sums implicitly (then no '/' may hide them)."""
        value = Fraction(1)
        if isinstance(factors[0], Number) and len(factors) > 1:
            value, factors = factors[0].value, factors[1:]
        sign = self.negative if value < 0 else ""
        coef = "" if abs(value) == 1 else self.number(abs(value)) + self.times
        num, den = _split(factors)
        if den and not summed:
            if not num and not coef:
                coef = self.number(Fraction(1)) + self.times
            return self.quotient(sign, coef, num, den, bound)
        return sign + coef + self._juxtapose(factors, bound)

    def _numerator(self, num: list[Node], den: list[Node], bound: frozenset[str]) -> str:
        if len(num) == 1:
            return self.fmt(num[0], _POWER, bound)
        # "a b / c" reads as a (b / c): fine unless the leading factors share an unbound index with c.
        den_free = frozenset().union(*(d.free for d in den))
        leading = frozenset().union(*(f.free for f in num[:-1]))
        text = self._juxtapose(num, bound)
        if (leading & den_free) - bound or isinstance(num[-1], Number):
            return self.paren(text)
        return text

    def _juxtapose(self, factors: list[Node] | tuple[Node, ...], bound: frozenset[str]) -> str:
        return self.times.join(self.fmt(f, _FACTOR, bound) for f in factors)


def _exponent(value: Fraction) -> str:
    text = number_text(abs(value))
    if "/" in text:
        text = f"({text})"
    return ("-" if value < 0 else "") + text


def _terms(node: Add) -> list[Node]:
    """The terms of a sum, nested sums spliced in (+ is associative; the parser reads them as one flat sum)."""
    out: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Add):
            stack.extend(reversed(n.terms))
        else:
            out.append(n)
    return out


def _negative(node: Node) -> bool:
    if isinstance(node, Number):
        return node.value < 0
    if isinstance(node, Sum):
        return _negative(node.body)
    if isinstance(node, Mul):
        return isinstance(node.factors[0], Number) and node.factors[0].value < 0
    return False


def node_text(node: Node) -> str:
    """A node alone as index notation (no left-hand side; for messages and generated comments)."""
    return _Printer().fmt(separate(node, node.free), _ADD)


def _result_name(node: Node, preferred: str | None) -> str:
    if preferred:
        return preferred
    used = {t.name for t in tensors(node)}
    for name in ("f", "g", "h", "F", "G", "H"):
        if name not in used:
            return name
    n = 1
    while f"f{n}" in used:
        n += 1
    return f"f{n}"


def written(expr: Expr, printer: _Printer, lhs: str | None = None) -> str:
    """``expr`` written by ``printer`` (index notation, LaTeX, MathML): a bare expression when that reads the
    same, else a statement; ``lhs`` replaces the left-hand side."""
    free = frozenset(expr.free)
    node = separate(expr.node, free)
    named = lhs is not None or expr.name is not None
    statement = named or list(expr.free) != sorted(expr.free) or bool(printer.layout.needs(node) & free)
    if isinstance(node, Number) and node.value == 0:
        statement = named or bool(free)  # f_kl = 0 keeps the zero tensor's indices
    if not statement:
        return printer.fmt(node, _ADD)
    if lhs is None:
        lhs = printer.tensor(_result_name(node, expr.name), expr.free)
    return lhs + printer.equals + printer.fmt(node, _ADD, free)


def to_text(expr: Expr) -> str:
    """Canonical index notation for ``expr``: a bare expression when that reads the same, else a statement."""
    return written(expr, _Printer())


_GREEK_NAMES = (
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu", "nu",
    "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
    "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega",
)  # fmt: skip
_GREEK = {c: "o" if n == "omicron" else "\\" + n for c, n in zip("αβγδεζηθικλμνξοπρστυφχψωΓΔΘΛΞΠΣΦΨΩ", _GREEK_NAMES)}


def latex_name(name: str) -> str:
    """A tensor or index name in LaTeX: Greek letters as commands, longer names upright-italic as one symbol."""
    text = "".join(_GREEK[c] + " " if c in _GREEK else c for c in name).strip()
    return text if len(name) == 1 else rf"\mathit{{{text}}}"


class _LatexPrinter(_Printer):
    """The same layout as index notation, written in LaTeX."""

    def paren(self, text: str) -> str:
        return rf"\left({text}\right)"

    def number(self, value: Fraction) -> str:
        text = number_text(value)
        if "/" in text:
            sign = "-" if value < 0 else ""
            numerator, denominator = text.lstrip("-").split("/")
            return rf"{sign}\frac{{{self.number(Fraction(numerator))}}}{{{self.number(Fraction(denominator))}}}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            return (rf"{mantissa} \cdot " if mantissa.lstrip("-") != "1" else mantissa[:-1]) + f"10^{{{exponent}}}"
        return text

    def _indices(self, indices: tuple[str, ...]) -> str:
        if not indices:
            return ""
        sep = "" if all(len(i) == 1 for i in indices) else ","
        return "_{" + sep.join(latex_name(i) for i in indices) + "}"

    def tensor(self, name: str, indices: tuple[str, ...]) -> str:
        return latex_name(name) + self._indices(indices)

    def delta(self, indices: tuple[str, ...]) -> str:
        return r"\delta" + self._indices(indices)

    def call(self, name: str, arg: str) -> str:
        from .functions import FUNCTIONS

        if name == "sqrt":
            return rf"\sqrt{{{arg}}}"
        return rf"{FUNCTIONS[name].latex}\left({arg}\right)"

    def power(self, base: str, exponent: Fraction) -> str:
        return f"{{{base}}}^{{{self.number(exponent)}}}"

    def operator(self, node: Op, arg: str) -> str:
        from .operators import OPERATORS

        if node.name == "inv":
            a = node.arg
            if isinstance(a, Tensor) and len(set(a.indices)) == 2:  # inv(A_lk) is (A⁻¹)_lk
                return rf"\left({latex_name(a.name)}^{{-1}}\right){self._indices(a.indices)}"
            return rf"{self.paren(arg)}^{{-1}}"
        name = OPERATORS[node.name].latex
        if node.indices and node.name not in ("det", "logdet"):
            name += self._indices(node.indices)
        return rf"{name}\left({arg}\right)"

    def explicit(self, indices: tuple[str, ...], body: str) -> str:
        return rf"\sum_{{{''.join(latex_name(i) for i in indices)}}} \left({body}\right)"

    def quotient(self, sign: str, coef: str, num: list[Node], den: list[Node], bound: frozenset[str]) -> str:
        numerator = (coef + self._juxtapose(num, bound)).strip() if num else coef.strip()
        return rf"{sign}\frac{{{numerator}}}{{{self._juxtapose(den, bound)}}}"


def to_latex(expr: Expr, lhs: str | None = None) -> str:
    """``expr`` in LaTeX, with the same summation layout as ``str(expr)``; ``lhs`` replaces the left-hand side."""
    return written(expr, _LatexPrinter(), lhs)
