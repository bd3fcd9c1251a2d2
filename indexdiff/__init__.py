"""indexdiff: differentiate tensor expressions written in index notation."""

from .errors import IndexDiffError
from .expr import Expr, Program
from .parser import parse

__all__ = ["parse", "Expr", "Program", "IndexDiffError"]
