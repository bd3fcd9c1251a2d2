"""Quadratic form f = x_i A_ij x_j: gradient, derivative by A and Hessian, verified with numpy and ix.check."""

import numpy as np
from _verify import compare, finish, report_check, show

import indexdiff as ix


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
    compare("gradient  vs (A + A^T) x", ix.evaluate(grad, data), (A + A.T) @ x, failures, width=30)
    compare("d/dA      vs x x^T", ix.evaluate(by_a, data), np.outer(x, x), failures, width=30)
    compare("Hessian   vs A + A^T", ix.evaluate(hess, data), A + A.T, failures, width=30)
    compare("value     vs x^T A x", ix.evaluate(f, data), np.asarray(x @ A @ x), failures, width=30)
    print()

    print("central finite differences:")
    random_x = ix.check(f, "x", "x")
    sizes = ", ".join(f"{i}={size}" for i, size in sorted(random_x.dims.items()))
    report_check(f"random data (sizes {sizes}), by x then x", random_x, failures)
    report_check("random data, by A", ix.check(f, "A"), failures)
    report_check("the data above, by x then x", ix.check(f, "x", "x", arrays=data), failures)
    report_check("the data above, by A", ix.check(f, "A", arrays=data), failures)
    print()

    finish(failures, "all derivatives verified")


if __name__ == "__main__":
    main()
