"""Training many runs: each run saved the moment it ends, by this process.

`train_grid` trains every configuration of a list that has no saved record; `train_runs` is
the loop under it, which a study with its own order of runs (studies/reach.py) drives
directly. Both hand the runs to an executor: `LocalPool` (--jobs N worker processes of this
machine) or experiment/cluster.py's `DaskCluster` (--scheduler). At most one run per worker
is handed out at a time, so the runs in progress are known: a local worker that dies
(killed, out of memory) stops the command in seconds with a line that names them, and the
same command goes on from their checkpoints.

Several commands may train into one results folder (started twice by mistake, or a command
here and a cluster's): each run is claimed before it goes to a worker (experiment/claims.py)
and let go once its record is saved, so a run is trained once. A command that finds a run
claimed trains its other runs first, says in one line that it waits, and then takes the record
the holder saved, or trains the run itself, from its checkpoint, when the holder ended
without one.
"""
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from tqdm import tqdm

import generate_data_adding_problem as data
from experiment import claims, report, training
from experiment.runs import (discard_checkpoint, find_record, lock_path, record_saved_since,
                             resumable_checkpoint, run_key, save_record)
from lib import atomic_files


class RunFailed(RuntimeError):
    """A run ended in an error; the message names the run and the error, in one line."""


class WorkerDied(RunFailed):
    """A worker process ended without returning its run (a signal, the out-of-memory killer)."""


class ClusterLost(RuntimeError):
    """The cluster cannot go on: its scheduler cannot be reached (never was, or went away), or
    a worker is refused; one line."""


def failed(job, error):
    return RunFailed(f"{run_name(job[0])} failed: {type(error).__name__}: {one_line(error)}")


def one_line(error):
    """The first line of an error's message ('' for none)."""
    return str(error).splitlines()[0] if str(error) else ""


def check_writable(results_dir):
    """Fail now, not after an hour of training, if the runs cannot be saved."""
    atomic_files.check_writable(os.path.join(results_dir, "runs"), shown=results_dir)


# ------------------------------------------------------------------------------ workers

PROGRESS_POSITION = 1  # the line of this process's progress bar, under the bar of all runs
PARENT_PID = None      # in a pool's worker process: the process that started it


def run_worker(job):
    """Train one run, checkpointed under its results folder; returns its record, with its final
    weights for save_record to keep. job: (config, data_dir, results_dir)."""
    config, data_dir, results_dir = job
    arrays = data.load_data_set(data_dir, config["seq_len"], config["data"])
    return training.train_run(config, arrays, progress_position=PROGRESS_POSITION,
                              keep_weights=True, checkpoint=resumable_checkpoint(results_dir, config),
                              on_epoch=None if PARENT_PID is None else end_if_orphaned)


def end_if_orphaned(epochs_run):
    """After each epoch of a pool worker's run (its checkpoint just saved): a parent that is
    gone (killed, SIGTERM or SIGKILL, with no time to stop its pool) can take no record, so the
    worker ends here instead of training on unseen; the same command resumes the run."""
    if os.getppid() != PARENT_PID:
        os._exit(1)


def init_worker(next_position, lock):
    """Give each worker process its own progress line and remember its parent; the parent
    handles Ctrl-C for all (a worker starts with SIGINT ignored already: submit_quietly)."""
    global PROGRESS_POSITION, PARENT_PID
    PARENT_PID = os.getppid()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tqdm.set_lock(lock)
    with next_position.get_lock():
        PROGRESS_POSITION = next_position.value
        next_position.value += 1


def submit_quietly(pool, job):
    """pool.submit(run_worker, job), with Ctrl-C ignored while the call may start a worker
    process: an ignored signal stays ignored in the new process, from its first instruction,
    so a Ctrl-C during its imports (seconds, before init_worker runs) prints no traceback from
    it. Meanwhile SIGINT is blocked in the parent, so a Ctrl-C that comes during the call waits
    (Linux queues a blocked signal even while it is ignored) and reaches the parent's own
    handler as soon as the call returns, instead of being lost. (Only the main thread may set a
    handler; from another thread, the call is made as it is.)"""
    if threading.current_thread() is not threading.main_thread():
        return pool.submit(run_worker, job)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return pool.submit(run_worker, job)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def run_name(config):
    return f"{report.model_label(config)} L={config['seq_len']} seed={config['seed']}"


class LocalPool:
    """The executor of --jobs N: N worker processes of this machine, one run each at a time
    (with N == 1 the runs train in this process). experiment/cluster.py has the other one, a
    Dask cluster; both train a job with `run_worker` and hand its record back to this process."""

    def __init__(self, jobs):
        self.jobs = jobs

    def parallel(self):
        return self.jobs > 1

    def train_runs(self, next_job, on_record, most=None):
        jobs = self.jobs if most is None else max(1, min(self.jobs, most))
        if jobs == 1:
            while (job := next_job()) is not None:
                try:
                    record = run_worker(job[:3])
                except Exception as error:
                    raise failed(job, error) from error
                on_record(job, record)
            return
        context = multiprocessing.get_context("spawn")
        running = {}                                   # future -> job
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=init_worker,
                                   initargs=(context.Value("i", 1), context.RLock()))
        try:
            while True:
                while len(running) < jobs and (job := next_job()) is not None:
                    running[submit_quietly(pool, job[:3])] = job
                if not running:
                    break
                done, _ = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)  # Ctrl-C stays prompt
                for future in done:
                    job = running.pop(future)
                    try:
                        record = future.result()
                    except BrokenProcessPool:
                        raise WorkerDied(f"a worker process died (killed, or out of memory) with "
                                         f"{'this run' if not running else 'these runs'} in "
                                         f"progress: {run_names([job, *running.values()])}") from None
                    except Exception as error:
                        raise failed(job, error) from error
                    on_record(job, record)
        except BaseException:
            for process in multiprocessing.active_children():   # the runs in progress keep their
                process.terminate()                              # last epoch's checkpoint
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()


def run_names(jobs):
    return ", ".join(run_name(job[0]) for job in jobs)


def train_runs(next_job, on_record, executor, most=None, since_ns=None):
    """Train the jobs that `next_job()` hands out (None: none ready now) on `executor` (a
    LocalPool, a cluster.DaskCluster, or a number of local jobs); `on_record(job, record)`
    runs in this process as each one ends, and may make more jobs ready. A job is (config,
    data_dir, results_dir, *what the caller keeps with it); only the first three go to the
    worker. `most`: how many runs there are at most, when known (no idle workers started).
    Each run is claimed first (ClaimedRuns); a record another command saved at or after
    `since_ns` (time.time_ns(); default: now), when the caller looked for saved runs, is taken
    instead of training the run, and handed to `on_record` the same way."""
    executor = LocalPool(executor) if isinstance(executor, int) else executor
    with claims.Claims() as held:
        runs = ClaimedRuns(next_job, on_record, held,
                           time.time_ns() if since_ns is None else since_ns)
        executor.train_runs(runs.next_job, runs.on_record, most)


class ClaimedRuns:
    """`next_job` and `on_record` for an executor, with every run claimed before it goes out and
    let go once its record is saved. A run another command holds waits, and the other runs go
    out meanwhile; with none of its own in progress, `next_job` waits here until a held run is
    let go (the executor takes None for 'all done' then)."""

    def __init__(self, next_job, on_record, held, since_ns):
        self.source, self.saved, self.held, self.since_ns = next_job, on_record, held, since_ns
        self.waiting = []              # jobs whose run another command holds, in their order
        self.said = set()              # the runs whose wait was said
        self.out = 0                   # jobs handed out whose record has not come back

    def next_job(self):
        while True:
            job = self.ready()
            if job is not None or self.out or not self.waiting:
                return job
            time.sleep(claims.WAIT_SECONDS)

    def ready(self):
        """The first job, of those waiting and then of the new ones, whose run this process
        may train now; None if there is none."""
        waiting, self.waiting = self.waiting, []
        for i, job in enumerate(waiting):
            if self.claim(job):
                self.waiting.extend(waiting[i + 1:])
                return job
        while (job := self.source()) is not None:
            if self.claim(job):
                return job
        return None

    def claim(self, job):
        """Whether this process trains the job's run now (claimed, and no record saved since the
        caller looked). Otherwise the job waits, or the record another command saved for it is
        taken."""
        config, _, results_dir = job[:3]
        path = lock_path(results_dir, config)
        try:
            claimed, holder = self.held.claim(path)
        except OSError as error:
            raise RunFailed(f"{run_name(config)} cannot be claimed: {one_line(error)}") from None
        if not claimed:
            if path not in self.said:
                self.said.add(path)
                tqdm.write(f"waiting for {run_name(config)}: trained by {claims.describe(holder)}")
            self.waiting.append(job)
            return False
        if holder is not None:
            tqdm.write(f"taking over {run_name(config)} from {claims.describe(holder)}, "
                       "which has ended")
        record = record_saved_since(results_dir, config, self.since_ns)
        if record is None:
            self.out += 1
            return True
        try:
            self.saved(job, record)
        finally:
            self.held.release(path)
        return False

    def on_record(self, job, record):
        self.out -= 1
        try:
            self.saved(job, record)
        except OSError as error:                     # a full disk, an unwritable folder
            raise RunFailed(f"the record of {run_name(job[0])} cannot be saved: "
                            f"{one_line(error)}") from None
        finally:
            self.held.release(lock_path(job[2], job[0]))


# ------------------------------------------------------------------------------ a grid

def unique(configs):
    """The configurations in order, each run once (a repeated model, length or seed is one run)."""
    return list({run_key(config): config for config in configs}.values())


def train_grid(configs, data_dir, results_dir, executor, force=False, needed=None):
    """Train every configuration without a saved record (all of them with `force`) on
    `executor` (as train_runs); returns (the records in the order of `configs`, the number of
    runs trained). `needed(config, records)`, where given, is asked as each run is about to
    start, with the records so far ({run key: record}): a run it declines is left untrained,
    and its record in the list is None. `needed` is shown every record saved so far, those
    another command (or another process of a sweep) saved while this one runs included."""
    executor = LocalPool(executor) if isinstance(executor, int) else executor
    configs = unique(configs)
    looked = time.time_ns()            # a record saved from now on is another command's
    records, todo = {}, []
    for config in configs:
        if force:
            discard_checkpoint(results_dir, config)     # retrain from the first epoch
        record = None if force else find_record(results_dir, config)
        if record is None:
            todo.append(config)
        else:
            records[run_key(config)] = record
    if records:
        print(f"skipping {len(records)} finished run(s) saved in {results_dir}/runs "
              "(--force to recompute)")
    if executor.parallel():
        todo.sort(key=lambda c: -c["seq_len"])  # longest runs first: less idle time at the end
    waiting = iter([(config, data_dir, results_dir) for config in todo])
    overall = tqdm(total=len(todo), desc="runs", unit="run", position=0, disable=len(todo) < 2)
    declined = set()

    def saved_so_far(job):
        """The records so far, with those of this grid's other runs that another command saved
        since this one looked (the job's own is left to ClaimedRuns, which takes it)."""
        seen = dict(records)
        for config in [] if force else todo:          # with --force, older records do not count
            key = run_key(config)
            if key not in seen and key != run_key(job[0]):
                record = find_record(results_dir, config)
                if record is not None:
                    seen[key] = record
        return seen

    def next_job():
        for job in waiting:
            if needed is None or needed(job[0], saved_so_far(job)):
                return job
            declined.add(run_key(job[0]))
            overall.total -= 1
            overall.refresh()
        return None

    def on_record(job, record):
        save_record(results_dir, record)
        records[run_key(job[0])] = record
        overall.update(1)
        overall.write(report.describe_run(record))

    try:
        train_runs(next_job, on_record, executor, most=len(todo), since_ns=looked)
    except KeyboardInterrupt:
        overall.close()
        raise SystemExit(f"\ninterrupted: {len(records)} of {len(configs)} run(s) are saved in "
                         f"{results_dir}/runs; run the same command again to go on")
    except RunFailed as error:
        overall.close()
        raise SystemExit(f"error: {error}; the {len(records)} finished run(s) are saved in "
                         f"{results_dir}/runs, and the same command goes on from the checkpoints")
    except ClusterLost as error:
        overall.close()
        raise SystemExit(f"error: {error}; the {len(records)} finished run(s) are saved in "
                         f"{results_dir}/runs, and the same command goes on from there")
    overall.close()
    return ([None if run_key(c) in declined else records[run_key(c)] for c in configs],
            len(todo) - len(declined))
