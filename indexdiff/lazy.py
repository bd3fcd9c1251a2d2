"""numpy where it is first used: parsing, differentiating and printing never import it, so the command line's
symbolic path starts without numpy's import time (benchmarks/coldstart.py; tests/test_imports.py guards it)."""

from __future__ import annotations

from typing import Any

__all__ = ["numpy_on_demand"]


def numpy_on_demand(namespace: dict[str, Any], name: str = "np") -> Any:
    """A stand-in for ``import numpy as np`` in the module whose globals are ``namespace``: the first attribute
    looked up through it imports numpy and puts the module itself in its place, so later uses cost nothing."""

    class OnDemand:
        def __getattr__(self, attr: str) -> Any:
            import numpy

            namespace[name] = numpy
            return getattr(numpy, attr)

    return OnDemand()
