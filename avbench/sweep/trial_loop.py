"""What the trial loops of both sweep backends share: the hooks through which they report
progress, and the streaks after which a sweep gives up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from avbench.errors import AvbenchError, ConfigError
from avbench.results.records import RunRecord
from avbench.sweep.infeasible import INFEASIBLE

# A trial that fails may be bad luck (a NaN at a high learning rate); this many in a row means
# every trial will (a broken install, data the model cannot take): stop rather than burn the budget.
MAX_CONSECUTIVE_FAILURES = 3
# A rejection costs a config check, not a trial; this many in a row means the space has
# (almost) nothing feasible left to suggest.
MAX_CONSECUTIVE_INFEASIBLE = 100


def _ignore(*_args) -> None:
    return None


@dataclass(frozen=True)
class SweepHooks:
    """What a sweep tells whoever shows it (avbench.display.SweepDisplay); each does nothing
    unless given."""

    trial_start: Callable[[int, dict], None] = _ignore  # (trial number, searched values)
    epoch: Callable[[int, dict], None] = _ignore  # (epoch, metrics) of the running trial
    trial_end: Callable[[RunRecord], None] = _ignore  # every trial, infeasible ones included
    features: Callable[[int, int], None] = _ignore  # (done, total) while the feature cache fills


class Streaks:
    """Counts the trials that end a sweep early. A failed trial extends the failure streak and
    a finished one ends it; an infeasible suggestion is neither (the failure streak stays as it
    was) but extends its own streak, which any trained trial ends."""

    def __init__(self) -> None:
        self.failures = 0
        self.infeasible = 0

    def after(self, status: str, reason: str | None) -> None:
        """Raises when the trial that just ended with `status` completes a streak."""
        if status == INFEASIBLE:
            self.infeasible += 1
            if self.infeasible >= MAX_CONSECUTIVE_INFEASIBLE:
                raise ConfigError(
                    f"{self.infeasible} suggestions in a row could not be built (last: {reason}); "
                    "narrow the sweep's ranges to feasible combinations"
                )
            return
        self.infeasible = 0
        if status != "failed":
            self.failures = 0
            return
        self.failures += 1
        if self.failures >= MAX_CONSECUTIVE_FAILURES:
            raise AvbenchError(f"{self.failures} trials in a row failed; last: {reason}")
