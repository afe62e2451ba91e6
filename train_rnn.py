"""Train SimpleRNN, LSTM and AlarmworkNet on the adding problem and print the accuracy table.

    python train_rnn.py                      # the whole assignment: 3 models x L = 10 50 70 100
    python train_rnn.py --seeds 5            # seeds 0..4 of every cell, mean +- std
    python train_rnn.py --models lstm --lengths 50 --seed 3
    python train_rnn.py --report             # rebuild the tables and figures, no training

Protocol (SPEC.md): MSE, SGD lr 0.01 momentum 0.9, batch 20 in data-set order, up to 50
epochs; dev accuracy at the start of every epoch stops training once above 99.5 %; test
accuracy once at the end. Every finished run is saved at once under results/runs/, and a
run already there with the same configuration is not trained again.
"""
import argparse
import math
import multiprocessing
import os
import signal
import sys
import time

import torch
from torch import nn
from tqdm import tqdm

import generate_data_adding_problem as data
import report
from atomic_files import atomic_write_text
from models import ENGINES, MODELS, build_model
from runs import load_record, record_path, run_key, save_record

STOP_DEV_ACCURACY = 99.5  # per cent; training stops when dev accuracy is above this
EVAL_BATCH = 1000


# ------------------------------------------------------------------------------ protocol

def accuracy(y, t):
    """Per cent of predictions with |y - t| < 0.1."""
    hits = ((y.reshape(-1) - t.reshape(-1)).abs() < data.SUCCESS_TOLERANCE).sum().item()
    return 100.0 * hits / t.numel()


def should_stop(dev_accuracy):
    """The protocol's early stop: dev accuracy above 99.5 % at the start of an epoch."""
    return dev_accuracy > STOP_DEV_ACCURACY


@torch.no_grad()
def evaluate(model, x, t):
    """Accuracy of `model` on (x, t), in large batches and without building a graph."""
    model.eval()
    y = torch.cat([model(x[i:i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])
    model.train()
    return accuracy(y, t)


def train_run(config, arrays, show_progress=True, progress_position=None):
    """Train one model on one length as the protocol says; returns the run record."""
    torch.set_num_threads(1)
    torch.manual_seed(config["seed"])
    device = torch.device(config["device"])
    model = build_model(config["model"], config["hidden"], config["engine"] or "bptt").to(device)
    x_train, t_train, x_dev, t_dev, x_test, t_test = (
        torch.from_numpy(arrays[k]).to(device)
        for k in ("x_train", "t_train", "x_dev", "t_dev", "x_test", "t_test"))
    t_train = t_train.unsqueeze(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"])
    loss_fn = nn.MSELoss()
    shuffler = torch.Generator().manual_seed(config["seed"])
    batch_size, num_train = config["batch_size"], len(x_train)

    history, diverged_epoch = [], None
    progress = tqdm(total=config["epochs"], disable=not show_progress, leave=False,
                    position=progress_position, unit="epoch",
                    desc=f"{MODELS[config['model']][0]} L={config['seq_len']} seed={config['seed']}")
    start = time.perf_counter()
    epochs_run = 0
    while True:
        dev_accuracy = evaluate(model, x_dev, t_dev)
        history.append({"epoch": epochs_run, "dev_accuracy": dev_accuracy})
        if should_stop(dev_accuracy) or epochs_run == config["epochs"]:
            break
        order = (torch.randperm(num_train, generator=shuffler) if config["shuffle"]
                 else torch.arange(num_train)).to(device)
        loss_sum, grad_norms = 0.0, []
        for i in range(0, num_train, batch_size):
            batch = order[i:i + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), t_train[batch])
            loss.backward()
            grad_norms.append(clip_or_measure(model.parameters(), config["clip_grad_norm"]).item())
            optimizer.step()
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
        progress.set_postfix(loss=f"{loss_sum / num_batches:.4f}", dev=f"{dev_accuracy:.1f}%")
        if not math.isfinite(loss_sum):
            diverged_epoch = epochs_run
            break
    progress.close()
    train_seconds = time.perf_counter() - start
    diverged = diverged_epoch is not None
    return {
        "config": config,
        "status": "diverged" if diverged else "finished",
        "diverged_epoch": diverged_epoch,
        "epochs_run": epochs_run,
        "dev_accuracy": None if diverged else history[-1]["dev_accuracy"],
        "test_accuracy": None if diverged else evaluate(model, x_test, t_test),
        "train_seconds": round(train_seconds, 3),
        "history": history,
    }


def clip_or_measure(parameters, max_norm):
    """The gradient norm before clipping; rescales to `max_norm` when set (Pascanu et al. 2013)."""
    parameters = [p for p in parameters if p.grad is not None]
    if max_norm is None:
        return torch.nn.utils.get_total_norm([p.grad for p in parameters])
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm)


# ------------------------------------------------------------------------------ the results folder

def check_writable(results_dir):
    """Fail now, not after an hour of training, if results cannot be written."""
    try:
        os.makedirs(os.path.join(results_dir, "runs"), exist_ok=True)
        atomic_write_text(os.path.join(results_dir, "runs", ".write-check"), "ok\n")
        os.remove(os.path.join(results_dir, "runs", ".write-check"))
    except OSError as error:
        raise SystemExit(f"error: cannot write results to '{results_dir}' ({error.strerror}); "
                         "choose another folder with --results-dir")


# ------------------------------------------------------------------------------ the grid

def make_configs(args, data_options):
    """One configuration per (model, length, seed), in the order of the table."""
    return [{
        "model": model, "seq_len": seq_len, "seed": seed,
        "epochs": args.epochs, "batch_size": args.batch_size, "hidden": args.hidden,
        "lr": args.lr, "momentum": args.momentum,
        "engine": args.alarmwork_engine if model == "alarmwork" else None,
        "clip_grad_norm": args.clip_grad_norm, "shuffle": args.shuffle,
        "device": args.device, "data": data_options[seq_len],
    } for model in args.models for seq_len in args.lengths for seed in args.seed_list]


def data_options_of(args):
    """The generator options each length's data set must have been made with."""
    sizes = data.sizes_from(args)
    return {L: data.generator_options(L, sizes, args.data_seed) for L in args.lengths}


def prepare_data(args, data_options):
    """Generate the missing data sets (saying so) and check that the others match the options."""
    for seq_len in args.lengths:
        path = data.data_path(args.data_dir, seq_len)
        if not os.path.exists(path):
            print(f"{path} is missing: generating it ({args.train}/{args.dev}/{args.test} "
                  f"samples, data seed {args.data_seed})")
            data.write_data_set(args.data_dir, seq_len, data.sizes_from(args), args.data_seed)
        data.load_data_set(args.data_dir, seq_len, data_options[seq_len])


PROGRESS_POSITION = 1  # the line of this process's progress bar, under the bar of all runs


def run_worker(job):
    """Train one run (one torch thread); returns its record."""
    config, data_dir = job
    arrays = data.load_data_set(data_dir, config["seq_len"], config["data"])
    return train_run(config, arrays, progress_position=PROGRESS_POSITION)


def init_worker(next_position, lock):
    """Give each worker process its own progress line; the parent handles Ctrl-C for all."""
    global PROGRESS_POSITION
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(lock)
    with next_position.get_lock():
        PROGRESS_POSITION = next_position.value
        next_position.value += 1


def run_grid(configs, args):
    """Train every configuration without a saved record; returns all records in config order."""
    records = {}
    todo = []
    for config in configs:
        record = None if args.force else load_record(record_path(args.results_dir, config), config)
        if record is None:
            todo.append(config)
        else:
            records[run_key(config)] = record
    if records:
        print(f"skipping {len(records)} finished run(s) saved in {args.results_dir}/runs "
              "(--force to recompute)")
    jobs = min(args.jobs, len(todo)) or 1
    overall = tqdm(total=len(todo), desc="runs", unit="run", position=0, disable=len(todo) < 2)
    try:
        if jobs == 1:
            finished = (run_worker((c, args.data_dir)) for c in todo)
            collect(finished, records, args, overall)
        else:
            todo.sort(key=lambda c: -c["seq_len"])  # longest runs first: less idle time at the end
            context = multiprocessing.get_context("spawn")
            worker_state = (context.Value("i", 1), context.RLock())
            with context.Pool(jobs, initializer=init_worker, initargs=worker_state) as pool:
                finished = pool.imap_unordered(run_worker, [(c, args.data_dir) for c in todo])
                collect(finished, records, args, overall)
    except KeyboardInterrupt:
        overall.close()
        saved = len(records)
        raise SystemExit(f"\ninterrupted: {saved} of {len(configs)} run(s) are saved in "
                         f"{args.results_dir}/runs; run the same command again to go on")
    overall.close()
    return [records[run_key(c)] for c in configs]


def collect(finished, records, args, overall):
    """Save each record the moment its run ends."""
    for record in finished:
        save_record(args.results_dir, record)
        records[run_key(record["config"])] = record
        overall.update(1)
        overall.write(report.describe_run(record))


# ------------------------------------------------------------------------------ command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train SimpleRNN, LSTM and AlarmworkNet on the adding problem "
                    "and print the test-accuracy table.",
        epilog="Data sets that are missing are generated with the same options as "
               "generate_data_adding_problem.py.")
    parser.add_argument("--models", nargs="+", default=list(MODELS), metavar="MODEL",
                        choices=list(MODELS),
                        help=f"models to train, from {', '.join(MODELS)} (default: all)")
    data.add_data_arguments(parser, seed_flags=("--data-seed",))
    parser.add_argument("--epochs", type=data.positive_int, default=50,
                        help="maximum number of epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=data.positive_int, default=20,
                        help="mini-batch size (default: %(default)s)")
    parser.add_argument("--hidden", type=data.positive_int, default=50,
                        help="hidden units P (default: %(default)s)")
    parser.add_argument("--lr", type=data.positive_float, default=0.01,
                        help="SGD learning rate (default: %(default)s)")
    parser.add_argument("--momentum", type=float, default=0.9,
                        help="SGD momentum (default: %(default)s)")
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=data.int_argument,
                       help="run this one seed (model initialization and batch order; default 0)")
    seeds.add_argument("--seeds", type=data.positive_int,
                       help="run seeds 0..N-1 of every model and length")
    parser.add_argument("--clip-grad-norm", type=data.positive_float, default=None, metavar="C",
                        help="rescale the gradient to norm C when above it (default: off, "
                             "as in the assignment)")
    parser.add_argument("--shuffle", action="store_true",
                        help="reshuffle the training batches every epoch, seeded (default: "
                             "data-set order, as in the assignment)")
    parser.add_argument("--alarmwork-engine", choices=ENGINES, default="bptt",
                        help="AlarmworkNet backward pass: hand-derived BPTT (fast, exact) or "
                             "plain autograd (default: %(default)s)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train; auto picks cuda when available (default: %(default)s)")
    parser.add_argument("--jobs", type=data.positive_int, default=len(os.sched_getaffinity(0)),
                        help="runs trained at once in worker processes, one thread each "
                             "(default: the CPU cores this process may use, %(default)s)")
    parser.add_argument("--results-dir", default="results",
                        help="folder of runs/, accuracy.csv, accuracy.md and the figures "
                             "(default: %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="retrain runs that are already saved")
    parser.add_argument("--report", action="store_true",
                        help="rebuild the table, CSV and figures from the saved runs, no training")
    args = parser.parse_args(argv)

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available here (use --device cpu)")
    args.seed_list = list(range(args.seeds)) if args.seeds else [args.seed or 0]
    return args


def main(argv=None):
    args = parse_args(argv)
    data_options = data_options_of(args)
    configs = make_configs(args, data_options)
    if args.report:
        records = [r for r in (load_record(record_path(args.results_dir, c), c) for c in configs) if r]
        if len(records) < len(configs):
            print(f"{len(configs) - len(records)} of {len(configs)} run(s) are not saved yet; "
                  "reporting the others")
    else:
        try:
            prepare_data(args, data_options)
            check_writable(args.results_dir)
        except (data.DataError, OSError) as error:
            sys.exit(f"error: {error}")
        started = time.perf_counter()
        records = run_grid(configs, args)
        print(f"grid finished in {time.perf_counter() - started:.0f} s")
    if not records:
        sys.exit("error: no saved runs match these options; train them first")
    print(report.write_report(records, args.results_dir))


if __name__ == "__main__":
    main()
