"""The data set of each length a command trains on: found in the data folder, or generated.

A data set already in the folder is trained on as it was made: the generator options
stored in it become the `data` entry of each run's configuration. The data flags of a
command shape only the data sets that are missing; one given explicitly must agree with
the file it would describe.
"""
import os

import generate_data_adding_problem as data

# the data flags and the generator option each one sets
DATA_FLAGS = {"train": ("--train", "n_train"), "dev": ("--dev", "n_dev"),
              "test": ("--test", "n_test"), "data_seed": ("--data-seed", "seed")}


def data_options(data_dir, lengths, sizes=None, data_seed=data.DEFAULT_SEED):
    """{L: generator options}: those stored in each length's file, or, where there is none yet,
    those it will be generated with."""
    sizes = {**data.DEFAULT_SIZES, **(sizes or {})}
    return {L: data.read_options(data.data_path(data_dir, L))
            or data.generator_options(L, sizes, data_seed) for L in lengths}


def prepare_data(data_dir, lengths, sizes=None, data_seed=data.DEFAULT_SEED, given=None):
    """{L: generator options} of the data set of every length, generating the missing ones
    (saying so) and checking each file; raises data.DataError for a broken file or one that
    contradicts a flag in `given` ({flag dest: value}, e.g. {"train": 60})."""
    sizes = {**data.DEFAULT_SIZES, **(sizes or {})}
    options = {}
    for seq_len in lengths:
        path = data.data_path(data_dir, seq_len)
        if not os.path.exists(path):
            print(f"{path} is missing: generating it ({sizes['train']}/{sizes['dev']}/"
                  f"{sizes['test']} samples, data seed {data_seed})")
            data.write_data_set(data_dir, seq_len, sizes, data_seed)
        stored = data_options(data_dir, [seq_len], sizes, data_seed)[seq_len]
        data.load_data_set(data_dir, seq_len, stored)
        contradicted = [f"{DATA_FLAGS[d][0]} {value}" for d, value in (given or {}).items()
                        if stored.get(DATA_FLAGS[d][1]) != value]
        if contradicted:
            raise data.DataError(path, f"made with other options ({data.describe(stored)}) than "
                                       f"{' '.join(contradicted)}; drop "
                                       f"{'the flag' if len(contradicted) == 1 else 'those flags'} "
                                       "to train on it as it is, use another --data-dir, or "
                                       "replace it with generate_data_adding_problem.py --force")
        if stored != data.generator_options(seq_len, sizes, data_seed):
            print(f"{path}: training on it as it was made ({data.describe(stored)})")
        options[seq_len] = stored
    return options
