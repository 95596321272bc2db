"""Single-head scaled dot-product self-attention, with its backward pass written out by hand.

    X (T, d_model) -> Q = X @ Wq, K = X @ Wk (T, d_k), V = X @ Wv (T, d_v)
    S = Q @ K.T / sqrt(d_k) (T, T) -> A = softmax of S over the keys -> O = A @ V (T, d_v)
    loss = 0.5 * sum((O - target)**2) / T

Run this file to fit the head to a fixed random "teacher" head: `python attention_head.py`.
"""
import numpy as np


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
    # drill-begin: softmax
    shifted = S - S.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    P = e / e.sum(axis=axis, keepdims=True)
    # drill-end
    return P


def forward(params, X):
    Wq, Wk, Wv = params["Wq"], params["Wk"], params["Wv"]
    d_k = Wq.shape[1]
    Q = X @ Wq  # drill: Q
    K = X @ Wk  # drill: K
    V = X @ Wv  # drill: V
    S = Q @ K.T / np.sqrt(d_k)  # drill: S
    A = softmax(S, axis=-1)  # drill: A
    O = A @ V  # drill: O
    cache = {"X": X, "Q": Q, "K": K, "V": V, "S": S, "A": A}
    return O, cache


def mse_loss(O, target):
    T = O.shape[0]
    loss = 0.5 * np.sum((O - target) ** 2) / T  # drill: loss
    return float(loss)


def backward(params, cache, O, target):
    X, Q, K, V, A = cache["X"], cache["Q"], cache["K"], cache["V"], cache["A"]
    Wq, Wk, Wv = params["Wq"], params["Wk"], params["Wv"]
    T, d_k = Q.shape
    dO = (O - target) / T  # drill: dO
    dA = dO @ V.T  # drill: dA
    dV = A.T @ dO  # drill: dV
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))  # drill: dS
    dQ = dS @ K / np.sqrt(d_k)  # drill: dQ
    dK = dS.T @ Q / np.sqrt(d_k)  # drill: dK
    dWq = X.T @ dQ  # drill: dWq
    dWk = X.T @ dK  # drill: dWk
    dWv = X.T @ dV  # drill: dWv
    dX = dQ @ Wq.T + dK @ Wk.T + dV @ Wv.T  # drill: dX
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
