"""What the command lines of the studies share: the options every study hands on to its runs,
and the command a report names as its maker."""
import argparse
import os
import shlex
import sys
from typing import NamedTuple

import generate_data_adding_problem as data
from experiment import cluster, grid
from experiment.datasets import data_options, prepare_data
from lib.atomic_files import atomic_write_text
from lib.cli_types import positive_int
from models import MODELS, WIRINGS

DEFAULT_HIDDEN = 50


class ModelSpec(NamedTuple):
    """A model as a study names it: the registry name, the width P, and for a clocked network
    its wiring."""
    name: str
    hidden: int = DEFAULT_HIDDEN
    wiring: str = "slower"

    def __str__(self):
        parts = [self.name] + ([str(self.hidden)] if self.hidden != DEFAULT_HIDDEN else [])
        return ":".join(parts + ([self.wiring] if self.wiring != "slower" else []))


def parse_model(text):
    """'clockwork:35' -> ModelSpec('clockwork', 35); 'alarmwork:all' -> ModelSpec('alarmwork',
    50, 'all'): after the name, a width and a wiring (SPEC.md, section 7), each optional."""
    name, *parts = text.split(":")
    if name not in MODELS:
        raise argparse.ArgumentTypeError(f"unknown model '{name}', expected one of {', '.join(MODELS)}")
    hidden, wiring = DEFAULT_HIDDEN, "slower"
    given = set()                        # at most one width, then at most one wiring
    for part in parts:
        if part in WIRINGS and "wiring" not in given:
            if name not in ("alarmwork", "clockwork"):
                raise argparse.ArgumentTypeError(f"'{text}': a wiring is for alarmwork and clockwork")
            wiring = part
            given.add("wiring")
        elif part.lstrip("-").isdigit() and not given:
            given.add("width")
            try:
                hidden = positive_int(part)
            except argparse.ArgumentTypeError as error:
                raise argparse.ArgumentTypeError(f"'{text}': the width after ':' {error}") from None
        else:
            raise argparse.ArgumentTypeError(
                f"'{text}': expected NAME[:P][:WIRING], a width P >= 1 and a wiring from "
                f"{', '.join(WIRINGS)}")
    return ModelSpec(name, hidden, wiring)


def add_study_arguments(parser, results_dir, outputs):
    """The options a study (reach, sweep_learning_rates) hands on to its runs, and its own
    folder, pool and report flags."""
    parser.add_argument("--epochs", type=positive_int, default=50,
                        help="maximum number of epochs of every run (default: %(default)s)")
    for split, size in data.DEFAULT_SIZES.items():
        parser.add_argument(f"--{split}", type=positive_int, default=size,
                            help=f"{split} samples of a generated data set (default: %(default)s)")
    parser.add_argument("--data-dir", default="data", help="folder of the .npz files (default: %(default)s)")
    parser.add_argument("--results-dir", default=results_dir,
                        help=f"folder of {outputs}" + (" (default: %(default)s)" if results_dir else ""))
    cluster.add_executor_arguments(parser, "runs trained at once, one thread each")
    parser.add_argument("--force", action="store_true", help="retrain runs that are already saved")
    parser.add_argument("--report", action="store_true",
                        help="rebuild the tables and figures from the saved runs, no training")


def prepare_study(options, lengths, results_dirs):
    """{L: data options} of the study's data sets, after checking that every results folder it
    trains into can be written; exits with one line when not. A study that trains generates
    the missing data sets, and a data flag written on its command line must agree with an
    existing file (as in train_rnn.py); --report reads the options and generates nothing."""
    sizes = {"train": options.train, "dev": options.dev, "test": options.test}
    if options.report:
        return data_options(options.data_dir, lengths, sizes)
    given = {split: getattr(options, split) for split in sizes if split in options.given}
    try:
        options_of_length = prepare_data(options.data_dir, lengths, sizes, given=given)
        for folder in results_dirs:
            grid.check_writable(folder)
    except (data.DataError, OSError) as error:
        sys.exit(f"error: {error}")
    return options_of_length


def print_report(text, narrowed, files):
    """Print a study's table; a command that selected part of the study says that its folder's
    files were left as they are."""
    print(text if not narrowed else
          f"{text}\n(a part of the study: {files} are left as they are)")


def study_command(module, argv):
    """The command a study's report names as its maker: the study's own, without --report,
    --force and where it trained (--jobs, --scheduler and TLS files: none of them changes
    what the records hold)."""
    valued = {"--" + dest.replace("_", "-") for dest in cluster.EXECUTOR_DESTS}
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--report", "--force") or arg.split("=")[0] in valued and "=" in arg:
            continue
        elif arg in valued:
            skip = True
        else:
            kept.append(arg)
    return shlex.join(["python", "-m", module, *kept])


def one_length_data(data_dir, seq_len, sizes):
    """(generator options, arrays) of one length's data set, generated where missing; a broken
    or unreadable file ends the command with one line."""
    try:
        options = prepare_data(data_dir, [seq_len], sizes)[seq_len]
        return options, data.load_data_set(data_dir, seq_len, options)
    except (data.DataError, OSError) as error:
        sys.exit(f"error: {error}")


def write_outputs(results_dir, stem, rows, text, draw):
    """A measuring study's files: <stem>.csv (its rows), <stem>.md (its report) and <stem>.png
    (drawn by draw(path)) in results_dir; then the report is printed."""
    os.makedirs(results_dir, exist_ok=True)
    atomic_write_text(os.path.join(results_dir, f"{stem}.csv"), rows.to_csv(index=False))
    atomic_write_text(os.path.join(results_dir, f"{stem}.md"), text)
    draw(os.path.join(results_dir, f"{stem}.png"))
    print(text)
