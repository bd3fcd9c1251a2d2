"""One attention head, S = Q Kᵀ/√d, P = softmax_j(S), O = P V, with the loss L = Σ O ∘ G for a fixed cotangent G:
its backward pass derived by ix.grad, printed in index notation, compiled, and checked at logits of about 10³
against a hand-written numpy backward, central differences and (where installed) jax.grad."""

import numpy as np
from _verify import compare, finish, report_check, with_matrix

import indexdiff as ix

D = 64  # the head's width: 1/√64 = 0.125 is written as a number
HEAD = """
S_ij = 0.125 Q_ia K_ja
P_ij = softmax_j(S_ij)
O_ia = P_ij V_ja
L = sum_ia(O_ia G_ia)
"""
WRT = ["Q", "K", "V"]


def by_hand(Q: np.ndarray, K: np.ndarray, V: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, ...]:
    """The textbook attention backward: dP = dO Vᵀ, dS = P ∘ (dP − rowsum(dP ∘ P)), a stable softmax."""
    S = Q @ K.T / np.sqrt(D)
    E = np.exp(S - S.max(axis=1, keepdims=True))
    P = E / E.sum(axis=1, keepdims=True)
    out = P @ V
    dP = G @ V.T
    dS = P * (dP - np.sum(dP * P, axis=1, keepdims=True))
    return np.sum(out * G), dS @ K / np.sqrt(D), dS.T @ Q / np.sqrt(D), P.T @ G


def central_differences(loss, arrays: dict[str, np.ndarray], name: str, h: float) -> np.ndarray:
    """∂loss/∂arrays[name] by central differences, one entry at a time."""
    x = arrays[name]
    out = np.empty_like(x)
    for k in np.ndindex(x.shape):
        saved = x[k]
        x[k] = saved + h
        up = float(loss(**arrays))
        x[k] = saved - h
        down = float(loss(**arrays))
        x[k] = saved
        out[k] = (up - down) / (2 * h)
    return out


def data(rng: np.random.Generator, n: int, m: int) -> dict[str, np.ndarray]:
    """Logits of about ±10³ where each query's two best keys are within O(1) of each other: the gradient is far
    from zero, and exp(S) alone overflows."""
    K = rng.normal(size=(m, D))
    K[1] = K[0] + 1e-2 * rng.normal(size=D)  # keys 0 and 1 compete for every query
    Q = 120 * K[0] + 30 * rng.normal(size=(n, D))  # ... and score about 10³
    return {"Q": Q, "K": K, "V": rng.normal(size=(m, D)), "G": rng.normal(size=(n, D))}


def main() -> None:
    head = ix.parse(HEAD)
    backward = ix.grad(head, "L", wrt=WRT)
    print(f"the head ({D = }):\n{head}\n\nits backward pass (ix.grad):")
    forward = len(head.statements)
    for statement in backward.statements[forward:]:
        print(with_matrix(statement))
    print()
    failures: list[str] = []
    derived = "\n".join(str(s) for s in backward.statements[forward:])
    if "exp" in derived or "softmax" in derived:
        failures.append("the backward pass recomputes the softmax")
    print(f"  the backward pass reuses P (no exp or softmax after the forward statements): {not failures}\n")

    rng = np.random.default_rng(0)
    arrays = data(rng, n=5, m=6)
    S = arrays["Q"] @ arrays["K"].T / np.sqrt(D)
    top2 = np.sort(S, axis=1)[:, -2:]
    gap = float(np.max(top2[:, 1] - top2[:, 0]))
    print(f"data: |S| up to {np.abs(S).max():.0f}; each row's two largest logits at most {gap:.2f} apart")
    compiled = ix.compile(backward)
    ours = compiled(**arrays)
    hand = by_hand(**arrays)
    print("compiled backward against numpy by hand:")
    for name, got, want in zip(["L", *(f"dL/d{w}" for w in WRT)], ours, hand):
        compare(name, got, want, failures, width=10)
        if not np.all(np.isfinite(got)):
            failures.append(f"{name} is not finite")
    print("ix.evaluate of the backward program against numpy by hand:")
    for name, want in zip(WRT, hand[1:]):
        compare(f"dL/d{name}", ix.evaluate(backward, arrays, output=f"d{name}"), want, failures, width=10)

    print("central differences of the compiled forward loss (h = 1e-5):")
    loss = ix.compile(head)
    for name, got in zip(WRT, ours[1:]):
        fd = central_differences(loss, {k: v.copy() for k, v in arrays.items()}, name, 1e-5)
        err, scale = float(np.max(np.abs(got - fd))), float(np.max(np.abs(fd)))
        ok = err <= 1e-6 * max(1.0, scale)  # the differences' own error: about |S| eps / h + h² |L'''|
        print(f"  dL/d{name:<6} max |difference| {err:.1e} (largest entry {scale:.1e})  {'ok' if ok else 'FAILED'}")
        if not ok:
            failures.append(f"central differences of dL/d{name}")
    report_check("random data, by Q", ix.check(head, "Q"), failures)

    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
    except ImportError:
        print("jax is not installed: its comparison is skipped")
    else:

        def jax_loss(Q, K, V, G):
            P = jax.nn.softmax(Q @ K.T / jnp.sqrt(D), axis=1)
            return jnp.sum((P @ V) * G)

        grads = jax.grad(jax_loss, argnums=(0, 1, 2))(*(arrays[k] for k in ("Q", "K", "V", "G")))
        print("compiled backward against jax.grad (float64):")
        for name, got, want in zip(WRT, ours[1:], grads):
            compare(f"dL/d{name}", got, np.asarray(want), failures, width=10)
    print()
    finish(failures, "attention gradients verified at logits of about 1e3")


if __name__ == "__main__":
    main()
