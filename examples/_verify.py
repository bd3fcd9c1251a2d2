"""Shared by the examples: print comparisons and check reports, remember what failed."""

import numpy as np

import indexdiff as ix


def compare(what: str, got: np.ndarray, expected: np.ndarray, failures: list[str], width: int = 34) -> None:
    """Print the largest difference between indexdiff's value and numpy's; remember a mismatch."""
    ok = got.shape == expected.shape and np.allclose(got, expected, rtol=1e-10, atol=1e-12)
    err = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
    print(f"  {what:<{width}} max |difference| {err:.1e}  {'ok' if ok else 'FAILED'}")
    if not ok:
        failures.append(what)


def report_check(what: str, report: ix.CheckReport, failures: list[str]) -> None:
    """Print an ix.check report (one line per derivative); remember a failure."""
    print(f"  ix.check on {what}:")
    for result in report.results:
        print(f"    {result}")
    if not report.ok:
        failures.append(f"ix.check on {what}")


def show(rows: list[tuple[str, ix.Expr]]) -> None:
    """Print ``name = expression`` lines with the equals signs aligned, each followed by its matrix form when
    every term has one."""
    width = max(len(name) for name, _ in rows)
    for name, expr in rows:
        print(f"{name:<{width}} = {expr}")
        form = expr.matrix()
        if not form.fallback:
            print(f"{'':<{width}} = {form.text}   (matrix notation)")
    print()


def with_matrix(e: ix.Expr, indent: str = "  ") -> str:
    """``e`` as a line of index notation, followed by a line with its matrix form when every term has one."""
    form = e.matrix()
    return f"{indent}{e}" + ("" if form.fallback else f"\n{indent}  = {form.text}   (matrix notation)")


def finish(failures: list[str], success: str) -> None:
    """Exit with status 1 naming what failed, or print ``success``."""
    if failures:
        print(f"FAILED: {', '.join(failures)}")
        raise SystemExit(1)
    print(success)
