"""Operators at work: an attention head's value and backward pass (batch 8, 512 tokens, d = 64, float32) and a
Gaussian negative log-likelihood's value and gradient by the covariance (512 dimensions, 2000 samples, float64).
indexdiff's compiled gradient program against numpy written by hand and jax.jit(jax.value_and_grad) (when
installed), timed interleaved in one run (CPU time of the process: every thread of each library counts); the
results are compared before anything is timed.

On a shared machine, multi-threaded BLAS slows down by up to 20× when another process takes a core; compare with one
thread each: OPENBLAS_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"."""

import argparse
import time

import numpy as np
from _timing import interleaved

import indexdiff as ix

ATTENTION = """
S_bij = 0.125 Q_bia K_bja
P_bij = softmax_j(S_bij)
O_bia = P_bij V_bja
L = sum_bia(O_bia G_bia)
"""
GAUSSIAN = """
r_ni = x_ni - mu_i
L = 0.5 N logdet(C_ij) + 0.5 r_ni inv(C_ij) r_nj
"""


def attention_by_hand(Q: np.ndarray, K: np.ndarray, V: np.ndarray, G: np.ndarray) -> tuple[np.ndarray, ...]:
    """The standard backward: dP = dO Vᵀ, dS = P ∘ (dP − rowsum(dP ∘ P)), then dQ = dS K, dK = dSᵀ Q (scaled)."""
    S = Q @ K.transpose(0, 2, 1)
    S *= np.float32(0.125)
    S -= S.max(axis=2, keepdims=True)
    P = np.exp(S, out=S)
    P /= P.sum(axis=2, keepdims=True)
    loss = np.sum((P @ V) * G)
    dP = G @ V.transpose(0, 2, 1)
    dS = dP
    dS -= np.sum(dP * P, axis=2, keepdims=True)
    dS *= P
    dS *= np.float32(0.125)
    return loss, dS @ K, dS.transpose(0, 2, 1) @ Q, P.transpose(0, 2, 1) @ G


def gaussian_by_hand(x: np.ndarray, mu: np.ndarray, C: np.ndarray, N: np.ndarray) -> tuple[np.ndarray, ...]:
    """The scatter matrix S = rᵀr once, one inversion and a Cholesky factor of the (SPD) covariance:
    L = 0.5 N logdet C + 0.5 tr(C⁻¹S), ∂L/∂C = 0.5 (N C⁻¹ − C⁻¹ S C⁻¹)."""
    r = x - mu
    S = r.T @ r
    Ci = np.linalg.inv(C)
    logdet = 2 * np.sum(np.log(np.diagonal(np.linalg.cholesky(C))))
    CiS = Ci @ S
    return 0.5 * N * logdet + 0.5 * np.trace(CiS), 0.5 * (N * Ci - CiS @ Ci)


def jax_contenders() -> dict[str, object]:
    """jax.jit(jax.value_and_grad) of both losses, written as a JAX user would; empty without jax."""
    try:
        import jax
    except ImportError:
        print("jax is not installed (pip install '.[bench]'): no JAX rows")
        return {}
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    def attention(Q, K, V, G):
        P = jax.nn.softmax(jnp.einsum("bia,bja->bij", Q, K) * 0.125, axis=-1)
        return jnp.sum(jnp.einsum("bij,bja->bia", P, V) * G)

    def gaussian(C, x, mu):
        r = x - mu
        return 0.5 * len(x) * jnp.linalg.slogdet(C)[1] + 0.5 * jnp.trace(jnp.linalg.solve(C, r.T @ r))

    return {
        "attention": jax.jit(jax.value_and_grad(attention, argnums=(0, 1, 2))),
        "gaussian": jax.jit(jax.value_and_grad(gaussian)),
        "ready": jax.block_until_ready,
        "asarray": jnp.asarray,
    }


def close(got: tuple, want: tuple, rtol: float, what: str) -> None:
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        err = float(np.max(np.abs(g - w))) / max(float(np.max(np.abs(w))), 1e-300)
        assert err < rtol, f"{what} disagrees with numpy by hand (relative {err:.1e})"


def table(title: str, times: dict[str, float]) -> None:
    base = times["numpy by hand"]
    print(f"\n{title}\n\n| what | median CPU (ms) | × numpy by hand |\n|---|---|---|")
    for what, ms in times.items():
        print(f"| {what} | {ms:.1f} | {ms / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    jx = jax_contenders()

    head = ix.grad(ix.parse(ATTENTION), wrt=["Q", "K", "V"])
    print(f"attention, gradient program:\n{head}\n")
    a = {k: rng.normal(size=(8, 512, 64)).astype(np.float32) for k in "QKVG"}
    a["Q"] *= 8  # logits with a standard deviation of 8 (up to about ±40): the softmax is far from uniform
    f = ix.compile(head)
    hand = attention_by_hand(**a)
    close(f(**a), hand, 1e-4, "indexdiff")
    contenders = {"numpy by hand": lambda: attention_by_hand(**a), "indexdiff compiled": lambda: f(**a)}
    if jx:
        ja = {k: jx["asarray"](v) for k, v in a.items()}
        value, grads = jx["attention"](ja["Q"], ja["K"], ja["V"], ja["G"])
        close((value, *grads), hand, 1e-4, "JAX")
        contenders["jax.jit(jax.value_and_grad)"] = lambda: jx["ready"](
            jx["attention"](ja["Q"], ja["K"], ja["V"], ja["G"])
        )
    attention_times = interleaved(contenders, args.repeats, clock=time.process_time)

    nll = ix.grad(ix.parse(GAUSSIAN), wrt=["C"])
    print(f"Gaussian negative log-likelihood, gradient program:\n{nll}")
    n, samples = 512, 2000
    A = rng.normal(size=(n, n))
    g = {
        "x": rng.normal(size=(samples, n)),
        "mu": rng.normal(size=n),
        "C": A @ A.T / n + np.eye(n),
        "N": np.asarray(float(samples)),
    }
    f = ix.compile(nll)
    hand = gaussian_by_hand(**g)
    close(f(**g), hand, 1e-9, "indexdiff")
    contenders = {"numpy by hand": lambda: gaussian_by_hand(**g), "indexdiff compiled": lambda: f(**g)}
    if jx:
        jg = {k: jx["asarray"](v) for k, v in g.items()}
        close(jx["gaussian"](jg["C"], jg["x"], jg["mu"]), hand, 1e-9, "JAX")
        contenders["jax.jit(jax.value_and_grad)"] = lambda: jx["ready"](jx["gaussian"](jg["C"], jg["x"], jg["mu"]))
    gaussian_times = interleaved(contenders, args.repeats, clock=time.process_time)

    table(
        f"attention value + backward (batch 8, 512 tokens, d = 64, float32), median of {args.repeats}", attention_times
    )
    table(f"Gaussian NLL value + ∂/∂C (n = 512, 2000 samples, float64), median of {args.repeats}", gaussian_times)


if __name__ == "__main__":
    main()
