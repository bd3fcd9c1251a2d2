"""Per-call overhead: a compiled tiny expression (A_ij x_j, 3×3) against one direct np.einsum call."""

import numpy as np
from _timing import median_ms

import indexdiff as ix


def main() -> None:
    A, x = np.arange(9.0).reshape(3, 3), np.ones(3)
    f = ix.compile(ix.parse("A_ij x_j"))
    assert np.allclose(f(A=A, x=x), A @ x)
    calls = 20000

    def many(fn):
        return lambda: [fn() for _ in range(calls)]

    ours = median_ms(many(lambda: f(A=A, x=x)), 7) / calls * 1e3
    einsum = median_ms(many(lambda: np.einsum("ij,j->i", A, x)), 7) / calls * 1e3
    matmul = median_ms(many(lambda: A @ x), 7) / calls * 1e3
    print("| call | µs per call | × np.einsum |")
    print("|---|---|---|")
    for what, us in (("indexdiff compiled A_ij x_j", ours), ("np.einsum('ij,j->i', A, x)", einsum), ("A @ x", matmul)):
        print(f"| {what} | {us:.2f} | {us / einsum:.2f} |")


if __name__ == "__main__":
    main()
