"""Backprop by hand through one head of self-attention: fill in every todo().

Single-head scaled dot-product self-attention over one sequence of T positions:

    X (T, d_model) -> Q = X @ Wq, K = X @ Wk (T, d_k), V = X @ Wv (T, d_v)
    S = Q @ K.T / sqrt(d_k) (T, T) -> A = softmax of S over the keys (each row sums to 1)
    O = A @ V (T, d_v);  loss = 0.5 * sum((O - target)**2) / T

Fill in every blank: the forward pass, a numerically stable softmax, the loss and the
ten links of the gradient chain (dO, dA, dV, dS, dQ, dK, dWq, dWk, dWv, dX). Your code
must work for any sizes T, d_model, d_k, d_v.

The convergence check fits a student head to a fixed random "teacher" head, with your
own forward, mse_loss, backward and sgd_step: T=12 inputs X, the teacher's outputs on
them as the target, plain gradient descent on Wq, Wk and Wv at lr 0.15. It passes when,
within 300 steps, the loss (recomputed by the grader from your final O) falls below 0.2
of its starting value. The reference gets below 0.09 of it on each of 1000 seeds (of the
inputs, the teacher and the starting weights), so the check is never flaky.

Grade it with `drill grade`; run it with `python attention_head.py`.
"""
import numpy as np


def todo(link, shape):
    """A blank for you to fill in: replace the call to todo() with your own code."""
    raise NotImplementedError(f"{link} is not written yet: it should be {shape}")


def init_params(d_model=8, d_k=4, d_v=6, seed=0, scale=1.0):
    """Weights with entries of standard deviation scale / sqrt(d_model)."""
    rng = np.random.default_rng(seed)
    s = scale / np.sqrt(d_model)
    return {
        "Wq": rng.normal(0.0, s, size=(d_model, d_k)),
        "Wk": rng.normal(0.0, s, size=(d_model, d_k)),
        "Wv": rng.normal(0.0, s, size=(d_model, d_v)),
    }


def make_teacher_task(T=12, d_model=8, d_k=4, d_v=6, seed=0):
    """T random inputs X and, as the target, the output of a fixed random "teacher" head on them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 1.0, size=(T, d_model))
    teacher = init_params(d_model, d_k, d_v, seed=seed + 1)
    target, _ = forward(teacher, X)
    return X, target


def softmax(S, axis=-1):
    # softmax: the softmax of S along the given axis, safe from overflow; (same as S)
    P = todo("softmax", "(same as S)")
    return P


def forward(params, X):
    Wq, Wk, Wv = params["Wq"], params["Wk"], params["Wv"]
    d_k = Wq.shape[1]
    # Q: the queries, one row per position; (T, d_k)
    Q = todo("Q", "(T, d_k)")
    # K: the keys, one row per position; (T, d_k)
    K = todo("K", "(T, d_k)")
    # V: the values, one row per position; (T, d_v)
    V = todo("V", "(T, d_v)")
    # S: the scaled scores, row i holding query i against every key; (T, T)
    S = todo("S", "(T, T)")
    # A: the attention weights, each query's softmax over the keys; (T, T)
    A = todo("A", "(T, T)")
    # O: the output, each position's attention-weighted mix of the values; (T, d_v)
    O = todo("O", "(T, d_v)")
    cache = {"X": X, "Q": Q, "K": K, "V": V, "S": S, "A": A}
    return O, cache


def mse_loss(O, target):
    T = O.shape[0]
    # loss: half the squared error, summed over the features and averaged over the T positions; a float
    loss = todo("loss", "a float")
    return float(loss)


def backward(params, cache, O, target):
    X, Q, K, V, A = cache["X"], cache["Q"], cache["K"], cache["V"], cache["A"]
    Wq, Wk, Wv = params["Wq"], params["Wk"], params["Wv"]
    T, d_k = Q.shape
    # dO: the gradient of the loss with respect to the output O; (T, d_v)
    dO = todo("dO", "(T, d_v)")
    # dA: the gradient of the loss with respect to the attention weights A; (T, T)
    dA = todo("dA", "(T, T)")
    # dV: the gradient of the loss with respect to the values V; (T, d_v)
    dV = todo("dV", "(T, d_v)")
    # dS: the gradient of the loss with respect to the scores S, through the softmax; (T, T)
    dS = todo("dS", "(T, T)")
    # dQ: the gradient of the loss with respect to the queries Q; (T, d_k)
    dQ = todo("dQ", "(T, d_k)")
    # dK: the gradient of the loss with respect to the keys K; (T, d_k)
    dK = todo("dK", "(T, d_k)")
    # dWq: the gradient of the loss with respect to Wq; (d_model, d_k)
    dWq = todo("dWq", "(d_model, d_k)")
    # dWk: the gradient of the loss with respect to Wk; (d_model, d_k)
    dWk = todo("dWk", "(d_model, d_k)")
    # dWv: the gradient of the loss with respect to Wv; (d_model, d_v)
    dWv = todo("dWv", "(d_model, d_v)")
    # dX: the gradient of the loss with respect to the input X; (T, d_model)
    dX = todo("dX", "(T, d_model)")
    return {"dO": dO, "dA": dA, "dV": dV, "dS": dS, "dQ": dQ, "dK": dK,
            "dWq": dWq, "dWk": dWk, "dWv": dWv, "dX": dX}


def sgd_step(params, grads, lr):
    return {k: params[k] - lr * grads["d" + k] for k in params}


def train(params, X, target, lr=0.15, iters=300, log_every=50):
    for i in range(iters):
        O, cache = forward(params, X)
        loss = mse_loss(O, target)
        grads = backward(params, cache, O, target)
        params = sgd_step(params, grads, lr)
        if log_every and i % log_every == 0:
            print(f"iter {i:5d}  loss {loss:.5f}")
    return params


if __name__ == "__main__":
    X, target = make_teacher_task()
    params = train(init_params(seed=2), X, target)
    O, _ = forward(params, X)
    print(f"final loss {mse_loss(O, target):.5f}")
