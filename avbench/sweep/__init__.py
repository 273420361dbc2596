"""Sweeps: search the null fields of an experiment. `run` is the one entry (`avbench sweep`
calls it once per experiment): it resolves the request, picks the backend from the table in
avbench.sweep.backends and hands it the plan; every backend trains its trials through
avbench.sweep.core (SweepRequest, SweepOutcome). Nothing is imported here until `run` is
called: `avbench --help` lists the backends without loading any of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from avbench.context import RunContext
    from avbench.sweep.core import SweepOutcome, SweepRequest


def run(request: SweepRequest, ctx: RunContext, view=None) -> SweepOutcome | None:
    """Run (or resume) the sweep of one experiment; None where this process only followed
    rank 0 of a launch or printed a dry run. `view` (avbench.display.ConsoleView) shows
    progress; nothing is shown without one."""
    from dataclasses import replace

    from avbench.catalog import load_experiment
    from avbench.display import ConsoleView
    from avbench.distributed import join_ranks
    from avbench.errors import AvbenchError, ConfigError
    from avbench.sweep.backends import backend_module, choose_backend
    from avbench.sweep.core import SweepPlan
    from avbench.sweep.launch.placement import place_workers
    from avbench.sweep.launch.torchrun import follow_trials, refuse_under_launcher
    from avbench.sweep.objectives import is_multi, resolve_objectives
    from avbench.sweep.space import resolve_space

    loaded = load_experiment(request.experiment, preset=ctx.preset, overrides=request.overrides)
    if not loaded.searched:
        raise AvbenchError(f"{loaded.name} has no null (searched) fields; use `avbench run`")
    space = resolve_space(loaded, request.sweep_config)
    objectives = resolve_objectives(loaded, request.objectives)
    if request.backend != "optuna" and (is_multi(objectives) or request.warm_start or request.enqueue):
        raise ConfigError(
            "several objectives, --warm-start and --enqueue need --backend optuna (W&B sweeps optimise one metric)"
        )
    backend = backend_module(choose_backend(request.backend, ctx.use_wandb))
    request = place_workers(request)
    if (request.workers > 1 or request.placement) and not getattr(backend, "SUPPORTS_WORKERS", False):
        raise ConfigError(
            f"--workers {request.workers}: --backend {request.backend} trains one trial at a time here "
            "(--backend optuna shares a storage between worker processes)"
        )
    if request.backend != "optuna" and space.conditional:
        from avbench.sweep.conditional import flat_equivalent

        space, notes = flat_equivalent(space)
        for note in notes:
            (view or ConsoleView.silent()).say(f"note: {note}")
    refuse_under_launcher(request, backend)
    if request.launcher == "slurm":
        from avbench.sweep.launch.slurm import check_slurm_request

        check_slurm_request(request, backend, ctx, loaded.name, view)
    ranks = join_ranks()  # one rank of one without torchrun / accelerate launch
    if not ranks.is_main:
        follow_trials(ranks, loaded, ctx)
        return None
    plan = SweepPlan(request, loaded, space, ctx, view or ConsoleView.silent(), ranks, objectives)
    if request.dry_run:
        from avbench.sweep.estimate import dry_run

        dry_run(plan)
        return None
    if request.threads and request.workers == 1:
        import torch

        torch.set_num_threads(request.threads)  # this process's share of the cores (see --threads)
    outcome = backend.sweep(plan)
    if outcome is None:  # submitted to Slurm, not followed
        return None
    config = loaded.config
    return replace(
        outcome,
        task=config.task,
        model=config.model,
        metric=f"val/{config.train.metric}",
        objectives=tuple(map(str, objectives)),
    )
