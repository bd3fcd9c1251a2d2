"""Train the network in net.idx with plain gradient descent on two moons; its backward pass comes from ix.grad."""

import time
from pathlib import Path

import numpy as np

import indexdiff as ix

HERE = Path(__file__).parent


def two_moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, labels +1 and -1."""
    t = rng.uniform(0, np.pi, size=n)
    upper = np.stack([np.cos(t), np.sin(t)], axis=1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    x = np.concatenate([upper, lower]) + noise * rng.normal(size=(2 * n, 2))
    y = np.concatenate([np.ones(n), -np.ones(n)])
    return x, y


def main() -> None:
    start = time.perf_counter()
    program = ix.parse((HERE / "net.idx").read_text())
    gradient = ix.grad(program, wrt=["W1", "b1", "w2", "b2"])
    print("the network and its backward pass, derived by indexdiff:\n")
    print(gradient, "\n")
    print("in matrix notation:\n")
    print(ix.codegen(program, "W1", "b1", "w2", "b2", format="matrix"), "\n")
    step = ix.compile(gradient)  # returns (L, dW1, db1, dw2, db2)
    forward = ix.compile(ix.Program(program.statements, ("z2",)))

    rng = np.random.default_rng(0)
    x, y = two_moons(200, 0.1, rng)
    hidden = 32
    params = {
        "W1": rng.normal(size=(hidden, 2)),
        "b1": np.zeros(hidden),
        "w2": rng.normal(size=hidden) / np.sqrt(hidden),
        "b2": np.float64(0.0),
    }
    rate = 1.0 / len(y)  # gradient descent on the mean loss
    losses = []
    for epoch in range(3001):
        loss, *grads = step(**params, x=x, y=y)
        losses.append(float(loss) / len(y))
        for (name, value), g in zip(params.items(), grads):
            params[name] = value - rate * np.asarray(g)
        if epoch % 500 == 0:
            accuracy = np.mean(np.sign(forward(**params, x=x)) == y)
            print(f"epoch {epoch:5d}  mean loss {losses[-1]:.4f}  training accuracy {accuracy:.3f}")
    accuracy = float(np.mean(np.sign(forward(**params, x=x)) == y))
    print(f"\nfinal training accuracy {accuracy:.3f} in {time.perf_counter() - start:.1f} s")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(losses)
        ax.set(xlabel="epoch", ylabel="mean logistic loss", yscale="log", title="two moons, gradient descent")
        fig.tight_layout()
        fig.savefig(HERE / "loss.png", dpi=100)
        print(f"loss curve written to {HERE / 'loss.png'}")
    except ImportError:
        print("(install matplotlib for a loss-curve plot)")
    if accuracy < 0.95:
        raise SystemExit(f"training accuracy {accuracy:.3f} is below 0.95")


if __name__ == "__main__":
    main()
