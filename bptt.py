"""AlarmworkNet's two recurrent layers with a backward pass through time derived by hand.

Forward, for l = 0 .. L-1 (0-based; rows are samples, so `W @ z` is written `z @ W.T`),
with the input projections u_in1[l] = W_in1 x[l] + b_in1 and u_in2[l] = W_in2 x[l] + b_in2
computed for all steps before the loop:

    z_in12[l] = z_in1[l-1] + z_in2[l-1]
    z_in1[l]  = tanh(u_in1[l] + W_rec1 z_in12[l])
    z_in2[l]  = tanh(u_in2[l] + W_rec2 z_in2[l-1])   if l is even, else z_in2[l-1]

Backward. Let g1[l] = dE/dz_in1[l] and g2[l] = dE/dz_in2[l], the total gradients (through
every later use). Only z_in1[L-1] reaches the output, so g1[L-1] is the incoming
gradient and g2[L-1] = 0. Going back one step at a time:

    d_in1[l]  = g1[l] * (1 - z_in1[l]^2)              (through tanh)
    dz_in12   = W_rec1^T d_in1[l]                      (z_in12[l] is a plain sum, so this
    g1[l-1]   = dz_in12                                 reaches z_in1[l-1] and z_in2[l-1] alike)
    even l:  d_in2[l] = g2[l] * (1 - z_in2[l]^2)
             g2[l-1]  = dz_in12 + W_rec2^T d_in2[l]
    odd l:   g2[l-1]  = dz_in12 + g2[l]               (a copied step passes its gradient
                                                        through unchanged)

The parameter gradients are sums over steps, taken after the loop in one product each:

    dE/du_in1[l] = d_in1[l]        dE/dW_rec1 = sum_l d_in1[l] z_in12[l]^T
    dE/du_in2[l] = d_in2[l]        dE/dW_rec2 = sum_(even l) d_in2[l] z_in2[l-1]^T

The loops run in NumPy: on small matrices a NumPy call costs a few times less than a
torch call, and the per-step cost here is call overhead, not arithmetic (benchmark:
benchmark_training_speed.py). `tests/test_bptt.py` checks all of this against autograd.
"""
import numpy as np
import torch
from threadpoolctl import threadpool_limits

# Every product here is tiny (batch x 50 x 50): a second BLAS thread only adds hand-off cost,
# and under load it spins against the other runs (measured: 15-50x slower steps). Limiting
# per call costs ~0.3 ms, so the limit is set once for this process.
threadpool_limits(1, user_api="blas")


def forward_steps(u_in1, u_in2, W_rec1, W_rec2):
    """Run the recurrence; returns z_in1 and z_in12 of every step and z_in2 of every even step.

    u_in1: (L, N, P), u_in2: (ceil(L/2), N, P), NumPy arrays of one dtype.
    """
    L, N, P = u_in1.shape
    W_rec1_T, W_rec2_T = W_rec1.T, W_rec2.T
    z_in1_steps = np.empty_like(u_in1)
    z_in12_steps = np.empty_like(u_in1)
    z_in2_fired = np.empty_like(u_in2)
    z_in1 = z_in2 = np.zeros((N, P), dtype=u_in1.dtype)
    for l in range(L):
        z_in12 = np.add(z_in1, z_in2, out=z_in12_steps[l])
        a_in1 = np.dot(z_in12, W_rec1_T)
        a_in1 += u_in1[l]
        if l % 2 == 0:
            a_in2 = np.dot(z_in2, W_rec2_T)
            a_in2 += u_in2[l // 2]
            z_in2 = np.tanh(a_in2, out=z_in2_fired[l // 2])
        z_in1 = np.tanh(a_in1, out=z_in1_steps[l])
    return z_in1_steps, z_in12_steps, z_in2_fired


def backward_steps(grad_z_in1, z_in1_steps, z_in2_fired, W_rec1, W_rec2):
    """The loop of the derivation above; returns dE/du_in1 and dE/du_in2 of every step."""
    L = z_in1_steps.shape[0]
    d_in1 = 1.0 - z_in1_steps * z_in1_steps                 # tanh' of every step, filled in
    d_in2 = 1.0 - z_in2_fired * z_in2_fired                 # place with d_in1[l], d_in2[l]
    g1 = grad_z_in1
    g2 = np.zeros_like(grad_z_in1)
    for l in range(L - 1, -1, -1):
        d1 = np.multiply(g1, d_in1[l], out=d_in1[l])
        dz_in12 = np.dot(d1, W_rec1)
        if l % 2 == 0:
            d2 = np.multiply(g2, d_in2[l // 2], out=d_in2[l // 2])
            g2 = np.dot(d2, W_rec2)
        g2 += dz_in12                   # odd l: the copied step passes g2 through unchanged
        g1 = dz_in12
    return d_in1, d_in2


class AlarmworkRecurrence(torch.autograd.Function):
    """(u_in1, u_in2, W_rec1, W_rec2) -> z_in1 of the last step, shape (N, P).

    u_in1: (L, N, P) and u_in2: (ceil(L/2), N, P) are time-major CPU tensors.
    """

    @staticmethod
    def forward(ctx, u_in1, u_in2, W_rec1, W_rec2):
        arrays = [t.detach().contiguous().numpy() for t in (u_in1, u_in2, W_rec1, W_rec2)]
        z_in1_steps, z_in12_steps, z_in2_fired = forward_steps(*arrays)
        ctx.arrays = arrays[2:], z_in1_steps, z_in12_steps, z_in2_fired
        return torch.from_numpy(z_in1_steps[-1].copy())

    @staticmethod
    def backward(ctx, grad_z_in1):
        (W_rec1, W_rec2), z_in1_steps, z_in12_steps, z_in2_fired = ctx.arrays
        d_in1, d_in2 = backward_steps(grad_z_in1.contiguous().numpy(), z_in1_steps,
                                      z_in2_fired, W_rec1, W_rec2)
        P = W_rec1.shape[0]
        grad_W_rec1 = d_in1.reshape(-1, P).T @ z_in12_steps.reshape(-1, P)
        z_in2_before = np.zeros_like(z_in2_fired)           # z_in2[l-1] at each even step l
        z_in2_before[1:] = z_in2_fired[:-1]                 # (the copies in between change nothing)
        grad_W_rec2 = d_in2.reshape(-1, P).T @ z_in2_before.reshape(-1, P)
        return tuple(torch.from_numpy(g) for g in (d_in1, d_in2, grad_W_rec1, grad_W_rec2))
