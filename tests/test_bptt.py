"""The hand-derived backward pass through time against autograd and gradcheck."""
import pytest
import torch

from lib import bptt
from models import AlarmworkRNN, ClockworkRNN


def recurrence_inputs(periods, seq_len, batch=3, hidden=4, seed=0):
    """u_k for the firing steps of every layer and W_rec_k, random float64 leaves."""
    generator = torch.Generator().manual_seed(seed)
    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).requires_grad_()
    u = [rand(len(range(0, seq_len, period)), batch, hidden) for period in periods]
    W_rec = [rand(hidden, hidden, scale=0.5) for _ in periods]
    return u, W_rec


@pytest.mark.parametrize("periods, seq_len", [
    ((1, 2), 1), ((1, 2), 2), ((1, 2), 3), ((1, 2), 6), ((1, 2), 9),          # AlarmworkNet
    ((1,), 4), ((1, 2, 4, 8), 8), ((1, 2, 4, 8), 13), ((1, 2, 4, 8), 3),
    ((1, 3), 7), ((1, 3, 4), 13), ((1, 5, 6, 7), 15)])                          # not nested
def test_recurrence_passes_gradcheck_in_float64(periods, seq_len):
    u, W_rec = recurrence_inputs(periods, seq_len)
    K = len(periods)
    def recurrence(*tensors):
        return bptt.clockwork_recurrence(periods, list(tensors[:K]), list(tensors[K:]))
    assert torch.autograd.gradcheck(recurrence, (*u, *W_rec))


@pytest.mark.parametrize("periods", [(), (2, 4), (1, 1, 2), (1, 4, 2), (1, 2.0), (0, 1)])
def test_periods_must_start_at_1_and_strictly_increase(periods):
    with pytest.raises(ValueError, match="periods must"):
        bptt.check_periods(periods)


def gradients(model, x):
    model.zero_grad()
    y = model(x)
    (y * torch.linspace(-1, 1, len(y)).unsqueeze(1)).sum().backward()
    return y.detach(), {name: p.grad.clone() if p.grad is not None else torch.zeros_like(p)
                        for name, p in model.named_parameters()}


def assert_same_outputs_and_gradients(autograd, fast, x):
    """Give `fast` the weights of `autograd`; both must agree on y and every gradient. Returns
    the fast model's gradients."""
    fast.load_state_dict(autograd.state_dict())
    y_autograd, grads_autograd = gradients(autograd, x)
    y_fast, grads_fast = gradients(fast, x)
    torch.testing.assert_close(y_fast, y_autograd, rtol=1e-5, atol=1e-6)
    assert grads_fast.keys() == grads_autograd.keys()
    for name in grads_autograd:
        torch.testing.assert_close(grads_fast[name], grads_autograd[name], rtol=1e-4, atol=1e-6,
                                   msg=f"gradient of {name}")
    return grads_fast


@pytest.mark.parametrize("scalar_out", [False, True])
@pytest.mark.parametrize("seq_len", [1, 2, 7, 10])
def test_bptt_and_autograd_give_the_same_outputs_and_gradients(seq_len, scalar_out):
    torch.manual_seed(seq_len)
    autograd = AlarmworkRNN(num_hidden=9, engine="autograd", scalar_out=scalar_out)
    with torch.no_grad():
        for bias in (autograd.b_in1, autograd.b_in2, autograd.b_out):
            bias.uniform_(-0.3, 0.3)
    fast = AlarmworkRNN(num_hidden=9, engine="bptt", scalar_out=scalar_out)
    grads_fast = assert_same_outputs_and_gradients(autograd, fast, torch.randn(5, seq_len, 2))
    if seq_len >= 3:
        assert grads_fast["W_rec2"].abs().sum() > 0   # the check above compared real numbers


def test_a_few_training_steps_give_the_same_weights_with_either_engine():
    torch.manual_seed(0)
    x, t = torch.randn(4, 20, 11, 2), torch.randn(4, 20, 1) * 0.3
    weights = {}
    for engine in ("autograd", "bptt"):
        torch.manual_seed(1)
        model = AlarmworkRNN(engine=engine)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for x_batch, t_batch in zip(x, t):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(x_batch), t_batch).backward()
            optimizer.step()
        weights[engine] = model.state_dict()
    torch.manual_seed(1)
    start = AlarmworkRNN().state_dict()
    for name in start:
        assert not torch.equal(weights["bptt"][name], start[name]), f"{name} did not train"
        torch.testing.assert_close(weights["bptt"][name], weights["autograd"][name], rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bptt_engine_falls_back_to_autograd_on_cuda():
    torch.manual_seed(0)
    model = AlarmworkRNN(num_hidden=8, engine="bptt")
    x = torch.randn(3, 5, 2)
    expected = model(x)
    torch.testing.assert_close(model.cuda()(x.cuda()).cpu(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("periods, seq_len", [
    ((1, 2, 4, 8), 1), ((1, 2, 4, 8), 8), ((1, 2, 4, 8), 21), ((1, 3, 4), 10), ((1,), 6),
    ((1, 2), 7)])
def test_clockwork_bptt_and_autograd_give_the_same_outputs_and_gradients(periods, seq_len):
    torch.manual_seed(seq_len)
    autograd = ClockworkRNN(num_hidden=7, periods=periods, engine="autograd")
    with torch.no_grad():
        for bias in (*autograd.b_in, autograd.b_out):
            bias.uniform_(-0.3, 0.3)
    fast = ClockworkRNN(num_hidden=7, periods=periods, engine="bptt")
    grads_fast = assert_same_outputs_and_gradients(autograd, fast, torch.randn(5, seq_len, 2))
    slowest = f"W_rec.{len(periods) - 1}"
    if seq_len > periods[-1]:                     # the slowest layer fired twice: its W_rec learns
        assert grads_fast[slowest].abs().sum() > 0
