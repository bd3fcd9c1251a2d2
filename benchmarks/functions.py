"""Every element-wise function, and log-sum-exp and softmax over an axis, against the naive NumPy formula a
competent person writes (``1 / (1 + np.exp(-a))``, ``np.log1p(np.exp(a))``, ``np.log(np.sum(np.exp(a), axis=1))``,
``e / e.sum(axis=1, keepdims=True)``), float32 and float64, in one run; scipy.special and jax.nn (jax.jit) where
installed.

Columns (each contender's fastest of at least 15 interleaved rounds, relative to the naive formula's):
  table     indexdiff's numpy implementation called directly (``indexdiff.functions.FUNCTIONS[name].numpy``)
  compiled  ``ix.compile(ix.parse("f(a_i)"))``: the same plus the compiled program's per-call work
  d: naive  the naive derivative (``s = 1 / (1 + np.exp(-a)); s * (1 - s)``), in ms
  d: comp.  ``ix.compile`` of indexdiff's derivative, ``ix.diff(ix.parse("sum_i(f(a_i))"), "a")`` = f'(a_k)
The data keep the naive formulas finite (normal with standard deviation 4; log and sqrt on [0.1, 10], tan on
[-1.4, 1.4]); tests/test_functions.py checks the tails, where the naive formulas overflow.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from _timing import interleaved

import indexdiff as ix
from indexdiff.functions import FUNCTIONS, logsumexp
from indexdiff.operators import OPERATORS

Fn = Callable[[np.ndarray], Any]


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def _sigmoid_derivative(a: np.ndarray) -> np.ndarray:
    s = 1 / (1 + np.exp(-a))
    return s * (1 - s)


def _tanh_derivative(a: np.ndarray) -> np.ndarray:
    t = np.tanh(a)
    return 1 - t * t


def _tan_derivative(a: np.ndarray) -> np.ndarray:
    t = np.tan(a)
    return 1 + t * t


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a)
    return e / e.sum(axis=1, keepdims=True)


_WEIGHTS: dict[tuple[tuple[int, ...], Any], np.ndarray] = {}


def _weights(a: np.ndarray) -> np.ndarray:
    """Fixed weights c_bj for softmax's derivative, Σ_bj c_bj softmax_j(a_bj) by a: P (c - Σ_j c P)."""
    key = (a.shape, a.dtype)
    if key not in _WEIGHTS:
        _WEIGHTS[key] = np.random.default_rng(1).normal(size=a.shape).astype(a.dtype)
    return _WEIGHTS[key]


def _softmax_derivative(a: np.ndarray) -> np.ndarray:
    p, c = _softmax(a), _weights(a)
    return p * (c - (c * p).sum(axis=1, keepdims=True))


#: Each function's naive formula and naive derivative.
NAIVE: dict[str, tuple[Fn, Fn]] = {
    "exp": (np.exp, np.exp),
    "log": (np.log, lambda a: 1 / a),
    "sin": (np.sin, np.cos),
    "cos": (np.cos, lambda a: -np.sin(a)),
    "tan": (np.tan, _tan_derivative),
    "tanh": (np.tanh, _tanh_derivative),
    "sigmoid": (_sigmoid, _sigmoid_derivative),
    "relu": (lambda a: np.maximum(a, 0), lambda a: (a > 0).astype(a.dtype)),
    "step": (lambda a: (a > 0).astype(a.dtype), np.zeros_like),
    "softplus": (lambda a: np.log1p(np.exp(a)), _sigmoid),
    "sqrt": (np.sqrt, lambda a: 0.5 / np.sqrt(a)),
    "abs": (np.abs, np.sign),
    "sign": (np.sign, np.zeros_like),
    "logsumexp": (lambda a: np.log(np.sum(np.exp(a), axis=1)), _softmax),
    "softmax": (_softmax, _softmax_derivative),
}


def _data(name: str, n: int, dtype: type, rng: np.random.Generator) -> np.ndarray:
    if name in ("log", "sqrt"):
        a = rng.uniform(0.1, 10, n)
    elif name == "tan":
        a = rng.uniform(-1.4, 1.4, n)
    else:
        a = rng.normal(0, 4, n)
    return a.astype(dtype).reshape(-1, 100) if name in ("logsumexp", "softmax") else a.astype(dtype)


def _indexdiff(name: str) -> tuple[Fn, Fn, Fn]:
    """The table's implementation, the compiled function and the compiled derivative."""
    if name == "logsumexp":
        value = ix.compile(ix.parse("f_b = logsumexp_j(a_bj)"))
        derivative = ix.compile(ix.diff(ix.parse("sum_b(logsumexp_j(a_bj))"), "a"))
        return (lambda a: logsumexp(a, (1,))), (lambda a: value(a=a)), (lambda a: derivative(a=a))
    if name == "softmax":
        value = ix.compile(ix.parse("P_bj = softmax_j(a_bj)"))
        derivative = ix.compile(ix.diff(ix.parse("sum_bj(c_bj softmax_j(a_bj))"), "a"))
        table = OPERATORS["softmax"].numpy
        return (lambda a: table(a, (1,))), (lambda a: value(a=a)), (lambda a: derivative(a=a, c=_weights(a)))
    value = ix.compile(ix.parse(f"{name}(a_i)"))
    derivative = ix.compile(ix.diff(ix.parse(f"sum_i({name}(a_i))"), "a"))
    return FUNCTIONS[name].numpy, (lambda a: value(a=a)), (lambda a: derivative(a=a))


def _scipy(name: str) -> Fn | None:
    try:
        import scipy.special as sp
    except ImportError:
        return None
    found: dict[str, Fn] = {
        "sigmoid": sp.expit,
        "logsumexp": lambda a: sp.logsumexp(a, axis=1),
        "softmax": lambda a: sp.softmax(a, axis=1),
    }
    if hasattr(sp, "softplus"):
        found["softplus"] = sp.softplus
    return found.get(name)


def _jax(name: str) -> tuple[Fn, Fn] | None:
    """jax.jit of jax.nn's function (jax.numpy's where jax.nn has none) and of its derivative."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    own: dict[str, Callable[[Any], Any]] = {
        "sigmoid": jax.nn.sigmoid,
        "softplus": jax.nn.softplus,
        "relu": jax.nn.relu,
        "step": lambda a: (a > 0).astype(a.dtype),
        "logsumexp": lambda a: jax.nn.logsumexp(a, axis=1),
        "softmax": lambda a: jax.nn.softmax(a, axis=1),
    }
    f = own.get(name) or getattr(jnp, name)
    value = jax.jit(f)
    if name == "softmax":
        derivative = jax.jit(jax.grad(lambda a, c: jnp.sum(c * f(a))))
        return (lambda a: value(a).block_until_ready()), (lambda a: derivative(a, _weights_jax(a)).block_until_ready())
    derivative = jax.jit(jax.grad(lambda a: jnp.sum(f(a))))

    def run(g: Callable[[Any], Any]) -> Fn:
        return lambda a: g(a).block_until_ready()

    return run(value), run(derivative)


def _weights_jax(a: Any) -> Any:
    key = ("jax", a.shape, a.dtype)
    if key not in _WEIGHTS:
        _WEIGHTS[key] = _jax_array(_weights(np.asarray(a)))
    return _WEIGHTS[key]


def _jax_array(a: np.ndarray) -> Any:
    import jax.numpy as jnp

    return jnp.asarray(a)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000,1000000", help="comma-separated element counts")
    parser.add_argument("--functions", default=",".join(NAIVE), help="comma-separated names")
    parser.add_argument("--time", type=float, default=0.15, help="about this many seconds per contender and row")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    print(
        f"{'function':<10} {'dtype':<8} {'n':>8} {'naive ms':>9} {'table':>6} {'compiled':>8} {'scipy':>6} {'jax':>6}"
        f" | {'d: naive ms':>11} {'d: comp.':>8} {'d: jax':>6}"
    )
    worst: dict[str, float] = {"table": 0.0, "compiled": 0.0, "d: comp.": 0.0}
    for name in args.functions.split(","):
        naive, naive_d = NAIVE[name]
        table, compiled, compiled_d = _indexdiff(name)
        contenders = {"naive": naive, "table": table, "compiled": compiled, "d: naive": naive_d, "d: comp.": compiled_d}
        other, jax_pair = _scipy(name), _jax(name)
        if other is not None:
            contenders["scipy"] = other
        if jax_pair is not None:
            contenders["jax"], contenders["d: jax"] = jax_pair
        for dtype in (np.float32, np.float64):
            for n in sizes:
                a = _data(name, n, dtype, rng)
                tol = 1e-5 if dtype == np.float32 else 1e-11
                want, want_d = naive(a), naive_d(a)
                for got in (table(a), compiled(a)):
                    assert got.dtype == dtype and np.allclose(got, want, rtol=tol, atol=tol), name
                assert np.allclose(compiled_d(a), want_d, rtol=tol, atol=tol), name
                arg = {k: a for k in contenders}
                if jax_pair is not None:  # jax's functions take a jax array, made once
                    arg["jax"] = arg["d: jax"] = _jax_array(a)
                fns = {k: functools.partial(f, arg[k]) for k, f in contenders.items()}
                once = interleaved(fns, repeats=1, warmup=1)
                repeats = max(15, min(300, int(args.time * 1e3 / max(once.values()))))
                # One interleaved round at a time, and each contender's fastest round: on this shared machine
                # other work only ever adds time (as timeit's documentation recommends the minimum).
                rounds = [interleaved(fns, repeats=1, warmup=0) for _ in range(repeats)]
                t = {k: min(r[k] for r in rounds) for k in fns}
                base = {k: "d: naive" if k.startswith("d:") else "naive" for k in fns}
                ratio = {k: t[k] / t[base[k]] for k in fns if "naive" not in k}
                for k in worst:
                    worst[k] = max(worst[k], ratio[k])

                def cell(k: str, width: int, ratio: dict[str, float] = ratio) -> str:
                    return f"{ratio[k]:>{width - 1}.2f}x" if k in ratio else f"{'-':>{width}}"

                print(
                    f"{name:<10} {np.dtype(dtype).name:<8} {n:>8} {t['naive']:>9.3f} {cell('table', 6)} "
                    f"{cell('compiled', 8)} {cell('scipy', 6)} {cell('jax', 6)} | {t['d: naive']:>11.3f} "
                    f"{cell('d: comp.', 8)} {cell('d: jax', 6)}"
                )
    print("\nworst ratio to the naive formula: " + ", ".join(f"{k} {v:.2f}x" for k, v in worst.items()))


if __name__ == "__main__":
    main()
