"""The negative log-likelihood of N samples x_n under a Gaussian N(μ, C), without its constant:
L = 0.5 N logdet(C) + 0.5 Σ_n r_nᵀ C⁻¹ r_n with r_n = x_n − μ. Its gradients by μ and C (reverse mode) and its
Hessian by μ, printed in index notation and checked against the closed forms
∂L/∂μ = −C⁻¹ Σ_n r_n, ∂L/∂C = 0.5 (N C⁻ᵀ − C⁻ᵀ (Σ_n r_n r_nᵀ) C⁻ᵀ) and ∂²L/∂μ² = N C⁻¹ (C symmetric);
then one Newton step from μ = 0 lands on the sample mean."""

import numpy as np
from _verify import compare, finish, report_check, with_matrix

import indexdiff as ix

NLL = """
r_ni = x_ni - mu_i
L = 0.5 N logdet(C_ij) + 0.5 r_ni inv(C_ij) r_nj
"""


def closed_forms(x: np.ndarray, mu: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, ...]:
    """Value, ∂/∂μ, ∂/∂C and ∂²/∂μ² by the textbook formulas (valid for any invertible C with det C > 0)."""
    n = len(x)
    r = x - mu
    Ci = np.linalg.inv(C)
    value = 0.5 * n * np.linalg.slogdet(C)[1] + 0.5 * np.einsum("ni,ij,nj->", r, Ci, r)
    by_mu = -0.5 * (Ci + Ci.T) @ r.sum(axis=0)  # −C⁻¹ Σ r when C is symmetric
    by_c = 0.5 * (n * Ci.T - Ci.T @ (r.T @ r) @ Ci.T)
    hessian = 0.5 * n * (Ci + Ci.T)  # N C⁻¹ when C is symmetric
    return np.asarray(value), by_mu, by_c, hessian


def main() -> None:
    nll = ix.parse(NLL)
    gradient = ix.grad(nll, "L", wrt=["mu", "C"])
    hessian = ix.diff(nll, "mu", "mu")
    print(f"the negative log-likelihood:\n{nll}\n")
    print("its gradient by mu and C (ix.grad, after the forward statements):")
    for statement in gradient.statements[len(nll.statements) :]:
        print(with_matrix(statement))
    print("\nits Hessian by mu (ix.diff twice: forward over reverse; the forward statements omitted):")
    for statement in hessian.statements:
        if statement not in nll.statements:
            print(with_matrix(statement))
    print()

    rng = np.random.default_rng(0)
    n, dim = 50, 4
    A = rng.normal(size=(dim, dim))
    covariances = {
        "C symmetric positive definite": A @ A.T + dim * np.eye(dim),
        "C not symmetric, det C > 0 (transposes matter)": np.eye(dim) * 3 + A,
    }
    failures: list[str] = []
    compiled = ix.compile(gradient)
    for title, C in covariances.items():
        assert np.linalg.det(C) > 0
        x = rng.normal(size=(n, dim)) @ np.linalg.cholesky(A @ A.T + np.eye(dim)).T + 2.0
        mu = rng.normal(size=dim)
        arrays = {"x": x, "mu": mu, "C": C, "N": np.asarray(float(n))}
        value, by_mu, by_c, hess = closed_forms(x, mu, C)
        L, g_mu, g_c = compiled(**arrays)
        print(f"{title} ({n} samples, {dim} dimensions), against the closed forms:")
        compare("value (compiled)", L, value, failures)
        compare("dL/dmu (compiled)", g_mu, by_mu, failures)
        compare("dL/dC (compiled)", g_c, by_c, failures)
        compare("dL/dC (ix.evaluate)", ix.evaluate(gradient, arrays, output="dC"), by_c, failures)
        compare("d2L/dmu2 (ix.evaluate)", ix.evaluate(hessian, arrays), hess, failures)
        if title.startswith("C symmetric"):
            Ci = np.linalg.inv(C)
            compare("dL/dmu vs -C^-1 sum_n r_n", g_mu, -Ci @ (x - mu).sum(axis=0), failures)
            compare("d2L/dmu2 vs N C^-1", ix.evaluate(hessian, arrays), n * Ci, failures)
        report_check("these arrays, by mu then mu", ix.check(nll, "mu", "mu", arrays=arrays), failures)
        report_check("these arrays, by C", ix.check(nll, "C", arrays=arrays), failures)
        print()

    print("one Newton step from mu = 0 (the likelihood is quadratic in mu):")
    C = covariances["C symmetric positive definite"]
    arrays = {"x": x, "mu": np.zeros(dim), "C": C, "N": np.asarray(float(n))}
    step = np.linalg.solve(ix.evaluate(hessian, arrays), compiled(**arrays)[1])
    compare("mu - H^-1 g vs the sample mean", arrays["mu"] - step, x.mean(axis=0), failures)
    print()
    finish(failures, "Gaussian likelihood derivatives verified")


if __name__ == "__main__":
    main()
