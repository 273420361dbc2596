"""What a sweep optimises: one metric (the default, `val/<train.metric>:max`) or several, e.g.
accuracy against parameters and latency (`--objective val/acc:max --objective params:min`).

An objective is `METRIC:max|min` over a logged metric (`val/<m>`, `test/<m>`, per head
`val/<head>/<m>`) or a cost every run record carries: `params`, `latency_ms` (median ms per
clip at batch 1 on the trial's device), `train_time_s` and `peak_memory_mb`. No engine here:
the core reads each finished run's values off its record and hands the backend the tuple.
"""

from __future__ import annotations

from dataclasses import dataclass

from avbench.config import LoadedExperiment
from avbench.errors import ConfigError
from avbench.registry import did_you_mean
from avbench.results.records import RunRecord
from avbench.spec import METRICS

COSTS = ("params", "latency_ms", "train_time_s", "peak_memory_mb")
GOALS = {"max": "maximize", "min": "minimize"}
SPLIT_METRICS = tuple(f"{split}/{m}" for split in ("val", "test") for m in (*METRICS, "loss"))


@dataclass(frozen=True)
class Objective:
    metric: str
    goal: str  # max | min

    @property
    def direction(self) -> str:
        return GOALS[self.goal]

    def __str__(self) -> str:
        return f"{self.metric}:{self.goal}"

    def value(self, record: RunRecord) -> float | None:
        """This objective's value in a finished run's record (None where it was not measured)."""
        if self.metric in COSTS:
            value = getattr(record, self.metric)
        else:
            split, name = self.metric.split("/", 1)
            value = (record.val if split == "val" else record.test).get(name)
        return float(value) if isinstance(value, int | float) else None


def parse_objective(text: str) -> Objective:
    metric, sep, goal = str(text).rpartition(":")
    if not sep or goal not in GOALS or not metric:
        raise ConfigError(f"objective '{text}' must be METRIC:max or METRIC:min (e.g. val/acc:max, params:min)")
    known = metric in COSTS or (metric.split("/", 1)[0] in ("val", "test") and metric.rsplit("/", 1)[-1] in METRICS)
    if not known and metric not in SPLIT_METRICS:
        choices = (*COSTS, *SPLIT_METRICS)
        raise ConfigError(
            f"objective '{text}': unknown metric '{metric}'{did_you_mean(metric, choices)} "
            f"(val/<metric>, test/<metric> or one of {', '.join(COSTS)})"
        )
    return Objective(metric, goal)


def resolve_objectives(loaded: LoadedExperiment, requested: tuple[str, ...] = ()) -> tuple[Objective, ...]:
    """--objective beats the experiment's `sweep.objectives`; neither: the validation metric."""
    default = Objective(f"val/{loaded.config.train.metric}", "max")
    texts = requested or tuple(loaded.config.sweep.objectives)
    if not texts:
        return (default,)
    objectives = tuple(parse_objective(t) for t in texts)
    metrics = [o.metric for o in objectives]
    if len(set(metrics)) < len(metrics):
        raise ConfigError(f"each objective once: {', '.join(map(str, objectives))}")
    if len(objectives) == 1 and objectives[0] != default:
        # The metric that selects each run's best epoch must be the one a single-objective sweep optimises.
        raise ConfigError(
            f"a single objective must be {default} (train.metric selects each run's epoch); "
            "give several to trade it against a cost"
        )
    return objectives


def objective_values(record: RunRecord, objectives: tuple[Objective, ...]) -> tuple[float, ...] | None:
    """The run's value of every objective, or None when one was not measured (a pruned run)."""
    values = tuple(o.value(record) for o in objectives)
    return None if None in values else values


def is_multi(objectives: tuple[Objective, ...]) -> bool:
    return len(objectives) > 1
