"""Positioned syntax nodes: what the text says, before the summation rules give it meaning."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .errors import ParseError

__all__ = [
    "NUMBER_LIMIT",
    "NUMBER_RULE",
    "representable",
    "number_value",
    "foldable",
    "FOLD_LIMIT",
    "Syn",
    "SNumber",
    "STensor",
    "SCall",
    "SOp",
    "SSum",
    "SMul",
    "SDiv",
    "SPow",
    "SNeg",
    "SAdd",
    "SGroup",
    "SStatement",
    "constant",
]


#: The one rule for numbers: an exact fraction whose numerator and denominator (in lowest terms) are at most
#: 1e300, so magnitudes 1e-300..1e300. The parser accepts exactly these, constant folding produces only these,
#: and the printer writes each of them as text that parses back to the same value.
NUMBER_LIMIT = 10**300
NUMBER_RULE = "numbers are exact fractions whose numerator and denominator are at most 1e300 (1e-300 <= |x| <= 1e300)"


#: Bound on partial results while the parser folds numbers: beyond NUMBER_LIMIT (so 1e200 1e200 1e-200 still
#: folds exactly), but small enough that a long run of huge numbers fails fast instead of taking minutes.
FOLD_LIMIT = NUMBER_LIMIT**2


def representable(value: Fraction) -> bool:
    """Whether ``value`` is a number of the notation (see ``NUMBER_LIMIT``)."""
    return abs(value.numerator) <= NUMBER_LIMIT and value.denominator <= NUMBER_LIMIT


def foldable(value: Fraction) -> bool:
    """Whether a partial result of folding numbers at parse time is still small enough to go on (FOLD_LIMIT)."""
    return abs(value.numerator) <= FOLD_LIMIT and value.denominator <= FOLD_LIMIT


_NUMBER_PARTS = re.compile(r"(\d*)\.?(\d*)(?:[eE]([-+]?\d+))?$")
#: Most significant digits a literal may have (every representable number needs fewer than 1000).
_MAX_DIGITS = 1000


def number_value(text: str, start: int, end: int) -> Fraction:
    """The exact value of the number literal ``text`` (at ``start..end`` of the input, for the caret). Its
    digits and exponent are checked on the text first, so that no huge integer is ever built; the value must then
    be representable."""
    parts = _NUMBER_PARTS.match(text)
    assert parts is not None
    whole, frac, exp = parts.groups()
    shown = text if len(text) <= 24 else text[:20] + "..."
    digits = (whole + frac).lstrip("0")
    if len((exp or "").lstrip("+-").lstrip("0")) > 6:
        reason = f"the exponent of {shown} is out of range"
    elif not digits:
        return Fraction(0)
    else:
        scale = int(exp or 0) - len(frac) + len(digits) - len(digits.rstrip("0"))  # value = int(digits) 10^scale
        digits = digits.rstrip("0")
        if not -300 <= scale + len(digits) <= 301:
            reason = f"number out of range: {shown}"
        elif len(digits) > _MAX_DIGITS:
            reason = f"number with too many digits: {shown}"
        else:
            value = Fraction(int(digits) * 10 ** max(scale, 0), 10 ** max(-scale, 0))
            if representable(value):
                return value
            reason = f"number out of range: {shown}"
    raise ParseError(reason, pos=start, end=end, hint=f"{NUMBER_RULE.capitalize()}; rescale the expression")


def _too_large(node: Syn) -> ParseError:
    return ParseError(
        "the numbers here multiply to a number out of range",
        pos=node.start,
        end=node.end,
        hint=f"{NUMBER_RULE.capitalize()}; rescale the expression",
    )


@dataclass(frozen=True)
class Syn:
    """A syntax node spans ``start..end`` of the text; ``depth`` is its nesting depth."""

    start: int
    end: int
    depth: int


@dataclass(frozen=True)
class SNumber(Syn):
    value: Fraction


@dataclass(frozen=True)
class STensor(Syn):
    """``name_indices``; ``index_pos`` is where each index starts in the text, for carets."""

    name: str
    indices: tuple[str, ...]
    index_pos: tuple[int, ...]
    delta: bool = False


@dataclass(frozen=True)
class SCall(Syn):
    name: str
    arg: Syn


@dataclass(frozen=True)
class SOp(Syn):
    """An operator: ``softmax_j(arg)`` (``index_pos`` locates each index) or a matrix function ``inv(arg)``."""

    name: str
    indices: tuple[str, ...]
    index_pos: tuple[int, ...]
    arg: Syn


@dataclass(frozen=True)
class SSum(Syn):
    indices: tuple[str, ...]
    body: Syn


@dataclass(frozen=True)
class SMul(Syn):
    """Juxtaposition or ``*``: one Einstein product."""

    factors: tuple[Syn, ...]


@dataclass(frozen=True)
class SDiv(Syn):
    """``num / den``: element-wise."""

    num: Syn
    den: Syn


@dataclass(frozen=True)
class SPow(Syn):
    base: Syn
    exponent: Fraction


@dataclass(frozen=True)
class SNeg(Syn):
    arg: Syn


@dataclass(frozen=True)
class SAdd(Syn):
    """Terms of ``+``/``-``; ``signs`` holds +1 or -1 per term."""

    terms: tuple[Syn, ...]
    signs: tuple[int, ...]


@dataclass(frozen=True)
class SGroup(Syn):
    """Parentheses: a closed sub-expression, a single factor of any product around it."""

    inner: Syn


@dataclass(frozen=True)
class SStatement(Syn):
    """``name_indices = body``."""

    name: str
    indices: tuple[str, ...]
    index_pos: tuple[int, ...]
    body: Syn


def constant(node: Syn) -> Fraction | None:
    """The exact value of a syntax tree made only of numbers, or None."""
    if isinstance(node, SNumber):
        return node.value
    if isinstance(node, SGroup):
        return constant(node.inner)
    if isinstance(node, SNeg):
        v = constant(node.arg)
        return None if v is None else -v
    if isinstance(node, SPow):
        v = constant(node.base)
        if v == 0 and node.exponent < 0:
            raise ParseError(
                "zero to a negative power: a division by zero",
                pos=node.base.start,
                end=node.base.end,
                hint="the base of a negative power must not be zero; write a nonzero base",
            )
        if v is None:
            return None
        from .expr import exact_power

        return exact_power(v, node.exponent)
    if isinstance(node, SDiv):
        a, b = constant(node.num), constant(node.den)
        if b == 0:
            raise ParseError(
                "division by zero", pos=node.den.start, end=node.den.end, hint="divide by a nonzero number"
            )
        if a is None or b is None:
            return None
        if not foldable(a / b):
            raise _too_large(node)
        return a / b
    if isinstance(node, SMul):
        out = Fraction(1)
        for f in node.factors:
            v = constant(f)
            if v is None:
                return None
            out *= v
            if not foldable(out):
                raise _too_large(node)
        return out
    if isinstance(node, SAdd):
        total = Fraction(0)
        for sign, t in zip(node.signs, node.terms):
            v = constant(t)
            if v is None:
                return None
            total += sign * v
            if not foldable(total):
                raise _too_large(node)
        return total
    return None
