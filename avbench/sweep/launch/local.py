"""`--workers N`: N worker processes against one storage, watched by the parent.

Each worker is the same `avbench sweep … --workers 1` command a user would start by hand on
another machine, so one code path serves both. The parent only creates the study, starts the
workers (each in its own session, with its share of the cores), shows progress by reading the
storage, restarts a worker that was killed, and stops them all on Ctrl-C so each re-enqueues
its trial. A worker stopped by a signal (kill -9, the OOM killer, a SIGTERM of its own) is the
machine's fault, not the trial's: it is restarted every time, after a back-off that grows while
the kills come quickly. A worker that exits with an error (its trials kept failing) ends the
sweep. Worker output goes to results/studies/<study>/worker-<i>.log. Workers share an Optuna
storage, so this launcher serves the Optuna backend (avbench.sweep.backends.optuna).
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
from avbench.distributed import launched_processes
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
STOP_TIMEOUT_S = 120
# Restart back-off: FIRST_BACKOFF_S after a kill, doubling with each kill that comes within
# STEADY_S of the worker's start, up to MAX_BACKOFF_S; a worker that ran STEADY_S starts over.
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STEADY_S = 60.0
# Exit statuses of a worker that caught SIGINT / SIGTERM itself (see avbench.cli.boundary).
SIGNALLED_EXITS = (130, 143)


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
    # Under a worker's torchrun the parent is the launcher, which passes the SIGINT on.
    if os.getppid() != int(parent) and launched_processes() == 1:  # the parent died before prctl took effect
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
    def __init__(self, index: int, argv: list[str], log: Path, threads: int, devices: dict[str, str] | None = None):
        self.index, self.argv, self.threads = index, argv, threads
        self.log = log
        self.devices = devices or {}  # its CUDA_VISIBLE_DEVICES, the same after a restart
        self.restarts = 0
        self.quick_kills = 0  # kills in a row that came soon after a start
        self.started_at = 0.0
        self.restart_at: float | None = None  # set while a killed worker waits out its back-off
        self.proc: subprocess.Popen | None = None

    def killed(self) -> float:
        """Schedule the restart of a worker stopped by a signal; returns the back-off."""
        self.quick_kills = self.quick_kills + 1 if time.monotonic() - self.started_at < STEADY_S else 1
        backoff = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (self.quick_kills - 1))
        self.restart_at = time.monotonic() + backoff
        return backoff

    def start(self) -> None:
        self.started_at, self.restart_at = time.monotonic(), None
        env = {**os.environ, PARENT_ENV: str(os.getpid()), "OMP_NUM_THREADS": str(self.threads), **self.devices}
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
        running = [
            f"t{t.number} epoch {len(t.intermediate_values)}{_where(t)}" for t in trials if t.state.name == "RUNNING"
        ]
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
        return f"trial {trial.number} {values}: {outcome}{_where(trial)}"

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
    placement = request.placement
    per_trial = placement.per_trial if placement else 1
    threads = request.threads or threads_per_worker(request.workers * per_trial)
    argv = data_parallel(worker_argv(request, ctx, handle, threads), per_trial)
    study_dir(ctx.results, handle.name).mkdir(parents=True, exist_ok=True)
    pool = [
        _Worker(i, argv, worker_log(ctx.results, handle.name, i), threads, placement and placement.env(i))
        for i in range(request.workers)
    ]
    if placement:
        console.print(", ".join(f"worker {i}: GPU {','.join(slot)}" for i, slot in enumerate(placement.slots)))
    watch = _Watch(console, handle, ctx.results, plan.loaded.name)
    try:
        for worker in pool:
            worker.start()
        if prepare_features_once(plan.loaded, plan.space, results=ctx.results, synthetic=ctx.synthetic):
            console.print("features ready in the cache for every worker")
        with watch.progress:
            _supervise(pool, watch)
    except BaseException:  # Ctrl-C, SIGTERM (avbench.cli.boundary), a failed worker: stop the others cleanly
        _stop(pool)
        raise
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


def data_parallel(argv: list[str], processes: int) -> list[str]:
    """A worker's command as a `processes`-rank torchrun launch on its GPUs (gloo on CPU):
    rank 0 claims each trial and announces it to the others (avbench.sweep.launch.torchrun).
    --standalone gives each launch a free rendezvous port of its own."""
    if processes == 1:
        return argv
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes)]
    return [*launcher, *argv[1:]]  # "-m avbench …"


def _supervise(pool: list[_Worker], watch: _Watch) -> None:
    next_update = 0.0
    while True:
        if time.monotonic() >= next_update:
            watch.update()
            next_update = time.monotonic() + POLL_S
        if not sum(_tend(worker, watch) for worker in pool):
            watch.update()
            return
        time.sleep(EXIT_POLL_S)


def _where(trial) -> str:
    """ " on GPU 0,1" for a trial whose worker was given devices."""
    devices = trial.user_attrs.get("devices")
    return f" on GPU {devices}" if devices else ""


def _tend(worker: _Worker, watch: _Watch) -> bool:
    """Look after one worker: True while it runs or waits to be restarted."""
    if worker.restart_at is not None:
        if time.monotonic() < worker.restart_at:
            return True
        if _study_done(watch):
            worker.restart_at = None
            return False
        worker.start()
        return True
    code = worker.proc.poll()
    if code is None:
        return True
    signalled = code < 0 or code in SIGNALLED_EXITS
    if signalled and not _study_done(watch):
        # Killed (OOM killer, kill -9): its trial is re-enqueued by whichever worker claims
        # next; a fresh worker takes its place after the back-off.
        worker.restarts += 1
        backoff = worker.killed()
        how = f"signal {-code}" if code < 0 else f"exit {code}"
        watch.console.print(
            f"worker {worker.index} was killed ({how}); restarting it in {backoff:g} s (restart {worker.restarts})"
        )
        return True
    if code > 0 and not signalled:
        raise AvbenchError(f"worker {worker.index} failed: {worker.last_line()} (log: {worker.log})")
    return False


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
