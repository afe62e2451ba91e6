"""AlarmworkRNN and ClockworkRNN against their equations, the scalar Layer_out, the Xavier
initializer, the nonlinearity and wiring options and the integrator and chrono starts."""
import math

import pytest
import torch
from torch import nn

import models
from models import AlarmworkRNN, ClockworkRNN, SimpleRNN

# the recurrent layers' f, written here rather than taken from models.py, so that a wrong f there shows
F = {"tanh": torch.tanh, "relu": lambda a: torch.where(a > 0, a, torch.zeros_like(a))}

PARAMETER_SHAPES = {"W_in1": (50, 2), "W_rec1": (50, 50), "b_in1": (50,), "W_in2": (50, 2),
                    "W_rec2": (50, 50), "b_in2": (50,), "W_out": (1, 50), "b_out": (1,)}


def random_model(engine, num_hidden=6, seed=0, scalar_out=False, nonlinearity="tanh",
                 wiring="slower"):
    """An AlarmworkRNN in float64 with non-zero biases, so every term of the equations counts."""
    torch.manual_seed(seed)
    model = AlarmworkRNN(num_hidden=num_hidden, engine=engine, scalar_out=scalar_out,
                         nonlinearity=nonlinearity, wiring=wiring).double()
    with torch.no_grad():
        for bias in (model.b_in1, model.b_in2, model.b_out):
            bias.uniform_(-0.5, 0.5)
    return model


def equations_loop(model, x):
    """SPEC.md, section "2. The models", read literally: one sample at a time, 1-based steps,
    column vectors, W @ z. With wiring="all" (section 7) Layer_rec2 reads z_in12."""
    p = {name: value.detach() for name, value in model.named_parameters()}
    f = F[model.nonlinearity]
    outputs = []
    for sample in x:
        L = sample.shape[0]
        z_in1 = {0: torch.zeros(p["W_rec1"].shape[0], dtype=x.dtype)}
        z_in2 = {0: torch.zeros(p["W_rec2"].shape[0], dtype=x.dtype)}
        for l in range(1, L + 1):
            x_l = sample[l - 1]
            z_in12 = z_in1[l - 1] + z_in2[l - 1]
            z_in1[l] = f(p["W_in1"] @ x_l + p["W_rec1"] @ z_in12 + p["b_in1"])
            if l % 2 == 1:
                s_in2 = z_in2[l - 1] if model.wiring == "slower" else z_in12
                z_in2[l] = f(p["W_in2"] @ x_l + p["W_rec2"] @ s_in2 + p["b_in2"])
            else:
                z_in2[l] = z_in2[l - 1]
        outputs.append(torch.tanh(p["W_out"] @ z_in1[L] + p["b_out"]))
    return torch.stack(outputs)


def test_alarmwork_has_exactly_the_eight_parameters_of_the_spec():
    shapes = {name: tuple(value.shape) for name, value in AlarmworkRNN().named_parameters()}
    assert shapes == PARAMETER_SHAPES


@pytest.mark.parametrize("wiring", models.WIRINGS)
@pytest.mark.parametrize("nonlinearity", models.NONLINEARITIES)
@pytest.mark.parametrize("engine", models.ENGINES)
@pytest.mark.parametrize("seq_len", [1, 2, 5, 8])
def test_alarmwork_matches_a_loop_by_loop_reading_of_the_equations(engine, seq_len, nonlinearity,
                                                                   wiring):
    model = random_model(engine, nonlinearity=nonlinearity, wiring=wiring)
    x = torch.randn(4, seq_len, 2, dtype=torch.float64)
    expected = equations_loop(model, x)
    y = model(x)
    assert y.shape == (4, 1)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("engine", models.ENGINES)
def test_rec2_copies_its_state_on_odd_zero_based_steps(engine):
    """With W_in1 = 0 the input reaches the output only through Layer_rec2, which reads x on
    0-based steps 0, 2, 4, ... and copies its state on 1, 3, 5, ...: the inputs of odd steps
    then have no effect at all, those of even steps do."""
    seq_len = 7
    model = random_model(engine)
    with torch.no_grad():
        model.W_in1.zero_()
    x = torch.randn(3, seq_len, 2, dtype=torch.float64, requires_grad=True)
    model(x).sum().backward()
    per_step = x.grad.abs().sum(dim=(0, 2))
    assert (per_step[1::2] == 0).all()
    assert (per_step[0:-1:2] > 1e-6).all()   # the last step's z_in2 never reaches y


@pytest.mark.parametrize("engine", models.ENGINES)
def test_rec1_reads_the_sum_of_both_delayed_outputs(engine):
    """Swapping W_rec1 for W_rec1 / 2 must change y: z_in12 enters only through W_rec1, and a
    model that fed z_in1 alone would not match the loop reference with this swap either."""
    model = random_model(engine)
    x = torch.randn(2, 6, 2, dtype=torch.float64)
    reference = equations_loop(model, x)
    with torch.no_grad():
        model.W_rec2.zero_()
        model.W_in2.zero_()
        model.b_in2.fill_(0.3)    # z_in2 becomes the constant tanh(0.3) from step 1 on
    constant_only = model(x)
    assert not torch.allclose(constant_only, reference)
    torch.testing.assert_close(constant_only, equations_loop(model, x), rtol=1e-12, atol=1e-12)


def test_scalar_layer_out_gives_the_same_values_and_gradients_as_the_vector_form():
    torch.manual_seed(1)
    vector = AlarmworkRNN(num_hidden=7, num_outputs=3)
    scalar = AlarmworkRNN(num_hidden=7, num_outputs=3, scalar_out=True)
    with torch.no_grad():
        vector.b_out.uniform_(-1, 1)
    scalar.load_state_dict(vector.state_dict())
    z = torch.randn(5, 7)
    z_vector, z_scalar = z.clone().requires_grad_(), z.clone().requires_grad_()
    a_vector, a_scalar = vector.layer_out(z_vector), scalar.layer_out_scalar(z_scalar)
    assert a_scalar.shape == a_vector.shape == (5, 3)
    torch.testing.assert_close(a_scalar, a_vector)
    weights = torch.randn(5, 3)
    (a_vector * weights).sum().backward()
    (a_scalar * weights).sum().backward()
    torch.testing.assert_close(z_scalar.grad, z_vector.grad)
    torch.testing.assert_close(scalar.W_out.grad, vector.W_out.grad)
    torch.testing.assert_close(scalar.b_out.grad, vector.b_out.grad)


def test_scalar_form_is_used_by_the_whole_model_when_asked():
    torch.manual_seed(2)
    vector = AlarmworkRNN(num_hidden=5)
    scalar = AlarmworkRNN(num_hidden=5, scalar_out=True)
    scalar.load_state_dict(vector.state_dict())
    x = torch.randn(3, 4, 2)
    torch.testing.assert_close(scalar(x), vector(x))
    calls = []
    scalar.layer_out = lambda z: calls.append(z) or vector.layer_out(z)
    scalar(x)
    assert calls == []   # the scalar model never took the vector path


# ------------------------------------------------------------------------------ ClockworkRNN

def random_clockwork(engine, periods, num_hidden=5, seed=0, nonlinearity="tanh", wiring="slower"):
    """A ClockworkRNN in float64 with non-zero biases."""
    torch.manual_seed(seed)
    model = ClockworkRNN(num_hidden=num_hidden, periods=periods, engine=engine,
                         nonlinearity=nonlinearity, wiring=wiring).double()
    with torch.no_grad():
        for bias in (*model.b_in, model.b_out):
            bias.uniform_(-0.5, 0.5)
    return model


def clockwork_equations_loop(model, x):
    """The clockwork equations read literally: one sample at a time, column vectors, W @ z.

    Layer k fires at the 0-based steps l with l % T_k == 0; states before step 0 are zero.
    It reads the layers j >= k (wiring="slower") or all of them (wiring="all").
    """
    periods, K = model.periods, len(model.periods)
    f = F[model.nonlinearity]
    outputs = []
    for sample in x:
        z = {(k, -1): torch.zeros(model.W_rec[k].shape[0], dtype=x.dtype) for k in range(K)}
        for l in range(sample.shape[0]):
            for k in range(K):
                if l % periods[k] == 0:
                    first = k if model.wiring == "slower" else 0
                    s_k = z[(first, l - 1)].clone()
                    for j in range(first + 1, K):
                        s_k += z[(j, l - 1)]
                    z[(k, l)] = f(model.W_in[k] @ sample[l] + model.W_rec[k] @ s_k + model.b_in[k])
                else:
                    z[(k, l)] = z[(k, l - 1)]
        outputs.append(torch.tanh(model.W_out @ z[(0, sample.shape[0] - 1)] + model.b_out))
    return torch.stack(outputs).detach()


@pytest.mark.parametrize("wiring", models.WIRINGS)
@pytest.mark.parametrize("nonlinearity", models.NONLINEARITIES)
@pytest.mark.parametrize("engine", models.ENGINES)
@pytest.mark.parametrize("periods, seq_len", [((1, 2, 4, 8), 1), ((1, 2, 4, 8), 8),
                                              ((1, 2, 4, 8), 19), ((1, 3, 5), 11), ((1,), 4)])
def test_clockwork_matches_a_loop_by_loop_reading_of_its_equations(engine, periods, seq_len,
                                                                   nonlinearity, wiring):
    model = random_clockwork(engine, periods, nonlinearity=nonlinearity, wiring=wiring)
    x = torch.randn(3, seq_len, 2, dtype=torch.float64)
    y = model(x)
    assert y.shape == (3, 1)
    torch.testing.assert_close(y, clockwork_equations_loop(model, x), rtol=1e-12, atol=1e-12)


def alarmwork_as_clockwork(alarmwork):
    """A ClockworkRNN with periods (1, 2) holding an AlarmworkRNN's weights."""
    clockwork = ClockworkRNN(num_hidden=alarmwork.W_rec1.shape[0], periods=(1, 2),
                             engine=alarmwork.engine, nonlinearity=alarmwork.nonlinearity,
                             wiring=alarmwork.wiring).to(alarmwork.W_rec1.dtype)
    with torch.no_grad():
        for k, layer in enumerate(("1", "2")):
            clockwork.W_in[k].copy_(getattr(alarmwork, "W_in" + layer))
            clockwork.W_rec[k].copy_(getattr(alarmwork, "W_rec" + layer))
            clockwork.b_in[k].copy_(getattr(alarmwork, "b_in" + layer))
        clockwork.W_out.copy_(alarmwork.W_out)
        clockwork.b_out.copy_(alarmwork.b_out)
    return clockwork


def assert_same_outputs_and_gradients_as_alarmwork(alarmwork, clockwork, seq_len):
    """Both models on the same float64 batch: y and the gradient of every parameter agree."""
    x = torch.randn(4, seq_len, 2, dtype=torch.float64)
    weights = torch.randn(4, 1, dtype=torch.float64)
    y_alarmwork, y_clockwork = alarmwork(x), clockwork(x)
    torch.testing.assert_close(y_clockwork, y_alarmwork, rtol=1e-12, atol=1e-12)
    (y_alarmwork * weights).sum().backward()
    (y_clockwork * weights).sum().backward()
    pairs = {"W_out": "W_out", "b_out": "b_out"}
    for k, layer in enumerate(("1", "2")):
        pairs.update({f"W_in.{k}": "W_in" + layer, f"W_rec.{k}": "W_rec" + layer,
                      f"b_in.{k}": "b_in" + layer})
    clockwork_grads = dict(clockwork.named_parameters())
    alarmwork_grads = dict(alarmwork.named_parameters())
    for clockwork_name, alarmwork_name in pairs.items():
        torch.testing.assert_close(clockwork_grads[clockwork_name].grad,
                                   alarmwork_grads[alarmwork_name].grad, rtol=1e-12, atol=1e-12,
                                   msg=clockwork_name)
    return alarmwork_grads


@pytest.mark.parametrize("wiring", models.WIRINGS)
@pytest.mark.parametrize("engine", models.ENGINES)
@pytest.mark.parametrize("seq_len", [1, 2, 7, 10])
def test_clockwork_with_periods_1_2_is_alarmwork_in_outputs_and_gradients(engine, seq_len, wiring):
    alarmwork = random_model(engine, wiring=wiring)
    clockwork = alarmwork_as_clockwork(alarmwork)
    assert clockwork.wiring == wiring
    assert_same_outputs_and_gradients_as_alarmwork(alarmwork, clockwork, seq_len)


@pytest.mark.parametrize("nonlinearity", models.NONLINEARITIES)
@pytest.mark.parametrize("engine", models.ENGINES)
def test_all_wired_alarmwork_is_all_wired_clockwork_1_2_from_the_same_seed(engine, nonlinearity):
    """Built from one seed, with no weights copied: the same start, outputs and gradients."""
    built = []
    for cls, options in ((AlarmworkRNN, {}), (ClockworkRNN, {"periods": (1, 2)})):
        torch.manual_seed(7)
        built.append(cls(num_hidden=6, engine=engine, nonlinearity=nonlinearity, wiring="all",
                         **options).double())
    alarmwork, clockwork = built
    grads = assert_same_outputs_and_gradients_as_alarmwork(alarmwork, clockwork, seq_len=9)
    assert grads["W_rec2"].grad.abs().sum() > 0      # the numbers compared are not all zero
    # and the all-wired Layer_rec2 is not the spec's: the same weights wired "slower" differ
    slower = AlarmworkRNN(num_hidden=6, engine=engine, nonlinearity=nonlinearity).double()
    slower.load_state_dict(alarmwork.state_dict())
    x = torch.randn(3, 9, 2, dtype=torch.float64)
    assert not torch.allclose(slower(x), alarmwork(x))


def test_clockwork_with_periods_1_2_draws_alarmworks_initial_weights():
    torch.manual_seed(3)
    alarmwork = AlarmworkRNN(num_hidden=6)
    torch.manual_seed(3)
    clockwork = ClockworkRNN(num_hidden=6, periods=(1, 2))
    assert torch.equal(alarmwork_as_clockwork(alarmwork).W_rec[1], clockwork.W_rec[1])
    assert torch.equal(alarmwork.W_out, clockwork.W_out)


@pytest.mark.parametrize("periods", [(2, 4), (1, 3, 3), (1, 8, 4), ()])
def test_clockwork_refuses_periods_that_do_not_start_at_1_and_increase(periods):
    with pytest.raises(ValueError, match="periods must"):
        ClockworkRNN(periods=periods)


def test_clockwork_parameters_are_named_per_layer_and_counted():
    shapes = {name: tuple(value.shape) for name, value in ClockworkRNN(num_hidden=35).named_parameters()}
    expected = {"W_out": (1, 35), "b_out": (1,)}
    for k in range(4):
        expected.update({f"W_in.{k}": (35, 2), f"W_rec.{k}": (35, 35), f"b_in.{k}": (35,)})
    assert shapes == expected
    assert models.count_parameters(ClockworkRNN(num_hidden=35)) == 5_356
    assert models.count_parameters(AlarmworkRNN(num_hidden=50)) == 5_351


def test_clockwork_weights_are_xavier_and_biases_zero():
    torch.manual_seed(0)
    for name, value in ClockworkRNN(num_hidden=30).named_parameters():
        if name.startswith("b_"):
            assert (value == 0).all(), name
        else:
            bound = math.sqrt(6.0 / sum(value.shape))
            assert value.abs().max() <= bound, name
            assert value.abs().max() > 0.5 * bound, name


# ------------------------------------------------------------------------------ Xavier initialization

@pytest.mark.parametrize("shape", [(300, 200), (1, 50), (50, 2)])
def test_xavier_uniform_stays_in_bounds_and_spreads_as_a_uniform(shape):
    fan_out, fan_in = shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    torch.manual_seed(0)
    samples = torch.cat([models.xavier_uniform_(torch.empty(shape)).flatten() for _ in range(20_000 // shape[0] // shape[1] + 1)])
    assert samples.abs().max() <= bound
    assert samples.abs().max() > 0.97 * bound                     # reaches the edges
    assert abs(samples.mean()) < 0.05 * bound
    assert abs(samples.std() - bound / math.sqrt(3)) < 0.03 * bound   # std of U[-a, a]


def test_alarmwork_weights_are_xavier_and_biases_zero():
    torch.manual_seed(0)
    model = AlarmworkRNN()
    for name, value in model.named_parameters():
        if name.startswith("b_"):
            assert (value == 0).all(), name
        else:
            fan_out, fan_in = value.shape
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            assert value.abs().max() <= bound, name
            assert value.abs().max() > 0.5 * bound, name


def test_initializer_uses_no_ready_made_torch_initializer():
    with open(models.__file__) as f:
        source = f.read()
    assert "nn.init" not in source and "torch.nn import init" not in source


# ------------------------------------------------------------------------------ registry

@pytest.mark.parametrize("name", list(models.MODELS))
def test_every_registered_model_maps_a_batch_to_one_output_per_sample(name):
    model = models.build_model(name, num_hidden=8)
    assert model(torch.randn(3, 9, 2)).shape == (3, 1)


def test_registry_names_and_display_names():
    assert {k: v[0] for k, v in models.MODELS.items()} == {
        "simple_rnn": "SimpleRNN", "lstm": "LSTM", "alarmwork": "AlarmworkNet",
        "clockwork": "Clockwork"}
    assert models.display_name("clockwork", [1, 2, 4, 8]) == "Clockwork(1,2,4,8)"
    assert models.display_name("lstm") == "LSTM"
    assert models.build_model("clockwork", num_hidden=4, periods=[1, 3]).periods == (1, 3)
    assert isinstance(models.build_model("lstm").lstm, torch.nn.LSTM)
    assert isinstance(models.build_model("simple_rnn").rnn, torch.nn.RNN)


# ------------------------------------------------------------------------------ wiring

@pytest.mark.parametrize("name", ["alarmwork", "clockwork"])
@pytest.mark.parametrize("engine", models.ENGINES)
def test_the_default_wiring_is_slower_to_the_bit(name, engine):
    """Left out, the wiring is the assignment's, in the same operations: saved runs reproduce."""
    built = {}
    for wiring in (None, "slower"):
        torch.manual_seed(4)
        options = {} if wiring is None else {"wiring": wiring}
        built[wiring] = models.build_model(name, num_hidden=7, engine=engine, nonlinearity="relu",
                                           **options)
    assert built[None].wiring == "slower"
    x = torch.rand(3, 11, 2) - 0.3
    y_default, y_slower = built[None](x), built["slower"](x)
    assert torch.equal(y_default, y_slower)
    y_default.sum().backward()
    y_slower.sum().backward()
    for (key, default), slower in zip(built[None].named_parameters(), built["slower"].parameters()):
        assert torch.equal(default.grad, slower.grad), key


@pytest.mark.parametrize("name", ["alarmwork", "clockwork"])
def test_the_clocked_models_take_the_all_wiring(name):
    model = models.build_model(name, num_hidden=4, wiring="all")
    assert model.wiring == "all"
    assert model(torch.randn(2, 5, 2)).shape == (2, 1)


@pytest.mark.parametrize("name", list(models.MODELS))
def test_an_unknown_wiring_is_refused_with_the_choices(name):
    assert models.WIRINGS == ("slower", "all")
    with pytest.raises(ValueError, match="unknown wiring 'faster'.*'slower', 'all'"):
        models.build_model(name, num_hidden=4, wiring="faster")


@pytest.mark.parametrize("cls", [AlarmworkRNN, ClockworkRNN])
def test_the_clocked_classes_refuse_an_unknown_wiring(cls):
    with pytest.raises(ValueError, match="unknown wiring 'Slower'"):
        cls(num_hidden=4, wiring="Slower")


@pytest.mark.parametrize("name", ["simple_rnn", "lstm"])
def test_the_unclocked_models_refuse_the_all_wiring(name):
    assert models.build_model(name, num_hidden=4, wiring="slower")(torch.randn(2, 3, 2)).shape == (2, 1)
    with pytest.raises(ValueError, match="wiring is for the clocked models alarmwork and clockwork"):
        models.build_model(name, num_hidden=4, wiring="all")


# ------------------------------------------------------------------------------ nonlinearity

@pytest.mark.parametrize("engine", models.ENGINES)
def test_a_relu_alarmwork_zeroes_negative_pre_activations_and_passes_positive_ones(engine):
    """Two steps of a 2-unit relu AlarmworkNet, worked out by hand."""
    model = AlarmworkRNN(num_hidden=2, engine=engine, nonlinearity="relu").double()
    with torch.no_grad():
        model.W_in1.copy_(torch.eye(2))
        model.W_in2.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        model.W_rec1.copy_(torch.tensor([[1.0, -1.0], [-1.0, -1.0]]))
        model.W_rec2.copy_(torch.eye(2))
        model.W_out.copy_(torch.tensor([[1.0, 10.0]]))
        for bias in (model.b_in1, model.b_in2, model.b_out):
            bias.zero_()
    x = torch.tensor([[[2.0, -3.0], [0.5, 1.0]]], dtype=torch.float64)
    # step 1: z_in1 = relu(( 2, -3))                          = (2, 0)
    #         z_in2 = relu((-3,  2))                          = (0, 2)
    # step 2: z_in12 = (2, 0) + (0, 2)                        = (2, 2)
    #         z_in1 = relu((0.5, 1) + W_rec1 (2, 2)) = relu((0.5, -3)) = (0.5, 0); z_in2 copies
    expected = torch.tensor([[0.5, 0.0]], dtype=torch.float64)
    z_in1 = model.recurrent_layers_bptt(x) if engine == "bptt" else model.recurrent_layers(x)
    torch.testing.assert_close(z_in1, expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(model(x), torch.tanh(torch.tensor([[0.5]], dtype=torch.float64)))


def test_simple_rnn_hands_its_nonlinearity_to_nn_rnn():
    torch.manual_seed(0)
    model = models.build_model("simple_rnn", num_hidden=8, nonlinearity="relu")
    assert model.nonlinearity == model.rnn.nonlinearity == "relu"
    x = torch.randn(3, 6, 2)
    outputs, _ = model.rnn(x)
    rnn = model.rnn                                   # step 0: h = f(W_ih x + b_ih + b_hh)
    a_0 = x[:, 0] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + rnn.bias_hh_l0
    assert (a_0 < 0).any()
    torch.testing.assert_close(outputs[:, 0], F["relu"](a_0))
    assert models.build_model("simple_rnn").rnn.nonlinearity == "tanh"


@pytest.mark.parametrize("name", ["simple_rnn", "alarmwork", "clockwork"])
def test_every_model_but_the_lstm_takes_relu_and_keeps_tanh_by_default(name):
    assert models.build_model(name, num_hidden=4).nonlinearity == "tanh"
    model = models.build_model(name, num_hidden=4, nonlinearity="relu")
    assert model.nonlinearity == "relu"
    assert model(torch.randn(2, 5, 2)).shape == (2, 1)


def test_the_lstm_refuses_relu_and_says_its_cell_is_tanh():
    assert models.build_model("lstm", num_hidden=4).nonlinearity == "tanh"
    with pytest.raises(ValueError, match="LSTM's cell is tanh"):
        models.build_model("lstm", num_hidden=4, nonlinearity="relu")


@pytest.mark.parametrize("name", list(models.MODELS))
def test_an_unknown_nonlinearity_is_refused_with_the_choices(name):
    assert models.NONLINEARITIES == ("tanh", "relu")
    with pytest.raises(ValueError, match="unknown nonlinearity 'sigmoid'.*'tanh', 'relu'"):
        models.build_model(name, num_hidden=4, nonlinearity="sigmoid")


# ------------------------------------------------------------------------------ starts

def relu_integrator(name, seed=0, wiring="slower", periods=None):
    torch.manual_seed(seed)
    if name == "clockwork":
        periods = periods or (1, 2, 4, 8)
    model = models.build_model(name, num_hidden=50, engine="autograd", periods=periods,
                               nonlinearity="relu", wiring=wiring)
    return models.start_as_integrator_(model)


def state_norms_after_one_pulse(model, lengths):
    """The norm of the fastest layer's state after L steps, per L and sample; the input is a
    pulse at step 0 and zero after it."""
    torch.manual_seed(1)
    x = torch.zeros(4, max(lengths), 2)
    x[:, 0] = torch.rand(4, 2) + 0.5
    with torch.no_grad():
        if isinstance(model, SimpleRNN):
            states, _ = model.rnn(x)
            return torch.stack([states[:, L - 1].norm(dim=1) for L in lengths])
        return torch.stack([model.recurrent_layers(x[:, :L]).norm(dim=1) for L in lengths])


LENGTHS = (1, 2, 3, 5, 8, 9, 17, 100, 333, 1000)


@pytest.mark.parametrize("name", ["simple_rnn", "alarmwork", "clockwork"])
def test_an_untrained_relu_integrator_keeps_a_pulse_without_growing_or_fading_for_1000_steps(name):
    norms = state_norms_after_one_pulse(relu_integrator(name), LENGTHS)
    after_pulse = norms[0]
    assert (after_pulse > 0).all()
    assert (norms < 10 * after_pulse).all() and (norms > after_pulse / 10).all()


def test_clocked_layers_under_a_plain_identity_would_grow():
    """Why the start scales layer k's identity by 1 / (K - k): with W_rec_k = I every layer
    adds up the slower ones, and the pulse grows step after step."""
    model = relu_integrator("clockwork")
    with torch.no_grad():
        for W_rec in model.W_rec:
            W_rec.copy_(torch.eye(50))
    norms = state_norms_after_one_pulse(model, LENGTHS)
    assert (norms[-1] > 1000 * norms[0]).all()


def pulse_at_every_phase(model, steps_after=1000):
    """The fastest layer's state, per pulse phase p = 0 .. T_max - 1 (one sample each): just
    after a pulse at step p, and `steps_after` steps later (also at three lengths between).
    The pulse is one step of x = (0.25, 1), zero input elsewhere; the input weights are made
    positive so that relu passes it on. Returns (just_after, later), later of shape (4, T_max)."""
    T_max = model.periods[-1]
    with torch.no_grad():
        for W_in in model.W_in:
            W_in.abs_()
        x = torch.zeros(T_max, T_max + steps_after, 2)
        for phase in range(T_max):
            x[phase, phase] = torch.tensor([0.25, 1.0])
        just_after = torch.stack([model.recurrent_layers(x[phase:phase + 1, :phase + 1])[0]
                                  for phase in range(T_max)]).norm(dim=1)
        lengths = (2 * T_max, 100, 500, T_max + steps_after)   # at least 1,000 steps after, at the last
        later = torch.stack([model.recurrent_layers(x[:, :L]).norm(dim=1) for L in lengths])
    return just_after, later


@pytest.mark.parametrize("periods", [(1, 2), (1, 2, 4, 8)])
def test_an_all_wired_relu_integrator_keeps_a_pulse_at_every_phase_of_the_slow_clocks(periods):
    """With wiring="all" and W_rec_k = I/K every firing layer takes the mean of the K states: a
    pulse, whichever layers fired on its step, never grows, and once all K layers have fired
    together (T_max steps after it at the latest) every layer holds the same mean, to the end."""
    model = relu_integrator("clockwork", wiring="all", periods=periods)
    just_after, later = pulse_at_every_phase(model)
    assert (just_after > 0).all()
    assert (later <= just_after * (1 + 1e-6)).all()                    # not growing
    torch.testing.assert_close(later, later[0].expand_as(later), rtol=1e-6, atol=0)   # settled
    # not fading: measured 0.05 (periods (1, 2, 4, 8), a pulse on a step only layer 0 fires) to 0.92
    assert (later[-1] > just_after / 20).all()


@pytest.mark.parametrize("periods", [(1, 2), (1, 2, 4, 8)])
def test_a_slower_wired_relu_integrator_loses_a_pulse_that_misses_the_slowest_clock(periods):
    """The contrast: wired "slower", under its own start I/(K - k), a layer never reads the faster
    ones, and only the slowest layer, W_rec = I, holds a state. A pulse on a step the slowest
    layer fires is kept; on any other step it halves (or faster) at every tick of the slowest
    layer it reached, and is gone (measured: exactly 0 in float32) 1,000 steps later."""
    model = relu_integrator("clockwork", wiring="slower", periods=periods)
    just_after, later = pulse_at_every_phase(model)
    assert (just_after > 0).all()
    assert (later[:, 0] > just_after[0] / 10).all() and (later[:, 0] <= just_after[0]).all()
    assert (later[-1, 1:] < 1e-20 * just_after[1:]).all()


def test_integrator_start_makes_simple_rnns_recurrence_the_identity_without_bias():
    torch.manual_seed(0)
    model = SimpleRNN(num_hidden=6, nonlinearity="relu")
    before = {name: value.clone() for name, value in model.named_parameters()}
    assert models.start_as_integrator_(model) is model
    rnn = model.rnn
    assert torch.equal(rnn.weight_hh_l0, torch.eye(6))
    assert (rnn.bias_ih_l0 == 0).all() and (rnn.bias_hh_l0 == 0).all()
    assert before["rnn.bias_ih_l0"].abs().sum() > 0                # PyTorch's init was not zero
    after = dict(model.named_parameters())
    for name in ("rnn.weight_ih_l0", "linear.weight", "linear.bias"):
        assert torch.equal(after[name], before[name]), name


@pytest.mark.parametrize("wiring", models.WIRINGS)
@pytest.mark.parametrize("name, W_rec_names, b_in_names, other_names", [
    ("alarmwork", ["W_rec1", "W_rec2"], ["b_in1", "b_in2"], ["W_in1", "W_in2", "W_out", "b_out"]),
    ("clockwork", [f"W_rec.{k}" for k in range(4)], [f"b_in.{k}" for k in range(4)],
     [f"W_in.{k}" for k in range(4)] + ["W_out", "b_out"])])
def test_integrator_start_gives_each_clocked_layer_the_identity_over_the_states_it_sums(
        name, W_rec_names, b_in_names, other_names, wiring):
    model = models.build_model(name, num_hidden=6, wiring=wiring)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.uniform_(-1, 1)                # biases too, so that zeroing them shows
    before = {key: value.clone() for key, value in model.named_parameters()}
    models.start_as_integrator_(model)
    parameters = dict(model.named_parameters())
    K = len(W_rec_names)
    for k, key in enumerate(W_rec_names):
        # "slower", K - k states: AlarmworkNet I/2, I; Clockwork(1,2,4,8) I/4 .. I. "all": I/K each
        summed = K - k if wiring == "slower" else K
        torch.testing.assert_close(parameters[key], torch.eye(6) / summed, rtol=0, atol=0)
    for key in b_in_names:
        assert (parameters[key] == 0).all(), key
    for key in other_names:
        assert torch.equal(parameters[key], before[key]), key


def test_integrator_start_refuses_the_lstm_and_points_to_chrono():
    with pytest.raises(ValueError, match="chrono_init_"):
        models.start_as_integrator_(models.build_model("lstm", num_hidden=4))


def chrono_lstm(t_max, hidden=200, seed=0, generator=None):
    torch.manual_seed(seed)
    lstm = nn.LSTM(2, hidden, batch_first=True)
    before = {name: value.clone() for name, value in lstm.named_parameters()}
    assert models.chrono_init_(lstm, t_max, generator=generator) is lstm
    return lstm, before


def test_chrono_forget_biases_are_logs_of_a_uniform_draw_and_input_biases_their_negatives():
    t_max, H = 1000, 200
    lstm, before = chrono_lstm(t_max, hidden=H)
    gates = lstm.bias_ih_l0 + lstm.bias_hh_l0            # PyTorch's order: i, f, g, o
    b_i, b_f = gates[0:H], gates[H:2 * H]
    assert (b_f >= 0).all() and (b_f <= math.log(t_max - 1) + 1e-6).all()
    assert abs(b_f.exp().mean() - t_max / 2) < 0.1 * t_max    # u = exp(b_f) spreads as U(1, t_max - 1)
    assert torch.equal(b_i, -b_f)
    assert (lstm.bias_hh_l0[0:2 * H] == 0).all()             # the whole bias sits in bias_ih
    for bias in ("bias_ih_l0", "bias_hh_l0"):                 # g and o keep PyTorch's init
        assert torch.equal(getattr(lstm, bias)[2 * H:], before[bias][2 * H:]), bias
    for weight in ("weight_ih_l0", "weight_hh_l0"):
        assert torch.equal(getattr(lstm, weight), before[weight]), weight


def test_chrono_draws_the_same_biases_under_the_same_seed_and_others_under_another():
    same_a, _ = chrono_lstm(50, seed=4)
    same_b, _ = chrono_lstm(50, seed=4)
    other, _ = chrono_lstm(50, seed=5)
    assert torch.equal(same_a.bias_ih_l0, same_b.bias_ih_l0)
    assert not torch.equal(same_a.bias_ih_l0[:400], other.bias_ih_l0[:400])
    from_generator_a, _ = chrono_lstm(50, seed=4, generator=torch.Generator().manual_seed(9))
    from_generator_b, _ = chrono_lstm(50, seed=5, generator=torch.Generator().manual_seed(9))
    assert torch.equal(from_generator_a.bias_ih_l0[:400], from_generator_b.bias_ih_l0[:400])


@pytest.mark.parametrize("t_max", [2, 1.5, 0])
def test_chrono_needs_t_max_above_2(t_max):
    with pytest.raises(ValueError, match="t_max > 2"):
        models.chrono_init_(nn.LSTM(2, 4), t_max)


# ------------------------------------------------------------------------------ the bound

@pytest.mark.parametrize("name, wiring, limits", [
    ("simple_rnn", "slower", [1.0]), ("alarmwork", "slower", [0.5, 1.0]),
    ("clockwork", "slower", [0.25, 1 / 3, 0.5, 1.0]),
    ("alarmwork", "all", [0.5, 0.5]), ("clockwork", "all", [0.25] * 4)])
def test_bound_cuts_each_recurrent_matrix_to_its_integrator_starts_norm(name, wiring, limits):
    model = relu_integrator(name, wiring=wiring)
    matrices = models.recurrent_matrices(model)
    assert [limit for _, limit in matrices] == pytest.approx(limits)
    for W, limit in matrices:                       # the start sits on the bound
        assert float(torch.linalg.matrix_norm(W.detach(), 2)) == pytest.approx(limit)
    torch.manual_seed(3)
    with torch.no_grad():
        for W, _ in matrices:
            W.copy_(torch.randn_like(W))            # singular values up to about 2 sqrt(50)
    before = [W.detach().double().clone() for W, _ in matrices]
    assert models.bound_recurrence_(model) is model
    for (W, limit), old in zip(matrices, before):
        U, S, Vh = torch.linalg.svd(old)
        expected = (U * S.clamp(max=limit)) @ Vh    # singular values cut, directions kept
        torch.testing.assert_close(W.detach().double(), expected, rtol=0, atol=1e-5)
        assert float(torch.linalg.matrix_norm(W.detach(), 2)) <= limit * (1 + 1e-5)


def test_bound_leaves_a_matrix_within_it_and_a_non_finite_one_as_they_are():
    model = relu_integrator("simple_rnn")
    W = model.rnn.weight_hh_l0
    with torch.no_grad():
        W.mul_(0.7)
    within = W.detach().clone()
    models.bound_recurrence_(model)
    assert torch.equal(W.detach(), within)
    with torch.no_grad():
        W[0, 0] = float("nan")
    broken = W.detach().clone()
    models.bound_recurrence_(model)
    assert torch.equal(W.detach().isnan(), broken.isnan()) and torch.equal(W.detach()[1:], broken[1:])


def test_a_bounded_relu_state_grows_at_most_linearly_where_a_free_one_grows_geometrically():
    """|h[l]| <= |h[l-1]| + |W_ih x[l] + b| under the bound: at L = 1000 no more than L times the
    largest input term, while the same matrix scaled to spectral radius 1.1 overflows float32."""
    torch.manual_seed(0)
    model = SimpleRNN(num_hidden=20, nonlinearity="relu")
    x = torch.rand(3, 1000, 2)
    with torch.no_grad():
        A = torch.randn(20, 20).abs()                # a positive matrix: relu keeps its growth
        model.rnn.weight_hh_l0.copy_(1.1 * A / torch.linalg.eigvals(A).abs().max())
        free, _ = model.rnn(x)
        assert not torch.isfinite(free[:, -1]).all()
        models.bound_recurrence_(model)
        bounded, _ = model.rnn(x)
        drive = (x @ model.rnn.weight_ih_l0.T + model.rnn.bias_ih_l0 + model.rnn.bias_hh_l0).norm(dim=2)
    steps = torch.arange(1, 1001)
    assert (bounded.norm(dim=2) <= drive.cumsum(dim=1) * (1 + 1e-4)).all()
    assert (bounded.norm(dim=2).max() <= steps.max() * drive.max() * (1 + 1e-4))


def test_bound_refuses_the_lstm():
    with pytest.raises(ValueError, match="chrono_init_"):
        models.bound_recurrence_(models.build_model("lstm", num_hidden=4))
