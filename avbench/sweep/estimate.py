"""`avbench sweep EXP --dry-run`: the search space the nulls make, and what the sweep will cost.

The cost comes from timing real training steps of the model on real features (one batch,
after a warm-up step), scaled by the split sizes, epochs and trials. Data preparation is
measured too: a warm feature cache costs nothing, a cold one is timed on a few files per
split (into a throwaway cache) and scaled to the whole dataset. No study is created.
"""

from __future__ import annotations

import math
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from avbench.config import LoadedExperiment
from avbench.data.cache import FeatureCache
from avbench.errors import ConfigError
from avbench.results.layout import feature_cache_dir
from avbench.sweep.conditional import first_values, representative_values, tree_rows
from avbench.sweep.core import SweepPlan
from avbench.sweep.space import SearchSpace, walk
from avbench.threads import capped_torch_threads

TIMED_STEPS = 3
SAMPLE_FILES_PER_SPLIT = 8


class _ColdCache(Exception):
    """The feature cache has no entry for this dataset and these settings yet."""


class _WarmOnlyCache(FeatureCache):
    """Serves what is cached; the first file it would have to decode means the cache is cold."""

    def _fill(self, jobs, stats, strict, progress):
        raise _ColdCache


class _SampledTask:
    """The task with only its first few files per split, to time feature extraction."""

    def __init__(self, task, per_split: int):
        self._task, self._per_split = task, per_split

    def __getattr__(self, name):
        return getattr(self._task, name)

    def items(self, root, data):
        taken: dict[str, int] = {}
        kept = []
        for item in self._task.items(root, data):
            if taken.get(item.split, 0) < self._per_split:
                taken[item.split] = taken.get(item.split, 0) + 1
                kept.append(item)
        return kept


def dry_run(plan: SweepPlan) -> None:
    """Print the plan's search space, sampler, study and estimated cost; create nothing."""
    from avbench.sweep.samplers import check_sampler, sampler_name
    from avbench.sweep.storage import display_url, resolve_storage_url

    loaded, space, request, console = plan.loaded, plan.space, plan.request, plan.view.console
    _print_space(loaded, space, console)
    chosen = sampler_name(space, request.sampler)
    for note in check_sampler(space, chosen):
        console.print(f"note: {note}")
    url = resolve_storage_url(request.storage, plan.ctx.results, loaded.name)
    console.print(
        f"sampler {chosen} (seed {loaded.config.sweep.seed}), pruner {request.pruner or loaded.config.sweep.pruner}, "
        f"{plan.target} trials, {request.workers} worker(s); study {plan.name()} in "
        f"{display_url(url)} (dry run: not created)",
        soft_wrap=True,  # one line to grep, however long the storage path
    )
    ctx = plan.ctx
    _print_cost(
        loaded,
        space,
        console,
        trials=plan.target,
        workers=request.workers,
        results=ctx.results,
        synthetic=ctx.synthetic,
    )


def _print_space(loaded: LoadedExperiment, space: SearchSpace, console: Console) -> None:
    in_file = set(loaded.declared)
    rows = tree_rows(space.params)
    table = Table(title=f"search space of {loaded.name}: {len(rows)} parameter(s)")
    for column in ("parameter", "range", "range from", "null in"):
        table.add_column(column)
    for depth, choice, param in rows:
        origin = loaded.source if param.name in in_file else "--preset / --set"
        # A branch's parameter sits under the parameter whose choice searches it, indented by its depth.
        shown = f"{'  ' * depth}└ {choice}: {param.name}" if depth else param.name
        table.add_row(
            escape(shown), escape(param.describe_range()), space.origins.get(param.name, space.source), origin
        )
    console.print(table)
    for name, default in space.absent_defaults.items():
        console.print(f"{name} = {default!r} (the schema default) where its branch does not search it")
    size = space.grid_size()
    if size is None:
        continuous = sorted({p.name for _, p in walk(space.params) if p.grid_size() is None and not p.branches})
        console.print(f"grid size: unbounded ({', '.join(continuous)} continuous)")
    else:
        console.print(f"grid size: {size} combination(s)")


def _print_cost(
    loaded: LoadedExperiment,
    space: SearchSpace,
    console: Console,
    *,
    trials: int,
    workers: int,
    results: Path,
    synthetic: bool,
) -> None:
    from avbench.data.dataset import prepare_data
    from avbench.preflight import check_feasible, resolve_data_root, with_model_inputs
    from avbench.registry import MODELS, TASKS

    values = representative_values(space)
    try:
        experiment = loaded.resolve(values)
        check_feasible(experiment)
    except ConfigError:  # a constraint between fields (an infeasible model too): each range's first value
        values = first_values(space)
        experiment = loaded.resolve(values)
    experiment = with_model_inputs(experiment)
    task = TASKS.get(experiment.task)()
    root, _ = resolve_data_root(experiment, synthetic=synthetic)
    counts = _split_counts(task, root, experiment)
    trained = dict(counts)  # what one trial trains and evaluates on
    if MODELS.get(experiment.model).objective == "reconstruction":
        # An autoencoder trains on every clip but a held-out tenth, which is its val and test.
        from avbench.audeep.pipeline import MONITOR_FRACTION

        total = sum(counts.values())
        held_out = max(1, round(total * MONITOR_FRACTION))
        trained = {"train": total - held_out, "val": held_out, "test": held_out}
    total_files = sum(counts.values())
    split_sizes = " / ".join(f"{n} {name}" for name, n in counts.items())
    scratch: list[Path] = []
    try:
        data = prepare_data(task, root, experiment.data, _WarmOnlyCache(feature_cache_dir(results)))
        console.print(f"data: {total_files} files ({split_sizes}); feature cache warm: no decoding needed")
    except _ColdCache:
        # A one-file-per-split pass first pays the one-off costs (imports, building the
        # transforms); the timed pass then measures decoding alone.
        for per_split in (1, SAMPLE_FILES_PER_SPLIT):
            # Throwaway caches, never results/; kept until the batches below are timed
            # because cached features are read lazily from their files.
            scratch.append(Path(tempfile.mkdtemp(prefix="avbench-dry-run-")))
            started = time.perf_counter()
            data = prepare_data(_SampledTask(task, per_split), root, experiment.data, FeatureCache(scratch[-1]))
            elapsed = time.perf_counter() - started
        sampled = sum(data.sizes().values())
        per_file = elapsed / sampled
        console.print(
            f"data: {total_files} files ({split_sizes}); feature cache cold: decoding them once takes "
            f"~{_duration(per_file * total_files)} (timed on {sampled} files), then trials read the cache"
        )
    try:
        train_s, eval_s = time_batches(experiment, data)
    finally:
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)
    batch = experiment.train.batch_size
    epoch = math.ceil(trained["train"] / batch) * train_s + math.ceil(trained["val"] / batch) * eval_s
    trial = experiment.train.epochs * epoch + math.ceil(trained["test"] / batch) * eval_s
    console.print(
        f"one training step at batch {batch} ({_format(values)}): {train_s * 1000:.0f} ms, "
        f"one evaluation batch {eval_s * 1000:.0f} ms"
    )
    console.print(
        f"→ ~{_duration(epoch)} per epoch, ~{_duration(trial)} per trial of {experiment.train.epochs} "
        f"epochs, ~{_duration(trial * trials)} for {trials} trials in one process "
        "(an upper bound: pruning and early stopping only shorten it)"
    )
    if workers > 1:
        console.print(
            f"{workers} workers on one CPU share its cores: expect little less than that; "
            f"on {workers} GPUs or machines about 1/{workers} of it"
        )


def time_batches(experiment, data) -> tuple[float, float]:
    """Median seconds of one training step (forward, backward, optimizer) and of one
    evaluation batch, on real examples of the training split."""
    import torch
    import torch.nn.functional as F

    from avbench.data.dataset import ArrayDataset
    from avbench.data.device_inputs import DeviceInputs
    from avbench.models import create_model
    from avbench.registry import MODELS
    from avbench.train.optim import build_optimizer, model_param_groups

    torch.manual_seed(experiment.train.seed)
    model = create_model(experiment, data.spec)
    reconstructs = MODELS.get(experiment.model).objective == "reconstruction"
    optimizer = build_optimizer(model_param_groups(model, experiment.train.lr), experiment.train)
    size = experiment.train.batch_size
    batch = next(iter(torch.utils.data.DataLoader(ArrayDataset(data.splits["train"]), batch_size=size)))
    repeats = math.ceil(size / len(batch["label"]))  # a sampled split may hold fewer examples than a batch
    batch = DeviceInputs.of(data)({k: torch.cat([v] * repeats)[:size] for k, v in batch.items()})

    def train_step() -> None:
        output = model(batch)
        # A reconstruction model (audeep) trains on its own loss; the MLP that scores it
        # afterwards is not timed (seconds, against the autoencoder's minutes).
        if reconstructs:
            loss = model.loss(output, batch)
        else:
            loss = F.cross_entropy(output.float(), batch["label"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    def eval_step() -> None:
        with torch.no_grad():
            model(batch)

    with capped_torch_threads(MODELS.get(experiment.model).cpu_threads):  # as a recipe trains it on a CPU
        model.train()
        train_s = _median_time(train_step)
        model.eval()
        return train_s, _median_time(eval_step)


def _median_time(step) -> float:
    step()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(TIMED_STEPS):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _split_counts(task, root, experiment) -> dict[str, int]:
    counts = {"train": 0, "val": 0, "test": 0}
    for item in task.items(root, experiment.data):
        counts[item.split] = counts.get(item.split, 0) + 1
    return counts


def _format(values: dict) -> str:
    from avbench.display import format_values

    return format_values(values)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
