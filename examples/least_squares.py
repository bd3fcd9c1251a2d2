"""Least squares L = sum_i((A_ij x_j - b_i)^2): gradient and Hessian by x, then gradient descent and Newton."""

import numpy as np
from _verify import compare, finish, report_check, show

import indexdiff as ix


def main() -> None:
    loss = ix.parse("sum_i((A_ij x_j - b_i)^2)")
    grad = ix.diff(loss, "x")
    hess = ix.diff(loss, "x", "x")
    first, second = hess.free
    show([("L", loss), (f"dL/dx_{grad.free[0]}", grad), (f"d2L/dx_{first} dx_{second}", hess)])

    rng = np.random.default_rng(1)
    m, n = 30, 4
    A = rng.normal(size=(m, n))
    b = A @ rng.normal(size=n) + 0.1 * rng.normal(size=m)  # a nearly consistent system: a small final residual
    x = rng.normal(size=n)
    data = {"A": A, "b": b, "x": x}
    failures: list[str] = []

    print(f"numpy closed forms (A is {m} x {n}):")
    compare("gradient vs 2 A^T (A x - b)", ix.evaluate(grad, data), 2 * A.T @ (A @ x - b), failures)
    compare("Hessian  vs 2 A^T A", ix.evaluate(hess, data), 2 * A.T @ A, failures)
    compare("value    vs |A x - b|^2", ix.evaluate(loss, data), np.asarray(np.sum((A @ x - b) ** 2)), failures)
    report_check("the data above, by x then x", ix.check(loss, "x", "x", arrays=data), failures)
    print()

    x_best, *_ = np.linalg.lstsq(A, b, rcond=None)
    best = float(np.linalg.norm(A @ x_best - b))

    def residual(x: np.ndarray) -> float:
        return float(np.linalg.norm(A @ x - b))

    # The Hessian is constant, so one evaluation gives the largest safe step for gradient descent.
    H = ix.evaluate(hess, {"A": A})
    step = 1.0 / float(np.linalg.eigvalsh(H)[-1])
    print(f"gradient descent from x = 0, step 1/lambda_max(H) = {step:.4f}; lstsq residual |A x - b| = {best:.6f}")
    print(f"  {'step':>4}  {'|A x - b|':>10}  {'|x - x_lstsq|':>13}")
    x = np.zeros(n)
    history = [residual(x)]
    for it in range(41):
        if it in (0, 1, 2, 3, 5, 10, 20, 30, 40):
            print(f"  {it:>4}  {residual(x):>10.6f}  {np.linalg.norm(x - x_best):>13.2e}")
        x = x - step * ix.evaluate(grad, {"A": A, "b": b, "x": x})
        history.append(residual(x))
    if np.any(np.diff(history) > 1e-12):
        failures.append("gradient descent residual increased")
    if not history[-1] - best <= 1e-9 * best:
        failures.append("gradient descent did not approach the lstsq residual")

    x = np.zeros(n)
    x = x - np.linalg.solve(H, ix.evaluate(grad, {"A": A, "b": b, "x": x}))
    print(
        f"one Newton step from x = 0:  |A x - b| = {residual(x):.6f}, |x - x_lstsq| = {np.linalg.norm(x - x_best):.1e}"
    )
    if not np.allclose(x, x_best, rtol=1e-10, atol=1e-12):
        failures.append("Newton step did not land on the lstsq solution")
    print()

    finish(failures, "all derivatives verified; both methods reach the np.linalg.lstsq solution")


if __name__ == "__main__":
    main()
