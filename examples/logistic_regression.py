"""Logistic regression L = sum_i(log(1 + exp(-y_i X_ij w_j))): gradient and Hessian by w, then Newton's method."""

import numpy as np
from _verify import compare, finish, report_check, show

import indexdiff as ix


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def predict(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.where(X @ w >= 0, 1.0, -1.0)


def main() -> None:
    loss = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
    grad = ix.diff(loss, "w")
    hess = ix.diff(loss, "w", "w")
    first, second = hess.free
    show([("L", loss), (f"dL/dw_{grad.free[0]}", grad), (f"d2L/dw_{first} dw_{second}", hess)])

    # Synthetic data: an intercept column and two features, labels in {-1, +1} drawn from a logistic model
    # (noisy, so the classes overlap and the maximum-likelihood w is finite).
    rng = np.random.default_rng(2)
    m = 200
    X = np.column_stack([np.ones(m), rng.normal(size=(m, 2))])
    w_true = np.array([0.5, 2.0, -1.0])
    y = np.where(rng.uniform(size=m) < sigmoid(X @ w_true), 1.0, -1.0)
    failures: list[str] = []

    w = rng.normal(size=3)
    data = {"X": X, "y": y, "w": w}
    z = y * (X @ w)
    s = sigmoid(z)
    print(f"numpy by hand ({m} samples, 3 weights, z = y * X w):")
    compare("gradient vs -X^T (y * sigmoid(-z))", ix.evaluate(grad, data), -X.T @ (y * sigmoid(-z)), failures, width=49)
    compare(
        "Hessian  vs X^T diag(s (1 - s)) X, s = sigmoid(z)",
        ix.evaluate(hess, data),
        X.T @ (X * (s * (1 - s))[:, None]),
        failures,
    )
    compare(
        "value    vs sum(log(1 + exp(-z)))", ix.evaluate(loss, data), np.asarray(np.sum(np.log1p(np.exp(-z)))), failures
    )
    report_check("the data above, by w then w", ix.check(loss, "w", "w", arrays=data), failures)
    print()

    print("Newton's method from w = 0:")
    print(f"  {'step':>4}  {'loss':>10}  {'|gradient|':>10}  {'accuracy':>8}  w")
    w = np.zeros(3)
    losses = []
    for it in range(7):
        data = {"X": X, "y": y, "w": w}
        g = ix.evaluate(grad, data)
        losses.append(float(ix.evaluate(loss, data)))
        accuracy = float(np.mean(predict(X, w) == y))
        print(f"  {it:>4}  {losses[-1]:>10.6f}  {np.linalg.norm(g):>10.2e}  {accuracy:>8.3f}  {np.round(w, 4)}")
        if it < 6:
            w = w - np.linalg.solve(ix.evaluate(hess, data), g)
    final_gradient = np.linalg.norm(ix.evaluate(grad, {"X": X, "y": y, "w": w}))
    if final_gradient > 1e-8:
        failures.append(f"Newton did not converge (|gradient| = {final_gradient:.1e})")
    if np.any(np.diff(losses) > 1e-12):
        failures.append("Newton's loss increased")
    print(f"training accuracy {np.mean(predict(X, w) == y):.3f} (fitted w {np.round(w, 4)}, true w {w_true})")
    print()

    finish(failures, "all derivatives verified; Newton's method converged")


if __name__ == "__main__":
    main()
