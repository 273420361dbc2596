"""The autoencoder's training: the generic loop of avbench.train with auDeep's objective.

The autoencoder learns without labels: it trains on its reconstruction loss, evaluation
reports that loss as `loss` (no classification metrics) and the best epoch is the one with
the lowest validation loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from avbench.config import TrainConfig
from avbench.train.loop import FitResult, OnEval, train_loop


@dataclass(frozen=True)
class Reconstruction:
    """The model's own `loss(output, batch)` (auDeep's RMSE); lower validation loss is better."""

    model_loss: Callable[[object, dict], torch.Tensor]  # the model's bound `loss` method

    def loss(self, output, batch: dict) -> torch.Tensor:
        return self.model_loss(output, batch)

    def evaluate(self, model, loader, accelerator) -> dict:
        """The loss averaged over examples (each batch's loss weighted by its size)."""
        model.eval()
        total = torch.zeros(2, device=accelerator.device)  # loss x examples, examples
        with torch.no_grad():
            for batch in loader:
                count = len(batch["label"])
                loss = self.model_loss(model(batch), batch).float()
                total += torch.stack([loss * count, torch.tensor(float(count), device=loss.device)])
        loss_sum, count = accelerator.reduce(total, reduction="sum").tolist()
        return {"loss": loss_sum / max(count, 1.0)}

    def score(self, metrics: dict) -> float:
        return -metrics["loss"]

    def correct(self, output, batch: dict) -> None:
        return None  # an autoencoder predicts no label


def fit_autoencoder(
    model: torch.nn.Module,
    loaders: dict,
    cfg: TrainConfig,
    accelerator,
    *,
    checkpoint_dir: Path | None = None,
    on_eval: OnEval | None = None,
) -> FitResult:
    """Train an autoencoder (a model with `loss(output, batch)`) with early stopping on its
    validation loss; resumes from `checkpoint_dir/last.pt` as fit() does."""
    objective = Reconstruction(model.loss)
    return train_loop(model, loaders, cfg, accelerator, objective, checkpoint_dir=checkpoint_dir, on_eval=on_eval)
