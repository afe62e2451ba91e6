"""The recurrent networks; each maps x (N, L, 2) to y (N, 1).

SimpleRNN and LSTM are PyTorch's own layers. AlarmworkRNN is written by hand from the
equations in SPEC.md, with the same names; see `AlarmworkRNN.forward`. ClockworkRNN
generalises it to K layers at K clock periods; both run on one engine, bptt.py.
"""
import math

import torch
from torch import nn

from lib import bptt

# ------------------------------------------------------------------------------ initialization


def xavier_uniform_(weight, generator=None):
    """Fill a matrix in place from U[-a, a], a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010).

    fan_in is the number of columns (inputs), fan_out the number of rows (outputs),
    because every weight here acts as `W @ column_vector`.
    """
    fan_out, fan_in = weight.shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        uniform01 = torch.rand(weight.shape, generator=generator, dtype=weight.dtype)
        weight.copy_((2.0 * uniform01 - 1.0) * bound)
    return weight


# ------------------------------------------------------------------------------ out-of-the-box models


class SimpleRNN(nn.Module):
    """PyTorch's tanh `nn.RNN`, then `nn.Linear` on the output of the last step."""

    def __init__(self, num_inputs=2, num_hidden=50, num_outputs=1):
        super().__init__()
        self.rnn = nn.RNN(num_inputs, num_hidden, batch_first=True)
        self.linear = nn.Linear(num_hidden, num_outputs)

    def forward(self, x):
        outputs, _ = self.rnn(x)
        return self.linear(outputs[:, -1])


class LSTM(nn.Module):
    """PyTorch's `nn.LSTM`, then `nn.Linear` on the output of the last step."""

    def __init__(self, num_inputs=2, num_hidden=50, num_outputs=1):
        super().__init__()
        self.lstm = nn.LSTM(num_inputs, num_hidden, batch_first=True)
        self.linear = nn.Linear(num_hidden, num_outputs)

    def forward(self, x):
        outputs, _ = self.lstm(x)
        return self.linear(outputs[:, -1])


# ------------------------------------------------------------------------------ AlarmworkNet

ENGINES = ("autograd", "bptt")


class AlarmworkRNN(nn.Module):
    """AlarmworkNet: Layer_rec1 runs every step, Layer_rec2 every second step, Layer_out reads z_in1.

    engine="autograd" runs the equations step by step and lets autograd differentiate them;
    engine="bptt" gives the same numbers through a hand-derived backward pass (bptt.py),
    several times faster on the CPU. It falls back to autograd off the CPU.
    """

    def __init__(self, num_inputs=2, num_hidden=50, num_outputs=1, scalar_out=False,
                 engine="bptt"):
        super().__init__()
        if engine not in ENGINES:
            raise ValueError(f"unknown engine '{engine}', expected one of {ENGINES}")
        self.scalar_out = scalar_out
        self.engine = engine
        P = num_hidden
        self.W_in1 = nn.Parameter(torch.empty(P, num_inputs))
        self.W_rec1 = nn.Parameter(torch.empty(P, P))
        self.b_in1 = nn.Parameter(torch.zeros(P))
        self.W_in2 = nn.Parameter(torch.empty(P, num_inputs))
        self.W_rec2 = nn.Parameter(torch.empty(P, P))
        self.b_in2 = nn.Parameter(torch.zeros(P))
        self.W_out = nn.Parameter(torch.empty(num_outputs, P))
        self.b_out = nn.Parameter(torch.zeros(num_outputs))
        for weight in (self.W_in1, self.W_rec1, self.W_in2, self.W_rec2, self.W_out):
            xavier_uniform_(weight)

    def forward(self, x):
        if self.engine == "bptt" and x.device.type == "cpu":
            z_in1 = self.recurrent_layers_bptt(x)
        else:
            z_in1 = self.recurrent_layers(x)
        a_out = self.layer_out_scalar(z_in1) if self.scalar_out else self.layer_out(z_in1)
        return torch.tanh(a_out)                              # y = tanh(a_out[L])

    def recurrent_layers(self, x):
        """Layer_rec1 and Layer_rec2 over all steps; returns z_in1[L], shape (N, P).

        Row-vector form: `z @ W.T` is `W @ z` for every sample of the batch at once.
        """
        N, L, _ = x.shape
        z_in1 = x.new_zeros(N, self.W_rec1.shape[0])          # z_in1[0] = 0
        z_in2 = x.new_zeros(N, self.W_rec2.shape[0])          # z_in2[0] = 0
        for l in range(L):
            z_in12 = z_in1 + z_in2                            # z_in12[l] = z_in1[l-1] + z_in2[l-1]
            a_in1 = x[:, l] @ self.W_in1.T + z_in12 @ self.W_rec1.T + self.b_in1
            if l % 2 == 0:                                    # 1-based steps 1, 3, 5, ...
                a_in2 = x[:, l] @ self.W_in2.T + z_in2 @ self.W_rec2.T + self.b_in2
                z_in2 = torch.tanh(a_in2)
            # else: z_in2[l] = z_in2[l-1], the same tensor carries over
            z_in1 = torch.tanh(a_in1)
        return z_in1

    def recurrent_layers_bptt(self, x):
        """The same as `recurrent_layers`: the clockwork engine with periods (1, 2)."""
        x_steps = x.transpose(0, 1)                           # time-major (L, N, 2)
        u_in1 = x_steps @ self.W_in1.T + self.b_in1           # W_in1 x[l] + b_in1, all l at once
        u_in2 = x_steps[0::2] @ self.W_in2.T + self.b_in2     # only the steps Layer_rec2 fires
        return bptt.clockwork_recurrence((1, 2), [u_in1, u_in2], [self.W_rec1, self.W_rec2])

    def layer_out(self, z):
        """Vector form: a_out = W_out z + b_out for the whole batch in one product."""
        return z @ self.W_out.T + self.b_out

    def layer_out_scalar(self, z):
        """Scalar form: a[n][j] = b_out[j] + sum_i W_out[j][i] * z[n][i], one number at a time."""
        N, P = z.shape
        rows = []
        for n in range(N):
            row = []
            for j in range(self.W_out.shape[0]):
                a = self.b_out[j]
                for i in range(P):
                    a = a + self.W_out[j, i] * z[n, i]
                row.append(a)
            rows.append(torch.stack(row))
        return torch.stack(rows)


# ------------------------------------------------------------------------------ ClockworkRNN


class ClockworkRNN(nn.Module):
    """K recurrent layers at K clock periods (Koutnik et al. 2014); AlarmworkNet is periods (1, 2).

    Layer k fires at the 0-based steps l with l % periods[k] == 0 and copies its state
    otherwise; when it fires it reads its own previous output plus every slower layer's:

        z_k[l] = tanh(W_in[k] x[l] + W_rec[k] (z_k[l-1] + z_(k+1)[l-1] + ... + z_(K-1)[l-1]) + b_in[k])
        y      = tanh(W_out z_0[L] + b_out)

    Every weight matrix is drawn by the same hand-written Xavier rule; biases start at zero.
    engine="bptt" runs the recurrence in bptt.py (the same engine as AlarmworkRNN's),
    engine="autograd" the readable loop below.
    """

    def __init__(self, num_inputs=2, num_hidden=50, num_outputs=1, periods=(1, 2, 4, 8),
                 engine="bptt"):
        super().__init__()
        if engine not in ENGINES:
            raise ValueError(f"unknown engine '{engine}', expected one of {ENGINES}")
        self.periods = bptt.check_periods(periods)
        self.engine = engine
        P, K = num_hidden, len(self.periods)
        self.W_in = nn.ParameterList(nn.Parameter(torch.empty(P, num_inputs)) for _ in range(K))
        self.W_rec = nn.ParameterList(nn.Parameter(torch.empty(P, P)) for _ in range(K))
        self.b_in = nn.ParameterList(nn.Parameter(torch.zeros(P)) for _ in range(K))
        self.W_out = nn.Parameter(torch.empty(num_outputs, P))
        self.b_out = nn.Parameter(torch.zeros(num_outputs))
        for k in range(K):                                    # AlarmworkRNN's order for K = 2
            xavier_uniform_(self.W_in[k])
            xavier_uniform_(self.W_rec[k])
        xavier_uniform_(self.W_out)

    def forward(self, x):
        if self.engine == "bptt" and x.device.type == "cpu":
            z_0 = self.recurrent_layers_bptt(x)
        else:
            z_0 = self.recurrent_layers(x)
        return torch.tanh(z_0 @ self.W_out.T + self.b_out)    # y = tanh(W_out z_0[L] + b_out)

    def recurrent_layers(self, x):
        """All K layers over all steps, one equation a line; returns z_0[L], shape (N, P)."""
        N, L, _ = x.shape
        z = [x.new_zeros(N, W.shape[0]) for W in self.W_rec]  # z_k[-1] = 0
        for l in range(L):
            previous = list(z)                                # z_k[l-1] of every layer
            for k, period in enumerate(self.periods):
                if l % period == 0:
                    s_k = sum(previous[k + 1:], previous[k])  # z_k[l-1] + slower layers' z[l-1]
                    z[k] = torch.tanh(x[:, l] @ self.W_in[k].T + s_k @ self.W_rec[k].T + self.b_in[k])
                # else: z_k[l] = z_k[l-1], the same tensor carries over
        return z[0]

    def recurrent_layers_bptt(self, x):
        """The same as `recurrent_layers`, with input projections hoisted out of the time loop."""
        x_steps = x.transpose(0, 1)                           # time-major (L, N, inputs)
        u = [x_steps[0::period] @ W_in.T + b_in               # only the steps layer k fires
             for period, W_in, b_in in zip(self.periods, self.W_in, self.b_in)]
        return bptt.clockwork_recurrence(self.periods, u, list(self.W_rec))


# ------------------------------------------------------------------------------ registry

MODELS = {
    "simple_rnn": ("SimpleRNN", SimpleRNN),
    "lstm": ("LSTM", LSTM),
    "alarmwork": ("AlarmworkNet", AlarmworkRNN),
    "clockwork": ("Clockwork", ClockworkRNN),
}


def display_name(model, periods=None):
    """A model's name in tables: 'AlarmworkNet', or 'Clockwork(1,2,4,8)' with its periods."""
    name = MODELS[model][0]
    return f"{name}({','.join(map(str, periods))})" if periods else name


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def build_model(name, num_hidden=50, engine="bptt", periods=None):
    """A model from the registry by its command-line name."""
    _, cls = MODELS[name]
    if cls is AlarmworkRNN:
        return cls(num_hidden=num_hidden, engine=engine)
    if cls is ClockworkRNN:
        return cls(num_hidden=num_hidden, engine=engine, periods=periods or (1, 2, 4, 8))
    return cls(num_hidden=num_hidden)
