"""What fit() needs to go on exactly where a killed run stopped.

A resumed run must be the run that was killed, not a cousin of it: besides the weights, the
optimizer and the scheduler, last.pt holds the early-stopping state, the history and every
random state the next epoch draws from (torch, CUDA, numpy, python's `random`, and each data
loader's generator, which decides the next epoch's shuffle order). Without the loaders'
generators a resumed run would replay epoch 1's order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avbench.results.layout import RunFiles
from avbench.train.checkpoint import DamagedCheckpoint, load_checkpoint, save_checkpoint


@dataclass
class LoopState:
    """Where the loop is: the last finished epoch and what early stopping has seen so far."""

    epoch: int = 0
    best_value: float = -np.inf
    best_epoch: int = 0
    best_val: dict = field(default_factory=dict)
    bad_epochs: int = 0
    history: list[dict] = field(default_factory=list)
    best_weights: dict | None = None  # on the CPU; saved in best.pt, not in last.pt

    def observe(self, epoch: int, score: float, val: dict, model: torch.nn.Module) -> bool:
        """Count an epoch for early stopping; True when it is the best so far."""
        self.epoch = epoch
        if score <= self.best_value:
            self.bad_epochs += 1
            return False
        self.best_value, self.bad_epochs, self.best_epoch, self.best_val = score, 0, epoch, val
        self.best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return True


def loader_generators(loaders: dict) -> dict[str, torch.Generator]:
    """The generator of every loader that has one (Accelerate's prepared loaders keep using
    the same objects, so their states can be saved and set after `prepare`)."""
    return {name: loader.generator for name, loader in loaders.items() if loader.generator is not None}


def random_states(generators: dict[str, torch.Generator]) -> dict:
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    states = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), position, has_gauss, gauss],
        "python": [version, list(internal), python_gauss],
        "loaders": {name: generator.get_state() for name, generator in generators.items()},
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    version, internal, python_gauss = states["python"]
    random.setstate((version, tuple(internal), python_gauss))
    for name, state in states["loaders"].items():
        if name in generators:
            generators[name].set_state(state)
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


@dataclass
class ResumePoint:
    """last.pt (the latest epoch, to resume from) and best.pt (the best epoch's weights) in a
    run's folder; only the main process writes them, every process reads them."""

    folder: Path
    generators: dict[str, torch.Generator]

    @property
    def last(self) -> Path:
        return RunFiles(self.folder).last

    @property
    def best(self) -> Path:
        return RunFiles(self.folder).best

    def exists(self) -> bool:
        return self.last.exists()

    def save_best(self, state: LoopState) -> None:
        save_checkpoint(self.best, {"model": state.best_weights, "epoch": state.best_epoch, "val": state.best_val})

    def save_last(self, state: LoopState, model: torch.nn.Module, optimizer, scheduler) -> None:
        save_checkpoint(
            self.last,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "random": random_states(self.generators),
                "epoch": state.epoch,
                "best_value": state.best_value,
                "best_epoch": state.best_epoch,
                "best_val": state.best_val,
                "bad_epochs": state.bad_epochs,
                "history": state.history,
            },
        )

    def load(self, model: torch.nn.Module, optimizer, scheduler) -> LoopState:
        """Put the model, optimizer, scheduler and random states back as last.pt has them.
        Both files are read before anything is applied, so a damaged one (DamagedCheckpoint)
        leaves the model as it was built."""
        saved = load_checkpoint(self.last)
        best_weights = load_checkpoint(self.best)["model"] if self.best.exists() else None
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler"):
            scheduler.load_state_dict(saved["scheduler"])
        if "random" in saved:
            set_random_states(saved["random"], self.generators)
        else:  # written before every random state was kept: torch's alone
            torch.set_rng_state(saved["rng"])
        return LoopState(
            epoch=saved["epoch"],
            best_value=saved["best_value"],
            best_epoch=saved["best_epoch"],
            best_val=saved["best_val"],
            bad_epochs=saved["bad_epochs"],
            history=saved["history"],
            best_weights=best_weights,
        )

    def load_or_start_over(self, model: torch.nn.Module, optimizer, scheduler) -> tuple[LoopState, str | None]:
        """The loop state to go on from, and a warning for the record when the checkpoints
        were damaged: then the run starts over from epoch 1 (a lost run costs its epochs,
        never the sweep), and the damaged files are removed so they are not read again."""
        if not self.exists():
            return LoopState(), None
        try:
            return self.load(model, optimizer, scheduler), None
        except DamagedCheckpoint as exc:
            self.last.unlink(missing_ok=True)
            self.best.unlink(missing_ok=True)
            return LoopState(), f"{exc}: restarted from scratch"
