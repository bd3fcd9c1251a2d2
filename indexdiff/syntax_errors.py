"""Syntax errors explained: what Lark reports as an unexpected token or character, said in the notation's terms
with a caret and a hint (an unbalanced parenthesis, a trailing operator, an indexed name before '(' ...)."""

from __future__ import annotations

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import ParseError
from .operators import INDEX_OPERATORS

__all__ = ["syntax_error"]


def unbalanced_error(text: str, at_end: bool) -> ParseError | None:
    """The error for an unmatched parenthesis, when the parser stopped at the end of the text or at the ')' (for
    the index grammar and the matrix grammar alike)."""
    unbalanced = _balance(text)
    if unbalanced is None or not (at_end or unbalanced[0] == ")"):
        return None
    kind, pos = unbalanced
    if kind == "(":
        return ParseError("unbalanced parentheses: '(' is never closed", pos=pos, hint="add the missing ')'")
    return ParseError(
        "unbalanced parentheses: ')' has no matching '('", pos=pos, hint="remove it or add the missing '('"
    )


def _balance(text: str) -> tuple[str, int] | None:
    """The first unmatched parenthesis: ('(' or ')', position), ignoring comments."""
    stack: list[int] = []
    in_comment = False
    for k, c in enumerate(text):
        if in_comment:
            in_comment = c != "\n"
        elif c == "#":
            in_comment = True
        elif c == "(":
            stack.append(k)
        elif c == ")":
            if not stack:
                return ")", k
            stack.pop()
    return ("(", stack[0]) if stack else None


_TOKEN_NAMES = {
    "$END": "end of input",
    "RPAR": "')'",
    "LPAR": "'('",
    "EQUAL": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "CIRCUMFLEX": "'^'",
    "NUMBER": "a number",
    "TENSOR": "a tensor",
    "CALL": "a function",
    "SUM": "sum_i(",
    "INDEXED_CALL": "an indexed name",
    "_SEP": "a line break or ';'",
}


def _indexed_call_before(text: str, end: int) -> Token | None:
    """The first indexed name followed by '(' before ``end`` that is not an operator: the likelier cause of a
    syntax error after it (``A_ij(x_j`` is better explained by the indexed name than by the missing ')')."""
    try:
        from .parser import _parser

        for tok in _parser().lex(text):
            if tok.start_pos >= end:
                break
            if tok.type == "INDEXED_CALL" and str(tok).partition("_")[0] not in INDEX_OPERATORS:
                return tok
    except UnexpectedInput:
        pass
    return None


def syntax_error(text: str, err: UnexpectedInput) -> ParseError:
    """The ParseError that explains ``err``, Lark's report on ``text``."""
    tok = err.token if isinstance(err, UnexpectedToken) else None
    at = err.pos_in_stream if isinstance(err, UnexpectedCharacters) else len(text)
    call = _indexed_call_before(text, tok.start_pos if tok is not None and tok.type != "$END" else at)
    if call is not None:
        from .parser import _indexed_call_error

        return _indexed_call_error(call)
    if isinstance(err, UnexpectedCharacters):
        pos, char = err.pos_in_stream, text[err.pos_in_stream]
        if char == "_":
            return ParseError(
                "'_' must be followed by indices",
                pos=pos,
                hint="write x_i, A_ij or A_{row,col}; a name itself has no underscore",
            )
        if char in "{}":
            return ParseError(f"stray {char!r}", pos=pos, hint="braces hold indices right after '_': W1_{ij}")
        if char == "∑":
            return ParseError("'∑' is not part of the notation", pos=pos, hint="a sum is written sum_i(...)")
        if char == "=":
            return ParseError(
                "unexpected '='", pos=pos, hint="a statement has one '=' after its left-hand side, e.g. z_i = W_ij x_j"
            )
        return ParseError(
            f"unexpected character {char!r}",
            pos=pos,
            hint="index notation uses names with indices (x_i), numbers, + - * / ^, "
            "parentheses and functions such as exp(...)",
        )
    at_end = isinstance(err, UnexpectedEOF) or tok is None or tok.type == "$END"
    unbalanced = unbalanced_error(text, at_end)
    if unbalanced is not None:
        return unbalanced
    if at_end:
        stripped = text.rstrip()
        pos = max(0, len(stripped) - 1)
        return ParseError(
            "the input ends too early (a trailing operator?)",
            pos=pos,
            hint="complete the expression after the last operator, or remove the operator",
        )
    assert tok is not None
    what = _TOKEN_NAMES.get(tok.type, repr(str(tok)))
    shown = repr(str(tok)) if tok.type not in ("_SEP",) else what
    hint = "check the operators around it"
    if tok.type == "EQUAL":
        hint = "a statement has one '=' after its left-hand side, e.g. z_i = W_ij x_j"
    elif tok.type == "_SEP":
        hint = "the line before it is incomplete"
    elif tok.type == "RPAR":
        hint = "something is missing before ')'"
    elif tok.type == "CIRCUMFLEX":
        hint = "an exponent is a number; a power of a power needs parentheses: (x^2)^3"
    return ParseError(f"unexpected {shown}", pos=tok.start_pos, end=tok.end_pos, hint=hint)
