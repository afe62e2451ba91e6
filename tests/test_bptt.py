"""The hand-derived backward pass through time against autograd and gradcheck."""
import os
import subprocess
import sys

import pytest
import torch
from threadpoolctl import threadpool_info

from lib import bptt
from models import NONLINEARITIES, WIRINGS, AlarmworkRNN, ClockworkRNN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def recurrence_inputs(periods, seq_len, batch=3, hidden=4, seed=0):
    """u_k for the firing steps of every layer and W_rec_k, random float64 leaves."""
    generator = torch.Generator().manual_seed(seed)
    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=generator, dtype=torch.float64)).requires_grad_()
    u = [rand(len(range(0, seq_len, period)), batch, hidden) for period in periods]
    W_rec = [rand(hidden, hidden, scale=0.5) for _ in periods]
    return u, W_rec


@pytest.mark.parametrize("wiring", WIRINGS)
@pytest.mark.parametrize("periods, seq_len", [
    ((1, 2), 1), ((1, 2), 2), ((1, 2), 3), ((1, 2), 6), ((1, 2), 9),          # AlarmworkNet
    ((1,), 4), ((1, 2, 4, 8), 8), ((1, 2, 4, 8), 13), ((1, 2, 4, 8), 3),
    ((1, 3), 7), ((1, 3, 4), 13), ((1, 3, 5), 11), ((1, 5, 6, 7), 15)])       # not nested
def test_recurrence_passes_gradcheck_in_float64(periods, seq_len, wiring):
    u, W_rec = recurrence_inputs(periods, seq_len)
    K = len(periods)
    def recurrence(*tensors):
        return bptt.clockwork_recurrence(periods, list(tensors[:K]), list(tensors[K:]), wiring=wiring)
    assert torch.autograd.gradcheck(recurrence, (*u, *W_rec))


@pytest.mark.parametrize("wiring", WIRINGS)
@pytest.mark.parametrize("periods, seq_len", [((1, 2), 5), ((1, 2, 4, 8), 13), ((1, 3, 5), 11)])
def test_relu_recurrence_passes_gradcheck_in_float64(periods, seq_len, wiring):
    u, W_rec = recurrence_inputs(periods, seq_len)
    K = len(periods)
    def recurrence(*tensors):
        return bptt.clockwork_recurrence(periods, list(tensors[:K]), list(tensors[K:]), "relu", wiring)
    z = recurrence(*u, *W_rec)
    assert (z == 0).any() and (z > 0).any()           # units on both sides of relu's kink
    assert torch.autograd.gradcheck(recurrence, (*u, *W_rec))


def test_unknown_nonlinearity_is_refused_with_the_choices():
    u, W_rec = recurrence_inputs((1, 2), 3)
    with pytest.raises(ValueError, match="expected one of \\('tanh', 'relu'\\)"):
        bptt.clockwork_recurrence((1, 2), u, W_rec, "sigmoid")


def test_unknown_wiring_is_refused_with_the_choices():
    assert WIRINGS == bptt.WIRINGS == ("slower", "all")
    u, W_rec = recurrence_inputs((1, 2), 3)
    with pytest.raises(ValueError,
                       match="unknown wiring 'faster', expected one of \\('slower', 'all'\\)"):
        bptt.clockwork_recurrence((1, 2), u, W_rec, wiring="faster")


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_the_engines_default_wiring_is_slower_to_the_bit(nonlinearity):
    """The default is the assignment's wiring, in the same operations: outputs and gradients equal."""
    results = {}
    for wiring in (None, "slower", "all"):
        u, W_rec = recurrence_inputs((1, 2, 4), 11)
        options = {} if wiring is None else {"wiring": wiring}
        z = bptt.clockwork_recurrence((1, 2, 4), u, W_rec, nonlinearity, **options)
        (z * torch.linspace(-1, 1, z.numel(), dtype=z.dtype).view_as(z)).sum().backward()
        results[wiring] = [z.detach()] + [t.grad for t in u + W_rec]
    for default, slower in zip(results[None], results["slower"]):
        assert torch.equal(default, slower)
    assert not torch.allclose(results["all"][0], results["slower"][0])   # the option is not ignored


@pytest.mark.parametrize("change", [lambda W: W.add_(0.1), lambda W: W.mul_(2.0)],
                         ids=["add_", "mul_"])
def test_a_backward_pass_after_an_in_place_change_of_w_rec_is_refused(change):
    """The gradient belongs to the weights of the forward pass; after they changed it cannot
    be had, and autograd must say so instead of using the new weights."""
    u, W_rec = recurrence_inputs((1, 2, 4), 9)
    z = bptt.clockwork_recurrence((1, 2, 4), u, W_rec)
    with torch.no_grad():
        change(W_rec[2])
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


def test_a_second_backward_through_the_engine_is_refused():
    """The backward pass runs in NumPy and builds no graph: differentiating it again must raise,
    not return the second derivative without the engine's share."""
    u, W_rec = recurrence_inputs((1, 2), 6)
    z = bptt.clockwork_recurrence((1, 2), u, W_rec)
    (grad_W_rec0,) = torch.autograd.grad(torch.tanh(z).sum(), W_rec[0], create_graph=True)
    with pytest.raises(RuntimeError, match="differentiate twice"):
        grad_W_rec0.sum().backward()


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


@pytest.mark.parametrize("wiring", WIRINGS)
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("scalar_out", [False, True])
@pytest.mark.parametrize("seq_len", [1, 2, 7, 10])
def test_bptt_and_autograd_give_the_same_outputs_and_gradients(seq_len, scalar_out, nonlinearity,
                                                                wiring):
    torch.manual_seed(seq_len)
    autograd = AlarmworkRNN(num_hidden=9, engine="autograd", scalar_out=scalar_out,
                            nonlinearity=nonlinearity, wiring=wiring)
    with torch.no_grad():
        for bias in (autograd.b_in1, autograd.b_in2, autograd.b_out):
            bias.uniform_(-0.3, 0.3)
    fast = AlarmworkRNN(num_hidden=9, engine="bptt", scalar_out=scalar_out, nonlinearity=nonlinearity,
                        wiring=wiring)
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


@pytest.mark.parametrize("wiring", WIRINGS)
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("periods, seq_len", [
    ((1, 2, 4, 8), 1), ((1, 2, 4, 8), 8), ((1, 2, 4, 8), 21), ((1, 3, 4), 10), ((1,), 6),
    ((1, 2), 7), ((1, 3, 5), 11)])
def test_clockwork_bptt_and_autograd_give_the_same_outputs_and_gradients(periods, seq_len,
                                                                          nonlinearity, wiring):
    torch.manual_seed(seq_len)
    # 16 units: with fewer, relu can switch every unit of layer 0 off, and the numbers compared vanish
    autograd = ClockworkRNN(num_hidden=16, periods=periods, engine="autograd",
                            nonlinearity=nonlinearity, wiring=wiring)
    with torch.no_grad():
        for bias in (*autograd.b_in, autograd.b_out):
            bias.uniform_(-0.3, 0.3)
        if wiring == "all":
            # every layer reads the sum of all K states: under Xavier's W_rec a relu state grows
            # ~1.5x a step (K = 4), y = tanh(.) saturates to exactly +-1 and every gradient is 0
            for W_rec in autograd.W_rec:
                W_rec.div_(len(periods))
    fast = ClockworkRNN(num_hidden=16, periods=periods, engine="bptt", nonlinearity=nonlinearity,
                        wiring=wiring)
    grads_fast = assert_same_outputs_and_gradients(autograd, fast, torch.randn(5, seq_len, 2))
    slowest = f"W_rec.{len(periods) - 1}"
    if seq_len > periods[-1]:                     # the slowest layer fired twice: its W_rec learns
        assert grads_fast[slowest].abs().sum() > 0


# ------------------------------------------------------------------------------ BLAS threads

def blas_threads_in_a_fresh_python(code):
    """The BLAS thread counts a new interpreter reports after running `code` in the repository root."""
    report = ("from threadpoolctl import threadpool_info; "
              "print(sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'}))")
    done = subprocess.run([sys.executable, "-c", f"{code}\n{report}"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip()


# two threads: a count that a limit to one would change, whatever the machine's default
TWO_BLAS_THREADS = ("import numpy\n"
                    "from threadpoolctl import threadpool_limits\n"
                    "threadpool_limits(2, user_api='blas')")
needs_blas = pytest.mark.skipif(not any(p["user_api"] == "blas" for p in threadpool_info()),
                                reason="NumPy uses no BLAS that threadpoolctl can see")


@needs_blas
def test_importing_the_models_leaves_the_blas_threads_alone():
    assert blas_threads_in_a_fresh_python(TWO_BLAS_THREADS) == "[2]"
    assert blas_threads_in_a_fresh_python(f"{TWO_BLAS_THREADS}\nimport models") == "[2]"
    # and with models imported first, as a script does: the default of a process without it
    assert blas_threads_in_a_fresh_python("import models") == blas_threads_in_a_fresh_python("import numpy")


@needs_blas
def test_limit_blas_to_one_thread_sets_one_thread():
    code = f"{TWO_BLAS_THREADS}\nfrom lib import bptt\nbptt.limit_blas_to_one_thread()"
    assert blas_threads_in_a_fresh_python(code) == "[1]"
