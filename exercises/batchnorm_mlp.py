"""Backprop by hand through batch norm: fill in every todo().

The 2-layer MLP of mlp_backprop with a batch-norm layer (training mode: the statistics
of the batch itself) between the first affine map and the ReLU:

    x (N, D) -> z1 = x @ W1 + b1 (N, H)
      -> mu = mean of z1 over the batch (H,), var = biased variance over the batch (H,)
      -> xhat = (z1 - mu) / sqrt(var + EPS) -> h = gamma * xhat + beta (N, H)
      -> a1 = ReLU(h) -> z2 = a1 @ W2 + b2 (N, C)
    loss = mean softmax cross-entropy(z2, y), y integer labels in 0..C-1, EPS = 1e-5

params holds W1 (D, H), b1 (H,), gamma (H,), beta (H,), W2 (H, C), b2 (C,). forward's
cache holds x, z1, mu, var, inv_std = 1 / sqrt(var + EPS), xhat, h and a1. backward
returns the eleven links dz2, dW2, db2, da1, dh, dgamma, dbeta, dxhat, dz1, dW1, db1.

Fill in every blank: the forward pass, the loss, the links of the gradient chain (the
hard one is dz1: mu and var depend on every row of z1) and the update step. Your code
must work for any sizes N, D, H, C.

Grade it with `drill grade`; run it with `python batchnorm_mlp.py`.
"""
import numpy as np


def todo(link, shape):
    """A blank for you to fill in: replace the call to todo() with your own code."""
    raise NotImplementedError(f"{link} is not written yet: it should be {shape}")


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
    # z1: the first layer's affine map, before batch norm; (N, H)
    z1 = todo("z1", "(N, H)")
    # mu: the mean of each unit of z1 over the batch; (H,)
    mu = todo("mu", "(H,)")
    # var: the variance of each unit of z1 over the batch; (H,)
    var = todo("var", "(H,)")
    # inv_std: one over the standard deviation of each unit, kept safe from a zero variance; (H,)
    inv_std = todo("inv_std", "(H,)")
    # xhat: z1 normalised per unit to mean 0 and variance 1 over the batch; (N, H)
    xhat = todo("xhat", "(N, H)")
    # h: the normalised units, scaled and shifted by the learned gamma and beta; (N, H)
    h = todo("h", "(N, H)")
    # a1: the ReLU activation of h; (N, H)
    a1 = todo("a1", "(N, H)")
    # z2: the logits, one row of C scores per example; (N, C)
    z2 = todo("z2", "(N, C)")
    cache = {"x": x, "z1": z1, "mu": mu, "var": var, "inv_std": inv_std, "xhat": xhat, "h": h, "a1": a1}
    return z2, cache


def softmax_cross_entropy(z2, y):
    N = z2.shape[0]
    # loss: the softmax probabilities of z2 and the mean cross-entropy over the batch; a float, and probs (N, C)
    loss, probs = todo("loss", "a float, and probs (N, C)")
    return float(loss), probs


def backward(params, cache, probs, y):
    x, z1, mu, inv_std = cache["x"], cache["z1"], cache["mu"], cache["inv_std"]
    xhat, h, a1 = cache["xhat"], cache["h"], cache["a1"]
    gamma, W2 = params["gamma"], params["W2"]
    N = probs.shape[0]
    # dz2: the gradient of the loss with respect to the logits z2; (N, C)
    dz2 = todo("dz2", "(N, C)")
    # dW2: the gradient of the loss with respect to W2; (H, C)
    dW2 = todo("dW2", "(H, C)")
    # db2: the gradient of the loss with respect to b2; (C,)
    db2 = todo("db2", "(C,)")
    # da1: the gradient of the loss with respect to the activation a1; (N, H)
    da1 = todo("da1", "(N, H)")
    # dh: the gradient of the loss with respect to h, the input of the ReLU; (N, H)
    dh = todo("dh", "(N, H)")
    # dgamma: the gradient of the loss with respect to the scale gamma; (H,)
    dgamma = todo("dgamma", "(H,)")
    # dbeta: the gradient of the loss with respect to the shift beta; (H,)
    dbeta = todo("dbeta", "(H,)")
    # dxhat: the gradient of the loss with respect to the normalised units xhat; (N, H)
    dxhat = todo("dxhat", "(N, H)")
    # dz1: the gradient of the loss with respect to z1, through the normalisation and the batch statistics; (N, H)
    dz1 = todo("dz1", "(N, H)")
    # dW1: the gradient of the loss with respect to W1; (D, H)
    dW1 = todo("dW1", "(D, H)")
    # db1: the gradient of the loss with respect to b1; (H,)
    db1 = todo("db1", "(H,)")
    return {"dz2": dz2, "dW2": dW2, "db2": db2, "da1": da1, "dh": dh, "dgamma": dgamma, "dbeta": dbeta,
            "dxhat": dxhat, "dz1": dz1, "dW1": dW1, "db1": db1}


def sgd_step(params, grads, lr):
    # step: one step of plain gradient descent on every parameter, gamma and beta included; a dict like params
    new_params = todo("step", "a dict like params")
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
