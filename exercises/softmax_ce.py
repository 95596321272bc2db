"""Softmax, cross-entropy and dz on the whiteboard: fill in every todo().

The most-asked whiteboard derivation, alone: logits z (N, C) and integer labels
y in 0..C-1.

    probs = softmax(z), row by row, numerically stable
    loss  = mean over the N rows of -log(probs[i, y_i])
    dz    = the gradient of loss with respect to z, shape (N, C)

Fill in every blank: the max shift, the normalisation, the loss and dz. Your code must
work for any sizes N and C, and for logits as large as 1000.

There is no network here, so there is no convergence check: the finite-difference
check (your dz against central differences of your own loss) is the one that proves
the gradient points downhill. Running the file does a few steps of gradient descent
on the logits, to watch the loss fall.

Grade it with `drill grade`; run it with `python softmax_ce.py`.
"""
import numpy as np


def todo(link, shape):
    """A blank for you to fill in: replace the call to todo() with your own code."""
    raise NotImplementedError(f"{link} is not written yet: it should be {shape}")


def softmax(z):
    # shift: the logits shifted so that exp cannot overflow; (N, C)
    shifted = todo("shift", "(N, C)")
    # probs: the softmax of each row of logits; (N, C)
    probs = todo("probs", "(N, C)")
    return probs


def softmax_cross_entropy(z, y):
    N = z.shape[0]
    probs = softmax(z)
    # loss: the mean cross-entropy of probs against the labels y; a float
    loss = todo("loss", "a float")
    return float(loss), probs


def grad_logits(probs, y):
    N = probs.shape[0]
    # dz: the gradient of the loss with respect to the logits z; (N, C)
    dz = todo("dz", "(N, C)")
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
