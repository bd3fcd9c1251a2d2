"""Per-call overhead: a compiled tiny expression (A_ij x_j, 3×3) against one direct np.einsum call and A @ x, and a
compiled element-wise function and derivative of 1000 elements against the naive numpy formula. Each contender's
fastest of many interleaved rounds of 2000 calls (on a shared machine other work only ever adds time)."""

import time

import numpy as np
from _timing import interleaved

import indexdiff as ix


def fastest_us(fns: dict, calls: int = 2000, rounds: int = 25) -> dict[str, float]:
    many = {k: (lambda fn=fn: [fn() for _ in range(calls)]) for k, fn in fns.items()}
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, ms in interleaved(many, 1, warmup=0, clock=time.process_time).items():
            best[k] = min(best[k], ms / calls * 1e3)
    return best


def table(title: str, fns: dict, base: str) -> None:
    us = fastest_us(fns)
    print(f"\n{title}\n\n| call | µs per call | × {base} |\n|---|---|---|")
    for what, t in us.items():
        print(f"| {what} | {t:.2f} | {t / us[base]:.2f} |")


def main() -> None:
    A, x = np.arange(9.0).reshape(3, 3), np.ones(3)
    f = ix.compile(ix.parse("A_ij x_j"))
    assert np.allclose(f(A=A, x=x), A @ x)
    table(
        "A_ij x_j, 3×3",
        {
            "indexdiff compiled A_ij x_j": lambda: f(A=A, x=x),
            "np.einsum('ij,j->i', A, x)": lambda: np.einsum("ij,j->i", A, x),
            "A @ x": lambda: A @ x,
        },
        "np.einsum('ij,j->i', A, x)",
    )
    a = np.random.default_rng(0).normal(size=1000)
    value = ix.compile(ix.parse("tanh(a_i)"))
    derivative = ix.compile(ix.diff(ix.parse("sum_i(tanh(a_i))"), "a"))
    assert np.allclose(derivative(a=a), 1 - np.tanh(a) ** 2)

    def naive_derivative() -> np.ndarray:
        t = np.tanh(a)
        return 1 - t * t

    table(
        "tanh of 1000 float64 elements",
        {"np.tanh(a)": lambda: np.tanh(a), "indexdiff compiled tanh(a_i)": lambda: value(a=a)},
        "np.tanh(a)",
    )
    table(
        "its derivative",
        {"t = np.tanh(a); 1 - t * t": naive_derivative, "indexdiff compiled 1 - tanh(a_k)^2": lambda: derivative(a=a)},
        "t = np.tanh(a); 1 - t * t",
    )


if __name__ == "__main__":
    main()
