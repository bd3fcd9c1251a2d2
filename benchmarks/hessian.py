"""Value, gradient and Hessian of the logistic-regression loss (X 2000×500, float64): indexdiff against numpy by hand,
jax.jit(jax.hessian) and torch.autograd.functional.hessian (from the bench extra, when installed)."""

import argparse

import numpy as np
from _timing import median_ms

import indexdiff as ix

LOSS = "sum_i(log(1 + exp(-y_i X_ij w_j)))"


def by_hand(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = y * (X @ w)
    s = 1 / (1 + np.exp(-z))
    return np.logaddexp(0, -z).sum(), -X.T @ (y * (1 - s)), (X.T * (s * (1 - s))) @ X


def hessian_by_hand(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    s = 1 / (1 + np.exp(-y * (X @ w)))
    return (X.T * (s * (1 - s))) @ X


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--d", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, args.d))
    y = np.sign(rng.normal(size=args.n))
    w = 0.05 * rng.normal(size=args.d)

    loss = ix.parse(LOSS)
    grad, hess = ix.diff(loss, "w"), ix.diff(loss, "w", "w")
    f = ix.compile(loss, grad, hess)
    h_only = ix.compile(hess)
    print(f"loss      {loss}\ngradient  {grad}\nHessian   {hess}\n")
    ours = f(X=X, y=y, w=w)
    for got, want in zip(ours, by_hand(X, y, w)):
        assert np.allclose(got, want, rtol=1e-10, atol=1e-10), "indexdiff disagrees with numpy"

    rows = []
    hand_all = median_ms(lambda: by_hand(X, y, w), args.repeats)
    hand_h = median_ms(lambda: hessian_by_hand(X, y, w), args.repeats)
    rows.append(("numpy by hand: value + gradient + Hessian", hand_all, hand_all))
    rows.append(
        ("indexdiff compiled: value + gradient + Hessian", median_ms(lambda: f(X=X, y=y, w=w), args.repeats), hand_all)
    )
    rows.append(("numpy by hand: Hessian (X.T * d) @ X", hand_h, hand_h))
    rows.append(("indexdiff compiled: Hessian", median_ms(lambda: h_only(X=X, y=y, w=w), args.repeats), hand_h))
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)

        def jloss(w_: jnp.ndarray) -> jnp.ndarray:
            return jnp.sum(jnp.logaddexp(0.0, -y_j * (X_j @ w_)))

        X_j, y_j, w_j = jnp.asarray(X), jnp.asarray(y), jnp.asarray(w)
        jh = jax.jit(jax.hessian(jloss))
        assert np.allclose(np.asarray(jh(w_j)), ours[2], rtol=1e-8, atol=1e-8)
        rows.append(
            ("jax.jit(jax.hessian): Hessian", median_ms(lambda: jh(w_j).block_until_ready(), args.repeats), hand_h)
        )
    except ImportError:
        print("jax is not installed (pip install '.[bench]'): no JAX row")
    try:
        import torch

        X_t, y_t, w_t = (torch.from_numpy(a) for a in (X, y, w))

        def tloss(w_: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.softplus(-y_t * (X_t @ w_)).sum()

        th = torch.autograd.functional.hessian(tloss, w_t)
        assert np.allclose(th.numpy(), ours[2], rtol=1e-8, atol=1e-8)
        reps = max(3, args.repeats // 5)
        rows.append(
            (
                "torch.autograd.functional.hessian: Hessian",
                median_ms(lambda: torch.autograd.functional.hessian(tloss, w_t), reps, warmup=1),
                hand_h,
            )
        )
    except ImportError:
        print("torch is not installed (pip install '.[bench]'): no PyTorch row")

    print(f"X {args.n}×{args.d} float64, median of {args.repeats} runs\n")
    print("| what | median (ms) | × numpy by hand (same work) |")
    print("|---|---|---|")
    for what, ms, ref in rows:
        print(f"| {what} | {ms:.1f} | {ms / ref:.2f} |")
    ours_h = rows[3][1]
    for what, ms, _ in rows[4:]:
        print(f"\n{what.split(':')[0]} takes {ms / ours_h:.1f}× as long as indexdiff's compiled Hessian")


if __name__ == "__main__":
    main()
