"""One training run: build the model, train it as its configuration says, return its record.

A run's configuration is a flat dict (experiment/configs.py); its record holds that
configuration, the outcome and the per-epoch history (`runs.py` saves it). The protocol is
the assignment's (SPEC.md, section "4. Training protocol"):
MSE, batches in data-set order, up to `epochs` epochs, dev accuracy
at the start of every epoch stops training once above 99.5 %, test accuracy once at the end.
A recipe (experiment/recipes.py) changes only how the weights move and start: the optimizer,
its learning rate and warm-up, gradient clipping, the nonlinearity and the recurrent start;
the data and the budget stay the same, except that a recipe may end a run early once it is
frozen for good (`frozen_for_good`), which changes no accuracy the run would report.
"""
import math
import os
import time

import torch
from torch import nn
from tqdm import tqdm

import generate_data_adding_problem as data
from experiment import report
from experiment.configs import ENGINE_MODELS, check_end_frozen, normalize, setting
from lib.atomic_files import atomic_write
from lib.bptt import limit_blas_to_one_thread
from lib.machine import blas_kernel, cpu_model
from models import bound_recurrence_, build_model, chrono_init_, start_as_integrator_

STOP_DEV_ACCURACY = 99.5  # per cent; training stops when dev accuracy is above this
EVAL_BATCH = 1000
# sample-steps an evaluation batch holds at most: batches of EVAL_BATCH samples up to L = 5000
# (every length trained before this bound was set), 500 at L = 10,000, where a batch of 1000
# would add 6-9 GiB to the run (results/reach/recipe_cost/)
EVAL_STEPS = 5_000_000


# ------------------------------------------------------------------------------ protocol

def accuracy(y, t):
    """Per cent of predictions with |y - t| < 0.1."""
    hits = ((y.reshape(-1) - t.reshape(-1)).abs() < data.SUCCESS_TOLERANCE).sum().item()
    return 100.0 * hits / t.numel()


def should_stop(dev_accuracy):
    """The protocol's early stop: dev accuracy above 99.5 % at the start of an epoch."""
    return dev_accuracy > STOP_DEV_ACCURACY


def eval_batch(seq_len):
    """Samples a batch of evaluation at length `seq_len`: EVAL_BATCH, or fewer where that many
    would hold more than EVAL_STEPS sample-steps. A sample's output does not depend on the
    others in its batch, but its last bits may depend on the batch's size (the matrix products
    are blocked by it): about 1e-6 apart at L = 2000."""
    return max(1, min(EVAL_BATCH, EVAL_STEPS // seq_len))


@torch.no_grad()
def predict(model, x):
    """The model's outputs on x, in batches of eval_batch(L) samples and without building a
    graph: what evaluate scores."""
    model.eval()
    batch = eval_batch(x.shape[1])
    y = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    model.train()
    return y


def evaluate(model, x, t):
    """Accuracy of `model` on (x, t), computed by predict."""
    return accuracy(predict(model, x), t)


# ------------------------------------------------------------------------------ one run

def make_model(config):
    """The run's model, initialized from the current torch seed, then started as the
    configuration says (the recurrent start, the LSTM's forget bias or chrono biases)."""
    options = {"periods": tuple(config["periods"])} if "periods" in config else {}
    if config["model"] != "lstm":
        options["nonlinearity"] = setting(config, "nonlinearity")
    if config["model"] in ENGINE_MODELS:
        options["wiring"] = setting(config, "wiring")
    model = build_model(config["model"], config["hidden"], config["engine"] or "bptt", **options)
    if setting(config, "recurrent_init") == "integrator":
        start_as_integrator_(model)
    if setting(config, "lstm_forget_bias") is not None:
        set_lstm_forget_bias(model.lstm, setting(config, "lstm_forget_bias"))
    if setting(config, "lstm_chrono") is not None:
        chrono_init_(model.lstm, setting(config, "lstm_chrono"))
    return model


def set_lstm_forget_bias(lstm, bias):
    """Make the forget gate's pre-activation bias (bias_ih + bias_hh) equal `bias` in every layer.

    PyTorch orders the gates i, f, g, o, so the forget gate is the slice [H:2H]; its whole
    bias goes into bias_ih and bias_hh's slice becomes 0. The other gates keep PyTorch's init.
    """
    H = lstm.hidden_size
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            getattr(lstm, f"bias_ih_l{layer}")[H:2 * H] = bias
            getattr(lstm, f"bias_hh_l{layer}")[H:2 * H] = 0.0


ADAM_CLASSES = {"adam": torch.optim.Adam, "radam": torch.optim.RAdam}


def make_optimizer(config, parameters):
    """SGD with momentum (the assignment's), or Adam or RAdam with PyTorch's default betas and
    the configuration's eps (PyTorch's 1e-8 where it sets none)."""
    optimizer = setting(config, "optimizer")
    if optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config["lr"], momentum=config["momentum"])
    eps = setting(config, "adam_eps")
    options = {} if eps is None else {"eps": eps}
    return ADAM_CLASSES[optimizer](parameters, lr=config["lr"], **options)


def make_warmup(config, optimizer):
    """The linear warm-up of the rate, or None without one: over the first N optimizer steps
    (N = warmup_steps), step k (k = 1, 2, ...) takes the rate lr * k / N, and every later step lr.
    A first step at the full rate moves every weight by about lr at once (Adam's first step
    is lr times the sign of the gradient), which an integrator start compounds over the
    sequence. Stepped once a batch, after the optimizer."""
    steps = setting(config, "warmup_steps")
    if not steps:
        return None
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda done: min(1.0, (done + 1) / steps))


def training_step(config, model, watch=None):
    """(optimizer, step): the protocol's training step on one batch, step(x, t) -> (loss, the
    gradient norm before clipping), with the configuration's optimizer, warm-up and clipping.
    The benchmarks time this same step. With the integrator bound, every step ends by cutting
    the recurrent matrices back within their start's spectral norm (models.bound_recurrence_).
    `watch(model, x, loss)`, where given, looks at the model and its gradients after the
    backward pass and before clipping (studies.divergence); it must not change them.
    `step.warmup` is the warm-up's scheduler (make_warmup), whose state a checkpoint keeps.
    A `watch` with an attribute `optimizer` gets the run's optimizer in it, to read its state."""
    optimizer = make_optimizer(config, model.parameters())
    if hasattr(watch, "optimizer"):
        watch.optimizer = optimizer
    warmup = make_warmup(config, optimizer)
    loss_fn = nn.MSELoss()
    bounded = setting(config, "recurrent_bound") == "integrator"

    def step(x, t):
        optimizer.zero_grad()
        loss = loss_fn(model(x), t)
        loss.backward()
        if watch is not None:
            watch(model, x, loss)
        grad_norm = clip_or_measure(model.parameters(), config["clip_grad_norm"])
        optimizer.step()
        if warmup is not None:
            warmup.step()
        if bounded:
            bound_recurrence_(model)
        return loss, grad_norm
    step.warmup = warmup
    return optimizer, step


def train_run(config, arrays, show_progress=True, progress_position=None, checkpoint=None,
              watch=None, on_epoch=None, keep_weights=False):
    """Train one model on one length as the protocol says; returns the run record.

    With a `checkpoint` path, the run's whole state is saved there after every epoch, and a
    run that finds a checkpoint of its own configuration goes on from it: a long run that is
    stopped loses at most one epoch, and the record is the same as without the stop.
    `watch` is handed to `training_step`; `on_epoch(epochs_run)` is called after each epoch
    (and its checkpoint), and may stop the run by raising. With `keep_weights`, the record
    holds the final weights under "weights" ({name: CPU tensor}), for weights.save_weights
    to move into a file of their own before the record is written as JSON.
    """
    torch.set_num_threads(1)
    limit_blas_to_one_thread()      # the bptt engine's NumPy products (lib/bptt.py says why)
    torch.manual_seed(config["seed"])
    device = torch.device(config["device"])
    model = make_model(config).to(device)
    x_train, t_train, x_dev, t_dev, x_test, t_test = (
        torch.from_numpy(arrays[k]).to(device)
        for k in ("x_train", "t_train", "x_dev", "t_dev", "x_test", "t_test"))
    t_train = t_train.unsqueeze(1)
    optimizer, step = training_step(config, model, watch)
    shuffler = torch.Generator().manual_seed(config["seed"])
    batch_size, num_train = config["batch_size"], len(x_train)
    end_frozen = setting(config, "end_frozen")
    if end_frozen:
        check_end_frozen(config["shuffle"], config["device"])
    parameters = list(model.parameters())

    history, diverged_epoch, frozen_epoch = [], None, None
    epochs_run, seconds_before = 0, 0.0
    resumed = load_checkpoint(checkpoint, config)
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        if step.warmup is not None:
            step.warmup.load_state_dict(resumed["warmup"])
        shuffler.set_state(resumed["shuffler"])
        history, epochs_run, seconds_before = (resumed["history"], resumed["epochs_run"],
                                               resumed["train_seconds"])
        frozen_epoch = resumed.get("frozen_epoch")
    progress = tqdm(total=config["epochs"], initial=epochs_run, disable=not show_progress, leave=False,
                    position=progress_position, unit="epoch",
                    desc=f"{report.model_label(config)} L={config['seq_len']} seed={config['seed']}")
    start = time.perf_counter()
    while True:
        dev_accuracy = evaluate(model, x_dev, t_dev)
        history.append({"epoch": epochs_run, "dev_accuracy": dev_accuracy})
        if len(history) > 1:          # the epoch just trained: its loss, and the dev accuracy after it
            progress.set_postfix(loss=f"{history[-2]['train_loss']:.4f}", dev=f"{dev_accuracy:.1f}%")
        if should_stop(dev_accuracy) or epochs_run == config["epochs"] or frozen_epoch is not None:
            break
        order = (torch.randperm(num_train, generator=shuffler) if config["shuffle"]
                 else torch.arange(num_train)).to(device)
        loss_sum, grad_norms, still = 0.0, [], end_frozen
        for i in range(0, num_train, batch_size):
            batch = order[i:i + batch_size]
            before = [p.detach().clone() for p in parameters] if still else None
            loss, grad_norm = step(x_train[batch], t_train[batch])
            still = still and stood_still(parameters, before)
            grad_norms.append(grad_norm.item())
            loss_sum += loss.item()
            if not math.isfinite(loss_sum):
                break
        epochs_run += 1
        num_batches = len(grad_norms)
        history[-1].update(train_loss=loss_sum / num_batches, grad_norm=sum(grad_norms) / num_batches,
                           grad_norm_max=max(grad_norms))
        if config["clip_grad_norm"] is not None:
            clipped = sum(norm > config["clip_grad_norm"] for norm in grad_norms)
            history[-1]["clipped_fraction"] = clipped / num_batches
        progress.update(1)
        if not math.isfinite(loss_sum):
            diverged_epoch = epochs_run
            break
        if still and epochs_run < config["epochs"] and frozen_for_good(optimizer, config["lr"]):
            frozen_epoch = epochs_run
        if checkpoint is not None:
            save_checkpoint(checkpoint, {
                "config": config, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                **({} if step.warmup is None else {"warmup": step.warmup.state_dict()}),
                **({} if not end_frozen else {"frozen_epoch": frozen_epoch}),
                "shuffler": shuffler.get_state(), "history": history, "epochs_run": epochs_run,
                "train_seconds": seconds_before + time.perf_counter() - start})
        if on_epoch is not None:
            on_epoch(epochs_run)
    progress.close()
    train_seconds = seconds_before + time.perf_counter() - start
    diverged = diverged_epoch is not None
    record = {
        "config": config,
        "status": "diverged" if diverged else "frozen" if frozen_epoch is not None else "finished",
        "diverged_epoch": diverged_epoch,
        "epochs_run": epochs_run,
        "dev_accuracy": None if diverged else history[-1]["dev_accuracy"],
        "test_accuracy": None if diverged else evaluate(model, x_test, t_test),
        "train_seconds": round(train_seconds, 3),
        # what the numbers were made on: float sums differ between kernels, so between CPUs
        "cpu": cpu_model(), "blas_kernel": blas_kernel(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "history": history,
    }
    if end_frozen:
        record["frozen_epoch"] = frozen_epoch
    if keep_weights:
        record["weights"] = {name: tensor.detach().cpu().clone()
                             for name, tensor in model.state_dict().items()}
    return record


def load_checkpoint(path, config):
    """The saved state of an unfinished run of `config`, or None (absent, another run's, unreadable).
    A state saved before a recipe added since renamed the run holds the configuration in its
    former normal form, which normalizes to `config`."""
    if path is None or not os.path.exists(path):
        return None
    try:
        state = torch.load(path, weights_only=True)
    except Exception as error:                  # a torn or foreign file: start the run afresh
        reason = str(error).splitlines()[0] if str(error) else ""
        tqdm.write(f"warning: {path} is unreadable ({type(error).__name__}: {reason}); "
                   "the run starts from epoch 0")
        return None
    try:
        ours = normalize(state["config"]) == config
    except (TypeError, KeyError, AttributeError):
        ours = False
    return state if ours else None


def save_checkpoint(path, state):
    atomic_write(path, lambda f: torch.save(state, f), binary=True)


def stood_still(parameters, before):
    """Whether the step just taken had a gradient of exactly 0 in every entry and left every
    parameter as it was (`before`), bit for bit."""
    return all((p.grad is None or not p.grad.any()) and torch.equal(p, old)
               for p, old in zip(parameters, before))


def frozen_for_good(optimizer, lr):
    """Whether a run whose last epoch stood still (every step: gradient exactly 0, no
    parameter changed) stays where it is for the rest of its budget. Then its record's
    accuracies are those of the full budget, and it may end now.

    Why it holds: in data-set order the next epoch replays the same batches on the same
    weights, and on the CPU the same computation gives the same bits, so the same zero
    gradients, as long as no weight moves. With a zero gradient the only motion left is the
    optimizer's memory, which does not vanish by itself: Adam's and RAdam's first moment m
    (exp_avg.lerp_(0, 1 - beta1)) decays but stays nonzero, and may stick at the smallest
    subnormal. It only shrinks, though, as does SGD's momentum buffer (buf * momentum, momentum
    at most 1), and the bias correction 1 - beta1^t only grows, so no later update of a
    parameter exceeds lr * |m| / (1 - beta1^t) / min(eps, 1) (Adam's denominator
    sqrt(v_hat) + eps is at least eps; RAdam's rectified step multiplies by at most 1 / eps,
    its unrectified one by 1), or lr * |buf| for SGD; a warm-up only raises the rate towards
    lr. A parameter whose memory is exactly 0 never moves again. Any other stays put where
    twice that bound, plus what rounding near the subnormals may add to the computed update,
    is below half the gap to its nearest float: the update then rounds away to nothing."""
    for group in optimizer.param_groups:
        if group["weight_decay"] != 0:
            return False
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            if "exp_avg" in state:                                       # Adam, RAdam
                memory, eps = state["exp_avg"], min(group["eps"], 1.0)
                scale = lr / (1 - group["betas"][0] ** float(state["step"])) / eps
            elif state.get("momentum_buffer") is not None:               # SGD with momentum
                if group["momentum"] > 1 or group["nesterov"] or group["dampening"] != 0:
                    return False
                memory, eps, scale = state["momentum_buffer"], 1.0, lr
            else:                       # no memory (SGD without momentum), or never stepped
                continue
            largest = 2 * scale * memory.double().abs() + ROUNDING_NEAR_ZERO * max(1.0, lr) / eps
            if not bool(((memory == 0) | (largest < float_gap(p.detach()) / 2)).all()):
                return False
    return True


ROUNDING_NEAR_ZERO = 2.0 ** -147   # 8 times half the smallest float32 subnormal: the most the
                                   # few roundings of an update can add to it below the normals


def float_gap(values):
    """Per entry, the distance to the nearer of its two neighbouring floats, in float64."""
    up = torch.nextafter(values, torch.full_like(values, math.inf)).double()
    down = torch.nextafter(values, torch.full_like(values, -math.inf)).double()
    return torch.minimum(up - values.double(), values.double() - down)


def clip_or_measure(parameters, max_norm):
    """The gradient norm before clipping; rescales to `max_norm` when set (Pascanu et al. 2013)."""
    parameters = [p for p in parameters if p.grad is not None]
    if max_norm is None:
        return torch.nn.utils.get_total_norm([p.grad for p in parameters])
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm)
