"""Quadratic form f = x_i A_ij x_j: gradient, derivative by A and Hessian, verified with numpy and ix.check."""

import numpy as np

import indexdiff as ix


def compare(what: str, got: np.ndarray, expected: np.ndarray, failures: list[str]) -> None:
    """Print the largest difference between indexdiff's value and numpy's; remember a mismatch."""
    ok = got.shape == expected.shape and np.allclose(got, expected, rtol=1e-10, atol=1e-12)
    err = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
    print(f"  {what:<30} max |difference| {err:.1e}  {'ok' if ok else 'FAILED'}")
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
    """Print ``name = expression`` lines with the equals signs aligned."""
    width = max(len(name) for name, _ in rows)
    for name, expr in rows:
        print(f"{name:<{width}} = {expr}")
    print()


def main() -> None:
    f = ix.parse("x_i A_ij x_j")
    grad = ix.diff(f, "x")
    by_a = ix.diff(f, "A")
    hess = ix.diff(f, "x", "x")
    first, second = hess.free

    show(
        [
            ("f", f),
            (f"df/dx_{grad.free[0]}", grad),
            (f"df/dA_{''.join(by_a.free)}", by_a),
            (f"d2f/dx_{first} dx_{second}", hess),
        ]
    )

    rng = np.random.default_rng(0)
    n = 4
    A = rng.normal(size=(n, n))  # deliberately not symmetric
    x = rng.normal(size=n)
    data = {"A": A, "x": x}
    failures: list[str] = []

    print(f"numpy closed forms (n = {n}, A not symmetric):")
    compare("gradient  vs (A + A^T) x", ix.evaluate(grad, data), (A + A.T) @ x, failures)
    compare("d/dA      vs x x^T", ix.evaluate(by_a, data), np.outer(x, x), failures)
    compare("Hessian   vs A + A^T", ix.evaluate(hess, data), A + A.T, failures)
    compare("value     vs x^T A x", ix.evaluate(f, data), np.asarray(x @ A @ x), failures)
    print()

    print("central finite differences:")
    random_x = ix.check(f, "x", "x")
    sizes = ", ".join(f"{i}={size}" for i, size in sorted(random_x.dims.items()))
    report_check(f"random data (sizes {sizes}), by x then x", random_x, failures)
    report_check("random data, by A", ix.check(f, "A"), failures)
    report_check("the data above, by x then x", ix.check(f, "x", "x", arrays=data), failures)
    report_check("the data above, by A", ix.check(f, "A", arrays=data), failures)
    print()

    if failures:
        print(f"FAILED: {', '.join(failures)}")
        raise SystemExit(1)
    print("all derivatives verified")


if __name__ == "__main__":
    main()
