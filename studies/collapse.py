"""Why an all-wired clocked run collapses: the ladder's first epoch again, batch by batch.

    python -m studies.collapse                  # the all-wired AlarmworkNet, L = 1000, seeds 0-4
    python -m studies.collapse --lr 3e-5        # the same runs at another Adam rate (into lr3e-5/)
    python -m studies.collapse --quick          # the whole path in seconds, into a temporary folder

Some runs of the all-wired clocked networks (SPEC.md, section 7) end at 0 % dev accuracy with
a training loss of 1.04-1.05 from their first epoch on: the output y = tanh(a_out) is pinned
at +-1 for every sample. In float32, tanh(a) is exactly +-1 once |a| passes about 9, its
derivative 1 - y^2 is then exactly 0, and no gradient reaches any weight: such a run cannot
recover. This trains the ladder's runs again for their first epoch(s), the same configuration
on the same data, and after every batch's backward pass (before the weights move) records:
the loss; the gradient norm before clipping; the largest norm over the batch of the state the
output reads, |z_0[L]|; the largest output pre-activation |a_out|; and the fraction of the
batch whose output is exactly +-1. The training is the ladder's own
(experiment.training.train_run), only watched, so the dev accuracy of every epoch must equal
the saved record's; the report says whether it does. Writes collapse.csv (one row per
batch), collapse.md and collapse.png into results/reach/collapse, or for other settings into
a folder of their own in it, named after them (--model clockwork:all: clockwork_all; --lr
3e-5: lr3e-5). The runs train one after another in this process, each batch watched here, so
the command has no --jobs or --scheduler.

The recipe's candidates of studies/sweep_recipes.py go into the runs with --warmup-steps and
--adam-eps (in the folder's name: warmup500, eps0.001); the record to compare with is then
looked up in the ladders of the recipe that adopted them (integrator_warmup) and in that sweep's
folder of the length too (their runs also end once frozen, which changes none of the epochs
before). --watch-from E (from1) records the batches of epoch E on only; the
epochs before train unwatched. --dynamics (dynamics) adds, per batch, what drives the state:
each recurrent matrix's spectral norm and largest |eigenvalue|, the growth per step of the
whole recurrence's linear part (recurrence_radius), the state the output reads at L/4, L/2,
3L/4 and its largest over the sequence, the gradient and the training step's change of the
parameters per group (recurrent, input, biases, output), and Adam's gradient scale per group
against its eps (adam_scale: where the scale is below eps, eps damps the step), with a table
per epoch in the report:

    python -m studies.collapse --length 2000 --seeds 100 --warmup-steps 500 --epochs 5 \
        --watch-from 1 --dynamics
"""
import argparse
import math
import os
import sys
import textwrap

import pandas as pd
import torch
from tabulate import tabulate

from experiment import configs, report, training
from experiment.runs import find_record
from lib import bptt
from lib.cli_types import non_negative_int, positive_float
from models import AlarmworkRNN
from studies.common import ModelSpec, parse_model, study_command, write_outputs
from studies import divergence, sweep_recipes

RESULTS_DIR = os.path.join("results", "reach", "collapse")
LADDER_DIR = os.path.join("results", "reach")         # where the ladder's records are
RECIPE = "integrator"                                  # the all-wired networks' recipe
WARMUP_RECIPE = "integrator_warmup"                    # the recipe with the candidates' options
CLOCKED = ("alarmwork", "clockwork")
# the options that set a run's files apart, and their names in its folder: clockwork_all, lr3e-5,
# L2000_warmup500_eps0.001
SETTINGS = {"model": "", **divergence.WATCH_SETTINGS, "lr": "lr", "warmup_steps": "warmup",
            "adam_eps": "eps", "watch_from": "from", "dynamics": "dynamics"}
RECIPE_OPTIONS = ("warmup_steps", "adam_eps")          # the sweep's candidates' settings
# the parameter groups of a clocked network, by the first letters of models.py's names
GROUPS = {"recurrent": "W_rec", "input": "W_in", "biases": "b_in", "output": ("W_out", "b_out")}
# the points of the sequence where --dynamics measures the state: (column, fraction of L)
STATE_POINTS = (("state_quarter", 1, 4), ("state_half", 1, 2), ("state_three_quarters", 3, 4))


def clocked_layers(model):
    """(periods, [W_in_k], [b_in_k], [(name, W_rec_k)]) of an AlarmworkRNN or ClockworkRNN."""
    if isinstance(model, AlarmworkRNN):
        return ((1, 2), [model.W_in1, model.W_in2], [model.b_in1, model.b_in2],
                [("W_rec1", model.W_rec1), ("W_rec2", model.W_rec2)])
    return (model.periods, list(model.W_in), list(model.b_in),
            [(f"W_rec{k}", W) for k, W in enumerate(model.W_rec)])


def state_sequence(model, x):
    """z_0[l] of every step l, shape (L, N, P): the bptt engine's forward loop
    (lib.bptt.forward_steps) on the inputs the model's recurrent_layers_bptt hands it, so its
    last step is, bit for bit, the state that the model's forward pass reads."""
    periods, W_in, b_in, W_rec = clocked_layers(model)
    with torch.no_grad():
        x_steps = x.transpose(0, 1)                           # time-major (L, N, inputs)
        u = [x_steps[0::T] @ W.T + b for T, W, b in zip(periods, W_in, b_in)]
        arrays = [t.detach().contiguous().numpy() for t in u + [W for _, W in W_rec]]
    z_fired, _ = bptt.forward_steps(periods, arrays[:len(u)], arrays[len(u):],
                                    model.nonlinearity, model.wiring)
    return torch.from_numpy(z_fired[0])


def recurrence_radius(periods, W_rec, wiring):
    """Per step, the largest |eigenvalue| of the recurrence's linear part (every unit active,
    the inputs left out) over one period of its schedule, lcm(periods) steps: the state
    [z_0, ..., z_(K-1)] goes through A_(T-1) ... A_0, where at step l a fired layer k takes
    W_rec_k times the sum of the states it reads and the others copy theirs. Its T-th root is
    the growth of the state per step along the leading direction; the integrator start gives 1
    (exactly where its I/K is exact in float32, K = 2 or 4). In float64."""
    K, P = len(W_rec), W_rec[0].shape[0]
    T = math.lcm(*periods)
    W = [w.detach().double() for w in W_rec]
    identity = torch.eye(P, dtype=torch.float64)
    product = torch.eye(K * P, dtype=torch.float64)
    for l in range(T):
        step = torch.zeros(K * P, K * P, dtype=torch.float64)
        for k, period in enumerate(periods):
            rows = slice(k * P, (k + 1) * P)
            if l % period == 0:
                for j in range(0 if wiring == "all" else k, K):
                    step[rows, j * P:(j + 1) * P] = W[k]
            else:
                step[rows, rows] = identity
        product = step @ product
    return float(torch.linalg.eigvals(product).abs().max()) ** (1.0 / T)


def group_of(name):
    """The group (GROUPS) of a clocked network's parameter, by its name in models.py."""
    for group, prefixes in GROUPS.items():
        if name.startswith(prefixes):
            return group
    raise ValueError(f"parameter {name} is in no group of {', '.join(GROUPS)}")


def group_norms(pairs):
    """{group: the norm of the tensors of each group}, summed in float64; pairs: (name, tensor)."""
    squares = dict.fromkeys(GROUPS, 0.0)
    for name, tensor in pairs:
        squares[group_of(name)] += float(tensor.double().pow(2).sum())
    return {group: math.sqrt(total) for group, total in squares.items()}


def adam_scale(model, optimizer):
    """{group: (median over its entries of Adam's gradient scale sqrt(v_hat), the share of its
    entries whose scale is below eps)} before the coming step, or NaN before the first. Adam
    moves an entry by lr * m_hat / (sqrt(v_hat) + eps): where sqrt(v_hat), the root mean square
    of the entry's recent (clipped) gradients, is below eps, eps more than halves the step."""
    eps, beta2 = optimizer.param_groups[0]["eps"], optimizer.param_groups[0]["betas"][1]
    scales = {group: [] for group in GROUPS}
    for name, parameter in model.named_parameters():
        state = optimizer.state.get(parameter, {})
        if "exp_avg_sq" not in state:
            return {group: (math.nan, math.nan) for group in GROUPS}
        correction = 1 - beta2 ** float(state["step"])
        scales[group_of(name)].append((state["exp_avg_sq"].double() / correction).sqrt().reshape(-1))
    return {group: (float(torch.cat(parts).median()), float((torch.cat(parts) < eps).double().mean()))
            for group, parts in scales.items()}


def dynamics(model, x, states, optimizer=None):
    """What --dynamics adds to a row, before the weights move: each recurrent matrix's spectral
    norm and largest |eigenvalue|, the whole recurrence's growth per step (recurrence_radius),
    the largest |z_0[t]| over the batch at t = L/4, L/2, 3L/4 (1-based steps) and over every
    step, each group's gradient norm, and with the run's Adam `optimizer` its adam_scale.
    `states`: z_0 of every step (state_sequence)."""
    periods, _, _, W_rec = clocked_layers(model)
    row = {}
    finite = all(bool(torch.isfinite(W).all()) for _, W in W_rec)
    with torch.no_grad():
        for name, W in W_rec:
            W = W.detach().double()
            row[f"{name}_norm"] = float(torch.linalg.matrix_norm(W, 2)) if finite else math.nan
            row[f"{name}_radius"] = (float(torch.linalg.eigvals(W).abs().max()) if finite
                                     else math.nan)
        row["recurrence_radius"] = (recurrence_radius(periods, [W for _, W in W_rec], model.wiring)
                                    if finite else math.nan)
        norms = states.double().norm(dim=2)                  # (L, N)
        L = len(states)
        for column, numerator, denominator in STATE_POINTS:
            row[column] = float(norms[max(1, L * numerator // denominator) - 1].max())
        row["state_peak"] = float(norms.max())
    row.update({f"grad_{g}": norm for g, norm in
                group_norms((n, p.grad) for n, p in model.named_parameters()).items()})
    if optimizer is not None and "betas" in optimizer.param_groups[0]:      # Adam or RAdam
        for group, (scale, under_eps) in adam_scale(model, optimizer).items():
            row[f"adam_scale_{group}"], row[f"under_eps_{group}"] = scale, under_eps
    return row


class Watcher:
    """Called by the training step after every backward pass; keeps one row per batch of the
    epochs from `watch_from` on, and returns at once on the batches before. With `dynamics`,
    a row also holds dynamics(), and the change of each group's parameters that the training
    step after its batch made (step_<group>), filled in at the next call (or by finish())."""

    def __init__(self, seed, batches_per_epoch, watch_from=0, dynamics=False):
        self.seed, self.batches_per_epoch, self.rows = seed, batches_per_epoch, []
        self.first_watched = watch_from * batches_per_epoch
        self.dynamics, self.calls, self.model, self.before = dynamics, 0, None, None
        self.optimizer = None                 # the run's optimizer, set by training.training_step

    def __call__(self, model, x, loss):
        batch = self.calls
        self.calls += 1
        if batch < self.first_watched:
            return                                     # unwatched: nothing measured, nothing kept
        gradient = math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in model.parameters()))
        with torch.no_grad():
            states = state_sequence(model, x)
            state = states[-1]                              # z_0[L], what the output reads
            a_out = state @ model.W_out.T + model.b_out
        row = {
            "seed": self.seed, "epoch": batch // self.batches_per_epoch, "batch": batch,
            "loss": loss.item(), "grad_norm": gradient,
            "state_norm_max": float(state.double().norm(dim=1).max()),
            "a_out_max": float(a_out.abs().max()),
            "pinned_fraction": float((torch.tanh(a_out).abs() == 1).double().mean())}
        if self.dynamics:
            self.finish()                                   # the last batch's step, made since
            row.update(dynamics(model, x, states, self.optimizer))
            self.model = model
            self.before = [(n, p.detach().clone()) for n, p in model.named_parameters()]
        self.rows.append(row)

    def finish(self):
        """Fill in the last row's step: the parameters now against those at its call."""
        if self.before is None:
            return
        now = dict(self.model.named_parameters())
        steps = group_norms((n, now[n].detach().double() - old.double()) for n, old in self.before)
        self.rows[-1].update({f"step_{g}": norm for g, norm in steps.items()})
        self.before = None


def watched_run(config, arrays, watch_from=0, dynamics=False):
    """Train `config` as the ladder does, watched from epoch `watch_from` on; (record, rows of
    every watched batch)."""
    watcher = Watcher(config["seed"], math.ceil(len(arrays["x_train"]) / config["batch_size"]),
                      watch_from, dynamics)
    record = training.train_run(config, arrays, watch=watcher)
    watcher.finish()                                        # the last watched batch's step
    return record, pd.DataFrame(watcher.rows)


def saved_record(config, recipe_options):
    """The saved record of the run, or None: in the ladder's folder, and with the recipe's
    candidates' options (`recipe_options`) also in the ladders of the recipe that adopted them
    (WARMUP_RECIPE) and in studies.sweep_recipes' folder of the length, whose runs end once
    frozen (end_frozen), as the same run's record may; the first found."""
    folders = [os.path.join(LADDER_DIR, RECIPE)]
    variants = [config]
    if recipe_options:
        folders.append(os.path.join(LADDER_DIR, WARMUP_RECIPE))
        folders.append(os.path.join(sweep_recipes.RESULTS_DIR, f"L{config['seq_len']}"))
        variants.append(configs.normalize({**config, "end_frozen": True}))
    for folder in folders:
        for variant in variants:
            record = find_record(folder, variant)
            if record is not None:
                return record
    return None


def reproduces(record, saved):
    """divergence.reproduces over the saved run's epochs, which end earlier where it ended
    frozen (and this run, which does not end so, trained on)."""
    if saved is not None and len(saved["history"]) < len(record["history"]):
        record = {**record, "history": record["history"][:len(saved["history"])]}
    return divergence.reproduces(record, saved)


def saved_text(saved):
    if saved is None:
        return "none"
    if saved["status"] == "diverged":
        return f"diverged in epoch {saved['diverged_epoch']}"
    frozen = "frozen, " if saved["status"] == "frozen" else ""
    return f"{frozen}test {saved['test_accuracy']:.1f} % after {saved['epochs_run']} epochs"


def summary_row(rows, record, saved, watched_from=0):
    """What happened in one run: the start (or the first watched batch), the first batch whose
    every output is pinned at +-1, and how many batches had no gradient at all."""
    if not len(rows):                       # the run ended before the watched epochs
        return {"seed": int(record["config"]["seed"]), "saved run": saved_text(saved),
                "batches": 0, "dev % after": dev_after(record),
                "reproduces the record": reproduces(record, saved)}
    start = rows.iloc[0]
    start_label, next_label = (("at the start", "after one step") if not watched_from else
                               (f"at batch {int(start['batch'])}", "one step later"))
    line = {"seed": int(start["seed"]), "saved run": saved_text(saved), "batches": len(rows)}
    pinned = rows[rows["pinned_fraction"] == 1.0]
    return {
        **line,
        f"{start_label}: state / a_out / gradient": (
            f"{start['state_norm_max']:.3g} / {start['a_out_max']:.3g} / {start['grad_norm']:.3g}"),
        f"{next_label}: state / a_out / pinned": (
            "-" if len(rows) < 2 else
            f"{rows['state_norm_max'].iloc[1]:.3g} / {rows['a_out_max'].iloc[1]:.3g} / "
            f"{100 * rows['pinned_fraction'].iloc[1]:.0f} %"),
        "first batch all pinned": "-" if not len(pinned) else str(int(pinned["batch"].iloc[0])),
        "batches all pinned": len(pinned),
        "batches with gradient 0": int((rows["grad_norm"] == 0).sum()),
        "largest state": f"{rows['state_norm_max'].max():.3g}",
        "dev % after": dev_after(record),
        "reproduces the record": reproduces(record, saved)}


def dev_after(record):
    return ", ".join(f"{h['dev_accuracy']:.1f}" for h in record["history"][1:])


def epoch_rows(rows):
    """--dynamics: one line per run and watched epoch, what drives the state: the batches with
    a pinned output (some of the batch, all of it), the recurrence's growth per step and the
    recurrent matrices at the epoch's first and last batch, the largest state at L/4, L/2,
    3L/4 and L and the median one at L, and the median gradient and step of each group."""
    matrices = [c[:-len("_norm")] for c in rows.columns if c.startswith("W_rec") and c.endswith("_norm")]
    lines = []
    for (seed, epoch), part in rows.groupby(["seed", "epoch"]):
        first, last = part.iloc[0], part.iloc[-1]
        line = {"seed": seed, "epoch": epoch, "batches": f"{int(first['batch'])}-{int(last['batch'])}",
                "batches pinned: some / all": (f"{int((part['pinned_fraction'] > 0).sum())} / "
                                               f"{int((part['pinned_fraction'] == 1.0).sum())}"),
                "radius per step": f"{first['recurrence_radius']:.5f} → {last['recurrence_radius']:.5f}"}
        for name in matrices:
            line[f"{name} norm / radius"] = (f"{first[name + '_norm']:.3f} / {first[name + '_radius']:.3f} → "
                                             f"{last[name + '_norm']:.3f} / {last[name + '_radius']:.3f}")
        line["largest state at L/4, L/2, 3L/4, L"] = " / ".join(
            f"{part[c].max():.3g}" for c in [c for c, _, _ in STATE_POINTS] + ["state_norm_max"])
        line["median state at L"] = f"{part['state_norm_max'].median():.3g}"
        line["largest a_out"] = f"{part['a_out_max'].max():.3g}"
        line["median gradient: rec / in / bias / out"] = " / ".join(
            f"{part[f'grad_{g}'].median():.3g}" for g in GROUPS)
        line["median step: rec / in / bias / out"] = " / ".join(
            f"{part[f'step_{g}'].median():.3g}" for g in GROUPS)
        if "adam_scale_recurrent" in part:
            line["median Adam scale: rec / in / bias / out"] = " / ".join(
                f"{part[f'adam_scale_{g}'].median():.2g}" for g in GROUPS)
            line["share under eps: rec / in / bias / out"] = " / ".join(
                f"{100 * part[f'under_eps_{g}'].median():.0f} %" for g in GROUPS)
        lines.append(line)
    return lines


def plot(rows, title, path):
    figure, axes, columns = divergence.seed_columns(rows)
    width = 45 * len(columns)                     # a column a seed: a narrow figure for few
    if len(title) > width:                        # wrapped, "L = 2000" kept on one line
        title = "\n".join(textwrap.wrap(title.replace("L = ", "L\u00a0=\u00a0"), width))
    for seed, run, (top, middle, bottom) in columns:
        top.plot(run["batch"], run["loss"], lw=0.6)
        middle.semilogy(run["batch"], run["a_out_max"], lw=0.8, label="largest |a_out|")
        middle.semilogy(run["batch"], run["state_norm_max"], lw=0.8, label="largest state")
        middle.axhline(9.0, color="C3", ls="--", lw=0.8, label="|a_out| = 9: tanh = +-1")
        bottom.plot(run["batch"], run["pinned_fraction"], lw=0.8, color="C2")
        for ax in (top, middle, bottom):
            ax.grid(alpha=0.3)
        bottom.set_xlabel("batch")
    divergence.finish_columns(figure, axes, ("training loss", "in the batch", "outputs pinned at +-1"),
                              title, path)


def clocked_model(text):
    spec = parse_model(text)
    if spec.name not in CLOCKED:
        raise argparse.ArgumentTypeError(f"'{text}': the study watches a clocked network "
                                         f"({', '.join(CLOCKED)}), got {spec.name}")
    return spec


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Train the reach ladder's runs of a clocked network again for their first "
                    "epoch(s), batch by batch: the loss, the gradient, the state the output "
                    "reads and whether the output is pinned at +-1, to see why runs collapse.")
    parser.add_argument("--model", type=clocked_model, default=ModelSpec("alarmwork", wiring="all"),
                        metavar="MODEL[:P][:WIRING]",
                        help="a clocked network, e.g. alarmwork:all or clockwork:all "
                             "(default: alarmwork:all)")
    divergence.add_watch_arguments(parser, 1000, [0, 1, 2, 3, 4], 1, RESULTS_DIR, "collapse",
                                   quick_epochs=1)
    parser.add_argument("--lr", type=positive_float, default=None,
                        help=f"Adam's rate, in place of the {RECIPE} recipe's (default: the "
                             f"recipe's); the runs then differ from the ladder's records")
    parser.add_argument("--warmup-steps", type=non_negative_int, default=None, metavar="N",
                        help="raise the rate linearly over the first N optimizer steps (batches), "
                             "as the candidates of studies.sweep_recipes do (default: the "
                             "recipe's, none)")
    parser.add_argument("--adam-eps", type=positive_float, default=None, metavar="E",
                        help="Adam's eps, as the candidates of studies.sweep_recipes set it "
                             "(default: the recipe's, PyTorch's 1e-8)")
    parser.add_argument("--watch-from", type=non_negative_int, default=0, metavar="EPOCH",
                        help="record the batches of this epoch (0-based) and later only; the "
                             "epochs before train unwatched (default: %(default)s)")
    parser.add_argument("--dynamics", action="store_true",
                        help="also record, per batch, each recurrent matrix's spectral norm and "
                             "largest |eigenvalue|, the state at L/4, L/2, 3L/4, and the gradient "
                             "and the step of each parameter group")
    args = parser.parse_args(argv)
    if args.watch_from >= (1 if args.quick else args.epochs):
        parser.error(f"--watch-from {args.watch_from} watches no epoch of "
                     f"{1 if args.quick else args.epochs} (they count from 0)")
    return divergence.watched_folder(parser, args, RESULTS_DIR, "collapse", SETTINGS)


def recipe_overrides(args):
    """The run configuration's keywords that the command sets in place of the recipe's."""
    return {name: getattr(args, name) for name in ("lr", *RECIPE_OPTIONS)
            if getattr(args, name) is not None}


def run_configs(args, data_options):
    """Every run's configuration, one a seed; configs.ConfigError where none can be made."""
    spec = args.model
    return [configs.run_config(spec.name, args.length, seed, data_options, RECIPE,
                               hidden=spec.hidden, wiring=spec.wiring, **recipe_overrides(args))
            for seed in args.seeds]


def recipe_text(config):
    """'Adam 0.0001', with the warm-up and eps where the configuration has them."""
    parts = [f"Adam {config['lr']:g}"]
    if configs.setting(config, "warmup_steps"):
        parts.append(f"warm-up over {config['warmup_steps']} steps")
    if configs.setting(config, "adam_eps") is not None:
        parts.append(f"eps {config['adam_eps']:g}")
    return ", ".join(parts)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    data_options, arrays = divergence.watched_data(args, quick_epochs=1)
    try:                                    # every run's configuration before any training
        runs = run_configs(args, data_options)
    except configs.ConfigError as error:
        sys.exit(f"error: {error}")
    recipe_options = any(getattr(args, name) is not None for name in RECIPE_OPTIONS)
    all_rows, summaries = [], []
    for config in runs:
        saved = saved_record(config, recipe_options)
        record, rows = watched_run({**config, "epochs": args.epochs}, arrays, args.watch_from,
                                   args.dynamics)
        all_rows.append(rows)
        summaries.append(summary_row(rows, record, saved, args.watch_from))
    rows = pd.concat(all_rows, ignore_index=True)
    if not len(rows):
        sys.exit(f"error: no batch was watched: every run ended before epoch {args.watch_from}")
    label = report.model_label(config)
    epochs = (f"the first {args.epochs} epoch(s)" if not args.watch_from else
              f"epochs {args.watch_from}-{args.epochs - 1} of {args.epochs}")
    title = (f"{label}, {RECIPE} recipe, {recipe_text(config)}, L = {args.length}: "
             f"{epochs}, batch by batch")
    start = ("so batch 0 is the untrained network, batch 1 the network after one Adam step"
             if not args.watch_from else
             f"from epoch {args.watch_from} on, the epochs before trained unwatched")
    text = (f"# Collapse of the {label}, batch by batch\n\n"
            f"Made by: `{study_command('studies.collapse', argv)}`\n\n"
            f"{title}: the ladder's runs trained again, watched after every batch's backward "
            f"pass, before the weights move ({start}). state is the largest norm |z_0[L]| over the batch of "
            f"the state the output reads, a_out the largest output pre-activation |a_out|, and "
            f"an output is pinned when tanh(a_out) is exactly +-1 in float32 (|a_out| above "
            f"about 9): its gradient is then exactly 0. pinned: the share of the batch pinned; "
            f"dev % after: the dev accuracy after each epoch. Per batch: "
            f"collapse.csv.\n\n"
            f"{tabulate(summaries, headers='keys', tablefmt='github', disable_numparse=True)}\n")
    if args.dynamics:
        text += (f"\nPer epoch (--dynamics): radius per step is the growth per step of the whole "
                 f"recurrence's linear part over one period of the slowest layer (every unit "
                 f"active; 1 at the integrator start), at the epoch's first and last watched "
                 f"batch, as are each recurrent matrix's spectral norm and largest |eigenvalue|; "
                 f"the state |z_0[t]| and |a_out| are the largest of the epoch (the median state "
                 f"at L: the median over the epoch's batches of their largest); gradient (before "
                 f"clipping) and step (the change of the parameters the training step made) are "
                 f"the norms of each group, recurrent (W_rec), input (W_in), biases (b_in) and "
                 f"output (W_out, b_out), median over the epoch's batches. Adam scale: Adam's "
                 f"sqrt(v_hat) before the step, the root mean square of an entry's recent clipped "
                 f"gradients, median over the group's entries; share under eps: the group's "
                 f"entries whose scale is below Adam's eps, whose step eps more than halves "
                 f"(Adam moves an entry by lr * m_hat / (sqrt(v_hat) + eps)); both median over "
                 f"the epoch's batches.\n\n"
                 f"{tabulate(epoch_rows(rows), headers='keys', tablefmt='github', disable_numparse=True)}\n")
    write_outputs(args.results_dir, "collapse", rows, text, lambda path: plot(rows, title, path))


if __name__ == "__main__":
    main()
