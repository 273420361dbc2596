"""Configurations a study runs before its sampler suggests any: the best K trials of another
study (`--warm-start STUDY|EXPERIMENT --top K`) and configurations given by hand
(`--enqueue key=value,...`). Each is mapped onto this study's space (avbench.sweep.conditional:
values outside it clipped or dropped, with a note) and enqueued once: an enqueued trial
carries where it came from, and a configuration already in the study is not enqueued again.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from avbench.config import parse_override
from avbench.errors import ConfigError, StorageError
from avbench.sweep.conditional import map_onto
from avbench.sweep.core import SweepPlan
from avbench.sweep.infeasible import INFEASIBLE
from avbench.sweep.space import plain_name
from avbench.sweep.storage import display_url, list_study_names, open_storage, resolve_storage_url

ENQUEUED = "enqueued"  # the user attr naming where an enqueued configuration came from


def parse_enqueue(text: str) -> dict[str, Any]:
    """`train.optimizer=lion,train.lr=3e-4` → {"train.optimizer": "lion", "train.lr": 0.0003}."""
    values = {}
    for part in (p for p in text.split(",") if p.strip()):
        key, value = parse_override(part.strip())
        values[key] = value
    if not values:
        raise ConfigError(f"--enqueue '{text}': give key=value pairs separated by commas")
    return values


def enqueue_first(study: optuna.Study, plan: SweepPlan) -> list[str]:
    """Enqueue the warm start's and --enqueue's configurations not enqueued before; notes to show."""
    request = plan.request
    wanted: list[tuple[str, dict[str, Any]]] = []
    if request.warm_start:
        wanted += source_best(request.warm_start, request.warm_top, plan, study.study_name)
    wanted += [(f"--enqueue {text}", parse_enqueue(text)) for text in request.enqueue]
    seen = {t.user_attrs.get(ENQUEUED) for t in study.get_trials(deepcopy=False)}
    notes, added = [], 0
    for tag, values in wanted:
        if tag in seen:
            continue
        params, fitted = map_onto(plan.space, values)
        notes += [f"{tag}: {note}" for note in fitted]
        if not params:
            notes.append(f"{tag}: no value maps onto this search space; not enqueued")
            continue
        study.enqueue_trial(params, user_attrs={ENQUEUED: tag})
        added += 1
    if added:
        notes.append(f"enqueued {added} configuration(s) to run before the sampler's own")
    return notes


def source_best(source: str, top: int, plan: SweepPlan, own: str) -> list[tuple[str, dict[str, Any]]]:
    """The best `top` complete trials of the source study, best first, as (tag, plain values)."""
    study = _open_source(source, plan, own)
    trials = [
        t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if INFEASIBLE not in t.user_attrs
    ]
    if not trials:
        raise ConfigError(f"--warm-start {source}: study '{study.study_name}' has no completed trial yet")
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    best = sorted(trials, key=_first_value, reverse=maximize)[:top]
    return [(f"warm start from {study.study_name} trial {t.number}", _plain(t)) for t in best]


def _first_value(trial: FrozenTrial) -> float:
    return trial.values[0]


def _plain(trial: FrozenTrial) -> dict[str, Any]:
    return {plain_name(key): value for key, value in trial.params.items()}


def _open_source(source: str, plan: SweepPlan, own: str) -> optuna.Study:
    """SOURCE is a study in this sweep's storage, or an experiment whose study (in its own
    default storage) is taken: the one this run's preset and data kind would name, else its only one."""
    from avbench.sweep.core import study_name

    url = resolve_storage_url(plan.request.storage, plan.ctx.results, plan.loaded.name)
    names = list_study_names(open_storage(url))
    if source not in names:
        url = resolve_storage_url(None, plan.ctx.results, source)
        names = list_study_names(open_storage(url)) if _exists(url) else []
        mine = [n for n in names if n == source or n.startswith(source + "-")]
        preferred = study_name(plan.loaded, plan.ctx.preset, plan.ctx.synthetic).replace(plan.loaded.name, source, 1)
        if preferred in mine:
            mine = [preferred]
        if len(mine) != 1:
            found = ", ".join(mine) or "none"
            raise StorageError(
                f"--warm-start {source}: no single study of that name or experiment (studies of {source} in "
                f"{display_url(url)}: {found}); pass the study's name"
            )
        source = mine[0]
    if source == own and url == resolve_storage_url(plan.request.storage, plan.ctx.results, plan.loaded.name):
        raise ConfigError(f"--warm-start {source} is this sweep's own study; name another")
    return optuna.load_study(study_name=source, storage=open_storage(url))


def _exists(url: str) -> bool:
    from avbench.sweep.storage import storage_file

    path = storage_file(url)
    return path is None or path.exists()
