"""Array libraries: numpy by default; torch, jax and cupy arrays keep their own library for element-wise work."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import IndexDiffError
from .functions import FUNCTIONS, Callables, logsumexp

__all__ = ["Backend", "backend_of"]

_STANDARD = ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "sign")


class Backend:
    """What compiled code needs from an array library: its element-wise functions, ones, zeros and sums."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.xp: Any = np if name == "numpy" else importlib.import_module(_MODULES[name])
        self.functions: dict[str, Callable[[Any], Any]] = Callables(name, {})
        if name == "numpy":
            self.functions.update({f: spec.numpy for f, spec in FUNCTIONS.items()})
        else:
            self.functions.update({f: getattr(self.xp, f) for f in _STANDARD})
            self.functions.update(_SPECIAL[name](self.xp))

    def logsumexp(self, value: Any, axes: tuple[int, ...]) -> Any:
        """log(Σ exp) over ``axes``, the largest term factored out (no overflow)."""
        if not axes:
            return value
        if self.name == "numpy":
            return logsumexp(value, axes)
        if self.name == "torch":
            return self.xp.logsumexp(value, dim=axes)
        if self.name == "jax":
            import jax.scipy.special

            return jax.scipy.special.logsumexp(value, axis=axes)
        m = self.xp.max(value, axis=axes, keepdims=True)
        return self.xp.log(self.xp.sum(self.xp.exp(value - m), axis=axes)) + self.xp.squeeze(m, axis=axes)

    def operator(self, name: str, value: Any, axes: tuple[int, ...]) -> Any:
        """The operator ``name`` (operators.py) over ``axes`` of ``value``."""
        if self.name == "numpy":
            from .operators import apply

            return apply(name, value, axes)
        raise IndexDiffError(
            f"the operator {name} is not available for {self.name} arrays yet",
            hint="pass numpy arrays (np.asarray(...)) for expressions with operators",
        )

    def scalar(self, value: float, like: Any) -> Any:
        """A 0-d array of ``like``'s library, dtype (and device)."""
        if self.name == "torch":
            return self.xp.tensor(value, dtype=like.dtype, device=like.device)
        return self.xp.asarray(value, dtype=like.dtype)

    def ones(self, n: int, like: Any) -> Any:
        if self.name == "torch":
            return self.xp.ones(n, dtype=like.dtype, device=like.device)
        return self.xp.ones(n, dtype=like.dtype)

    def sum(self, value: Any, axes: tuple[int, ...]) -> Any:
        if self.name == "torch":
            return value.sum(dim=axes) if axes else value
        return value.sum(axis=axes)

    def transpose(self, value: Any, order: tuple[int, ...]) -> Any:
        return value.permute(*order) if self.name == "torch" else value.transpose(order)

    def eye(self, n: int, like: Any) -> Any:
        if self.name == "torch":
            return self.xp.eye(n, dtype=like.dtype, device=like.device)
        return self.xp.eye(n, dtype=like.dtype)


_MODULES = {"torch": "torch", "jax": "jax.numpy", "cupy": "cupy"}


def _torch(xp: Any) -> dict[str, Callable[[Any], Any]]:
    return {
        "sigmoid": xp.sigmoid,
        "relu": xp.relu,
        "softplus": xp.nn.functional.softplus,
        "step": lambda a: (a > 0).to(a.dtype),
    }


def _jax(xp: Any) -> dict[str, Callable[[Any], Any]]:
    import jax

    return {
        "sigmoid": jax.nn.sigmoid,
        "relu": jax.nn.relu,
        "softplus": jax.nn.softplus,
        "step": lambda a: (a > 0).astype(a.dtype),
    }


def _cupy(xp: Any) -> dict[str, Callable[[Any], Any]]:
    return {
        "sigmoid": lambda a: xp.exp(-xp.logaddexp(0, -a)),
        "relu": lambda a: xp.maximum(a, 0),
        "softplus": lambda a: xp.logaddexp(0, a),
        "step": lambda a: (a > 0).astype(a.dtype),
    }


_SPECIAL = {"torch": _torch, "jax": _jax, "cupy": _cupy}


def backend_of(array: Any) -> str:
    """The library an array belongs to: numpy, torch, jax or cupy (anything else is converted with numpy)."""
    root = type(array).__module__.split(".")[0]
    if root in ("jax", "jaxlib"):
        return "jax"
    return root if root in _MODULES else "numpy"
