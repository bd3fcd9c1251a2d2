"""Every route an expression's value can take: ix.evaluate, ix.compile, the einsum code run by eval, and the
generated Python module. Tests call ``routes`` and compare each value with an independent reference."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import numpy as np

import indexdiff as ix
from indexdiff.codegen import python_names
from indexdiff.einsumcode import einsum_text, size_parameter


def routes(e: ix.Expr, arrays: Mapping[str, Any], dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """``e``'s value by each route (dims: lengths no array gives; the generated code takes them as n_<index>)."""
    dims = dict(dims or {})
    sizes = {size_parameter(i): n for i, n in dims.items()}
    names = python_names(e.variables)
    renamed = {names[n]: np.asarray(a, dtype=float) for n, a in arrays.items() if n in names}
    out = {
        "evaluate": np.asarray(ix.evaluate(e, arrays, dims)),
        "compile": np.asarray(ix.compile(e, dims=dims)(**{n: arrays[n] for n in e.variables})),
    }
    code = einsum_text(e, names)
    out["einsum"] = np.asarray(eval(code, {"np": np}, {**renamed, **sizes}))  # noqa: S307 - generated code
    module = types.ModuleType("generated")
    exec(ix.codegen(e, format="python"), module.__dict__)  # noqa: S102 - generated code
    out["module"] = np.asarray(module.evaluate(**renamed, **{p: sizes[p] for p in module.SIZES}))
    return out


def assert_routes(
    e: ix.Expr,
    arrays: Mapping[str, Any],
    want: Any,
    dims: Mapping[str, int] | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> None:
    """Every route gives ``want`` (shape and values, nan where want has nan)."""
    want = np.asarray(want, dtype=float)
    for route, got in routes(e, arrays, dims).items():
        assert got.shape == want.shape, (route, got.shape, want.shape)
        assert np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True), (route, got, want)
