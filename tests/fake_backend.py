"""A sweep backend in one file, for tests: a fixed list of suggestions held in memory, no
engine. It is what a new backend (Ray Tune, say) looks like: a Trial that tells the engine
how the trial went, a Backend that hands out trials, and `sweep(plan)`; plugged in by one
entry in avbench.sweep.backends.BACKENDS (tests/test_sweep_core.py)."""

from __future__ import annotations

from avbench.results.records import RunRecord
from avbench.sweep.core import Backend, SweepOutcome, SweepPlan, Trial, run_trials

SUGGESTIONS: list[dict] = []  # what the engine suggests, in order (a test sets it)
PRUNE_AT: dict[int, int] = {}  # trial number → the epoch whose report the engine answers with "stop"
TOLD: list[tuple] = []  # everything the core told the engine, in order


class FixedTrial(Trial):
    def __init__(self, backend: FixedBackend, number: int, values: dict):
        super().__init__(number, values)
        self.backend = backend

    def report(self, epoch: int, value: float) -> bool:
        TOLD.append(("report", self.number, epoch, value))
        return PRUNE_AT.get(self.number) == epoch

    def reject(self, reason: str) -> None:
        TOLD.append(("reject", self.number, reason))

    def finish(self, record: RunRecord, values: tuple[float, ...] | None) -> None:
        TOLD.append(("finish", self.number, record.status, values))
        self.backend.ended[self.number] = (record.status, values[0] if values else None, record.run_id)

    def fail(self, reason: str) -> None:
        TOLD.append(("fail", self.number, reason))

    def interrupt(self) -> None:
        TOLD.append(("interrupt", self.number))


class FixedBackend(Backend):
    def __init__(self, plan: SweepPlan):
        self.name, self.target = plan.name("-fixed"), plan.target
        self.pending = list(enumerate(SUGGESTIONS))
        self.ended: dict[int, tuple] = {}
        self.rejected = 0

    def next_trial(self) -> FixedTrial | None:
        finished = sum(status in ("completed", "pruned") for status, _, _ in self.ended.values())
        if finished >= self.target or not self.pending:
            return None
        number, values = self.pending.pop(0)
        return FixedTrial(self, number, values)

    def outcome(self) -> SweepOutcome:
        completed = {n: end for n, end in self.ended.items() if end[0] == "completed"}
        best = max(completed, key=lambda n: completed[n][1]) if completed else None
        return SweepOutcome(
            study=self.name,
            storage="memory",
            target=self.target,
            finished=sum(end[0] in ("completed", "pruned") for end in self.ended.values()),
            failed=sum(end[0] == "failed" for end in self.ended.values()),
            infeasible=sum(told[0] == "reject" for told in TOLD),
            best_value=completed[best][1] if best is not None else None,
            best_params=dict(SUGGESTIONS[best]) if best is not None else {},
            best_run_id=completed[best][2] if best is not None else None,
        )


def sweep(plan: SweepPlan) -> SweepOutcome:
    return run_trials(FixedBackend(plan), plan)
