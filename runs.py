"""Run records on disk: one JSON file per trained run under results/runs/.

A record holds the run's whole configuration, its outcome and its per-epoch history. Its
file name carries a hash of the configuration, so a run made with other options is never
mistaken for this one, and the file is written atomically, so it is whole or absent.
"""
import hashlib
import json
import os

from tqdm import tqdm

from atomic_files import atomic_write_text


def run_key(config):
    """File name of a run: readable cell and seed, then a hash of the whole configuration."""
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
    return f"{config['model']}_L{config['seq_len']:03d}_seed{config['seed']}_{digest}"


def record_path(results_dir, config):
    return os.path.join(results_dir, "runs", run_key(config) + ".json")


def load_record(path, config):
    """The saved record of `config`, or None if absent; a corrupt one is reported and ignored."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
        if record["config"] != config or record["status"] not in ("finished", "diverged"):
            raise ValueError("its configuration does not match its name")
        return record
    except (ValueError, KeyError, TypeError) as error:
        tqdm.write(f"warning: {path} is corrupt ({error}); it will be recomputed")
        return None


def save_record(results_dir, record):
    atomic_write_text(record_path(results_dir, record["config"]), json.dumps(record, indent=1))
