"""Matrix notation -> Expr: ``ix.parse_matrix("x' A x")`` is ``x_i A_ij x_j``.

Lark (LALR, ``grammar/matrix.lark``) builds positioned matrix syntax nodes (this module); ``matrixshapes.py`` gives
every node its shape (scalar, column vector, row vector, matrix) and reports mismatches with a caret;
``matrixemit.py`` writes the index-notation nodes, which then work as any parsed expression does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Any

from lark import Token, Transformer
from lark.common import LexerConf
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from .errors import IndexDiffError, ParseError
from .expr import Expr
from .functions import RESERVED
from .larkcache import cached_lark, grammar_text
from .operators import OPERATORS
from .parser import MAX_DEPTH, _Lexer
from .syntax import number_value
from .syntax_errors import unbalanced_error

__all__ = ["parse_matrix", "MNode", "parse_matrix_syntax", "MATRIX_WORDS", "callable_name"]

#: The functions of matrix notation besides the element-wise ones (and ``eye``, the identity matrix).
MATRIX_WORDS = ("tr", "det", "logdet", "inv", "diag", "sum", "norm2", "softmax", "logsumexp", "vector")


def callable_name(name: str) -> bool:
    """Whether ``name(`` is a call (a function, or a reserved word that is an error as a product) or a product."""
    return name in MATRIX_WORDS or name in RESERVED or name in OPERATORS or name == "eye"


class MNode:
    """A node of matrix syntax: ``kind`` says what it is, ``parts`` its operands, ``start``/``end`` its text.

    ``kind``: statement name number call group norm mark power chain elementwise neg add (and ones, eye: set when
    shapes are given). ``name``: a name, function, postfix mark or power operator; ``value``: a number's value or a
    power's exponent; ``ops``: a chain's or element-wise chain's operator before each part after the first, a sum's
    signs; ``shape``: set by ``matrixshapes``. (A plain class: it is defined at import, which the start-up pays.)
    """

    __slots__ = ("kind", "start", "end", "depth", "name", "value", "parts", "ops", "shape")

    def __init__(
        self,
        kind: str,
        start: int,
        end: int,
        depth: int = 1,
        name: str = "",
        value: Fraction | None = None,
        parts: tuple[MNode, ...] = (),
        ops: tuple[str, ...] = (),
        shape: Any = None,
    ) -> None:
        self.kind, self.start, self.end, self.depth = kind, start, end, depth
        self.name, self.value, self.parts, self.ops, self.shape = name, value, parts, ops, shape

    def __repr__(self) -> str:
        return f"MNode({self.kind!r}, {self.start}, {self.end}, name={self.name!r}, parts={self.parts!r})"


def _node(kind: str, parts: tuple[MNode, ...], start: int, end: int, **fields: Any) -> MNode:
    depth = max((p.depth for p in parts), default=0) + 1
    if depth > MAX_DEPTH:
        raise ParseError(
            f"the expression is nested more than {MAX_DEPTH} levels deep",
            pos=start,
            end=start + 1,
            hint="split it into smaller expressions",
        )
    return MNode(kind, start, end, depth, parts=parts, **fields)


class _MatrixLexer(_Lexer):
    """The grammar's terminals, plus '‖': an opening bar where an operand is expected, else a closing one
    (which takes a following '₂')."""

    def __init__(self, conf: LexerConf) -> None:
        super().__init__(conf)
        self.pattern = re.compile(f"(?P<BAR>\u2016\u2082?)|{self.pattern.pattern}")

    def lex(self, text: str) -> Iterator[Token]:  # type: ignore[override]
        depth, after_operand = 0, False
        for tok in super().lex(text):
            if tok.type == "BAR":
                closing = depth > 0 and after_operand
                if not closing and len(tok) > 1:  # '‖₂' opening: the '₂' is the stray character
                    at = _pos(tok)[0] + 1
                    raise UnexpectedCharacters(text, at, 1, at + 1)
                depth += -1 if closing else 1
                tok = Token("NORMCLOSE" if closing else "NORMOPEN", str(tok), tok.start_pos, end_pos=tok.end_pos)
            after_operand = tok.type in ("NAME", "NUMBER", "RPAR", "POSTFIX", "NORMCLOSE")
            yield tok


@lru_cache(maxsize=1)
def _parser() -> Any:
    return cached_lark(grammar_text("matrix.lark"), lexer=_MatrixLexer, transformer=_Build(), maybe_placeholders=False)


def _pos(tok: Token) -> tuple[int, int]:
    assert tok.start_pos is not None and tok.end_pos is not None
    return tok.start_pos, tok.end_pos


class _Build(Transformer):
    """Lark callbacks, run while parsing: matrix syntax nodes with positions."""

    def start(self, children: list[MNode]) -> MNode:
        (expr,) = children
        return expr

    def statement(self, children: list) -> MNode:
        tok, body = children
        return _node("statement", (body,), tok.start_pos, body.end, name=str(tok))

    def number(self, children: list[Token]) -> MNode:
        (tok,) = children
        start, end = _pos(tok)
        return MNode("number", start, end, value=number_value(str(tok), start, end))

    def name(self, children: list[Token]) -> MNode:
        (tok,) = children
        return MNode("name", *_pos(tok), name=str(tok))

    def call(self, children: list) -> MNode:
        tok, left, arg, right = children
        name = str(tok)
        if not callable_name(name):  # A(x - b): a product, whose marks and powers apply to the group
            group = _node("group", (arg,), left.start_pos, right.end_pos)
            return _node("chain", (self.name([tok]), group), tok.start_pos, right.end_pos, name="call", ops=("",))
        return _node("call", (arg,), tok.start_pos, right.end_pos, name=name)

    def group(self, children: list) -> MNode:
        left, inner, right = children
        return _node("group", (inner,), left.start_pos, right.end_pos)

    def norm(self, children: list) -> MNode:
        opening, inner, closing = children
        return _node("norm", (inner,), opening.start_pos, closing.end_pos)

    def mark(self, children: list) -> MNode:
        arg, tok = children
        if arg.kind == "chain" and arg.name == "call":
            return _node("chain", (arg.parts[0], self.mark([arg.parts[1], tok])), arg.start, tok.end_pos, ops=arg.ops)
        return _node("mark", (arg,), arg.start, tok.end_pos, name=str(tok))

    def power(self, children: list) -> MNode:
        base, op, exponent = children
        if base.kind == "chain" and base.name == "call":
            last = self.power([base.parts[1], op, exponent])
            return _node("chain", (base.parts[0], last), base.start, exponent.end, ops=base.ops)
        if base.kind == "power" and str(op) == "^" and base.name == "^":
            raise ParseError(
                "a power of a power needs parentheses",
                pos=base.start,
                end=exponent.end,
                hint="write (c^2)^3",
            )
        return _node("power", (base, exponent), base.start, exponent.end, name=str(op))

    def matprod(self, children: list) -> MNode:
        parts: list[MNode] = []
        ops: list[str] = []
        op = " "
        for child in children:
            if isinstance(child, Token):
                op = str(child)
                continue
            if parts:
                ops.append(op)
            parts.append(child)
            op = " "
        return _node("chain", tuple(parts), parts[0].start, parts[-1].end, ops=tuple(ops))

    def elementwise(self, children: list) -> MNode:
        parts, ops = children[::2], tuple(str(t) for t in children[1::2])
        return _node("elementwise", tuple(parts), parts[0].start, parts[-1].end, ops=ops)

    def neg(self, children: list) -> MNode:
        tok, arg = children
        return _node("neg", (arg,), tok.start_pos, arg.end)

    def pos(self, children: list[MNode]) -> MNode:
        (arg,) = children
        return arg

    def plus(self, children: list[MNode]) -> tuple[str, MNode]:
        return "+", children[0]

    def minus(self, children: list) -> tuple[str, MNode]:
        return "-", children[1]

    def expr(self, children: list) -> MNode:
        first, *rest = children
        parts = (first, *(t for _, t in rest))
        return _node("add", parts, first.start, parts[-1].end, ops=tuple(sign for sign, _ in rest))


def _source(text: Any) -> str:
    if not isinstance(text, str):
        raise ParseError(f"expected a string of matrix notation, got {type(text).__name__}")
    return " " + text[1:] if text.startswith("\ufeff") else text


def parse_matrix_syntax(text: str) -> MNode:
    """The matrix syntax tree of ``text`` (one expression)."""
    text = _source(text)
    if not re.sub(r"#[^\n]*", "", text).strip():
        raise ParseError("empty input", text=text, pos=0, hint="write an expression such as x' A x")
    try:
        return _parser().parse(text)
    except IndexDiffError as err:
        raise err.with_source(text) from None
    except UnexpectedInput as err:
        raise _syntax_error(text, err).with_source(text) from None


_HINT = (
    "matrix notation uses names (a-g scalars, h-z vectors, A-Z matrices), numbers, + - * ∘ ./ / ^ .^, "
    "transposes (x' xᵀ x.T), A⁻¹, parentheses and functions such as tr(...), exp(...)"
)


def _syntax_error(text: str, err: UnexpectedInput) -> ParseError:
    """Lark's report on ``text`` said in matrix notation's terms."""
    if isinstance(err, UnexpectedCharacters):
        pos: int = err.pos_in_stream  # type: ignore[assignment]  # always set for a character
        char = text[pos]
        if char == "_":
            return ParseError(
                "'_' has no meaning in matrix notation: names have no indices",
                pos=pos,
                hint="for index notation (x_i A_ij x_j) use ix.parse, or indexdiff without --matrix; "
                "in matrix notation write x' A x",
            )
        if char == ",":
            return ParseError("unexpected ','", pos=pos, hint="the functions of matrix notation take one argument")
        if char in "\u2016\u2082":
            return ParseError("unbalanced norm bars", pos=pos, hint="write ‖x‖ or ‖A x - b‖₂, or norm2(...)")
        return ParseError(f"unexpected character {char!r}", pos=pos, hint=_HINT)
    tok = err.token if isinstance(err, UnexpectedToken) else None
    at_end = tok is None or tok.type == "$END"
    unbalanced = unbalanced_error(text, at_end)
    if unbalanced is not None:
        return unbalanced
    if at_end:
        if text.count("\u2016") % 2:
            return ParseError("unbalanced norm bars: '‖' is never closed", pos=text.rindex("\u2016"), hint="add '‖'")
        stripped = text.rstrip()
        return ParseError(
            "the input ends too early (a trailing operator?)",
            pos=max(0, len(stripped) - 1),
            hint="complete the expression after the last operator, or remove the operator",
        )
    assert tok is not None
    before = text[: tok.start_pos]
    if tok.type == "_NL":  # a line break where the expression goes on: it is incomplete
        return ParseError(
            "the line ends too early (a trailing operator?)",
            pos=max(0, len(before.rstrip()) - 1),
            hint="complete the expression after the last operator, or remove the operator",
        )
    if before.strip() and "\n" in before[len(before.rstrip()) :]:
        return ParseError(
            "one expression per input: a second line",
            pos=tok.start_pos,
            end=tok.end_pos,
            hint="matrix notation reads one expression; join the lines, or write a program in index notation",
        )
    hint = "check the operators around it"
    if tok.type == "MINUS":
        hint = "a negated operand of a product needs parentheses: A (-x), x ∘ (-y)"
    elif tok.type == "POWOP":
        hint = "a power of a power needs parentheses: (c^2)^3"
    elif tok.type == "POSTFIX":
        hint = "a transpose or inverse mark follows a name, ')' or a function call: (A B)ᵀ"
    elif tok.type == "RPAR":
        hint = "something is missing before ')'"
    elif str(tok) == "=":
        hint = "a statement names its result with one name: L = x' A x (matrix notation has no equations)"
    return ParseError(f"unexpected {str(tok)!r}", pos=tok.start_pos, end=tok.end_pos, hint=hint)


def parse_matrix(text: str, shapes: Mapping[str, Any] | None = None) -> Expr:
    """Parse matrix notation into index notation: an Expr that works as one from ``ix.parse`` does.

    Names are scalars (a-g), column vectors (h-z) or matrices (A-Z) by their first letter, as on
    matrixcalculus.org (lower-case Greek: scalars, upper-case Greek: matrices); ``shapes`` overrides them:
    ``{"b": "vector"}``, ``{"x": "matrix"}``, or a number of indices ``{"x": 2}``. A result with one free index is
    a column vector, with two a matrix (rows first).

    >>> import indexdiff as ix
    >>> print(ix.parse_matrix("x' A x"))
    x_i A_ij x_j
    >>> print(ix.parse_matrix("norm2(A x - b)^2", shapes={"b": "vector"}))
    sum_i((A_ij x_j - b_i)^2)
    """
    from .matrixemit import translate
    from .matrixshapes import declared

    text = _source(text)
    table = declared(shapes)
    tree = parse_matrix_syntax(text)
    try:
        return translate(tree, table, text)
    except IndexDiffError as err:
        raise err.with_source(text) from None
