"""Parse + differentiate + simplify + print: indexdiff against SymPy's Indexed derivatives of the same expressions."""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sympy import Basic, Idx, IndexedBase, KroneckerDelta, Piecewise, Sum, diff, exp, simplify, symbols
from sympy.core.cache import clear_cache

import indexdiff as ix
from indexdiff.expr import Expr
from indexdiff.simplify import simplify as ix_simplify

IX_MIN_RUNS, IX_BUDGET_S = 200, 1.5
SYMPY_MIN_RUNS, SYMPY_BUDGET_S = 5, 4.0
SIMPLIFY_TIMEOUT_S = 10.0


def sympy_seed() -> Basic:
    """∂/∂x_k of Σ_ij x_i A_ij x_j, unevaluated."""
    n = symbols("n", integer=True, positive=True)
    i, j, k = symbols("i j k", cls=Idx)
    x, a = IndexedBase("x"), IndexedBase("A")
    f = Sum(x[i] * a[i, j] * x[j], (i, 0, n - 1), (j, 0, n - 1))
    return diff(f, x[k])


def sympy_mlp() -> Basic:
    """∂/∂W1_pq of Σ_bk (Σ_j W2_kj σ(Σ_i W1_ji x_bi + b1_j) + b2_k - t_bk)², unevaluated."""
    nb, ni, nj, nk = symbols("n_b n_i n_j n_k", integer=True, positive=True)
    b, i, j, k, p, q = symbols("b i j k p q", cls=Idx)
    w1, w2, x, b1, b2, t = (IndexedBase(name) for name in ("W1", "W2", "x", "b1", "b2", "t"))
    z = Sum(w1[j, i] * x[b, i], (i, 0, ni - 1)) + b1[j]
    y = Sum(w2[k, j] / (1 + exp(-z)), (j, 0, nj - 1)) + b2[k] - t[b, k]
    f = Sum(y**2, (b, 0, nb - 1), (k, 0, nk - 1))
    return diff(f, w1[p, q])


def sympy_raw(build: Callable[[], Basic]) -> tuple[str, Basic]:
    """Build + diff + str: SymPy's Indexed derivative as it comes, KroneckerDelta terms unsimplified."""
    result = build()
    return str(result), result


def sympy_pipeline(build: Callable[[], Basic], simplified: bool) -> tuple[str, Basic]:
    """Build + diff + doit (+ simplify) + str, as a SymPy user would get a printed result."""
    result = build().doit()
    if simplified:
        result = simplify(result)
    return str(result), result


def sympy_timed_once(build: Callable[[], Basic], simplified: bool) -> tuple[float, str, bool, bool]:
    """One cold-cache pipeline call: milliseconds, text, and whether KroneckerDelta / Piecewise remain."""
    clear_cache()
    start = time.perf_counter()
    text, result = sympy_pipeline(build, simplified)
    ms = (time.perf_counter() - start) * 1e3
    return ms, text, result.has(KroneckerDelta), result.has(Piecewise)


@dataclass(frozen=True)
class Case:
    label: str
    text: str
    wrt: str
    sympy: Callable[[], Basic]


CASES = (
    Case("seed: x_i A_ij x_j, d/dx", "x_i A_ij x_j", "x", sympy_seed),
    Case(
        "MLP loss, d/dW1",
        "sum_b(sum_k((W2_kj sigmoid(W1_ji x_bi + b1_j) + b2_k - t_bk)^2))",
        "W1",
        sympy_mlp,
    ),
)


def median_ms(fn: Callable[[], object], minimum: int, budget_s: float, reset: Callable[[], None]) -> float:
    """Median of at least ``minimum`` timed calls (more while ``budget_s`` lasts), after one warm-up."""
    reset()
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < minimum or time.perf_counter() - start < budget_s:
        reset()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def fully_simplified(g: Expr) -> bool:
    """No δ left, the printed text parses back to the same derivative, and simplifying it again changes nothing."""
    text = str(g)
    again = ix.parse(text)
    return "δ" not in text and again == g and Expr(ix_simplify(again.node, frozenset(again.free)), again.free) == again


def check_seed() -> None:
    rng = np.random.default_rng(0)
    a, x = rng.standard_normal((4, 4)), rng.standard_normal(4)
    g = ix.diff(ix.parse("x_i A_ij x_j"), "x")
    got = ix.evaluate(g, {"A": a, "x": x})
    assert np.allclose(got, (a + a.T) @ x, rtol=1e-12, atol=1e-12), (got, (a + a.T) @ x)


def check_mlp(text: str) -> None:
    rng = np.random.default_rng(1)
    nb, ni, nj, nk = 3, 4, 5, 2
    arrays = {
        "W1": rng.standard_normal((nj, ni)),
        "W2": rng.standard_normal((nk, nj)),
        "x": rng.standard_normal((nb, ni)),
        "b1": rng.standard_normal(nj),
        "b2": rng.standard_normal(nk),
        "t": rng.standard_normal((nb, nk)),
    }
    e = ix.parse(text)
    got = ix.evaluate(ix.diff(e, "W1"), arrays)
    numeric = np.empty_like(arrays["W1"])
    h = 1e-6
    for idx in np.ndindex(*numeric.shape):
        plus, minus = arrays["W1"].copy(), arrays["W1"].copy()
        plus[idx] += h
        minus[idx] -= h
        numeric[idx] = (ix.evaluate(e, {**arrays, "W1": plus}) - ix.evaluate(e, {**arrays, "W1": minus})) / (2 * h)
    assert got.shape == numeric.shape, (got.shape, numeric.shape)
    assert np.allclose(got, numeric, rtol=1e-6, atol=1e-8), np.max(np.abs(got - numeric))


def guarded_simplify(build: Callable[[], Basic]) -> tuple[float, str, bool, bool] | None:
    """The simplify() pipeline, timed once in a worker process; None when it takes over SIMPLIFY_TIMEOUT_S."""
    with multiprocessing.Pool(1) as pool:
        job = pool.apply_async(sympy_timed_once, (build, True))
        try:
            return job.get(timeout=SIMPLIFY_TIMEOUT_S)
        except multiprocessing.TimeoutError:
            return None


def sympy_flags(has_delta: bool, has_piecewise: bool) -> str:
    return ("yes" if has_delta else "no") + (" (+ Piecewise)" if has_piecewise else "")


def main() -> None:
    started = time.perf_counter()
    check_seed()
    check_mlp(CASES[1].text)
    print("indexdiff derivatives verified numerically (seed vs (A + A^T) x, MLP vs central differences)\n")

    rows, details, medians = [], [], {}
    for case in CASES:
        ix_ms = median_ms(lambda c=case: str(ix.diff(ix.parse(c.text), c.wrt)), IX_MIN_RUNS, IX_BUDGET_S, lambda: None)
        raw_ms = median_ms(lambda c=case: sympy_raw(c.sympy), SYMPY_MIN_RUNS, SYMPY_BUDGET_S, clear_cache)
        sp_ms = median_ms(lambda c=case: sympy_pipeline(c.sympy, False), SYMPY_MIN_RUNS, SYMPY_BUDGET_S, clear_cache)
        medians[case.label] = ix_ms, raw_ms, sp_ms
        g = ix.diff(ix.parse(case.text), case.wrt)
        simple = "yes" if fully_simplified(g) else "no"
        raw = sympy_raw(case.sympy)[1]
        rows.append(
            (
                case.label + " (SymPy diff only)",
                f"{ix_ms:.3f}",
                f"{raw_ms:.1f}",
                f"{raw_ms / ix_ms:.0f}",
                simple,
                sympy_flags(raw.has(KroneckerDelta), raw.has(Piecewise)),
            )
        )
        _, sp_text, has_delta, has_pw = sympy_timed_once(case.sympy, False)
        rows.append(
            (
                case.label + " (SymPy doit)",
                f"{ix_ms:.3f}",
                f"{sp_ms:.1f}",
                f"{sp_ms / ix_ms:.0f}",
                simple,
                sympy_flags(has_delta, has_pw),
            )
        )
        guarded = guarded_simplify(case.sympy)
        if guarded is None:
            rows.append(
                (
                    case.label + " (SymPy doit + simplify)",
                    f"{ix_ms:.3f}",
                    f"> {SIMPLIFY_TIMEOUT_S * 1e3:.0f}",
                    f"> {SIMPLIFY_TIMEOUT_S * 1e3 / ix_ms:.0f}",
                    simple,
                    f"n/a (simplify() did not finish in {SIMPLIFY_TIMEOUT_S:.0f} s)",
                )
            )
            simp_text = f"(simplify() did not finish within {SIMPLIFY_TIMEOUT_S:.0f} s)"
        else:
            simp_ms, simp_text, simp_delta, simp_pw = guarded
            rows.append(
                (
                    case.label + " (SymPy doit + simplify, 1 call)",
                    f"{ix_ms:.3f}",
                    f"{simp_ms:.1f}",
                    f"{simp_ms / ix_ms:.0f}",
                    simple,
                    sympy_flags(simp_delta, simp_pw),
                )
            )
        details.append((case, str(ix.parse(case.text)), str(g), sp_text, simp_text))

    header = (
        "case",
        "indexdiff median (ms)",
        "SymPy median (ms)",
        "speed-up (×)",
        "indexdiff result fully simplified?",
        "SymPy result has KroneckerDelta?",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        f"\nindexdiff: median of >= {IX_MIN_RUNS} runs of str(ix.diff(ix.parse(text), wrt)); SymPy: median of "
        f">= {SYMPY_MIN_RUNS} cold-cache runs of build + diff (+ doit) + str; the simplify rows are one cold-cache "
        f"call each, guarded by a {SIMPLIFY_TIMEOUT_S:.0f} s timeout. 'fully simplified' = no δ left, the text "
        "parses back to the same derivative, and simplifying again changes nothing."
    )

    for case, parsed, g_text, sp_text, simp_text in details:
        print(f"\n## {case.label}")
        print(f"input:              {case.text}")
        print(f"indexdiff parsed:   {parsed}")
        print(f"indexdiff result:   {g_text}")
        print(f"SymPy doit:         {sp_text[:200]}{' ...' if len(sp_text) > 200 else ''}")
        print(f"SymPy simplify:     {simp_text[:200]}{' ...' if len(simp_text) > 200 else ''}")

    ix_ms, raw_ms, sp_ms = medians[CASES[0].label]
    for what, ms in (("SymPy diff only (δ kept)", raw_ms), ("SymPy diff + doit (δ resolved)", sp_ms)):
        holds = ix_ms < 1.0 and ms / ix_ms >= 100
        print(
            f"seed goal against {what}: indexdiff < 1 ms and >= 100× faster: "
            f"{'HOLDS' if holds else 'DOES NOT HOLD'} ({ix_ms:.3f} ms, {ms / ix_ms:.0f}×)"
        )
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
