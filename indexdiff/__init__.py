"""indexdiff: differentiate tensor expressions written in index notation.

>>> import indexdiff as ix
>>> print(ix.diff(ix.parse("x_i A_ij x_j"), "x"))
A_ik x_i + A_kj x_j

Parsing, differentiating and printing do not import numpy; the names that compute (``evaluate``, ``compile``,
``check``, ``cost``, ``codegen``, ``function``) import their modules, and numpy, when first used.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"  # the one place: pyproject (hatch), the metadata and `indexdiff --version` read it

from .diff import diff
from .errors import ArgumentError, DiffError, IndexDiffError, IndexRuleError, ParseError, ShapeError
from .expr import Expr, Program
from .parser import parse
from .reverse import grad

if TYPE_CHECKING:
    from .check import CheckReport, check
    from .codegen import codegen
    from .compile import Compiled, compile
    from .cost import Cost, cost
    from .custom import CustomFunction, function
    from .derivation import Derivation, Step, steps
    from .evaluate import evaluate
    from .matrixparse import parse_matrix
    from .taylor import taylor

#: Names loaded on first use (PEP 562), by module: those that import numpy, and those `import indexdiff` and the
#: command line's symbolic path do not need.
_LAZY = {
    "steps": "derivation",  # also keeps the name from being rebound to the module indexdiff.steps (plans)
    "Derivation": "derivation",
    "Step": "derivation",
    "check": "check",
    "CheckReport": "check",
    "codegen": "codegen",
    "compile": "compile",
    "Compiled": "compile",
    "cost": "cost",
    "Cost": "cost",
    "function": "custom",
    "CustomFunction": "custom",
    "evaluate": "evaluate",
    "parse_matrix": "matrixparse",
    "taylor": "taylor",
}

__all__ = [
    "parse",
    "parse_matrix",
    "diff",
    "grad",
    "steps",
    "taylor",
    "evaluate",
    "compile",
    "cost",
    "codegen",
    "check",
    "function",
    "Expr",
    "Program",
    "Derivation",
    "Step",
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


class _Package(types.ModuleType):
    """The package: importing a submodule of a lazy name (``indexdiff.compile``) does not rebind the name to the
    module, as the import system does for a package's attributes, so ``ix.compile`` stays the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'indexdiff' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:  # the public names (tab completion), not this module's helpers
    return sorted({*__all__, "__version__"})
