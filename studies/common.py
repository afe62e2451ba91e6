"""What the command lines of the studies share: the options every study hands on to its runs,
and the command a report names as its maker."""
import argparse
import os
import re
import shlex
import sys
import tempfile
from typing import NamedTuple

import generate_data_adding_problem as data
from experiment import cluster, grid
from experiment.datasets import prepare_data
from experiment.runs import read_record
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
    existing file (as in train_rnn.py); --report takes the options of the saved runs
    (saved_data_options) and generates nothing."""
    sizes = {"train": options.train, "dev": options.dev, "test": options.test}
    given = {split: getattr(options, split) for split in sizes if split in options.given}
    if options.report:
        return saved_data_options(results_dirs, lengths, sizes, given)
    try:
        options_of_length = prepare_data(options.data_dir, lengths, sizes, given=given)
        for folder in results_dirs:
            grid.check_writable(folder)
    except (data.DataError, OSError) as error:
        sys.exit(f"error: {error}")
    return options_of_length


def saved_data_options(results_dirs, lengths, sizes, given):
    """{L: data options} of a report: those of the runs saved in the results folders, so that a
    data set in --data-dir made with other options (a tiny one for a try) hides none of them.
    Data flags written on the command line (`given`, {split: samples}) keep the runs of the
    data sets they describe. A length with no saved run takes the options the other lengths'
    runs share, or else those the flags describe. Runs of one length saved on several data
    sets end the command with one line: a report reads one data set a length."""
    found = {}                                           # {L: {options as text: options}}
    for folder in results_dirs:
        runs = os.path.join(folder, "runs")
        for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:                    # a corrupt record is reported where the report reads it
                options = read_record(os.path.join(runs, name))["config"]["data"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if options["seq_len"] in lengths and all(options[f"n_{split}"] == value
                                                     for split, value in given.items()):
                found.setdefault(options["seq_len"], {})[data.describe(options)] = options
    for seq_len, of_length in found.items():
        if len(of_length) > 1:
            sys.exit(f"error: the runs saved at L = {seq_len} in {', '.join(results_dirs)} were "
                     f"trained on {len(of_length)} data sets ({'; '.join(sorted(of_length))}); "
                     "give the --train, --dev and --test of the one to report, or keep them in "
                     "separate results folders")
    shared = {tuple((k, v) for k, v in sorted(o.items()) if k != "seq_len")
              for of_length in found.values() for o in of_length.values()}
    if len(shared) == 1 and not given:
        other = dict(next(iter(shared)))
        sizes, seed = {split: other[f"n_{split}"] for split in data.SPLITS}, other["seed"]
    else:
        seed = data.DEFAULT_SEED
    return {L: next(iter(found[L].values())) if L in found else
            data.generator_options(L, sizes, seed) for L in lengths}


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


def results_folder(args, study_folder, settings, stem):
    """Where a measuring study writes its files: --results-dir when given; with --quick a new
    temporary folder, said at once (a check of the whole path is no result, and must not take
    the place of one); for settings other than the defaults a folder of their own in the
    study's, named after them (`settings`: their names, e.g. ['lr3e-5'], empty for the
    defaults); else the study's folder. So no run of some settings writes over the files of
    others."""
    if args.results_dir is not None:
        return args.results_dir
    if args.quick:
        folder = tempfile.mkdtemp(prefix=f"{stem}-quick-")
        print(f"--quick: the files go to {folder}, the study's folder is left as it is")
        return folder
    return os.path.join(study_folder, "_".join(settings)) if settings else study_folder


def setting_name(name, value):
    """A setting as a folder name has it: 'L', 100 -> 'L100'; 'lr', 3e-5 -> 'lr3e-5'; a list
    joined by '-'; a model spec with '_' for ':'; a flag set, its name alone."""
    if value is True:
        return name
    values = value if isinstance(value, (list, tuple)) and not isinstance(value, ModelSpec) else [value]
    texts = [re.sub(r"e([+-])0+(\d)", r"e\1\2", f"{v:g}") if isinstance(v, float)
             else str(v).replace(":", "_") for v in values]
    return name + "-".join(texts)


def changed_settings(parser, args, names, always=()):
    """The folder names of the settings among `names` ({dest: name in the folder}) whose value
    in `args` is not the parser's default, in the order of `names`; once one is, those in
    `always` are named too (e.g. the length, as in clockwork_L100)."""
    changed = {dest for dest in names if getattr(args, dest) != parser.get_default(dest)}
    return [setting_name(name, getattr(args, dest)) for dest, name in names.items()
            if dest in changed or changed and dest in always]


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
