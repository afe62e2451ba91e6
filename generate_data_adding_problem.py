"""Generate the adding-problem data sets, one NumPy archive per sequence length.

One sample of length L = 5 (channel 0 values, channel 1 markers, h = L // 2 = 2):

    values   0.15  -0.21   0.25  -0.05   0.10
    markers     0      1      0      1      0     -> target t = -0.21 + -0.05 = -0.26

The first marker sits in 0 .. h-1, the second in h .. L-1 (0-based positions).
`x` has shape (N, L, 2) and `t` shape (N,), both float32.

    python generate_data_adding_problem.py                 # L = 10 50 70 100 into data/
    python generate_data_adding_problem.py --lengths 20 --train 500

The options a file was made with are stored in it (`read_options`); train_rnn.py trains on the
files it finds as they are, and records those options in each run's configuration.
"""
import argparse
import os
import sys

import numpy as np

from lib.atomic_files import atomic_write
from lib.cli_types import non_negative_int, positive_int, sequence_length

DEFAULT_LENGTHS = (10, 50, 70, 100)
DEFAULT_SIZES = {"train": 10_000, "dev": 1_000, "test": 1_000}
DEFAULT_SEED = 2021
SPLITS = ("train", "dev", "test")
VALUE_RANGE = 0.25
SUCCESS_TOLERANCE = 0.1  # a prediction y is successful when |y - t| < 0.1


class DataError(Exception):
    """A data file that cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")


# ------------------------------------------------------------------------------ generation

def adding_problem(num_samples, seq_len, rng):
    """Draw `num_samples` sequences of length `seq_len`; returns x (N, L, 2) and t (N,)."""
    half = seq_len // 2
    values = np.round(rng.uniform(-VALUE_RANGE, VALUE_RANGE, size=(num_samples, seq_len)), 2)
    first = rng.integers(0, half, size=num_samples)
    second = rng.integers(half, seq_len, size=num_samples)
    rows = np.arange(num_samples)
    markers = np.zeros((num_samples, seq_len))
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = np.round(values[rows, first] + values[rows, second], 2)
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    return x, targets.astype(np.float32)


def generate_data_set(seq_len, sizes=None, seed=DEFAULT_SEED):
    """All three splits of one length, from a stream seeded by (seed, seq_len) alone."""
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    rng = np.random.default_rng([seed, seq_len])  # another length never shifts this stream
    arrays = {}
    for split in SPLITS:
        arrays[f"x_{split}"], arrays[f"t_{split}"] = adding_problem(sizes[split], seq_len, rng)
    return arrays


def generator_options(seq_len, sizes, seed):
    """The options a data set was made with, stored inside its archive."""
    return {"seq_len": seq_len, "seed": seed, **{f"n_{s}": sizes[s] for s in SPLITS}}


def data_path(data_dir, seq_len):
    return os.path.join(data_dir, f"adding_problem_L{seq_len:03d}.npz")


def write_data_set(data_dir, seq_len, sizes=None, seed=DEFAULT_SEED, force=False):
    """Generate and save one length; returns (path, what happened) with 'written' or 'kept'.

    An existing file made with the same options is kept; one made with other options is
    only replaced when `force` is set.
    """
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    path = data_path(data_dir, seq_len)
    options = generator_options(seq_len, sizes, seed)
    if os.path.exists(path) and not force:
        existing = read_options(path)
        if existing == options:
            return path, "kept"
        raise DataError(path, f"exists with other options ({describe(existing)}); "
                              f"use --force to replace it with ({describe(options)})")
    arrays = generate_data_set(seq_len, sizes, seed)
    arrays.update({f"option_{k}": np.int64(v) for k, v in options.items()})
    atomic_write(path, lambda f: np.savez(f, **arrays), binary=True)
    return path, "written"


def describe(options):
    return ", ".join(f"{k}={v}" for k, v in options.items()) if options else "unknown options"


# ------------------------------------------------------------------------------ loading

def read_options(path):
    """The generator options stored in an archive ({} if it holds none or is unreadable)."""
    try:
        with np.load(path) as archive:
            return {k[len("option_"):]: int(archive[k]) for k in archive.files
                    if k.startswith("option_")}
    except Exception:
        return {}


def load_data_set(data_dir, seq_len, expected_options=None):
    """Read and check the archive of one length; returns the six arrays as a dict.

    Raises DataError naming the file and the first problem found. `expected_options`,
    when given, must match the generator options stored in the archive.
    """
    path = data_path(data_dir, seq_len)
    if not os.path.exists(path):
        raise DataError(path, "no such file; create it with "
                              f"`python generate_data_adding_problem.py --lengths {seq_len}`")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except Exception as error:  # truncated zip, not an archive at all, bad member, ...
        raise DataError(path, f"not a readable NumPy archive ({type(error).__name__}: "
                              f"{str(error).splitlines()[0] if str(error) else 'no detail'})")
    check_data_set(path, arrays, seq_len)
    stored = {k[len("option_"):]: int(v) for k, v in arrays.items() if k.startswith("option_")}
    if expected_options is not None and stored != expected_options:
        raise DataError(path, f"made with other options ({describe(stored)}), expected "
                              f"({describe(expected_options)}); use another --data-dir, or replace it with "
                              "generate_data_adding_problem.py --force and the options you want")
    return {k: v for k, v in arrays.items() if not k.startswith("option_")}


def check_data_set(path, arrays, seq_len):
    """Raise DataError unless `arrays` is a valid data set of length `seq_len`."""
    for split in SPLITS:
        for name in (f"x_{split}", f"t_{split}"):
            if name not in arrays:
                raise DataError(path, f"missing array '{name}'")
            if arrays[name].dtype != np.float32:
                raise DataError(path, f"'{name}' has dtype {arrays[name].dtype}, expected float32")
        x, t = arrays[f"x_{split}"], arrays[f"t_{split}"]
        if x.ndim != 3 or x.shape[2] != 2 or x.shape[0] < 1:
            raise DataError(path, f"'x_{split}' has shape {x.shape}, expected (N, L, 2)")
        if x.shape[1] != seq_len:
            raise DataError(path, f"'x_{split}' holds sequences of length {x.shape[1]}, "
                                  f"but the file name says L = {seq_len}")
        if t.shape != (x.shape[0],):
            raise DataError(path, f"'t_{split}' has shape {t.shape}, expected ({x.shape[0]},)")
        if not (np.isfinite(x).all() and np.isfinite(t).all()):
            raise DataError(path, f"split '{split}' holds NaN or infinite values")
        check_samples(path, split, x, t)


def check_samples(path, split, x, t):
    """The data rules: values in range, two markers in their halves, t = sum of marked values."""
    values, markers = x[..., 0], x[..., 1]
    seq_len, half = x.shape[1], x.shape[1] // 2
    if np.abs(values).max() > VALUE_RANGE + 1e-6:
        raise DataError(path, f"split '{split}' has values outside [-{VALUE_RANGE}, {VALUE_RANGE}]")
    if not np.isin(markers, (0.0, 1.0)).all():
        raise DataError(path, f"split '{split}' has markers other than 0 and 1")
    first_half = markers[:, :half].sum(axis=1)
    second_half = markers[:, half:].sum(axis=1)
    bad = np.flatnonzero((first_half != 1) | (second_half != 1))
    if bad.size:
        n = bad[0]
        raise DataError(path, f"split '{split}' sample {n} has {int(first_half[n])} marker(s) in "
                              f"steps 0..{half - 1} and {int(second_half[n])} in {half}..{seq_len - 1}, "
                              "expected exactly one in each")
    marked_sum = np.round((values * markers).sum(axis=1, dtype=np.float64), 2)
    bad = np.flatnonzero(np.abs(marked_sum - t) > 1e-4)
    if bad.size:
        n = bad[0]
        raise DataError(path, f"split '{split}' sample {n} has target {t[n]:.4f}, but its marked "
                              f"values sum to {marked_sum[n]:.2f}")


# ------------------------------------------------------------------------------ command line

def add_data_arguments(parser, seed_flags=("--seed", "--data-seed")):
    """The generator's options, shared with train_rnn.py so both make the same data.

    train_rnn.py keeps `--seed` for the model seed and passes `seed_flags=("--data-seed",)`.
    """
    parser.add_argument("--lengths", type=sequence_length, nargs="+", default=list(DEFAULT_LENGTHS),
                        help="sequence lengths L (default: %(default)s)")
    parser.add_argument("--train", type=positive_int, default=DEFAULT_SIZES["train"],
                        help="training samples per length (default: %(default)s)")
    parser.add_argument("--dev", type=positive_int, default=DEFAULT_SIZES["dev"],
                        help="dev samples per length (default: %(default)s)")
    parser.add_argument("--test", type=positive_int, default=DEFAULT_SIZES["test"],
                        help="test samples per length (default: %(default)s)")
    parser.add_argument(*seed_flags, dest="data_seed", type=non_negative_int,
                        default=DEFAULT_SEED,
                        help="seed of the data streams, one per length; 0 or more "
                             "(default: %(default)s)")
    parser.add_argument("--data-dir", default="data",
                        help="folder of the .npz files (default: %(default)s)")


def sizes_from(args):
    return {"train": args.train, "dev": args.dev, "test": args.test}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate adding-problem data sets, "
                                                 "one data/adding_problem_LXXX.npz per length.")
    add_data_arguments(parser)
    parser.add_argument("--force", action="store_true",
                        help="replace existing files made with other options")
    args = parser.parse_args(argv)
    try:
        for seq_len in args.lengths:
            path, outcome = write_data_set(args.data_dir, seq_len, sizes_from(args),
                                           args.data_seed, args.force)
            if outcome == "written":
                print(f"{path}: written ({args.train}/{args.dev}/{args.test} samples, "
                      f"seed {args.data_seed})")
            else:
                print(f"{path}: already there with the same options, kept")
    except (DataError, OSError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
