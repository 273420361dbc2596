"""The `avbench sweep` options that say where the workers run: on this machine (the default)
or as a Slurm job array (avbench.sweep.launch.slurm). No Slurm import at module level: the
options only collect what sbatch is told."""

from __future__ import annotations

from typing import Any

import click

from avbench.errors import ConfigError

LAUNCHERS = ("local", "slurm")
_SLURM_ONLY = ("partition", "time_limit", "account", "slurm_extra", "wait")


def launcher_options(func):
    """--launcher and the options of the Slurm launcher."""
    func = click.option(
        "--wait", is_flag=True, help="With --launcher slurm: show progress from the storage until the study is done."
    )(func)
    func = click.option(
        "--slurm",
        "slurm_extra",
        multiple=True,
        metavar="KEY=VALUE",
        help="Any other sbatch option for every array task, e.g. --slurm mem=16G --slurm qos=long (repeatable).",
    )(func)
    func = click.option("--account", default=None, help="With --launcher slurm: the account to charge.")(func)
    func = click.option(
        "--time",
        "time_limit",
        default=None,
        metavar="HH:MM:SS",
        help="With --launcher slurm: each task's time limit; it is warned (SIGUSR1) 2 min before, "
        "re-enqueues its trial and exits.",
    )(func)
    func = click.option("--partition", default=None, help="With --launcher slurm: the partition to run on.")(func)
    func = click.option(
        "--launcher",
        type=click.Choice(LAUNCHERS),
        default="local",
        show_default=True,
        help="Where the --workers run: processes on this machine, or one Slurm job array submitted with sbatch "
        "(needs a storage every node reaches: PostgreSQL or a journal file on a shared file system).",
    )(func)
    return func


def launcher_request(options: dict[str, Any]) -> dict[str, Any]:
    """Pops the launcher options out of `options` and returns them as SweepRequest fields."""
    from avbench.sweep.launch.slurm import SlurmOptions

    launcher = options.pop("launcher")
    given = {name: options.pop(name) for name in _SLURM_ONLY}
    if launcher != "slurm":
        stray = [name for name, value in given.items() if value]
        if stray:
            flag = "--" + {"time_limit": "time", "slurm_extra": "slurm"}.get(stray[0], stray[0])
            raise ConfigError(f"{flag} is an option of --launcher slurm")
        return {"launcher": launcher}
    slurm = SlurmOptions(
        partition=given["partition"],
        time=given["time_limit"],
        account=given["account"],
        extra=tuple(given["slurm_extra"]),
        wait=given["wait"],
    )
    return {"launcher": launcher, "slurm": slurm}
