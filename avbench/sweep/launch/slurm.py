"""`--launcher slurm`: the sweep's workers as one Slurm job array, submitted with `sbatch`.

Each array task runs one worker: the same `avbench sweep … --workers 1` command the local
launcher starts (avbench.sweep.launch.local.worker_argv), pinned to the study and storage
the submitting process opened. Workers claim trials from the study under its claim lock, so
the array never trains more than `--trials` in all, and re-running the command joins the same
study. Progress is followed through the storage, not through Slurm: submitit would follow jobs
through `sacct`, which needs Slurm's accounting daemon (slurmdbd and a database) that many
clusters and every one-node test setup lack; `squeue` is only asked whether the job still runs.

Every task asks Slurm for SIGUSR1 shortly before its time limit (`--signal=B:USR1@…`); the
worker takes it like Ctrl-C: its trial is failed and re-enqueued (resumed by the next worker
from its last epoch checkpoint) and the worker exits. A task cancelled or preempted without
warning leaves its trial to the heartbeat check of avbench.sweep.liveness, which re-enqueues
it the same way.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avbench.errors import AvbenchError, ConfigError

if TYPE_CHECKING:
    from avbench.context import RunContext
    from avbench.sweep.backends.optuna import StudyHandle
    from avbench.sweep.core import SweepOutcome, SweepPlan, SweepRequest

SIGNAL_LEAD_S = 120  # how long before the time limit a task is told to stop
POLL_S = 2.0  # how often --wait reads the storage and asks squeue about the job
# What the launcher writes itself; `--slurm` may not set them.
OWN_DIRECTIVES = ("array", "output", "error", "signal", "chdir", "ntasks", "cpus-per-task", "gpus-per-task")
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d{1,2}))?(?::(\d{1,2}))?$")
_KEY = re.compile(r"^[a-z][a-z0-9-]*$")
_ENV_PREFIXES = ("AVBENCH_", "WANDB_")


@dataclass(frozen=True)
class SlurmOptions:
    """What `avbench sweep --launcher slurm` passes to sbatch besides the array itself."""

    partition: str | None = None
    time: str | None = None  # HH:MM:SS, D-HH:MM:SS or MM, as sbatch reads it
    account: str | None = None
    extra: tuple[str, ...] = ()  # --slurm KEY=VALUE: any other sbatch option
    wait: bool = False  # follow the study until it is done instead of returning at once


class TimeLimitReached(KeyboardInterrupt):
    """Slurm's warning before the time limit: handled like Ctrl-C, so the core fails the
    running trial and re-enqueues it, and the worker exits."""


def stop_before_time_limit() -> None:
    """In a worker: take SIGUSR1 (what `--signal=B:USR1@…` sends) as the order to stop."""
    signal.signal(signal.SIGUSR1, _raise_time_limit)


def _raise_time_limit(signum, frame):
    print(
        "the Slurm time limit is near (SIGUSR1): stopping; the running trial is re-enqueued and resumes "
        "from its last checkpoint in the next worker",
        file=sys.stderr,
        flush=True,
    )
    raise TimeLimitReached


def time_limit_seconds(limit: str | None) -> int | None:
    """sbatch's --time in seconds; None when unset. MM, MM:SS, HH:MM:SS and D-HH[:MM[:SS]]."""
    if limit is None:
        return None
    match = _TIME.match(limit.strip())
    if not match:
        raise ConfigError(f"--time {limit}: write HH:MM:SS, D-HH:MM:SS or minutes")
    days, first, second, third = match.groups()
    numbers = [int(first)] + [int(n) for n in (second, third) if n is not None]
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = (numbers + [0, 0])[:3]
        return int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    if len(numbers) == 3:
        return numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
    if len(numbers) == 2:
        return numbers[0] * 60 + numbers[1]
    return numbers[0] * 60


def signal_lead(limit: str | None) -> int:
    """Seconds of warning before the limit: SIGNAL_LEAD_S, or a quarter of a short limit."""
    seconds = time_limit_seconds(limit)
    if seconds is None:
        return SIGNAL_LEAD_S
    return max(1, min(SIGNAL_LEAD_S, seconds // 4))


def extra_directives(extra: tuple[str, ...]) -> list[str]:
    """--slurm KEY=VALUE (or a bare KEY) as `#SBATCH --KEY=VALUE` lines."""
    lines = []
    for item in extra:
        key, _, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not _KEY.match(key) or "\n" in value:
            raise ConfigError(f"--slurm {item}: write an sbatch option as KEY=VALUE, e.g. --slurm mem=16G")
        if key in OWN_DIRECTIVES:
            hint = {"cpus-per-task": " (use --threads)", "gpus-per-task": " (use --gpus-per-trial)"}.get(key, "")
            raise ConfigError(f"--slurm {key}: avbench sets it for every array task itself{hint}")
        lines.append(f"--{key}={value}" if value else f"--{key}")
    return lines


def refuse_unshared_storage(url: str) -> str | None:
    """Workers on many hosts need one storage they all reach: SQLite is refused; a journal
    file is allowed with a note (returned) that it must be on a shared file system."""
    from avbench.sweep.storage import storage_file

    if url.startswith("sqlite"):
        raise ConfigError(
            f"--launcher slurm: SQLite ({storage_file(url)}) cannot be shared by workers on many hosts; "
            "pass --storage postgresql://user@host/db or a journal file on a shared file system "
            "(--storage DIR/study.log)"
        )
    if url.startswith("journal://"):
        return (
            f"the journal file {storage_file(url)} must be on a file system every node mounts "
            "(with working fcntl locks, e.g. NFSv4)"
        )
    return None


def check_slurm_request(request: SweepRequest, backend, ctx: RunContext, experiment: str, view) -> None:
    """Everything --launcher slurm can refuse, refused in one line before a study is opened."""
    from avbench.sweep.storage import resolve_storage_url

    if not getattr(backend, "SUPPORTS_WORKERS", False):
        raise ConfigError(
            f"--launcher slurm: --backend {request.backend} cannot share a study between workers (use --backend optuna)"
        )
    options = request.slurm or SlurmOptions()
    time_limit_seconds(options.time)
    extra_directives(options.extra)
    note = refuse_unshared_storage(resolve_storage_url(request.storage, ctx.results, experiment))
    if note and view is not None:
        view.say(f"note: {note}")


def job_directives(request: SweepRequest, options: SlurmOptions, *, name: str, log_pattern: Path) -> list[str]:
    """The sbatch options of the array: one worker per task, warned before its time limit."""
    directives = [
        f"--job-name=avbench-{name}",
        f"--array=0-{request.workers - 1}",
        "--ntasks=1",  # Slurm 22.05 takes --gpus-per-task only with --ntasks
        f"--cpus-per-task={request.threads or 1}",
        f"--output={log_pattern}",
        f"--chdir={Path.cwd()}",
        f"--signal=B:USR1@{signal_lead(options.time)}",
    ]
    gpus = request.gpus_per_trial
    if gpus:
        directives.append(f"--gpus-per-task={gpus}")
    for flag, value in (("partition", options.partition), ("time", options.time), ("account", options.account)):
        if value:
            directives.append(f"--{flag}={value}")
    return directives + extra_directives(options.extra)


def job_environment() -> dict[str, str]:
    """What the tasks must see as this shell does: avbench's and W&B's settings, and the
    import path (sbatch exports the environment too, unless a cluster turns that off)."""
    env = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return dict(sorted(env.items()))


def job_script(directives: list[str], env: dict[str, str], argv: list[str]) -> str:
    """A bash script whose last line becomes the worker (exec), so SIGUSR1 sent to the batch
    shell (`B:`) reaches the worker itself."""
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives)]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    lines += ['export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"', "exec " + shlex.join(argv)]
    return "\n".join(lines) + "\n"


def worker_command(request: SweepRequest, plan: SweepPlan, handle: StudyHandle) -> list[str]:
    """The local launcher's worker command; with --gpus-per-trial k > 1, as a k-process
    torchrun launch on the task's GPUs (rank 0 takes each trial, every rank trains it)."""
    from avbench.sweep.launch.local import worker_argv

    argv = worker_argv(request, plan.ctx, handle, request.threads or 1)
    gpus = request.gpus_per_trial
    if gpus and gpus > 1:
        launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}"]
        return launch + ["-m", "avbench", *argv[3:]]
    return argv


def sbatch(script: Path) -> str:
    """Submit; the job id, or one line saying why Slurm refused."""
    if shutil.which("sbatch") is None:
        raise AvbenchError(
            "--launcher slurm: sbatch not found; run the sweep on a machine with Slurm's client commands"
        )
    done = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    if done.returncode:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise AvbenchError(f"sbatch refused the job: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout.strip().split(";")[0]


def job_running(job_id: str) -> bool:
    """Any task of the job still pending or running, as squeue sees it."""
    done = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=60)
    return done.returncode == 0 and bool(done.stdout.strip())


def submit_array(handle: StudyHandle, plan: SweepPlan) -> SweepOutcome | None:
    """Submit the plan's workers as one array sharing the opened study; with --wait, follow
    it until the study is done or the job has left the queue. None when not waiting."""
    from avbench.results.layout import slurm_log_pattern, slurm_script, study_dir
    from avbench.sweep.backends.optuna import count_finished, sweep_outcome
    from avbench.sweep.storage import display_url

    request, console = plan.request, plan.view.console
    options = request.slurm or SlurmOptions()
    finished = count_finished(handle.study.get_trials(deepcopy=False))
    if finished >= handle.target:
        console.print(
            f"study {handle.name} already has {finished} of {handle.target} finished trials: nothing to submit"
        )
        return sweep_outcome(handle)
    results = Path(plan.ctx.results).resolve()
    study_dir(results, handle.name).mkdir(parents=True, exist_ok=True)
    directives = job_directives(request, options, name=handle.name, log_pattern=slurm_log_pattern(results, handle.name))
    script = slurm_script(results, handle.name)
    script.write_text(job_script(directives, job_environment(), worker_command(request, plan, handle)))
    job_id = sbatch(script)
    show = f"avbench show {plan.loaded.name} --storage {shlex.quote(display_url(handle.url))} --study {handle.name}"
    console.print(f"submitted Slurm job {job_id}: {request.workers} array task(s), study {handle.name}", soft_wrap=True)
    console.print(
        f"follow it: {show}; squeue -j {job_id}; logs {slurm_log_pattern(results, handle.name)}", soft_wrap=True
    )
    if not options.wait:
        return None
    return follow_job(job_id, handle, plan)


def follow_job(job_id: str, handle: StudyHandle, plan: SweepPlan) -> SweepOutcome:
    """--wait: progress from the storage until the study has its trials or the job is gone."""
    from avbench.sweep.backends.optuna import count_finished, sweep_outcome
    from avbench.sweep.launch.local import _Watch

    watch = _Watch(plan.view.console, handle, plan.ctx.results, plan.loaded.name)
    with watch.progress:
        while True:
            watch.update()
            if count_finished(handle.study.get_trials(deepcopy=False)) >= handle.target or not job_running(job_id):
                break
            time.sleep(POLL_S)
        watch.update()
    return sweep_outcome(handle)
