"""fit() and evaluate(): one readable loop in the Accelerate idiom.

prepare → accumulate → backward → gather_for_metrics. The best epoch is chosen on
validation, its weights are restored, and test is evaluated exactly once. Pruning reaches
the loop only through `on_eval(epoch, metrics) -> bool` (True = stop), tracking only through
`accelerator.log`; this module never imports optuna or wandb.

A model that learns without labels (auDeep's autoencoder) passes `reconstruction_loss`: it
is trained on that loss, evaluation reports it as `loss` (no classification metrics), and
the best epoch is the one with the lowest validation loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from avbench.config import TrainConfig
from avbench.train.checkpoint import load_checkpoint, save_checkpoint
from avbench.train.heads import EvalCollector, classification_loss, is_logged, per_example_loss
from avbench.train.optim import build_optimizer, build_scheduler, model_param_groups

OnEval = Callable[[int, dict], bool | None]
Loss = Callable[[torch.Tensor, dict], torch.Tensor]  # (model output, batch) -> scalar


class NonFiniteLoss(FloatingPointError):
    """The epoch's training loss is NaN or infinite. With many processes every rank raises it
    at the same point: the loss is summed over all ranks before the check."""


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    val: dict = field(default_factory=dict)
    test: dict = field(default_factory=dict)
    stopped: str = "completed"  # completed | early_stopped | pruned
    resumed_from_epoch: int = 0


def evaluate(model, loader, accelerator, num_classes: int, reconstruction_loss: Loss | None = None) -> dict:
    """Metrics over the whole split; gather_for_metrics drops the samples that distributed
    sampling duplicated to even out the ranks."""
    if reconstruction_loss is not None:
        return _evaluate_reconstruction(model, loader, accelerator, reconstruction_loss)
    model.eval()
    collected = EvalCollector(num_classes)  # per head when the model has several
    with torch.no_grad():
        for batch in loader:
            logits = model(batch)
            loss = per_example_loss(logits, batch["label"])
            collected.add(*accelerator.gather_for_metrics((logits, batch["label"], loss)))
    return collected.metrics()


def _evaluate_reconstruction(model, loader, accelerator, reconstruction_loss: Loss) -> dict:
    """The loss averaged over examples (each batch's loss weighted by its size)."""
    model.eval()
    total = torch.zeros(2, device=accelerator.device)  # loss x examples, examples
    with torch.no_grad():
        for batch in loader:
            count = len(batch["label"])
            loss = reconstruction_loss(model(batch), batch).float()
            total += torch.stack([loss * count, torch.tensor(float(count), device=loss.device)])
    loss_sum, count = accelerator.reduce(total, reduction="sum").tolist()
    return {"loss": loss_sum / max(count, 1.0)}


def fit(
    model: torch.nn.Module,
    loaders: dict,
    cfg: TrainConfig,
    accelerator,
    *,
    num_classes: int,
    checkpoint_dir: Path | None = None,
    on_eval: OnEval | None = None,
    reconstruction_loss: Loss | None = None,
) -> FitResult:
    """Train with early stopping on `cfg.metric` (on the validation loss for a reconstruction
    model); resume from `checkpoint_dir/last.pt` when it exists (written after every epoch).
    A model with a `param_groups(lr)` method trains each group at its own rate."""
    optimizer = build_optimizer(model_param_groups(model, cfg.lr), cfg)
    model, optimizer, train_loader, val_loader, test_loader = accelerator.prepare(
        model, optimizer, loaders["train"], loaders["val"], loaders["test"]
    )
    steps_per_epoch = -(-len(train_loader) // cfg.grad_accum)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    result = FitResult()
    best_value, bad_epochs, start_epoch = -np.inf, 0, 0
    best_state, best_val = None, {}
    last_path = checkpoint_dir / "last.pt" if checkpoint_dir else None
    best_path = checkpoint_dir / "best.pt" if checkpoint_dir else None
    if last_path is not None and last_path.exists():
        saved = load_checkpoint(last_path)
        accelerator.unwrap_model(model).load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved.get("scheduler"):
            scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        start_epoch, best_value = saved["epoch"], saved["best_value"]
        bad_epochs, result.history = saved["bad_epochs"], saved["history"]
        result.best_epoch, best_val = saved["best_epoch"], saved["best_val"]
        result.resumed_from_epoch = start_epoch
        if best_path.exists():
            best_state = load_checkpoint(best_path)["model"]

    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        started = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=accelerator.device)
        seen = 0
        for batch in train_loader:
            with accelerator.accumulate(model):
                output = model(batch)
                if reconstruction_loss is None:
                    loss = classification_loss(output, batch["label"], cfg.head_weights)
                else:
                    loss = reconstruction_loss(output, batch)
                accelerator.backward(loss)
                if cfg.max_grad_norm > 0 and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
                if scheduler is not None and accelerator.sync_gradients:
                    scheduler.step()
            loss_sum += loss.detach() * len(batch["label"])
            seen += len(batch["label"])
        # Checked once per epoch, not per step: a per-step check would sync the GPU every batch.
        # Summed over all ranks first, so every rank takes the same decision at the same point.
        totals = accelerator.reduce(
            torch.stack([loss_sum.float(), torch.tensor(float(seen), device=loss_sum.device)]), reduction="sum"
        )
        train_loss = float(totals[0]) / max(float(totals[1]), 1.0)
        if not np.isfinite(train_loss):
            raise NonFiniteLoss(f"training loss became {train_loss} in epoch {epoch}")

        val = evaluate(model, val_loader, accelerator, num_classes, reconstruction_loss)
        metrics = {"epoch": epoch, "train/loss": train_loss}
        metrics.update({f"val/{k}": v for k, v in val.items() if is_logged(k)})
        metrics["epoch_time_s"] = time.perf_counter() - started
        accelerator.log({k: v for k, v in metrics.items() if k != "epoch"}, step=epoch)
        result.history.append(metrics)

        score = -val["loss"] if reconstruction_loss is not None else val[cfg.metric]
        if score > best_value:
            best_value, bad_epochs, result.best_epoch, best_val = score, 0, epoch, val
            best_state = {k: v.detach().cpu().clone() for k, v in accelerator.unwrap_model(model).state_dict().items()}
            if best_path is not None and accelerator.is_main_process:
                save_checkpoint(best_path, {"model": best_state, "epoch": epoch, "val": val})
        else:
            bad_epochs += 1
        if last_path is not None and accelerator.is_main_process:
            save_checkpoint(
                last_path,
                {
                    "model": accelerator.unwrap_model(model).state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "rng": torch.get_rng_state(),
                    "epoch": epoch,
                    "best_value": best_value,
                    "best_epoch": result.best_epoch,
                    "best_val": best_val,
                    "bad_epochs": bad_epochs,
                    "history": result.history,
                },
            )
        if on_eval is not None and on_eval(epoch, metrics):
            result.stopped = "pruned"
            break
        if cfg.patience and bad_epochs >= cfg.patience:
            result.stopped = "early_stopped"
            break

    if best_state is not None:
        accelerator.unwrap_model(model).load_state_dict(best_state)
    result.val = best_val
    if result.stopped != "pruned":
        result.test = evaluate(model, test_loader, accelerator, num_classes, reconstruction_loss)
    return result
