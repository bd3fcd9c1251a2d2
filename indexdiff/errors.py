"""IndexDiffError and its subclasses: every message quotes the input and points at the place with a caret."""

from __future__ import annotations

__all__ = ["IndexDiffError", "ParseError", "IndexRuleError", "DiffError", "ShapeError"]


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
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.args[0]


def _quote(text: str, pos: int | None, end: int | None) -> list[str]:
    """The line of ``text`` holding ``pos``, and a caret line under ``pos..end``."""
    if pos is None:
        first = text.splitlines()[0] if text.strip() else text
        return [f"  {first}"]
    pos = max(0, min(pos, len(text)))
    start = text.rfind("\n", 0, pos) + 1
    stop = text.find("\n", pos)
    stop = len(text) if stop == -1 else stop
    line = text[start:stop]
    col = pos - start
    width = max(1, min((end if end is not None else pos + 1), stop) - pos)
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
