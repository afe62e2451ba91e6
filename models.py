"""The recurrent networks; each maps x (N, L, 2) to y (N, 1).

SimpleRNN and LSTM are PyTorch's own layers. AlarmworkRNN is written by hand from the
equations in SPEC.md, section "2. The models", with the same names; see `AlarmworkRNN.forward`.
ClockworkRNN generalises it to K layers at K clock periods; both run on one engine,
lib/bptt.py.
The recurrent layers of all but the LSTM apply tanh (the assignment's) or relu; the starts
at the end (`start_as_integrator_`, `chrono_init_`) set recurrent weights for long memories.
The clocked models take a wiring: "slower" (the assignment's, the default) or "all", a variant
beyond the assignment in which every layer reads every layer (SPEC.md, section 7).
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


# ------------------------------------------------------------------------------ nonlinearity

NONLINEARITIES = bptt.NONLINEARITIES      # ("tanh", "relu"); tanh is the assignment's
WIRINGS = bptt.WIRINGS                    # ("slower", "all"); slower is the assignment's
ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
RECURRENT_INITS = ("default", "integrator")
RECURRENT_BOUNDS = ("integrator",)   # bound_recurrence_; off (None) by default
DEFAULT_PERIODS = (1, 2, 4, 8)   # ClockworkRNN's clocks, unless told otherwise


# ------------------------------------------------------------------------------ out-of-the-box models


class SimpleRNN(nn.Module):
    """PyTorch's `nn.RNN` (tanh, or relu), then `nn.Linear` on the output of the last step."""

    def __init__(self, num_inputs=2, num_hidden=50, num_outputs=1, nonlinearity="tanh"):
        super().__init__()
        self.nonlinearity = bptt.check_nonlinearity(nonlinearity)
        self.rnn = nn.RNN(num_inputs, num_hidden, batch_first=True, nonlinearity=nonlinearity)
        self.linear = nn.Linear(num_hidden, num_outputs)

    def forward(self, x):
        outputs, _ = self.rnn(x)
        return self.linear(outputs[:, -1])


class LSTM(nn.Module):
    """PyTorch's `nn.LSTM`, then `nn.Linear` on the output of the last step."""

    def __init__(self, num_inputs=2, num_hidden=50, num_outputs=1, nonlinearity="tanh"):
        super().__init__()
        if bptt.check_nonlinearity(nonlinearity) != "tanh":
            raise ValueError(f"the LSTM's cell is tanh by construction; nonlinearity={nonlinearity!r} "
                             f"is for simple_rnn, alarmwork and clockwork")
        self.nonlinearity = nonlinearity
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
    engine="bptt" gives the same numbers through a hand-derived backward pass (lib/bptt.py),
    several times faster on the CPU. It falls back to autograd off the CPU.
    nonlinearity="relu" puts relu where the spec has tanh in Layer_rec1 and Layer_rec2; y keeps tanh.
    wiring="all" (beyond the assignment, SPEC.md section 7) has Layer_rec2 read z_in12, both
    layers' previous outputs, as Layer_rec1 does; the default "slower" is the spec's z_in2[l-1].
    """

    def __init__(self, num_inputs=2, num_hidden=50, num_outputs=1, scalar_out=False,
                 engine="bptt", nonlinearity="tanh", wiring="slower"):
        super().__init__()
        if engine not in ENGINES:
            raise ValueError(f"unknown engine '{engine}', expected one of {ENGINES}")
        self.scalar_out = scalar_out
        self.engine = engine
        self.nonlinearity = bptt.check_nonlinearity(nonlinearity)
        self.wiring = bptt.check_wiring(wiring)
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
        f = ACTIVATIONS[self.nonlinearity]                    # tanh (the spec's) or relu
        z_in1 = x.new_zeros(N, self.W_rec1.shape[0])          # z_in1[0] = 0
        z_in2 = x.new_zeros(N, self.W_rec2.shape[0])          # z_in2[0] = 0
        for l in range(L):
            z_in12 = z_in1 + z_in2                            # z_in12[l] = z_in1[l-1] + z_in2[l-1]
            a_in1 = x[:, l] @ self.W_in1.T + z_in12 @ self.W_rec1.T + self.b_in1
            if l % 2 == 0:                                    # 1-based steps 1, 3, 5, ...
                s_in2 = z_in2 if self.wiring == "slower" else z_in12   # "all": both layers' z[l-1]
                a_in2 = x[:, l] @ self.W_in2.T + s_in2 @ self.W_rec2.T + self.b_in2
                z_in2 = f(a_in2)
            # else: z_in2[l] = z_in2[l-1], the same tensor carries over
            z_in1 = f(a_in1)
        return z_in1

    def recurrent_layers_bptt(self, x):
        """The same as `recurrent_layers`: the clockwork engine with periods (1, 2)."""
        x_steps = x.transpose(0, 1)                           # time-major (L, N, 2)
        u_in1 = x_steps @ self.W_in1.T + self.b_in1           # W_in1 x[l] + b_in1, all l at once
        u_in2 = x_steps[0::2] @ self.W_in2.T + self.b_in2     # only the steps Layer_rec2 fires
        return bptt.clockwork_recurrence((1, 2), [u_in1, u_in2], [self.W_rec1, self.W_rec2],
                                         self.nonlinearity, self.wiring)

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

        z_k[l] = f(W_in[k] x[l] + W_rec[k] (z_k[l-1] + z_(k+1)[l-1] + ... + z_(K-1)[l-1]) + b_in[k])
        y      = tanh(W_out z_0[L] + b_out)

    with f = tanh (the assignment's) or relu (nonlinearity="relu"). That is wiring="slower", the
    assignment's; wiring="all" (beyond the assignment, SPEC.md section 7) has every layer read
    every layer, z_k[l] = f(W_in[k] x[l] + W_rec[k] (z_0[l-1] + ... + z_(K-1)[l-1]) + b_in[k]).

    Every weight matrix is drawn by the same hand-written Xavier rule; biases start at zero.
    engine="bptt" runs the recurrence in lib/bptt.py (the same engine as AlarmworkRNN's),
    engine="autograd" the readable loop below.
    """

    def __init__(self, num_inputs=2, num_hidden=50, num_outputs=1, periods=DEFAULT_PERIODS,
                 engine="bptt", nonlinearity="tanh", wiring="slower"):
        super().__init__()
        if engine not in ENGINES:
            raise ValueError(f"unknown engine '{engine}', expected one of {ENGINES}")
        self.periods = bptt.check_periods(periods)
        self.engine = engine
        self.nonlinearity = bptt.check_nonlinearity(nonlinearity)
        self.wiring = bptt.check_wiring(wiring)
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
        f = ACTIVATIONS[self.nonlinearity]
        z = [x.new_zeros(N, W.shape[0]) for W in self.W_rec]  # z_k[-1] = 0
        for l in range(L):
            previous = list(z)                                # z_k[l-1] of every layer
            for k, period in enumerate(self.periods):
                if l % period == 0:
                    first = k if self.wiring == "slower" else 0   # "all": from layer 0 on
                    s_k = sum(previous[first + 1:], previous[first])  # z_first[l-1] + slower ones'
                    z[k] = f(x[:, l] @ self.W_in[k].T + s_k @ self.W_rec[k].T + self.b_in[k])
                # else: z_k[l] = z_k[l-1], the same tensor carries over
        return z[0]

    def recurrent_layers_bptt(self, x):
        """The same as `recurrent_layers`, with input projections hoisted out of the time loop."""
        x_steps = x.transpose(0, 1)                           # time-major (L, N, inputs)
        u = [x_steps[0::period] @ W_in.T + b_in               # only the steps layer k fires
             for period, W_in, b_in in zip(self.periods, self.W_in, self.b_in)]
        return bptt.clockwork_recurrence(self.periods, u, list(self.W_rec), self.nonlinearity,
                                         self.wiring)


# ------------------------------------------------------------------------------ starts (recurrent init)


def recurrent_matrices(model):
    """[(W, s)]: every recurrent matrix of a SimpleRNN, AlarmworkRNN or ClockworkRNN, with the
    spectral norm s of its integrator start: 1 for nn.RNN's weight_hh, 1/(K - k) for clocked
    layer k of K, which reads the sum of K - k states, and 1/K for every layer of a clocked
    model with wiring="all", where each reads the sum of all K (`start_as_integrator_`)."""
    if isinstance(model, SimpleRNN):
        return [(getattr(model.rnn, f"weight_hh_l{layer}"), 1.0)
                for layer in range(model.rnn.num_layers)]
    if isinstance(model, (AlarmworkRNN, ClockworkRNN)):
        W_rec = ((model.W_rec1, model.W_rec2) if isinstance(model, AlarmworkRNN)
                 else tuple(model.W_rec))
        K = len(W_rec)
        return [(W, 1.0 / (K if model.wiring == "all" else K - k)) for k, W in enumerate(W_rec)]
    if isinstance(model, (LSTM, nn.LSTM)):
        raise ValueError("an LSTM does not start as an integrator: use "
                         "chrono_init_(model.lstm, t_max)")
    raise ValueError(f"integrator starts are defined for SimpleRNN, AlarmworkRNN and "
                     f"ClockworkRNN, not {type(model).__name__}")


def start_as_integrator_(model):
    """Set a model's recurrent weights so that, untrained, it carries its state on unchanged.

    SimpleRNN: weight_hh = I and both biases 0, the IRNN of Le, Jaitly & Hinton (2015), "A simple
    way to initialize recurrent networks of rectified linear units": with relu, h[l] = h[l-1]
    wherever the input is zero. AlarmworkRNN and ClockworkRNN: layer k of K reads s_k, the sum
    of its own state and the K-1-k slower layers' states, so W_rec_k = I / (K - k) makes it
    read their average, and the network integrates without growing (AlarmworkNet:
    W_rec1 = I/2, W_rec2 = I). With wiring="all" every layer reads the sum of all K states, so
    every W_rec_k = I / K (AlarmworkNet: W_rec1 = W_rec2 = I/2). Every b_in_k = 0. Input and
    output weights keep their init.
    The LSTM has a start of its own, `chrono_init_`. Returns the model.
    """
    matrices = recurrent_matrices(model)
    if isinstance(model, SimpleRNN):
        biases = [getattr(model.rnn, f"bias_{kind}_l{layer}")
                  for layer in range(model.rnn.num_layers) for kind in ("ih", "hh")]
    else:
        biases = ((model.b_in1, model.b_in2) if isinstance(model, AlarmworkRNN)
                  else tuple(model.b_in))
    with torch.no_grad():
        for W, scale in matrices:
            W.copy_(torch.eye(W.shape[0], dtype=W.dtype) * scale)
        for bias in biases:
            bias.zero_()
    return model


def bound_recurrence_(model):
    """Keep every recurrent matrix within the spectral norm of its integrator start (1 for
    SimpleRNN; 1/(K - k) for clocked layer k, 1/K with wiring="all"): singular values above it
    are cut down to it, the nearest such matrix (in the Frobenius norm), as in the singular-value
    constraints of Vorontsov et al. (2017), "On orthogonality and learning recurrent networks
    with long term dependencies". With relu, |relu(a)| <= |a|, so then
    |h[l]| <= |h[l-1]| + |W_in x[l] + b|: a state grows at most linearly in l, never as rho^l,
    and cannot overflow at any length. A matrix already within its bound, or holding non-finite
    numbers, is left as it is. Returns the model."""
    with torch.no_grad():
        for W, limit in recurrent_matrices(model):
            if not bool(torch.isfinite(W).all()):
                continue
            U, S, Vh = torch.linalg.svd(W.double())
            if S[0] > limit:
                W.copy_((U * S.clamp(max=limit)) @ Vh)
    return model


def chrono_init_(lstm, t_max, generator=None):
    """Chrono initialization of an nn.LSTM (Tallec & Ollivier 2018, "Can recurrent neural
    networks warp time?"): per unit, the forget gate's bias b_f = log(u), u ~ U(1, t_max - 1),
    and the input gate's b_i = -b_f.

    A unit then keeps its cell for about u steps, so the units' memories spread over the
    range of dependencies up to t_max instead of PyTorch's near-zero gate biases, which
    forget within a few steps. PyTorch orders the gates i, f, g, o: the input gate is the
    slice [0:H], the forget gate [H:2H]; the whole bias goes into bias_ih and bias_hh's
    slices become 0 (as set_lstm_forget_bias does). The g and o gates keep their init. The
    draw is torch.rand's, from `generator` or else torch's global one. Returns the LSTM.
    """
    if not t_max > 2:
        raise ValueError(f"chrono_init_ needs t_max > 2, so that U(1, t_max - 1) is not empty; "
                         f"got t_max={t_max}")
    H = lstm.hidden_size
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            bias_ih = getattr(lstm, f"bias_ih_l{layer}")
            bias_hh = getattr(lstm, f"bias_hh_l{layer}")
            u = 1.0 + (t_max - 2.0) * torch.rand(H, generator=generator, dtype=bias_ih.dtype)
            b_f = torch.log(u)
            bias_ih[0:H] = -b_f                                  # input gate
            bias_ih[H:2 * H] = b_f                               # forget gate
            bias_hh[0:2 * H] = 0.0
    return lstm


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


def build_model(name, num_hidden=50, engine="bptt", periods=None, nonlinearity="tanh",
                wiring="slower"):
    """A model from the registry by its command-line name; the LSTM takes only tanh, and only
    the clocked models take a wiring other than "slower"."""
    _, cls = MODELS[name]
    if cls is AlarmworkRNN:
        return cls(num_hidden=num_hidden, engine=engine, nonlinearity=nonlinearity, wiring=wiring)
    if cls is ClockworkRNN:
        return cls(num_hidden=num_hidden, engine=engine, periods=periods or DEFAULT_PERIODS,
                   nonlinearity=nonlinearity, wiring=wiring)
    if bptt.check_wiring(wiring) != "slower":
        raise ValueError(f"wiring is for the clocked models alarmwork and clockwork; "
                         f"{name} takes no wiring={wiring!r}")
    return cls(num_hidden=num_hidden, nonlinearity=nonlinearity)
