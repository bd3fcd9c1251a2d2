"""The hook through which diff.py, simplify.py, liketerms.py and reverse.py report the rules they apply.

``TRACE`` holds a tracer only while ``indexdiff.steps`` derives (``derivation.py``); otherwise it is None and a
rule costs one context-variable lookup on the branch where it rewrites. A tracer has ``pending(node, name, new)``
(or None), which stands in for a derivative not yet taken, ``rule(name, before, after)`` for a rewrite of a
sub-expression, ``pass_done(before, after)`` after each pass of the simplifier over a whole expression, and
``adjoint(name, chain, result)`` for each adjoint statement of reverse mode.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

__all__ = ["TRACE"]

TRACE: ContextVar[Any] = ContextVar("indexdiff_trace", default=None)
