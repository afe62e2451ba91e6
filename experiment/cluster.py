"""Training the runs of a grid on a Dask cluster (`--scheduler ADDRESS`) instead of this machine's
processes (`--jobs N`).

The grid (experiment/grid.py) still decides what to train and writes every record, here on the
client; a Dask worker only trains: it takes a job (config, data folder, results folder), trains
it with the local pool's `run_worker` code and sends the record back. So a run trained on a
cluster has the key, the file and, on the same kind of machine, the history of the one the
local pool makes.

Where files live. A worker resolves the data and results folders against its own working
directory, which must be a copy of this repository (its code is how the worker unpickles a
job). A missing data set is generated there from the options the run's configuration holds
(the generator is seeded, so every machine makes the same arrays). A run's checkpoint goes
to the results folder of the worker's copy after every epoch, as with --jobs: where all
workers share that folder (the repository on a shared file system, or a one-machine cluster),
a run whose worker dies is resumed by the next worker from its last epoch; where they do not,
it starts over on the new worker. Either way nothing finished is lost, since the records are
written here.

One thread a worker. Two runs in one process would share torch's global random generator
while they seed and build their models, and save records other than --jobs' ones: a worker
of more than one thread is refused, by the client before it hands out a run, and by the
worker itself should it join later. A scheduler without workers is said to wait for them.

Faults. Dask retries a run whose worker died (up to `distributed.scheduler.allowed-failures`
times, 3 by default); a scheduler that cannot be reached, and a record that cannot be
written, end the command with one line, every finished record saved; Ctrl-C cancels the
runs in flight, which stop at the end of their epoch in progress, checkpoint written. So does
a run whose worker is closing or has lost its scheduler: no one is left to take its record.

Dask is imported only here, and only when a --scheduler is given.
"""
import logging
import os
import ssl
import sys
import time
import uuid

from tqdm import tqdm

import generate_data_adding_problem as data
from experiment import grid, training
from experiment.runs import resumable_checkpoint, run_key
from lib.cli_types import positive_int, scheduler_address

PROGRESS_TOPIC = "adding-problem-epochs"   # the workers' per-epoch events, shown by the client
CONNECT_TIMEOUT = "10s"
POLL_SECONDS = 0.5


class RunCancelled(Exception):
    """Raised in a worker's run, after its epoch, when no one wants its record: the client
    cancelled it (Ctrl-C, a failed grid), or its worker is closing or lost its scheduler."""


class WorkerRefused(grid.ClusterLost):
    """A worker of more than one thread (the module's docstring says why): one line, with which
    the command ends as it does for a lost scheduler."""


def refuse_threaded(workers):
    """Raise WorkerRefused where a worker of `workers` ({address: threads}) has several threads."""
    threaded = [f"{address} has {threads} threads" for address, threads in workers.items()
                if threads > 1]
    if threaded:
        raise WorkerRefused(f"the Dask worker {', '.join(threaded)}: runs that share a process "
                            "share torch's random generator, and would save records that differ "
                            "from --jobs'; start each worker with --nthreads 1")


def security_from(tls_ca_file=None, tls_cert=None, tls_key=None):
    """The client's TLS configuration (distributed.security.Security), or None without TLS.
    A cluster started with TLS is reached at a tls:// address with a certificate signed by
    the cluster's authority."""
    if not any((tls_ca_file, tls_cert, tls_key)):
        return None
    if not all((tls_ca_file, tls_cert, tls_key)):
        raise ValueError("TLS needs all of --tls-ca-file, --tls-cert and --tls-key")
    from distributed.security import Security
    return Security(tls_ca_file=tls_ca_file, tls_client_cert=tls_cert, tls_client_key=tls_key,
                    require_encryption=True)


class DaskCluster:
    """The executor of --scheduler ADDRESS: the runs go to the workers of a running Dask
    scheduler, one at a time to each worker (of one thread)."""

    def __init__(self, address, security=None):
        self.address, self.security = address, security

    def parallel(self):
        return True

    def train_runs(self, next_job, on_record, most=None):
        from distributed.comm import CommClosedError

        first = next_job()
        if first is None:                              # nothing to train: no scheduler needed
            return
        waiting = [first]

        def take():
            return waiting.pop() if waiting else next_job()

        # the client's own log would print a traceback for a lost scheduler: one line says it
        for name in ["distributed", *logging.root.manager.loggerDict]:
            if name.startswith("distributed"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
        client = connect(self.address, self.security)
        in_flight = {}                                 # run key -> epochs done, from the workers
        line = tqdm(total=0, position=1, bar_format="{desc}", leave=False,
                    disable=most is not None and most < 1)
        client.subscribe_topic(PROGRESS_TOPIC, lambda event: in_flight.update([event[1]]))
        running = {}                                   # future -> job
        said_waiting = False
        try:
            while True:
                workers = client.nthreads()
                refuse_threaded(workers)
                if not workers and not said_waiting:
                    tqdm.write(f"waiting for workers: the Dask scheduler at {self.address} has "
                               "none (README: More machines)", file=sys.stderr)
                said_waiting = not workers
                while len(running) < len(workers) and (job := take()) is not None:
                    # a key of its own: a run submitted again (a retry of the command) is a new task
                    key = f"train-{run_key(job[0])}-{uuid.uuid4().hex[:8]}"
                    running[client.submit(train_task, job[:3], key=key, pure=False)] = job
                if not running and workers:
                    break
                time.sleep(POLL_SECONDS)                  # Ctrl-C stays prompt
                done = [future for future in running if future.done()]
                if client_lost(client):
                    raise grid.ClusterLost(f"lost the Dask scheduler at {self.address}; runs in "
                                           f"progress: {grid.run_names(running.values())}")
                for future in done:
                    job = running.pop(future)
                    in_flight.pop(run_key(job[0]), None)
                    record = self.result(future, job, running)
                    on_record(job, record)          # RunFailed where it cannot be saved
                shown = describe_in_flight(running.values(), in_flight)
                if shown != line.desc:
                    line.set_description_str(shown)
        except (OSError, TimeoutError) as error:     # a call to a scheduler that went away,
            if not (isinstance(error, (CommClosedError, TimeoutError)) or client_lost(client)):
                raise                                 # or one to this machine's files
            raise grid.ClusterLost(f"lost the Dask scheduler at {self.address}; runs in progress: "
                                   f"{grid.run_names(running.values())}") from None
        except BaseException:
            client.cancel(list(running))              # the workers stop them after their epoch
            raise
        finally:
            line.close()
            client.close()

    def result(self, future, job, running):
        from distributed import KilledWorker
        try:
            return future.result()
        except WorkerRefused:                         # a threaded worker that joined late
            raise
        except KilledWorker:
            raise grid.WorkerDied(f"the Dask workers that took {grid.run_name(job[0])} died "
                                  "each time (killed, or out of memory); in progress: "
                                  f"{grid.run_names([job, *running.values()])}") from None
        except Exception as error:
            if (future.status == "cancelled" or client_lost(future.client)
                    or isinstance(error, (OSError, TimeoutError))):   # CommClosedError too
                raise grid.ClusterLost(f"lost the Dask scheduler at {self.address}; runs in "
                                       f"progress: {grid.run_names([job, *running.values()])}") from None
            raise grid.failed(job, error) from error


def connect(address, security):
    """A client of the scheduler at `address`, or ClusterLost in one line. A distributed.Client
    that fails to connect (a plain scheduler answering TLS, say) is left half started, and its
    __del__ waits 20 s on it before printing a traceback: this one stops its event loop
    instead."""
    from distributed import Client

    class OneLineClient(Client):
        def __del__(self):
            if self.status == "connecting":           # never connected: nothing to close
                self._loop_runner.stop()
            else:
                super().__del__()

    try:
        return OneLineClient(address, security=security, timeout=CONNECT_TIMEOUT,
                             set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as error:
        reason = one_line(error)
        if address.startswith("tls://") and (isinstance(error, ValueError)
                                             or isinstance(error.__cause__, ssl.SSLError)):
            reason += ("; the TLS handshake failed: is the scheduler started with --protocol "
                       "tls, its certificate signed by --tls-ca-file?")
        raise grid.ClusterLost(f"cannot reach the Dask scheduler at {address} ({reason})") from None


def client_lost(client):
    return client.status not in ("running", "connecting")


def describe_in_flight(jobs, epochs):
    runs = [f"{grid.run_name(job[0])} epoch {epochs.get(run_key(job[0]), 0)}/{job[0]['epochs']}"
            for job in jobs]
    return "in flight: " + "; ".join(runs) if runs else ""


def one_line(error):
    """The first line of the error's text, or of its cause's (a closed connection's is its TLS
    error), or its type's name."""
    text = str(error) or str(error.__cause__ or "")
    return text.splitlines()[0] if text else type(error).__name__


# ------------------------------------------------------------------------------ on a worker

def train_task(job):
    """Train one run on a Dask worker; returns its record. job: (config, data_dir, results_dir),
    the folders relative to the worker's copy of the repository."""
    from distributed import get_worker
    from distributed.core import Status
    config, data_dir, results_dir = job
    worker, key = get_worker(), run_key(config)
    refuse_threaded({worker.address: worker.state.nthreads})
    task = worker.get_current_task()

    def on_epoch(epochs_run):
        try:
            worker.log_event(PROGRESS_TOPIC, (key, epochs_run))
        except Exception:       # no scheduler to tell: the run stops just below
            pass
        # a worker closing (SIGTERM, its scheduler gone) has no one to hand the record to; one
        # retiring gracefully (closing_gracefully) waits for the run and hands the record on
        if (worker.status in (Status.closing, Status.closed, Status.failed)
                or worker.batched_stream.closed()):
            raise RunCancelled(f"{grid.run_name(config)}: stopped after epoch {epochs_run}, its "
                               "worker closing or without its scheduler")
        state = worker.state.tasks.get(task)
        if state is None or state.state in ("cancelled", "released", "forgotten"):
            raise RunCancelled(f"{grid.run_name(config)}: cancelled by the client after epoch "
                               f"{epochs_run}")

    options = config["data"]
    if not os.path.exists(data.data_path(data_dir, config["seq_len"])):
        sizes = {split: options[f"n_{split}"] for split in data.SPLITS}
        data.write_data_set(data_dir, config["seq_len"], sizes, options["seed"])
    arrays = data.load_data_set(data_dir, config["seq_len"], options)
    return training.train_run(config, arrays, show_progress=False, on_epoch=on_epoch,
                              checkpoint=writable_checkpoint(results_dir, config),
                              keep_weights=True)


def writable_checkpoint(results_dir, config):
    """The run's checkpoint path under the worker's results folder, or None where that folder
    cannot be written (the run then trains without one)."""
    try:
        os.makedirs(os.path.join(results_dir, "runs"), exist_ok=True)
        path = resumable_checkpoint(results_dir, config)
    except OSError:
        return None
    return path if os.access(os.path.dirname(path), os.W_OK) else None


# ------------------------------------------------------------------------------ command lines

EXECUTOR_DESTS = {"jobs", "scheduler", "tls_ca_file", "tls_cert", "tls_key"}  # none changes a record


def add_executor_arguments(parser, jobs_help="runs trained at once in worker processes, one "
                                             "thread each"):
    """--jobs N (this machine's processes, the default) or --scheduler ADDRESS (a Dask cluster),
    with the TLS files of a cluster that requires them."""
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--jobs", type=positive_int, default=cores,
                        help=f"{jobs_help} (default: the CPU cores this process may use, {cores})")
    parser.add_argument("--scheduler", metavar="ADDRESS", type=scheduler_address,
                        help="train on the workers of this Dask scheduler instead of --jobs "
                             "processes, e.g. tcp://10.0.0.5:8786 (README: More machines)")
    for flag, what in (("--tls-ca-file", "the cluster's certificate authority"),
                       ("--tls-cert", "this client's certificate"),
                       ("--tls-key", "this client's private key")):
        parser.add_argument(flag, metavar="FILE", help=f"with --scheduler tls://...: {what}")


def executor_from(options):
    """The executor the command line names; one line and exit for an incomplete TLS set or TLS
    without a scheduler."""
    tls = (options.tls_ca_file, options.tls_cert, options.tls_key)
    if options.scheduler is None:
        if any(tls):
            raise SystemExit("error: --tls-ca-file, --tls-cert and --tls-key go with --scheduler")
        return grid.LocalPool(options.jobs)
    if options.scheduler.startswith("tls://") and not any(tls):
        raise SystemExit("error: a tls:// scheduler needs --tls-ca-file, --tls-cert and --tls-key")
    for path in filter(None, tls):
        if not os.path.isfile(path):
            raise SystemExit(f"error: {path}: no such file")
    try:
        return DaskCluster(options.scheduler, security_from(*tls))
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
