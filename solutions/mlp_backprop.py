"""A 2-layer MLP on XOR-shaped data, with its backward pass written out by hand.

    x (N, D) -> z1 = x @ W1 + b1 -> a1 = ReLU(z1) -> z2 = a1 @ W2 + b2 (N, C)
    loss = mean softmax cross-entropy(z2, y)

Run this file to train the network: `python mlp_backprop.py`.
"""
import numpy as np


def init_params(D=2, H=8, C=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(0.0, np.sqrt(2.0 / D), size=(D, H)),
        "b1": np.zeros(H),
        "W2": rng.normal(0.0, np.sqrt(2.0 / H), size=(H, C)),
        "b2": np.zeros(C),
    }


def make_xor(n=200, seed=0, noise=0.4):
    """n points around the four corners of the unit square; label 1 where exactly one coordinate is high."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    y = corners[:, 0] ^ corners[:, 1]
    x = corners * 2.0 - 1.0 + rng.normal(0.0, noise, size=(n, 2))
    return x, y


def forward(params, x):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    z1 = x @ W1 + b1  # drill: z1
    a1 = np.maximum(z1, 0.0)  # drill: a1
    z2 = a1 @ W2 + b2  # drill: z2
    cache = {"x": x, "z1": z1, "a1": a1}
    return z2, cache


def softmax_cross_entropy(z2, y):
    N = z2.shape[0]
    # drill-begin: loss
    shifted = z2 - z2.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probs = exp / exp.sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(N), y]).mean()
    # drill-end
    return float(loss), probs


def backward(params, cache, probs, y):
    x, z1, a1 = cache["x"], cache["z1"], cache["a1"]
    W2 = params["W2"]
    N = probs.shape[0]
    # drill-begin: dz2
    dz2 = probs.copy()
    dz2[np.arange(N), y] -= 1.0
    dz2 /= N
    # drill-end
    dW2 = a1.T @ dz2  # drill: dW2
    db2 = dz2.sum(axis=0)  # drill: db2
    da1 = dz2 @ W2.T  # drill: da1
    dz1 = da1 * (z1 > 0)  # drill: dz1
    dW1 = x.T @ dz1  # drill: dW1
    db1 = dz1.sum(axis=0)  # drill: db1
    return {"dz2": dz2, "dW2": dW2, "db2": db2, "da1": da1, "dz1": dz1, "dW1": dW1, "db1": db1}


def sgd_step(params, grads, lr):
    new_params = {k: params[k] - lr * grads["d" + k] for k in params}  # drill: step
    return new_params


def accuracy(params, x, y):
    z2, _ = forward(params, x)
    return float((z2.argmax(axis=1) == y).mean())


def train(params, x, y, lr=0.5, iters=3000, log_every=300):
    for i in range(iters):
        z2, cache = forward(params, x)
        loss, probs = softmax_cross_entropy(z2, y)
        grads = backward(params, cache, probs, y)
        params = sgd_step(params, grads, lr)
        if log_every and i % log_every == 0:
            print(f"iter {i:5d}  loss {loss:.4f}  acc {accuracy(params, x, y):.3f}")
    return params


if __name__ == "__main__":
    x, y = make_xor()
    params = train(init_params(), x, y)
    z2, _ = forward(params, x)
    loss, _ = softmax_cross_entropy(z2, y)
    print(f"final loss {loss:.4f}  acc {accuracy(params, x, y):.3f}")
