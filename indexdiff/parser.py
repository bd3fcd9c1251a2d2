"""Text -> Expr or Program: Lark (LALR) builds positioned syntax nodes, indices.py gives them meaning."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

from lark import Lark, Token, Transformer
from lark.common import LexerConf
from lark.exceptions import UnexpectedCharacters, UnexpectedInput
from lark.lexer import Lexer

from .errors import IndexDiffError, ParseError
from .expr import Expr, Program
from .functions import FUNCTIONS, RESERVED
from .larkcache import cached_lark, grammar_text
from .operators import INDEX_OPERATORS, MATRIX_FUNCTIONS, OPERATORS
from .syntax import (
    NUMBER_RULE,
    SAdd,
    SCall,
    SDiv,
    SGroup,
    SMul,
    SNeg,
    SNumber,
    SOp,
    SPow,
    SStatement,
    SSum,
    STensor,
    Syn,
    constant,
    number_value,
    representable,
)
from .syntax_errors import syntax_error

__all__ = ["parse", "parse_syntax", "split_tensor", "MAX_DEPTH"]

#: Deepest nesting accepted (parentheses, functions, powers, unary minus); deeper input is an error.
MAX_DEPTH = 150

#: Letters of names and indices: ASCII and Greek (without the unassigned U+03A2), as in the grammar.
_LETTERS = "A-Za-z\u0391-\u03a1\u03a3-\u03a9\u03b1-\u03c9"
_INDEX = re.compile(f"[{_LETTERS}][0-9{_LETTERS}]*$")
_LETTER = re.compile(f"[{_LETTERS}]$")
_LETTERS_ONLY = re.compile(f"[{_LETTERS}]+$")


def _grammar_text() -> str:
    """The grammar: inside the installed package, or beside it in a source checkout."""
    return grammar_text("indexdiff.lark")


class _Lexer(Lexer):
    """The grammar's terminals as one regular expression, matched in Lark's order (priority, then longest
    pattern): the same tokens as Lark's basic lexer, with less work per token, so that parsing stays fast."""

    def __init__(self, conf: LexerConf) -> None:
        order = sorted(conf.terminals, key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
        self.pattern = re.compile("|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in order))
        self.ignore = frozenset(conf.ignore)

    def lex(self, text: str) -> Iterator[Token]:  # type: ignore[override]
        pos, match = 0, self.pattern.match
        while pos < len(text):
            found = match(text, pos)
            if found is None or found.end() == pos:
                raise UnexpectedCharacters(text, pos, 1, pos + 1)
            kind, end = found.lastgroup, found.end()
            if kind not in self.ignore:
                yield Token(kind, found.group(), pos, end_pos=end)
            pos = end


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return cached_lark(_grammar_text(), lexer=_Lexer, transformer=_Build(), maybe_placeholders=False)


def split_tensor(text: str, start: int = 0) -> tuple[str, tuple[str, ...], tuple[int, ...]]:
    """``"A_{row,col}"`` -> ``("A", ("row", "col"), positions)``; raises ParseError on malformed indices."""
    name, sep, rest = text.partition("_")
    if not sep:
        return name, (), ()
    base = start + len(name) + 1
    if not rest:
        raise ParseError("'_' must be followed by indices", pos=base - 1, hint=f"write {name}_i, {name}_ij or {name}")
    if rest.startswith("{"):
        if not rest.endswith("}") or len(rest) < 2:
            raise ParseError(
                "unclosed brace in indices",
                pos=base,
                end=start + len(text),
                hint=f"close it: {name}_{rest.rstrip('}')}}}",
            )
        inner = rest[1:-1]
        if "," in inner:
            parts, pos, offset = [], [], base + 1
            pieces = inner.split(",")
            if len(pieces) > 1 and not pieces[-1].strip():
                pieces.pop()  # x_{row,}: a single multi-letter index
            for piece in pieces:
                lead = len(piece) - len(piece.lstrip())
                parts.append(piece.strip())
                pos.append(offset + lead)
                offset += len(piece) + 1
        else:
            parts = [c for c in inner if not c.isspace()]
            pos = [base + 1 + i for i, c in enumerate(inner) if not c.isspace()]
            if " " in inner.strip():
                raise ParseError(
                    "spaces between indices in braces",
                    pos=base,
                    end=start + len(text),
                    hint=f"separate multi-letter indices with commas: {name}_{{{','.join(inner.split())}}}",
                )
        if not parts or parts == [""]:
            raise ParseError(
                "empty indices", pos=base, end=start + len(text), hint=f"write {name}_{{ij}} or just {name}"
            )
        for p, at in zip(parts, pos):
            if not _INDEX.match(p):
                raise ParseError(
                    f"{p!r} is not an index name",
                    pos=at,
                    end=at + max(1, len(p)),
                    hint="an index is a letter, or a name such as row in A_{row,col}",
                )
        return name, tuple(parts), tuple(pos)
    if _LETTERS_ONLY.match(rest):
        return name, tuple(rest), tuple(range(base, base + len(rest)))
    for k, c in enumerate(rest):
        if not _LETTER.match(c):
            raise ParseError(
                f"{c!r} is not an index in {text!r}",
                pos=base + k,
                end=base + k + 1,
                hint="indices are letters (x_i, A_ij); a name with digits goes before the underscore (x1_i); "
                "index notation has no numbered components",
            )
    return name, tuple(rest), tuple(base + k for k in range(len(rest)))


def _indexed_call_error(tok: Token) -> ParseError:
    """``mean_i(`` or ``A_ij(``: an indexed name directly followed by '(' is neither a call nor (silently) a product."""
    text = str(tok)
    try:
        name, indices, _ = split_tensor(text, tok.start_pos)
    except ParseError as err:  # x_1( : the indices themselves are wrong
        return err
    if name == "Σ":
        hint = f"the sum is written sum{text[len(name) :]}(...)"
    elif name in MATRIX_FUNCTIONS:
        hint = f"{name} takes no indices: write {name}(...); the matrix's two indices are its argument's"
    elif name in FUNCTIONS:
        hint = f"functions take no indices: write {name}(...); they apply element-wise over their argument's indices"
    else:
        hint = f"for a product write {text} (...) or {text} * (...)"
    return ParseError(
        f"'{text}(' is not a function call: an indexed name cannot be followed directly by '('",
        pos=tok.start_pos,
        end=tok.end_pos + 1,
        hint=hint,
    )


def _reserved_use(name: str, start: int, end: int) -> ParseError:
    if name == "sum":
        return ParseError(
            "'sum' needs an index and a parenthesized body",
            pos=start,
            end=end,
            hint="write sum_i(...) with no space before '('",
        )
    if name in ("delta", "δ"):
        return ParseError(f"'{name}' needs indices", pos=start, end=end, hint=f"write {name}_ij")
    if name in INDEX_OPERATORS:
        return ParseError(
            f"'{name}' is an operator over an index, not a tensor",
            pos=start,
            end=end,
            hint=f"write {name}_j(...) with the index it works over and no space before '('",
        )
    if name in MATRIX_FUNCTIONS:
        return ParseError(
            f"'{name}' is a matrix function, not a tensor",
            pos=start,
            end=end,
            hint=f"write {name}(...) around a matrix, with no space before '('",
        )
    return ParseError(
        f"'{name}' is a function, not a tensor", pos=start, end=end, hint=f"write {name}(...) with no space before '('"
    )


def _span(*parts: Syn | Token) -> tuple[int, int, int]:
    starts, ends, depths = [], [], [0]
    for p in parts:
        if isinstance(p, Token):
            starts.append(p.start_pos)
            ends.append(p.end_pos)
        else:
            starts.append(p.start)
            ends.append(p.end)
            depths.append(p.depth)
    depth = max(depths) + 1
    if depth > MAX_DEPTH:
        raise ParseError(
            f"the expression is nested more than {MAX_DEPTH} levels deep",
            pos=min(starts),
            end=min(starts) + 1,
            hint="split it into statements of a program (one per line)",
        )
    return min(starts), max(ends), depth


class _Build(Transformer):
    """Lark callbacks, run while parsing (no tree is built): syntax nodes with positions."""

    def start(self, children: list[Syn]) -> list[Syn]:
        return list(children)

    def number(self, children: list[Token]) -> SNumber:
        (tok,) = children
        return SNumber(*_span(tok), value=number_value(str(tok), tok.start_pos, tok.end_pos))

    def tensor(self, children: list[Token]) -> STensor:
        (tok,) = children
        name, indices, pos = split_tensor(str(tok), tok.start_pos)
        if name in ("delta", "δ"):
            if not 1 <= len(indices) <= 2:
                raise ParseError(
                    f"{name} takes one or two indices, not {len(indices)}",
                    pos=tok.start_pos,
                    end=tok.end_pos,
                    hint=f"write {name}_ij",
                )
            return STensor(*_span(tok), name=name, indices=indices, index_pos=pos, delta=True)
        if name in RESERVED or name in OPERATORS:
            raise _reserved_use(name, tok.start_pos, tok.end_pos)
        return STensor(*_span(tok), name=name, indices=indices, index_pos=pos)

    def call(self, children: list) -> SCall | SOp:
        tok, arg = children
        name = str(tok)
        if name in MATRIX_FUNCTIONS:
            start, _, depth = _span(tok, arg)
            return SOp(start, arg.end + 1, depth, name=name, indices=(), index_pos=(), arg=arg)
        if name in INDEX_OPERATORS:
            raise ParseError(
                f"{name}(...) needs the index it works over",
                pos=tok.start_pos,
                end=tok.end_pos,
                hint=f"write {name}_j(...) for the {name} over j (several: {name}_jk(...))",
            )
        if name not in FUNCTIONS:
            if name in RESERVED:
                raise _reserved_use(name, tok.start_pos, tok.end_pos)
            close = difflib.get_close_matches(name, FUNCTIONS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            hint += (
                f"known functions: {', '.join(FUNCTIONS)}; operators: {', '.join(INDEX_OPERATORS[:5])} (with an "
                f"index: softmax_j(...)), {', '.join(MATRIX_FUNCTIONS)}; for a product write {name} (...) or "
                f"{name} * (...)"
            )
            raise ParseError(f"unknown function '{name}'", pos=tok.start_pos, end=tok.end_pos, hint=hint)
        start, _, depth = _span(tok, arg)
        return SCall(start, arg.end + 1, depth, name=name, arg=arg)

    def sum(self, children: list) -> SSum:
        tok, body = children
        _, indices, pos = split_tensor(str(tok), tok.start_pos)
        for k, i in enumerate(indices):
            if i in indices[:k]:
                raise ParseError(
                    f"sum_ repeats index {i!r}", pos=pos[k], end=pos[k] + len(i), hint="name each summed index once"
                )
        start, _, depth = _span(tok, body)
        return SSum(start, body.end + 1, depth, indices=indices, body=body)

    def group(self, children: list[Syn]) -> SGroup:
        (inner,) = children
        start, end, depth = _span(inner)
        return SGroup(start - 1, end + 1, depth, inner=inner)

    def indexed_call(self, children: list) -> SOp:
        tok, arg = children
        name, indices, pos = split_tensor(str(tok), tok.start_pos)
        if name not in INDEX_OPERATORS:
            raise _indexed_call_error(tok)
        for k, i in enumerate(indices):
            if i in indices[:k]:
                raise ParseError(
                    f"{name}_ repeats index {i!r}", pos=pos[k], end=pos[k] + len(i), hint="name each index once"
                )
        start, _, depth = _span(tok, arg)
        return SOp(start, arg.end + 1, depth, name=name, indices=indices, index_pos=pos, arg=arg)

    def product(self, children: list[Syn]) -> SMul:
        for last, right in zip(children, children[1:]):
            if isinstance(last, SNumber) and isinstance(right, SNumber) and last.end == right.start:
                raise ParseError(
                    "two numbers written together",
                    pos=last.start,
                    end=right.end,
                    hint="a number has one decimal point; put a space or * between two numbers",
                )
        return SMul(*_span(*children), factors=tuple(children))

    def div(self, children: list[Syn]) -> SDiv:
        num, den = children
        return SDiv(*_span(num, den), num=num, den=den)

    def pow(self, children: list[Syn]) -> SPow:
        base, exponent = children
        value = constant(exponent)
        if value is None:
            raise ParseError(
                "the exponent must be a number",
                pos=exponent.start,
                end=exponent.end,
                hint="write x^2, x^-1, x^0.5 or x^(1/3); for a variable exponent use exp(y log(x))",
            )
        if not representable(value):
            raise ParseError(
                "exponent out of range", pos=exponent.start, end=exponent.end, hint=NUMBER_RULE.capitalize()
            )
        return SPow(*_span(base, exponent), base=base, exponent=value)

    def neg(self, children: list[Syn]) -> SNeg:
        (arg,) = children
        start, end, depth = _span(arg)
        return SNeg(start - 1, end, depth, arg=arg)

    def pos(self, children: list[Syn]) -> Syn:
        (arg,) = children
        return arg

    def plus(self, children: list[Syn]) -> tuple[int, Syn]:
        return 1, children[0]

    def minus(self, children: list[Syn]) -> tuple[int, Syn]:
        return -1, children[0]

    def expr(self, children: list) -> SAdd:
        first, *rest = children
        terms = (first, *(t for _, t in rest))
        return SAdd(*_span(*terms), terms=terms, signs=(1, *(sign for sign, _ in rest)))

    def statement(self, children: list) -> SStatement:
        tok, body = children
        name, indices, pos = split_tensor(str(tok), tok.start_pos)
        if name in RESERVED:
            raise ParseError(
                f"'{name}' cannot be defined: it is a reserved name",
                pos=tok.start_pos,
                end=tok.start_pos + len(name),
                hint="choose another name for the result",
            )
        for k, i in enumerate(indices):
            if i in indices[:k]:
                raise ParseError(
                    f"the left-hand side repeats index {i!r}",
                    pos=pos[k],
                    end=pos[k] + len(i),
                    hint="each output index appears once on the left; use δ on the right for a diagonal",
                )
        start, end, depth = _span(tok, body)
        return SStatement(start, end, depth, name=name, indices=indices, index_pos=pos, body=body)


def _source(text: str) -> str:
    """The text to parse: a leading UTF-8 byte order mark reads as a space (positions stay those of ``text``)."""
    if not isinstance(text, str):
        raise ParseError(f"expected a string of index notation, got {type(text).__name__}")
    return " " + text[1:] if text.startswith("\ufeff") else text


def parse_syntax(text: str) -> list[Syn]:
    """The syntax trees of each line of ``text`` (statements or expressions)."""
    from .matrixhint import with_matrix_hint

    text = _source(text)
    try:
        return _parser().parse(text)
    except IndexDiffError as err:
        raise with_matrix_hint(err.with_source(text), text) from None
    except UnexpectedInput as err:
        raise with_matrix_hint(syntax_error(text, err).with_source(text), text) from None


def parse(text: str, symmetric: str | Iterable[str] | None = None) -> Expr | Program:
    """Parse index notation: one expression or statement gives an Expr, several statements a Program.

    ``symmetric`` declares two-index tensors symmetric (``{"S"}`` or ``"S,T"``): the Expr carries the
    declaration (``Expr.symmetric``) into its derivatives, equality and evaluation (see ``symmetric.py``).

    >>> import indexdiff as ix
    >>> e = ix.parse("W_ij x_j + b_i")
    >>> e.free
    ('i',)
    >>> print(ix.parse("L = sum_i((A_ij x_j - b_i)^2)"))
    L = sum_i((A_ij x_j - b_i)^2)
    >>> ix.parse("S_ij x_j", symmetric={"S"}) == ix.parse("S_ji x_j", symmetric={"S"})
    True
    """
    from .indices import build

    text = _source(text)
    if not re.sub(r"#[^\n]*", "", text).replace(";", "").strip():
        raise ParseError("empty input", text=text, pos=0, hint="write an expression such as x_i A_ij x_j")
    built = build(text, parse_syntax(text))
    if symmetric is None:
        return built
    from .symmetric import declare

    return declare(built, symmetric, text)
