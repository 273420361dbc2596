"""RunContext: what every run of a command shares, travelling as one object.

The results folder, whether the data is the synthetic stand-in, whether runs are tracked in
W&B, and the preset the config came from are the same for every trial of a sweep and every
fold of a cross-validation; passing them as four loose arguments through a dozen signatures
made each new one (GPU placement, replicates…) an edit of all of them. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass(frozen=True)
class RunContext:
    results: Path
    synthetic: bool = False
    use_wandb: bool = True
    preset: str | None = None

    def but(self, **changes) -> RunContext:
        """A copy with some fields changed (e.g. tracking off for a dry run)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class TrialInfo:
    """Who a run is, when a sweep (or a cross-validation) runs it: the sweep's name, the
    trial's number and searched values, the run id a retry inherits, the fold it is, and the
    run it replicates."""

    sweep: str | None = None
    number: int | None = None
    searched: dict = field(default_factory=dict)
    run_id: str | None = None
    cv: dict | None = None
    replicate_of: str | None = None  # a replicate: the run it re-trains with another seed
    replicate: int | None = None
