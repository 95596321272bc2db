"""A 2-layer MLP with batch norm between the first affine map and the ReLU, on XOR-shaped data.

    x (N, D) -> z1 = x @ W1 + b1 -> batch norm (training mode) -> h = gamma * xhat + beta
      -> a1 = ReLU(h) -> z2 = a1 @ W2 + b2 (N, C);  loss = mean softmax cross-entropy(z2, y)

Batch norm uses the statistics of the batch itself: mu and the biased variance var over
the N examples, xhat = (z1 - mu) / sqrt(var + EPS).

Run this file to train the network: `python batchnorm_mlp.py`.
"""
import numpy as np


EPS = 1e-5  # keeps 1 / sqrt(var + EPS) finite for a unit that does not vary over the batch


def init_params(D=2, H=8, C=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.normal(0.0, np.sqrt(2.0 / D), size=(D, H)),
        "b1": np.zeros(H),
        "gamma": np.ones(H),
        "beta": np.zeros(H),
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
    W1, b1, gamma, beta = params["W1"], params["b1"], params["gamma"], params["beta"]
    W2, b2 = params["W2"], params["b2"]
    N = x.shape[0]
    z1 = x @ W1 + b1  # drill: z1
    mu = z1.mean(axis=0)  # drill: mu
    var = ((z1 - mu) ** 2).sum(axis=0) / N  # drill: var
    inv_std = 1.0 / np.sqrt(var + EPS)  # drill: inv_std
    xhat = (z1 - mu) * inv_std  # drill: xhat
    h = gamma * xhat + beta  # drill: h
    a1 = np.maximum(h, 0.0)  # drill: a1
    z2 = a1 @ W2 + b2  # drill: z2
    cache = {"x": x, "z1": z1, "mu": mu, "var": var, "inv_std": inv_std, "xhat": xhat, "h": h, "a1": a1}
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
    x, z1, mu, inv_std = cache["x"], cache["z1"], cache["mu"], cache["inv_std"]
    xhat, h, a1 = cache["xhat"], cache["h"], cache["a1"]
    gamma, W2 = params["gamma"], params["W2"]
    N = probs.shape[0]
    # drill-begin: dz2
    dz2 = probs.copy()
    dz2[np.arange(N), y] -= 1.0
    dz2 /= N
    # drill-end
    dW2 = a1.T @ dz2  # drill: dW2
    db2 = dz2.sum(axis=0)  # drill: db2
    da1 = dz2 @ W2.T  # drill: da1
    dh = da1 * (h > 0)  # drill: dh
    dgamma = (xhat * dh).sum(axis=0)  # drill: dgamma
    dbeta = dh.sum(axis=0)  # drill: dbeta
    dxhat = gamma * dh  # drill: dxhat
    # drill-begin: dz1
    dvar = -0.5 * inv_std ** 3 * (dxhat * (z1 - mu)).sum(axis=0)
    dmu = -inv_std * dxhat.sum(axis=0)  # var's own path to mu adds dvar * mean(-2 (z1 - mu)) = 0
    dz1 = dxhat * inv_std + dvar * 2.0 * (z1 - mu) / N + dmu / N
    # drill-end
    dW1 = x.T @ dz1  # drill: dW1
    db1 = dz1.sum(axis=0)  # drill: db1
    return {"dz2": dz2, "dW2": dW2, "db2": db2, "da1": da1, "dh": dh, "dgamma": dgamma, "dbeta": dbeta,
            "dxhat": dxhat, "dz1": dz1, "dW1": dW1, "db1": db1}


def sgd_step(params, grads, lr):
    new_params = {k: params[k] - lr * grads["d" + k] for k in params}  # drill: step
    return new_params


def accuracy(params, x, y):
    z2, _ = forward(params, x)
    return float((z2.argmax(axis=1) == y).mean())


def train(params, x, y, lr=0.5, iters=500, log_every=50):
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
