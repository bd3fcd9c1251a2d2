"""IndexDiffError and its subclasses: every message quotes the input and points at the place with a caret.

Also the checks of the Python API's arguments (``expect_*``), so that a wrong type is an ``ArgumentError``
that names the fix instead of an AttributeError deep inside.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

__all__ = [
    "IndexDiffError",
    "ParseError",
    "IndexRuleError",
    "DiffError",
    "ShapeError",
    "ArgumentError",
    "expect_expr",
    "expect_specs",
    "expect_dims",
    "expect_seed",
]


class IndexDiffError(ValueError):
    """Base of every error indexdiff raises on bad input.

    ``reason`` says what is wrong, ``text`` is the input it concerns, ``pos``/``end`` the character range
    the caret underlines, and ``hint`` how to fix it. ``str(err)`` renders all of them.
    """

    def __init__(
        self,
        reason: str,
        text: str | None = None,
        pos: int | None = None,
        end: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.text = text
        self.pos = pos
        self.end = end
        self.hint = hint
        super().__init__(self._render())

    def with_source(self, text: str) -> IndexDiffError:
        """The same error quoting ``text`` (used when the raiser did not know the input)."""
        if self.text is None:
            self.text = text
            self.args = (self._render(),)
        return self

    def _render(self) -> str:
        lines = [self.reason]
        if self.text is not None:
            lines.extend(_quote(self.text, self.pos, self.end))
        if self.hint:
            long = len(self.hint) > 3 * _WIDTH  # a suggestion that quotes a long input is cut
            lines.append(f"hint: {self.hint[: 3 * _WIDTH]}" + ("..." if long else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.args[0]


_WIDTH = 100  # the most characters of a line a message quotes


def _quote(text: str, pos: int | None, end: int | None) -> list[str]:
    """The line of ``text`` holding ``pos``, and a caret line under ``pos..end``."""
    if pos is None:
        first = text.splitlines()[0] if text.strip() else text
        return [f"  {first[:_WIDTH]}" + ("..." if len(first) > _WIDTH else "")]
    pos = max(0, min(pos, len(text)))
    start = text.rfind("\n", 0, pos) + 1
    stop = text.find("\n", pos)
    stop = len(text) if stop == -1 else stop
    line = text[start:stop]
    col = pos - start
    width = max(1, min((end if end is not None else pos + 1), stop) - pos)
    if len(line) > _WIDTH:  # a long line is shown around the caret
        left = max(0, min(col - _WIDTH // 3, len(line) - _WIDTH))
        width = min(width, _WIDTH - (col - left))
        shown = ("..." if left else "") + line[left : left + _WIDTH] + ("..." if left + _WIDTH < len(line) else "")
        line, col = shown, col - left + (3 if left else 0)
    prefix = "  "
    if "\n" in text.strip("\n"):
        lineno = text.count("\n", 0, pos) + 1
        prefix = f"  line {lineno}: "
    caret = " " * (len(prefix) + _width(line[:col])) + "^" * width
    return [prefix + line, caret]


def _width(s: str) -> int:
    return len(s.expandtabs(1))


class ParseError(IndexDiffError):
    """The text is not well-formed index notation."""


class IndexRuleError(IndexDiffError):
    """The text parses but breaks a summation rule (mismatched free indices, an index three times, ...)."""


class DiffError(IndexDiffError):
    """A derivative was asked for that does not make sense (unknown variable, wrong number of indices)."""


class ShapeError(IndexDiffError):
    """Arrays given for evaluation do not fit the expression (missing, wrong rank, inconsistent sizes)."""


class ArgumentError(IndexDiffError, TypeError):
    """An argument of the Python API has the wrong type or value (a string where an expression goes, dims as a
    list, a negative seed). It is also a TypeError, as numpy and jax raise for wrong argument types."""


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expect_expr(value: Any, function: str) -> None:
    """Raise an ArgumentError unless ``value`` is an Expr or a Program (what ``ix.parse`` returns)."""
    from .expr import Expr, Program

    if isinstance(value, (Expr, Program)):
        return
    if isinstance(value, str):
        raise ArgumentError(
            f"ix.{function} takes an expression from ix.parse, not a string",
            value,
            hint=f"parse it first: ix.{function}(ix.parse({_short(value)}), ...)",
        )
    raise ArgumentError(
        f"ix.{function} takes an expression from ix.parse, got {type(value).__name__} {_short(value)}",
        hint=f"pass ix.parse('...'): ix.{function}(ix.parse('x_i A_ij x_j'), ...)",
    )


def expect_specs(specs: Any, function: str) -> None:
    """Raise an ArgumentError unless every variable to differentiate by is a string (``"x"``, ``"x_k"``)."""
    for spec in specs:
        if isinstance(spec, str):
            continue
        if function == "grad":
            hint = "list the variables as strings: ix.grad(p, wrt=['W', 'b'])"
        elif isinstance(spec, (list, tuple)) and all(isinstance(s, str) for s in spec):
            hint = f"pass one argument per differentiation: ix.{function}(e, {', '.join(map(repr, spec))})"
        else:
            hint = f"name the variable as a string: ix.{function}(e, 'x') or ix.{function}(e, 'x_k')"
        raise ArgumentError(f"a variable to differentiate by must be a string, got {_short(spec)}", hint=hint)


def expect_dims(dims: Any, minimum: int = 1) -> dict[str, int]:
    """``dims`` (None or a mapping from index names to integer sizes >= ``minimum``) as a dict; else an
    IndexDiffError. Evaluation allows empty axes (``minimum=0``); a check or a cost needs entries."""
    if dims is None:
        return {}
    if not isinstance(dims, Mapping):
        raise ArgumentError(
            f"dims must map index names to sizes, got {type(dims).__name__} {_short(dims)}",
            hint="pass a dict such as dims={'i': 3, 'j': 4}",
        )
    out: dict[str, int] = {}
    for name, n in dims.items():
        if not isinstance(name, str):
            raise ArgumentError(
                f"dims must map index names to sizes, got the key {_short(name)}",
                hint="name each index as a string: dims={'i': 3}",
            )
        if isinstance(n, bool) or not _is_int(n) or n < minimum:
            raise ShapeError(
                f"dims gives index '{name}' the size {_short(n)}",
                hint=f"sizes are integers >= {minimum}, e.g. dims={{'{name}': 3}}",
            )
        out[name] = int(n)
    return out


def expect_seed(seed: Any) -> int:
    """``seed`` as an int (a non-negative integer, as numpy's random generators need); else an ArgumentError."""
    if isinstance(seed, bool) or not _is_int(seed) or seed < 0:
        raise ArgumentError(f"the seed must be a non-negative integer, got {_short(seed)}", hint="e.g. seed=0")
    return int(seed)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral)
