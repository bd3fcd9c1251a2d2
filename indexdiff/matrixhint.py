"""Matrix notation met where index notation was expected: errors on index input that looks like matrix notation
(``x^T A x``, ``x' A x``, ``x @ A @ x``, ``np.dot(x, A)``) suggest its translation, and the command line notes
when an input of bare scalar names (``A*x``) reads as a matrix expression. ``--matrix`` prints the translation.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Any

from .errors import IndexDiffError
from .expr import Expr, Program

__all__ = ["with_matrix_hint", "matrix_translation", "announce", "read_matrix"]

_PATTERNS = {
    "markers": r"['\u1d40\u22a4@\u2218\u2299\u207b\u2016]|\^T\b|\.T\b|\.\*|\./|\.\^|\b(?:np|numpy)\.",
    "comment": r"#[^\n]*",
    "transpose": r"\^T(?![A-Za-z0-9_])",
    "numpy_call": r"\b(?:np|numpy)\.(?:dot|matmul)\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)",
    "vector_before_at": r"(?<![A-Za-z0-9])([h-z][A-Za-z0-9]*)\s*@",
}


@functools.cache
def _pattern(name: str) -> re.Pattern[str]:
    """The regular expressions, compiled when first needed (not at the command line's start)."""
    return re.compile(_PATTERNS[name])


def matrix_translation(text: str) -> Expr | None:
    """The index notation of ``text`` read as matrix notation (numpy's ``@`` and ``np.dot`` too), or None."""
    from .matrixparse import parse_matrix

    spelled = _pattern("numpy_call").sub(lambda m: " @ ".join(a if a.isalnum() else f"({a})" for a in m.groups()), text)
    candidates = [spelled]
    if "@" in spelled:  # numpy: a vector left of @ is a row
        candidates.append(_pattern("vector_before_at").sub("\\1\u1d40 ", spelled, count=1))
    for candidate in candidates:
        try:
            return parse_matrix(candidate)
        except Exception:  # noqa: BLE001 - only a hint: whatever fails here, the error it adds to stands
            continue
    return None


def with_matrix_hint(err: IndexDiffError, text: str) -> IndexDiffError:
    """``err`` (on index input ``text``) with the index notation of ``text`` read as matrix notation in its hint,
    when the text looks like matrix notation and reads as such."""
    if "_" in text and _pattern("transpose").search(text):
        err.hint = "index notation has no transposes: the indices say which axis is which (x_i A_ij x_j is xᵀ A x, "
        err.hint += "A_ji is Aᵀ); drop the ^T"
        err.args = (err._render(),)
        return err
    if "_" in text or len(text) > 1000 or not _pattern("markers").search(text):
        return err
    found = matrix_translation(text)
    if found is None:
        return err
    err.hint = (
        f"this looks like matrix notation; in index notation it is {found} "
        f"(ix.parse_matrix and indexdiff --matrix read matrix notation)"
    )
    err.args = (err._render(),)
    return err


def _scalar_note(text: str, parsed: Expr | Program) -> str | None:
    """A note when every name of ``parsed`` is a bare scalar but the text reads as a matrix expression
    (an upper-case name and a vector's name: ``A*x``)."""
    if not isinstance(parsed, Expr) or "_" in text or any(parsed.variables.values()):
        return None
    names = parsed.variables
    if not any(n[0].isupper() for n in names) or not any("h" <= n[0] <= "z" for n in names):
        return None
    found = matrix_translation(text)
    if found is None or not any(found.variables.values()):
        return None
    return (
        f"note: every name in {text.strip()!r} is a scalar (no indices); read as matrix notation it is {found} "
        "(indexdiff --matrix)"
    )


def read_matrix(text: str, shapes: str | None) -> Expr:
    """The command line's ``--matrix`` input, with ``--shapes b=vector,W1=matrix``."""
    from .matrixparse import parse_matrix
    from .matrixshapes import declared

    table: dict[str, str] = {}
    pos = 0
    for part in (shapes or "").split(","):
        name, eq, kind = (p.strip() for p in part.partition("="))
        at = pos + len(part) - len(part.lstrip())
        pos += len(part) + 1
        if not part.strip():
            continue
        try:
            if not eq or kind not in ("scalar", "vector", "matrix"):
                raise IndexDiffError(f"bad shape {part.strip()!r} in --shapes")
            declared({name: kind})
        except IndexDiffError as err:
            raise IndexDiffError(
                err.reason, shapes, at, at + len(part.strip()), hint="write --shapes b=vector,W1=matrix,lam=scalar"
            ) from None
        table[name] = kind
    return parse_matrix(text, shapes=table)


def announce(args: Any, text: str, parsed: Expr | Program) -> None:
    """For the command line: with ``--matrix``, the translation ("x' A x  =  x_i A_ij x_j"), on stdout before the
    results (on stderr when the output is code or JSON); without it, the note on bare scalar names, on stderr."""
    if args.shapes is not None and not args.matrix:
        raise IndexDiffError("--shapes has no effect without --matrix", args.shapes, hint="add --matrix")
    if args.matrix:
        out = sys.stdout if args.format in ("index", "einsum", "matrix") else sys.stderr
        shown = " ".join(_pattern("comment").sub("", text).split())
        print(f"{shown}  =  {parsed}", file=out)
        return
    note = _scalar_note(text, parsed)
    if note is not None:
        print(note, file=sys.stderr)
