"""Which run of a group stands for it: the one rule the leaderboard, replicates, controls and
`avbench compare` share.

Among a group's original runs (not replicates), finished with a test score, the best on the
selection metric (`train.metric` on validation) wins; a tie there (validation saturates
easily: four trials at val/acc 1.00) goes to the lowest validation loss, and the selection
says it was broken. The chosen run's replicates (records whose `replicate_of` is its run id,
completed) then give the distribution of its test scores. No torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from avbench.results.records import RunRecord


def _val_loss(record: RunRecord) -> float:
    loss = record.val.get("loss")
    return loss if isinstance(loss, int | float) and math.isfinite(loss) else math.inf


def rankable(record: RunRecord) -> bool:
    """An original run that completed with a test score and its selection metric."""
    return (
        record.replicate_of is None
        and record.status == "completed"
        and bool(record.test)
        and record.metric in record.val
    )


def selection_key(record: RunRecord) -> tuple[float, float]:
    """Higher is better: the validation metric first, then the lower validation loss."""
    return (record.val[record.metric], -_val_loss(record))


@dataclass
class Selection:
    best: RunRecord
    # How the best run was chosen, as the leaderboard prints it: "best val/acc of 4" or
    # "best val/acc of 4, tie at 1.0000 broken by val/loss".
    how: str
    tie_broken: bool = False
    replicates: list[RunRecord] = field(default_factory=list)  # completed ones, by index

    @property
    def runs(self) -> list[RunRecord]:
        """The chosen run and its completed replicates: the n of its interval."""
        return [self.best, *self.replicates]


def select(records: list[RunRecord]) -> Selection | None:
    """The group's val-selected run with its replicates; None when nothing is rankable."""
    ranked = sorted((r for r in records if rankable(r)), key=selection_key, reverse=True)
    if not ranked:
        return None
    best = ranked[0]
    metric = f"val/{best.metric}"
    tied = [r for r in ranked if r.val[r.metric] == best.val[best.metric]]
    how = f"best {metric} of {len(ranked)}"
    tie_broken = len(tied) > 1
    if tie_broken:
        how += f", tie of {len(tied)} at {best.val[best.metric]:.4f} broken by val/loss"
    replicates = sorted(
        (r for r in records if r.replicate_of == best.run_id and r.status == "completed" and r.test),
        key=lambda r: r.replicate or 0,
    )
    return Selection(best, how, tie_broken, replicates)
