"""Layer norm with mean_j: y_bi = (x_bi − mean_j(x_bj)) / sqrt(mean_j((x_bj − mean_k(x_bk))²) + ε) g_i + b_i,
with the loss L = Σ y ∘ G for a fixed cotangent G. Its gradients by x, g and b, derived from a program (ix.grad)
and from the same layer written as one statement (ix.diff), against a hand-written numpy layer-norm backward."""

import numpy as np
from _verify import compare, finish, report_check, with_matrix

import indexdiff as ix

EPS = 1e-5
PROGRAM = """
c_bi = x_bi - mean_j(x_bj)
s_b = sqrt(mean_j(c_bj^2) + 0.00001)
y_bi = c_bi / s_b g_i + b_i
L = sum_bi(y_bi G_bi)
"""
ONE_STATEMENT = "L = sum_bi(((x_bi - mean_j(x_bj)) / sqrt(mean_j((x_bj - mean_k(x_bk))^2) + 0.00001) g_i + b_i) G_bi)"
WRT = ["x", "g", "b"]


def by_hand(x: np.ndarray, g: np.ndarray, b: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, ...]:
    """The usual layer-norm backward through x̂ = (x − mean) / s."""
    c = x - x.mean(axis=1, keepdims=True)
    s = np.sqrt(np.mean(c * c, axis=1, keepdims=True) + EPS)
    xhat = c / s
    loss = np.sum((xhat * g + b) * G)
    dxhat = G * g
    dx = (dxhat - dxhat.mean(axis=1, keepdims=True) - xhat * np.mean(dxhat * xhat, axis=1, keepdims=True)) / s
    return np.asarray(loss), dx, np.sum(G * xhat, axis=0), G.sum(axis=0)


def main() -> None:
    program = ix.parse(PROGRAM)
    backward = ix.grad(program, "L", wrt=WRT)
    print(f"layer norm as a program:\n{program}\n\nits backward pass (ix.grad):")
    for statement in backward.statements[len(program.statements) :]:
        print(with_matrix(statement))
    one = ix.parse(ONE_STATEMENT)
    derivatives = [ix.diff(one, name) for name in WRT]
    print(f"\nas one statement:\n{one}\n\nits derivative by g (ix.diff):\n{derivatives[1]}\n")

    rng = np.random.default_rng(0)
    rows, width = 6, 10
    x = rng.normal(size=(rows, width)) * rng.uniform(0.1, 10, size=(rows, 1)) + rng.normal(size=(rows, 1)) * 100
    x[0] = 3.0  # a constant row: its variance is 0 and ε alone keeps the division finite
    arrays = {"x": x, "g": rng.normal(size=width), "b": rng.normal(size=width), "G": rng.normal(size=(rows, width))}
    failures: list[str] = []
    hand = by_hand(**arrays)
    compiled = ix.compile(backward)(**arrays)
    from_one = ix.compile(one, *derivatives)(**arrays)
    print(f"against numpy by hand ({rows} rows of {width}, row offsets up to ±100, one constant row):")
    for name, want, got_program, got_one in zip(["L", *(f"dL/d{w}" for w in WRT)], hand, compiled, from_one):
        compare(f"{name} (program, compiled)", got_program, want, failures)
        compare(f"{name} (one statement, compiled)", got_one, want, failures)
    for name, want in zip(WRT, hand[1:]):
        compare(f"dL/d{name} (program, ix.evaluate)", ix.evaluate(backward, arrays, output=f"d{name}"), want, failures)
    report_check("random data, by x", ix.check(program, "x"), failures)
    report_check("these arrays, one statement by x", ix.check(one, "x", arrays=arrays), failures)
    print()
    finish(failures, "layer norm gradients verified")


if __name__ == "__main__":
    main()
