"""Run records on disk: one JSON file per trained run under results/runs/.

A record holds the run's whole configuration, its outcome and its per-epoch history. Its
file name carries a hash of the configuration, so a run made with other options is never
mistaken for this one, and the file is written atomically, so it is whole or absent. A run
still training keeps a checkpoint beside it (<key>.ckpt), removed once its record is saved,
and, while a command trains it, that command's claim (<key>.lock, experiment/claims.py).
Several commands may share one folder: a file one of them finds may be gone the moment after
(another saved the record and dropped the checkpoint), which is no error.
"""
import contextlib
import hashlib
import json
import os

from tqdm import tqdm

from experiment.configs import LEFT_OUT, normalize, same_run
from experiment import weights
from experiment.recipes import RECIPES
from lib.atomic_files import atomic_write_text

STATUSES = ("finished", "diverged", "frozen")


def run_key(config):
    """File name of a run: readable cell and seed, then a hash of the whole configuration in
    its normal form (configs.normalize), so one run has one key however it was written."""
    return written_key(normalize(config))


def written_key(config):
    """The key made from `config` exactly as it stands. A record's file name is this key of the
    configuration it stores, normalized when it was written; a recipe added since can rename
    the run (configs.normalize), but not the record already on disk."""
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return f"{cell_prefix(config)}{digest}"


def cell_prefix(config):
    return f"{config['model']}_L{config['seq_len']:03d}_seed{config['seed']}_"


def record_path(results_dir, config):
    return os.path.join(results_dir, "runs", run_key(config) + ".json")


def read_record(path):
    """The record in `path`, its configuration in today's normal form; raises ValueError (or
    KeyError, TypeError) unless it is whole and its configuration is the one its file name was
    made from."""
    with open(path) as f:
        record = json.load(f)
    if record["status"] not in STATUSES:
        raise ValueError(f"unknown status {record['status']!r}")
    if os.path.basename(path) != written_key(record["config"]) + ".json":
        raise ValueError("its configuration does not match its name")
    record["config"] = normalize(record["config"])
    return record


def load_record(path, config):
    """The saved record of `config`, or None if absent; a corrupt one is reported and ignored."""
    if not os.path.exists(path):
        return None
    try:
        record = read_record(path)
        if record["config"] != config:
            raise ValueError("its configuration does not match its name")
        return record
    except (ValueError, KeyError, TypeError) as error:
        tqdm.write(f"warning: {path} is corrupt ({error}); it will be recomputed")
        return None


def record_saved_since(results_dir, config, since_ns):
    """The run's record if it was saved at or after `since_ns` (time.time_ns()), as another
    command on the folder would since this one looked; else None."""
    path = record_path(results_dir, config)
    try:
        if os.stat(path).st_mtime_ns < since_ns:
            return None
    except FileNotFoundError:
        return None
    return load_record(path, config)


def find_record(results_dir, config):
    """The saved record of the run `config` describes, or None: its own file, else a record of
    the same run saved under another recipe's name (configs.same_run)."""
    record = load_record(record_path(results_dir, config), config)
    if record is not None:
        return record
    return next((record for _, record in records_under_other_names(results_dir, config)), None)


def records_under_other_names(results_dir, config):
    """(path, record) of every whole record of the same run saved under a name other than its
    key today: written before a recipe added since renamed the run."""
    folder = os.path.join(results_dir, "runs")
    own = os.path.basename(record_path(results_dir, config))
    prefix = cell_prefix(config)
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for name in names:
        if name.startswith(prefix) and name.endswith(".json") and name != own:
            path = os.path.join(folder, name)
            try:
                record = read_record(path)
            except (ValueError, KeyError, TypeError):
                continue
            if same_run(record["config"], config):
                yield path, record


def load_records(results_dir):
    """Every record saved under results_dir/runs, by file name; a corrupt one is reported and
    left out."""
    return [record for _, record in records_in(os.path.join(results_dir, "runs"))]


def records_in(folder):
    """(path, record) of every record in the runs folder `folder`, by file name; a corrupt one
    is reported and left out."""
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    found = []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):   # .tmp-* files are being written
            continue
        path = os.path.join(folder, name)
        try:
            found.append((path, read_record(path)))
        except (ValueError, KeyError, TypeError) as error:
            tqdm.write(f"warning: {path} is corrupt ({error}); it is left out")
    return found


def checkpoint_path(results_dir, config):
    """Where an unfinished run keeps its state between epochs (training.train_run)."""
    return os.path.join(results_dir, "runs", run_key(config) + ".ckpt")


def lock_path(results_dir, config):
    """The claim of the command that trains the run now (experiment/claims.py)."""
    return os.path.join(results_dir, "runs", run_key(config) + ".lock")


def former_keys(config):
    """The names the run may carry on disk from before a recipe added since renamed it: its key
    with the recipe's name of each recipe in place of today's (configs.normalize names a run
    after the first recipe it follows, else after the recipe it was made from). A file name is
    the hash of the configuration it holds, so a name found here is this run's file."""
    keys = []
    for name in RECIPES:
        variant = {**config, "recipe": name}
        if name == LEFT_OUT["recipe"]:
            del variant["recipe"]
        key = written_key(variant)
        if key != run_key(config) and key not in keys:
            keys.append(key)
    return keys


def checkpoints_of_run(results_dir, config):
    """The run's checkpoints on disk: under its key today, then under its former keys."""
    paths = [checkpoint_path(results_dir, config)] + [
        os.path.join(results_dir, "runs", key + ".ckpt") for key in former_keys(config)]
    return [path for path in paths if os.path.exists(path)]


def resumable_checkpoint(results_dir, config):
    """Where the run's checkpoint is kept: its key's path, to which a checkpoint written under a
    former key is first moved, so that the run goes on from it instead of starting over."""
    path = checkpoint_path(results_dir, config)
    found = checkpoints_of_run(results_dir, config)
    if found and found[0] != path:
        with contextlib.suppress(FileNotFoundError):    # another command moved it meanwhile
            os.replace(found[0], path)
    return path


def discard_checkpoint(results_dir, config):
    """Forget a run's unfinished state, so that it trains from its first epoch (--force)."""
    for path in checkpoints_of_run(results_dir, config):
        remove_if_there(path)


def save_record(results_dir, record):
    """Write the run's final weights, where the record carries them (experiment/weights.py),
    then the record naming them; then drop the run's checkpoint (the record now holds the
    outcome) and any record of the same run under a former name, with its weights (--force
    trained it again): one run, one record."""
    config = record["config"]
    folder = os.path.join(results_dir, "runs")
    if weights.WEIGHTS in record:                # first the file the record will name
        weights.save_weights(folder, run_key(config), record)
    atomic_write_text(record_path(results_dir, config), json.dumps(record, indent=1))
    for path, former in list(records_under_other_names(results_dir, config)):
        remove_if_there(path)
        if former.get("weights_file") != record.get("weights_file"):
            weights.remove_weights(folder, former)
    discard_checkpoint(results_dir, config)


def remove_if_there(path):
    """Remove a file that another command sharing the folder may have removed first."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def rename_to_todays_key(path):
    """Save the record in `path` under its run's key today, where a recipe added since renamed
    the run (configs.normalize names a run after the first recipe it follows): the record and
    its weights, unchanged but for the recipe's name, go under the new key, and the old files
    are removed (save_record). Returns the record's path now."""
    record = read_record(path)                          # its configuration in today's form
    results_dir = os.path.dirname(os.path.dirname(path))
    if record_path(results_dir, record["config"]) == path:
        return path
    if "weights_file" in record:                        # the same tensors, under the new key
        record[weights.WEIGHTS] = weights.read_weights(path, record)
        del record["weights_file"], record["weights_sha256"]
    save_record(results_dir, record)
    return record_path(results_dir, record["config"])
