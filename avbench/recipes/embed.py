"""`avbench embed EXP`: fill the feature cache an experiment reads, without training.

For a probe that is its frozen encoder's embeddings of every file (the encoder runs once per
file and setting; every later run and sweep trial reads the rows); for any other model its
input features. Filling runs on the GPU when there is one, else on the CPUs, in
`data.cache_workers` processes when they pay off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avbench.config import Experiment
from avbench.context import RunContext
from avbench.recipes import Progress


@dataclass
class Embedded:
    data_kind: str
    sizes: dict[str, int]  # examples per split
    cache: dict  # hits, misses, decoded, failed, hit_rate
    skipped: list[tuple[str, str]]  # (file, reason)
    where: Path  # the cache folder the rows are in


def precompute_features(experiment: Experiment, ctx: RunContext, progress: Progress | None = None) -> Embedded:
    """Check the experiment as a run would, then compute (or find) the features of every file."""
    from avbench.data.cache import FeatureCache, settings_dir
    from avbench.data.dataset import cache_workers, feature_extractors, prepare_data
    from avbench.preflight import (
        check_feasible,
        check_model_args,
        model_input_extractor,
        resolve_data_root,
        with_model_inputs,
    )
    from avbench.registry import TASKS
    from avbench.results.layout import feature_cache_dir

    model_args = check_model_args(experiment)
    experiment = with_model_inputs(experiment)
    check_feasible(experiment, model_args)
    root, data_kind = resolve_data_root(experiment, synthetic=ctx.synthetic)
    cache = FeatureCache(feature_cache_dir(ctx.results), workers=cache_workers(experiment.data))
    audio = model_input_extractor(experiment, model_args, cache.root)
    data = prepare_data(TASKS.get(experiment.task)(), root, experiment.data, cache, progress, audio=audio)
    first = audio or next(iter(feature_extractors(experiment.data).values()))
    return Embedded(data_kind, data.sizes(), data.cache, data.skipped, settings_dir(cache.root, first))
