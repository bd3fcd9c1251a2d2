"""The seed paper's neuron and dense layer: indexdiff prints their gradients as the paper's Eqs. 53-55.

A neuron's activation is σ(w·x + b); for a layer u_bi = W_ij x_bj + b_i, a_bi = σ(u_bi), the paper derives the bias
gradient d_σ ∘ u and the weight gradient (d_σ ∘ u) xᵀ. Both are checked against numpy and finite differences.
"""

import numpy as np

import indexdiff as ix

NEURON = """
u_b = w_j x_bj + c
a_b = sigmoid(u_b)
L = sum_b((a_b - y_b)^2)
"""

LAYER = """
u_bi = W_ij x_bj + b_i
a_bi = sigmoid(u_bi)
L = sum_bi((a_bi - y_bi)^2)
"""


def main() -> None:
    failures = 0
    for title, text, wrt in (("single neuron", NEURON, ["w", "c"]), ("dense layer", LAYER, ["W", "b"])):
        program = ix.parse(text)
        gradient = ix.grad(program, wrt=wrt)
        print(f"{title}:\n{gradient}\n")
        print(f"in matrix notation:\n{ix.codegen(program, *wrt, format='matrix')}\n")
        for name in wrt:
            report = ix.check(program, name)
            print(f"  {report.results[0]}")
            failures += not report.ok
        print()
    rng = np.random.default_rng(0)
    W, b, x, y = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=(5, 4)), rng.uniform(size=(5, 3))
    _, dW, db = ix.compile(ix.grad(ix.parse(LAYER), wrt=["W", "b"]))(W=W, b=b, x=x, y=y)
    a = 1 / (1 + np.exp(-(x @ W.T + b)))
    d_sigma_u = 2 * (a - y) * a * (1 - a)  # d_σ ∘ u: the error times σ'(u)
    ok = np.allclose(db, d_sigma_u.sum(0)) and np.allclose(dW, d_sigma_u.T @ x)
    print(f"dense layer against the paper's (d_σ ∘ u) and (d_σ ∘ u) xᵀ in numpy: {'ok' if ok else 'FAILED'}")
    failures += not ok
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
