"""`--workers N`: N worker processes against one storage, watched by the parent.

Each worker is the same `avbench sweep … --workers 1` command a user would start by hand on
another machine, so one code path serves both. The parent only creates the study, starts the
workers (each in its own session, with its share of the cores), shows progress by reading the
storage, restarts a worker that was killed, and stops them all on Ctrl-C so each re-enqueues
its trial. Worker output goes to results/studies/<study>/worker-<i>.log. Workers share an
Optuna storage, so this launcher serves the Optuna backend (avbench.sweep.backends.optuna).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from avbench.context import RunContext
from avbench.display import counted_bars, format_values, summarize
from avbench.errors import AvbenchError
from avbench.results.layout import feature_cache_dir, run_files, study_dir, worker_log
from avbench.results.records import RunRecord
from avbench.sweep.backends.optuna import StudyHandle, count_finished, is_infeasible, sweep_outcome
from avbench.sweep.core import SweepOutcome, SweepPlan, SweepRequest
from avbench.sweep.infeasible import INFEASIBLE
from avbench.sweep.launch import PARENT_ENV
from avbench.sweep.space import walk
from avbench.threads import usable_cores

POLL_S = 1.0  # how often the progress is read from the storage
EXIT_POLL_S = 0.1  # how often the workers are checked for having exited (a waitpid each: cheap)
RESTARTS_PER_WORKER = 3
STOP_TIMEOUT_S = 120


def threads_per_worker(workers: int) -> int:
    """Each worker's share of the cores: torch's default of one thread per core in every
    process would oversubscribe the CPU N times over (measured in benchmarks/sweep_workers.py)."""
    return max(1, usable_cores() // workers)


def follow_parent() -> None:
    """In a worker: behave as if Ctrl-C was pressed when the parent dies (even by kill -9),
    so the running trial is re-enqueued rather than left to the heartbeat timeout."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    # SIGINT is how the parent stops its workers. A sweep started in the background (`nohup …
    # &`, a non-interactive shell's `&`) starts with SIGINT ignored, and its workers inherit
    # that: they would train on after the parent was told to stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGINT)
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGINT)


def prepare_features_once(loaded, space, *, results: Path, synthetic: bool) -> bool:
    """Decode the dataset into the feature cache before the workers start, so N workers on a
    cold cache do not all decode it at once. Skipped (False) when the search space changes
    the data settings: then each trial may need its own features."""
    if any(param.name.startswith("data.") for _, param in walk(space.params)):
        return False
    from avbench.data.cache import FeatureCache
    from avbench.data.dataset import prepare_data
    from avbench.preflight import resolve_data_root, with_model_inputs
    from avbench.registry import TASKS
    from avbench.sweep.conditional import representative_values

    experiment = with_model_inputs(loaded.resolve(representative_values(space)))
    root, _ = resolve_data_root(experiment, synthetic=synthetic)
    cache = FeatureCache(feature_cache_dir(results))
    prepare_data(TASKS.get(experiment.task)(), root, experiment.data, cache)
    return True


class _Worker:
    def __init__(self, index: int, argv: list[str], log: Path, threads: int):
        self.index, self.argv, self.threads = index, argv, threads
        self.log = log
        self.restarts = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, PARENT_ENV: str(os.getpid()), "OMP_NUM_THREADS": str(self.threads)}
        with self.log.open("a") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(self.argv)}\n")
            log.flush()
            # A session of its own: a terminal's Ctrl-C reaches the parent only, which then
            # stops each worker exactly once.
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

    def last_line(self) -> str:
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"worker {self.index} exited"


class _Watch:
    """Progress from the storage: finished trials out of the target, and what is running."""

    def __init__(self, console: Console, handle: StudyHandle, results: Path, experiment: str):
        self.console, self.handle, self.results, self.experiment = console, handle, results, experiment
        self.reported: set[int] = set()
        self.progress = counted_bars(console)
        self.bar = self.progress.add_task("trials", total=handle.target, info="")

    def update(self) -> None:
        trials = self.handle.study.get_trials(deepcopy=False)
        for trial in trials:
            if trial.state.is_finished() and trial.number not in self.reported:
                self.reported.add(trial.number)
                self.console.print(self._line(trial))
        finished = count_finished(trials)
        running = [f"t{t.number} epoch {len(t.intermediate_values)}" for t in trials if t.state.name == "RUNNING"]
        self.progress.update(self.bar, completed=finished, info=", ".join(running))

    def _line(self, trial) -> str:
        values = escape(f"[{format_values(trial.params)}]")
        if trial.state.name == "FAIL":
            # No error attribute: the worker died mid-trial (a retry shares its run record).
            reason = trial.user_attrs.get("error", "its worker died; re-enqueued")
            return f"trial {trial.number} {values}: [red]failed[/red]: {escape(reason)}"
        if is_infeasible(trial):
            reason = escape(trial.user_attrs[INFEASIBLE])
            return f"trial {trial.number} {values}: infeasible, skipped untrained: {reason}"
        record = self._record(trial.user_attrs.get("run_id"))
        outcome = summarize(record) if record is not None else trial.state.name.lower()
        return f"trial {trial.number} {values}: {outcome}"

    def _record(self, run_id: str | None) -> RunRecord | None:
        import json

        if not run_id:
            return None
        path = run_files(self.results, self.experiment, run_id).record
        try:
            return RunRecord.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None  # a worker on another machine, or a record being written


def run_workers(handle: StudyHandle, plan: SweepPlan) -> SweepOutcome:
    """Start the plan's workers and watch the study until they are done. The feature cache
    is prepared once the workers are started (they take seconds to import and open the
    study): its build lock makes them wait for it if they get that far first."""
    request, ctx, console = plan.request, plan.ctx, plan.view.console
    threads = request.threads or threads_per_worker(request.workers)
    argv = worker_argv(request, ctx, handle, threads)
    study_dir(ctx.results, handle.name).mkdir(parents=True, exist_ok=True)
    pool = [_Worker(i, argv, worker_log(ctx.results, handle.name, i), threads) for i in range(request.workers)]
    watch = _Watch(console, handle, ctx.results, plan.loaded.name)
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        for worker in pool:
            worker.start()
        if prepare_features_once(plan.loaded, plan.space, results=ctx.results, synthetic=ctx.synthetic):
            console.print("features ready in the cache for every worker")
        with watch.progress:
            _supervise(pool, watch)
    except BaseException:  # Ctrl-C, SIGTERM, a failed worker: stop the others cleanly
        _stop(pool)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return sweep_outcome(handle)


def worker_argv(request: SweepRequest, ctx: RunContext, handle: StudyHandle, threads: int) -> list[str]:
    """The command each worker runs: this sweep, pinned to the parent's study and storage."""
    argv = [sys.executable, "-m", "avbench", "--results", str(Path(ctx.results).resolve()), "sweep"]
    argv += [request.experiment, "--trials", str(handle.target), "--storage", handle.url, "--study", handle.name]
    argv += ["--sampler", handle.sampler, "--workers", "1", "--threads", str(threads)]
    for override in request.overrides:
        argv += ["--set", override]
    for objective in request.objectives:
        argv += ["--objective", objective]
    for flag, value in (
        ("--preset", ctx.preset),
        ("--pruner", request.pruner),
        ("--sweep-config", request.sweep_config and str(Path(request.sweep_config).resolve())),
    ):
        if value:
            argv += [flag, value]
    return argv + (["--synthetic"] if ctx.synthetic else []) + ([] if ctx.use_wandb else ["--no-wandb"])


def _supervise(pool: list[_Worker], watch: _Watch) -> None:
    next_update = 0.0
    while True:
        if time.monotonic() >= next_update:
            watch.update()
            next_update = time.monotonic() + POLL_S
        active = 0
        for worker in pool:
            code = worker.proc.poll()
            if code is None:
                active += 1
            elif code < 0 and worker.restarts < RESTARTS_PER_WORKER and not _study_done(watch):
                # Killed (OOM killer, kill -9): its trial is re-enqueued by whichever worker
                # claims next; start a fresh worker in its place.
                worker.restarts += 1
                watch.console.print(
                    f"worker {worker.index} was killed (signal {-code}); restarting it "
                    f"({worker.restarts}/{RESTARTS_PER_WORKER})"
                )
                worker.start()
                active += 1
            elif code > 0:
                raise AvbenchError(f"worker {worker.index} failed: {worker.last_line()} (log: {worker.log})")
        if not active:
            watch.update()
            return
        time.sleep(EXIT_POLL_S)


def _study_done(watch: _Watch) -> bool:
    return count_finished(watch.handle.study.get_trials(deepcopy=False)) >= watch.handle.target


def _stop(pool: list[_Worker]) -> None:
    """Ctrl-C each worker once and wait: each fails and re-enqueues its own trial."""
    running = [w for w in pool if w.proc is not None and w.proc.poll() is None]
    for worker in running:
        worker.proc.send_signal(signal.SIGINT)
    deadline = time.time() + STOP_TIMEOUT_S
    for worker in running:
        try:
            worker.proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            worker.proc.kill()  # its trial is recovered as dead by the next run


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
