"""Softmax, cross-entropy and the gradient of the loss with respect to the logits, by hand.

    z (N, C) logits, y (N,) integer labels in 0..C-1
    probs = softmax(z), row by row (stable: the row max is subtracted first)
    loss  = mean over N of -log(probs[i, y_i])
    dz    = dloss/dz = (probs - one_hot(y)) / N

Run this file for a gradient check and a few steps of gradient descent on the logits:
`python softmax_ce.py`.
"""
import numpy as np


def softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)  # drill: shift
    # drill-begin: probs
    exp = np.exp(shifted)
    probs = exp / exp.sum(axis=1, keepdims=True)
    # drill-end
    return probs


def softmax_cross_entropy(z, y):
    N = z.shape[0]
    probs = softmax(z)
    loss = -np.log(probs[np.arange(N), y]).mean()  # drill: loss
    return float(loss), probs


def grad_logits(probs, y):
    N = probs.shape[0]
    # drill-begin: dz
    dz = probs.copy()
    dz[np.arange(N), y] -= 1.0
    dz /= N
    # drill-end
    return dz


def make_logits(N=8, C=3, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, scale, size=(N, C)), rng.integers(0, C, size=N)


def gradient_check(z, y, eps=1e-6):
    """The largest relative error between dz and central differences of the loss."""
    loss, probs = softmax_cross_entropy(z, y)
    dz = grad_logits(probs, y)
    numeric = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        plus, minus = z.copy(), z.copy()
        plus[index] += eps
        minus[index] -= eps
        numeric[index] = (softmax_cross_entropy(plus, y)[0] - softmax_cross_entropy(minus, y)[0]) / (2 * eps)
    return float((np.abs(numeric - dz) / np.maximum(np.abs(numeric) + np.abs(dz), 1e-12)).max())


def descend(z, y, lr=5.0, iters=50, log_every=10):
    """Gradient descent on the logits themselves: the loss falls towards 0."""
    for i in range(iters):
        loss, probs = softmax_cross_entropy(z, y)
        z = z - lr * grad_logits(probs, y)
        if log_every and i % log_every == 0:
            print(f"iter {i:3d}  loss {loss:.4f}  acc {(probs.argmax(axis=1) == y).mean():.3f}")
    return z


if __name__ == "__main__":
    z, y = make_logits()
    print(f"gradient check: worst relative error {gradient_check(z, y):.1e}")
    loss, probs = softmax_cross_entropy(z, y)
    shifted_loss, _ = softmax_cross_entropy(z + 1000.0, y)
    print(f"loss {loss:.6f}; with every logit + 1000: {shifted_loss:.6f}")
    z = descend(z, y)
    print(f"final loss {softmax_cross_entropy(z, y)[0]:.4f}")
