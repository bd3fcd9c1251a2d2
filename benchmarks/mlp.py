"""An MLP's loss and gradients (batch 256, 784-512-512-10, float32 or --dtype float64, relu then sigmoid, squared
loss): indexdiff's compiled gradient program against numpy backprop by hand, PyTorch and
jax.jit(jax.value_and_grad) when installed, timed interleaved (CPU time of the process, then wall time); and the
time to derive the gradient program against depth (benchmarks/derive.py measures that in fresh processes).

Run with one BLAS/XLA thread for every library (on a shared machine multi-threaded BLAS spin-waits):
OPENBLAS_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
python benchmarks/mlp.py [--dtype float64]"""

import argparse
import time

import numpy as np
from _timing import interleaved

import indexdiff as ix

NET = """
z1_bi = W1_ij x_bj + b1_i
h1_bi = relu(z1_bi)
z2_bi = W2_ij h1_bj + b2_i
h2_bi = relu(z2_bi)
z3_bi = W3_ij h2_bj + b3_i
h3_bi = sigmoid(z3_bi)
L = sum_bi((h3_bi - y_bi)^2)
"""
WRT = ["W1", "b1", "W2", "b2", "W3", "b3"]


def by_hand(W1, b1, W2, b2, W3, b3, x, y):
    z1 = x @ W1.T + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ W2.T + b2
    h2 = np.maximum(z2, 0)
    z3 = h2 @ W3.T + b3
    h3 = 1 / (1 + np.exp(-z3))
    r = h3 - y
    dz3 = 2 * r * h3 * (1 - h3)
    dz2 = (dz3 @ W3) * (z2 > 0)
    dz1 = (dz2 @ W2) * (z1 > 0)
    loss = np.sum(r * r)
    return loss, dz1.T @ x, dz1.sum(0), dz2.T @ h1, dz2.sum(0), dz3.T @ h2, dz3.sum(0)


def deep(depth: int) -> str:
    lines = [f"h{k + 1}_bi = relu(W{k}_ij h{k}_bj + c{k}_i)" for k in range(depth)]
    return "\n".join([*lines, f"L = sum_bi((h{depth}_bi - y_bi)^2)"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(0)
    sizes = [(512, 784), (512, 512), (10, 512)]
    arrays = {}
    for k, (n_out, n_in) in enumerate(sizes, start=1):
        arrays[f"W{k}"] = (rng.normal(size=(n_out, n_in)) / np.sqrt(n_in)).astype(dtype)
        arrays[f"b{k}"] = np.zeros(n_out, dtype=dtype)
    arrays["x"] = rng.normal(size=(256, 784)).astype(dtype)
    arrays["y"] = rng.uniform(size=(256, 10)).astype(dtype)

    program = ix.grad(ix.parse(NET), wrt=WRT)
    print("\n".join(str(s) for s in program.statements[7:]), "\n")
    f = ix.compile(program)
    ours = f(**arrays)
    hand = by_hand(*(arrays[n] for n in ("W1", "b1", "W2", "b2", "W3", "b3", "x", "y")))
    for got, want in zip(ours, hand):
        assert got.dtype == dtype
        assert np.allclose(got, want, rtol=1e-3, atol=1e-4), "indexdiff disagrees with numpy"

    contenders = {
        "numpy backprop by hand": lambda: by_hand(*(arrays[n] for n in ("W1", "b1", "W2", "b2", "W3", "b3", "x", "y"))),
        "indexdiff compiled gradient program": lambda: f(**arrays),
    }
    try:
        import torch

        torch.set_num_threads(1)  # one thread, as numpy's BLAS and XLA get
        t = {k: torch.from_numpy(v) for k, v in arrays.items()}
        params = {k: t[k].clone().requires_grad_(True) for k in WRT}

        def torch_step():
            h1 = torch.relu(t["x"] @ params["W1"].T + params["b1"])
            h2 = torch.relu(h1 @ params["W2"].T + params["b2"])
            h3 = torch.sigmoid(h2 @ params["W3"].T + params["b3"])
            loss = ((h3 - t["y"]) ** 2).sum()
            return torch.autograd.grad(loss, [params[k] for k in WRT])

        contenders["PyTorch autograd"] = torch_step
    except ImportError:
        print("torch is not installed (pip install '.[bench]'): no PyTorch row")
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", dtype == np.float64)

        def jloss(p, x, y):
            h1 = jax.nn.relu(x @ p["W1"].T + p["b1"])
            h2 = jax.nn.relu(h1 @ p["W2"].T + p["b2"])
            h3 = jax.nn.sigmoid(h2 @ p["W3"].T + p["b3"])
            return jnp.sum((h3 - y) ** 2)

        jg = jax.jit(jax.value_and_grad(jloss))
        jp = {k: jnp.asarray(arrays[k]) for k in WRT}
        jx, jy = jnp.asarray(arrays["x"]), jnp.asarray(arrays["y"])
        assert jg(jp, jx, jy)[0].dtype == dtype
        contenders["jax.jit(jax.value_and_grad)"] = lambda: jax.block_until_ready(jg(jp, jx, jy))
    except ImportError:
        print("jax is not installed (pip install '.[bench]'): no JAX row")

    cpu = interleaved(contenders, args.repeats, clock=time.process_time)
    wall = interleaved(contenders, args.repeats)
    print(f"batch 256, 784-512-512-10, {args.dtype}, median of {args.repeats} interleaved runs\n")
    print("| what | CPU ms | × numpy by hand (CPU) | wall ms | × numpy by hand (wall) |")
    print("|---|---|---|---|---|")
    first = next(iter(contenders))
    for what in contenders:
        print(
            f"| {what} | {cpu[what]:.2f} | {cpu[what] / cpu[first]:.2f} | {wall[what]:.2f} | "
            f"{wall[what] / wall[first]:.2f} |"
        )

    print("\nderiving the gradient program (parse + ix.grad) against depth:\n")
    print("| layers | statements in the gradient program | CPU seconds |")
    print("|---|---|---|")
    for depth in (10, 50, 200):
        text = deep(depth)
        start = time.process_time()
        g = ix.grad(ix.parse(text), wrt=[f"W{k}" for k in range(depth)])
        print(f"| {depth} | {len(g.statements)} | {time.process_time() - start:.3f} |")


if __name__ == "__main__":
    main()
