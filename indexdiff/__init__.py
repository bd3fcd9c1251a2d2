"""indexdiff: differentiate tensor expressions written in index notation.

>>> import indexdiff as ix
>>> print(ix.diff(ix.parse("x_i A_ij x_j"), "x"))
A_ik x_i + A_kj x_j
"""

__version__ = "0.1.0"  # the one place: pyproject (hatch), the metadata and `indexdiff --version` read it

from .check import CheckReport, check
from .codegen import codegen
from .compile import Compiled, compile
from .cost import Cost, cost
from .custom import CustomFunction, function
from .diff import diff
from .errors import ArgumentError, DiffError, IndexDiffError, IndexRuleError, ParseError, ShapeError
from .evaluate import evaluate
from .expr import Expr, Program
from .parser import parse
from .reverse import grad

__all__ = [
    "parse",
    "diff",
    "grad",
    "evaluate",
    "compile",
    "cost",
    "codegen",
    "check",
    "function",
    "Expr",
    "Program",
    "Compiled",
    "Cost",
    "CheckReport",
    "CustomFunction",
    "IndexDiffError",
    "ParseError",
    "IndexRuleError",
    "DiffError",
    "ShapeError",
    "ArgumentError",
]
