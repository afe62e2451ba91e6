"""The recurrence of a clockwork network of K layers, with a backward pass through time derived by hand.

AlarmworkNet is the case K = 2, periods (1, 2); ClockworkRNN is any K. Layer k fires at the
0-based steps l with l % T_k == 0 (T_0 = 1: layer 0 fires at every step) and copies its
state otherwise. Rows are samples, so `W @ z` is written `z @ W.T`. With the input
projections u_k[l] = W_in_k x[l] + b_k computed for the firing steps before the loop, and
all states zero before step 0:

    s_k[l] = z_k[l-1] + z_(k+1)[l-1] + ... + z_(K-1)[l-1]      (layer k reads itself and
                                                                 every slower layer)
    z_k[l] = f(u_k[l] + W_rec_k s_k[l])        if l % T_k == 0, else z_k[l-1]

with f = tanh (the assignment's; f' = 1 - z^2) or relu (max(a, 0); f' = 1 where z > 0, else 0).
For K = 2 these are AlarmworkNet's equations: s_0 = z_in12, s_1 = z_in2[l-1].

That is wiring="slower", the assignment's and the default. wiring="all" is a variant beyond
the assignment (SPEC.md, section "7. A variant beyond the assignment: every layer reads every
layer"): every layer reads the sum of all K states, the s_0 that layer 0 reads,

    z_k[l] = f(u_k[l] + W_rec_k s_0[l])        if l % T_k == 0, else z_k[l-1]

(for K = 2: Layer_rec2 reads z_in12 as Layer_rec1 does).

Backward. Let G_k[l] = dE/dz_k[l], the total gradient (through every later use). Only
z_0[L-1] reaches the output, so G_0[L-1] is the incoming gradient and G_k[L-1] = 0 for
k > 0. Going back one step at a time, with F(l) the layers that fire at step l:

    d_k[l]     = G_k[l] * f'(z_k[l])                     k in F(l)  (through f)
    ds_k[l]    = W_rec_k^T d_k[l]                        k in F(l)
    G_j[l-1]   = sum_(k in F(l), k <= j) ds_k[l]         (s_k[l] is a plain sum of z_j[l-1],
               + (G_j[l]  if j not in F(l))               j >= k; a copied step passes its
                                                          gradient through unchanged)

With wiring="all" every fired layer k reads s_0[l], which holds z_j[l-1] of every j, so the
condition k <= j drops and every layer receives the same sum:

    ds_k[l]    = W_rec_k^T d_k[l]                        k in F(l)
    G_j[l-1]   = sum_(k in F(l)) ds_k[l]                 (the same for every j, fired or not)
               + (G_j[l]  if j not in F(l))

The parameter gradients are sums over the firing steps, taken after the loop in one
product each:

    dE/du_k[l] = d_k[l]        dE/dW_rec_k = sum_(l in fired_k) d_k[l] s_k[l]^T
                               (wiring="all": sum_(l in fired_k) d_k[l] s_0[l]^T)

The loops run in NumPy: on small matrices a NumPy call costs a few times less than a
torch call, and the per-step cost here is call overhead, not arithmetic (benchmark:
studies/benchmark_training_speed.py). The suffix sums s_k for k > 0 change only on the steps
where a layer at or above k fired, so the loop recomputes just those; layer 0's s_0 is
kept for every step, the others are rebuilt from the stored states after the loop. With
wiring="all" the forward loop still keeps the suffix sums (s_0 = z_0 + s_1), but the
W_rec gradients read the kept s_0 at each layer's firing steps and nothing is rebuilt.
`tests/test_bptt.py` checks all of this against autograd and gradcheck.
"""
import functools

import numpy as np
import torch
from torch.autograd.function import once_differentiable
from threadpoolctl import threadpool_limits


def limit_blas_to_one_thread():
    """Limit NumPy's BLAS to one thread for the rest of this process.

    Every product in the engine is tiny (batch x 50 x 50): a second BLAS thread only adds
    hand-off cost, and under load it spins against the other runs (measured: 15-50x slower
    steps). Limiting per call costs ~0.3 ms, so a program calls this once where its process
    starts; importing this module leaves the importer's threads alone.
    """
    threadpool_limits(1, user_api="blas")


def relu(a, out):
    return np.maximum(a, 0, out=out)


def tanh_derivative(z):
    return 1.0 - z * z


def relu_derivative(z):
    return (z > 0).astype(z.dtype)


# f and f', with f' written in terms of the output z = f(a), which is what the forward pass keeps
ACTIVATIONS = {"tanh": (np.tanh, tanh_derivative), "relu": (relu, relu_derivative)}
NONLINEARITIES = tuple(ACTIVATIONS)
# which states a clocked layer reads: "slower", its own and the slower layers' (the assignment's),
# or "all", every layer's (a variant beyond the assignment)
WIRINGS = ("slower", "all")


def check_nonlinearity(nonlinearity):
    """One of NONLINEARITIES; returns it."""
    if nonlinearity not in ACTIVATIONS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}, expected one of {NONLINEARITIES}")
    return nonlinearity


def check_wiring(wiring):
    """One of WIRINGS; returns it."""
    if wiring not in WIRINGS:
        raise ValueError(f"unknown wiring {wiring!r}, expected one of {WIRINGS} ('slower': a layer "
                         f"reads itself and the slower layers; 'all': every layer)")
    return wiring


def check_periods(periods):
    """Periods start at 1 and strictly increase; returns them as a tuple of ints."""
    periods = tuple(periods)
    if (not periods or any(not isinstance(T, int) or isinstance(T, bool) for T in periods)
            or periods[0] != 1 or any(a >= b for a, b in zip(periods, periods[1:]))):
        raise ValueError(f"periods must be integers that start at 1 and strictly increase, "
                         f"e.g. (1, 2, 4, 8); got {periods}")
    return periods


@functools.lru_cache(maxsize=64)
def schedule(seq_len, periods):
    """Which layers fire at each step, made once per (L, periods) and kept.

    Returns, per step l: `fired`, the pairs (k, i) of the layers k > 0 that fire at l, and
    `slots`, for each layer j = 1 .. K-1 its i or None when it copies. i counts the layer's
    firings before l: u_k[i] and z_k's i-th stored state belong to step l = i * T_k. Layer 0
    fires at every step, so it is left out of both.
    """
    slots = tuple(tuple(l // T if l % T == 0 else None for T in periods[1:]) for l in range(seq_len))
    fired = tuple(tuple((k, i) for k, i in enumerate(step, 1) if i is not None) for step in slots)
    return fired, slots


def forward_steps(periods, u, W_rec, nonlinearity="tanh", wiring="slower"):
    """Run the recurrence; returns z_k at the firing steps of every layer, and s_0 of every step.

    u[k]: (number of firing steps of layer k, N, P), NumPy arrays of one dtype. A fired layer
    k reads s[k] (wiring="slower") or s_0 (wiring="all").
    """
    read_all = wiring == "all"
    f = ACTIVATIONS[nonlinearity][0]
    K = len(periods)
    L, N, P = u[0].shape
    W_rec_T = [W.T for W in W_rec]
    z_fired = [np.empty_like(u_k) for u_k in u]          # z_k[l] at the steps l layer k fires
    s0_steps = np.empty_like(u[0])
    zero = np.zeros((N, P), dtype=u[0].dtype)
    z = [zero] * K                                       # the current state of every layer
    s = [zero] * (K + 1)                                 # s[k]: sum of z[k:] for k >= 1; s[K] = 0
    for l, fired in enumerate(schedule(L, periods)[0]):
        s0 = np.add(z[0], s[1], out=s0_steps[l])
        a0 = np.dot(s0, W_rec_T[0])
        a0 += u[0][l]
        for k, i in fired:
            a_k = np.dot(s0 if read_all else s[k], W_rec_T[k])
            a_k += u[k][i]
            z[k] = f(a_k, out=z_fired[k][i])
        z[0] = f(a0, out=z_fired[0][l])
        if fired:                                        # the sums that include a new state
            s[K - 1] = z[K - 1]
            for k in range(min(fired[-1][0], K - 2), 0, -1):
                s[k] = z[k] + s[k + 1]
    return z_fired, s0_steps


def suffix_sums_at_fired_steps(periods, z_fired, k, seq_len):
    """s_k[l] = z_k[l-1] + ... + z_(K-1)[l-1] at the steps layer k fires, from the stored states."""
    previous = np.arange(periods[k], seq_len, periods[k]) - 1   # l - 1; s_k at step 0 is zero
    total = None
    for j in range(len(periods) - 1, k - 1, -1):           # summed in the forward loop's order
        z_j = z_fired[j][previous // periods[j]]           # z_j[l-1]: its last firing at or before l-1
        total = z_j if total is None else z_j + total
    s_k = np.zeros_like(z_fired[k])
    s_k[1:] = total
    return s_k


def backward_steps(periods, grad_z0, z_fired, W_rec, nonlinearity="tanh", wiring="slower"):
    """The loop of the derivation above; returns dE/du_k of every layer at its firing steps."""
    f_prime = ACTIVATIONS[nonlinearity][1]
    K = len(periods)
    L = z_fired[0].shape[0]
    d = [f_prime(z_k) for z_k in z_fired]         # f' at every firing step; becomes d_k[l] in place
    G = [grad_z0] + [np.zeros_like(grad_z0) for _ in range(1, K)]   # G_k of the step being undone
    d0_steps, W_rec0 = d[0], W_rec[0]
    fired_steps, slots_steps = schedule(L, periods)
    if wiring == "all":
        for l, fired, slots in zip(range(L - 1, -1, -1), reversed(fired_steps), reversed(slots_steps)):
            d0 = np.multiply(G[0], d0_steps[l], out=d0_steps[l])
            reaching = np.dot(d0, W_rec0)                 # sum of ds_k over every fired k
            for k, i in fired:
                d_k = np.multiply(G[k], d[k][i], out=d[k][i])
                reaching += np.dot(d_k, W_rec[k])
            G[0] = reaching                               # every layer receives all of it
            for j, i in enumerate(slots, 1):
                if i is None:
                    G[j] += reaching                      # a copied step passes G_j through
                else:
                    np.copyto(G[j], reaching)             # G_j keeps its own array: += above
        return d
    for l, slots in zip(range(L - 1, -1, -1), reversed(slots_steps)):
        d0 = np.multiply(G[0], d0_steps[l], out=d0_steps[l])
        reaching = G[0] = np.dot(d0, W_rec0)             # reaching: sum of ds_k over fired k <= j
        for j, i in enumerate(slots, 1):
            if i is None:
                G[j] += reaching                          # a copied step passes G_j through
                continue
            d_j = np.multiply(G[j], d[j][i], out=d[j][i])
            ds_j = np.dot(d_j, W_rec[j])
            below = reaching                              # the faster layers' share of G_j[l-1]
            if j < K - 1:
                reaching = reaching + ds_j                # what the slower layers receive
            G[j] = np.add(ds_j, below, out=ds_j)
    return d


class ClockworkRecurrence(torch.autograd.Function):
    """(periods, nonlinearity, wiring, u_0 .. u_(K-1), W_rec_0 .. W_rec_(K-1)) -> z_0 of the last step.

    u_k: (number of firing steps of layer k, N, P), time-major CPU tensors; z_0: (N, P).
    """

    @staticmethod
    def forward(ctx, periods, nonlinearity, wiring, *tensors):
        K = len(periods)
        arrays = [t.detach().contiguous().numpy() for t in tensors]
        u, W_rec = arrays[:K], arrays[K:]
        z_fired, s0_steps = forward_steps(periods, u, W_rec, nonlinearity, wiring)
        # W_rec goes through save_for_backward, so that autograd refuses a backward pass after
        # the weights were changed in place, instead of taking the new weights silently
        ctx.save_for_backward(*tensors[K:])
        ctx.periods, ctx.nonlinearity, ctx.wiring = periods, nonlinearity, wiring
        ctx.arrays = (z_fired, s0_steps)
        return torch.from_numpy(z_fired[0][-1].copy())

    @staticmethod
    @once_differentiable                                 # the backward runs in NumPy: no graph
    def backward(ctx, grad_z0):
        periods, wiring, (z_fired, s0_steps) = ctx.periods, ctx.wiring, ctx.arrays
        W_rec = [W.detach().contiguous().numpy() for W in ctx.saved_tensors]
        d = backward_steps(periods, grad_z0.contiguous().numpy(), z_fired, W_rec, ctx.nonlinearity,
                           wiring)
        L, _, P = s0_steps.shape
        grad_W_rec = []
        for k, d_k in enumerate(d):
            if wiring == "all":                          # every layer reads s_0 when it fires
                s_k = s0_steps[0::periods[k]]
            else:
                s_k = s0_steps if k == 0 else suffix_sums_at_fired_steps(periods, z_fired, k, L)
            grad_W_rec.append(d_k.reshape(-1, P).T @ s_k.reshape(-1, P))
        return (None, None, None, *(torch.from_numpy(g) for g in d + grad_W_rec))


def clockwork_recurrence(periods, u, W_rec, nonlinearity="tanh", wiring="slower"):
    """z_0 of the last step of the recurrence above; u and W_rec are lists of K tensors.

    wiring: "slower" (the assignment's) or "all" (every layer reads every layer's state)."""
    return ClockworkRecurrence.apply(check_periods(periods), check_nonlinearity(nonlinearity),
                                     check_wiring(wiring), *u, *W_rec)
