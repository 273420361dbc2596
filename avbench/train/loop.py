"""fit() and evaluate(): one readable loop in the Accelerate idiom.

prepare → accumulate → backward → gather_for_metrics. The best epoch is chosen on
validation, its weights are restored, and test is evaluated exactly once. Pruning reaches
the loop only through `on_eval(epoch, metrics) -> bool` (True = stop), tracking only through
`accelerator.log`; this module never imports optuna or wandb.

fit() trains a classifier. What it optimises and how it scores an epoch is an `Objective`
(`Classification` here); a model that learns something else (auDeep's autoencoder, see
avbench.audeep.training) passes its own objective to the same `train_loop`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from avbench.config import TrainConfig
from avbench.train.free_space import check_free_space
from avbench.train.heads import EvalCollector, batch_loss, is_logged, per_example_loss
from avbench.train.optim import build_optimizer, build_scheduler, model_param_groups
from avbench.train.prepare import prepare, unwrap
from avbench.train.resume import LoopState, ResumePoint, loader_generators

OnEval = Callable[[int, dict], bool | None]
DeviceStep = Callable[[dict], dict]  # a batch on the device → the model's inputs


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
    # The test split's per-example outputs (EvalCollector.outputs), for objectives that give them.
    test_outputs: dict = field(default_factory=dict)
    resume_warning: str | None = None  # the checkpoints were damaged: started over


class BatchStage(Protocol):
    """What happens to each batch on the device before the model sees it (avbench.augment's
    pipeline): `train` on the training split, `eval` on val and test. Its draws come from
    `generator`, saved with the other random states so a resumed run replays them."""

    generator: torch.Generator
    label_smoothing: float

    def train(self, batch: dict) -> dict: ...

    def eval(self, batch: dict) -> dict: ...


@dataclass(frozen=True)
class MappedLoader:
    """A prepared loader whose batches pass through `apply` (len and iteration as the loader's)."""

    loader: object
    apply: Callable[[dict], dict]

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return (self.apply(batch) for batch in self.loader)


class Objective(Protocol):
    """What the loop optimises (`loss`), how a split is measured (`evaluate`) and which epoch
    is best (the highest `score` of its validation metrics)."""

    def loss(self, output, batch: dict) -> torch.Tensor: ...

    def evaluate(self, model, loader, accelerator) -> dict: ...

    def score(self, metrics: dict) -> float: ...

    def correct(self, output, batch: dict) -> torch.Tensor | None:
        """Correct predictions in a training batch, as a device tensor (no host-device sync), or
        None for an objective that predicts no label."""
        ...


def evaluate(model, loader, accelerator, num_classes: int) -> dict:
    """Classification metrics over the whole split (per head when the model has several);
    gather_for_metrics drops the samples that distributed sampling duplicated to even out the ranks."""
    return _collect(model, loader, accelerator, EvalCollector(num_classes)).metrics()


def evaluate_with_outputs(model, loader, accelerator, num_classes: int) -> tuple[dict, dict]:
    """evaluate()'s metrics and every example's label, prediction and class probabilities
    (EvalCollector.outputs), in the loader's order."""
    collected = _collect(model, loader, accelerator, EvalCollector(num_classes, keep_probabilities=True))
    return collected.metrics(), collected.outputs()


def _collect(model, loader, accelerator, collected: EvalCollector) -> EvalCollector:
    model.eval()
    with torch.no_grad():
        for batch in loader:
            logits = model(batch)
            loss = per_example_loss(logits, batch["label"])
            collected.add(*accelerator.gather_for_metrics((logits, batch["label"], loss)))
    return collected


@dataclass(frozen=True)
class Classification:
    """Cross-entropy on the logits; the best epoch has the highest validation `metric`."""

    num_classes: int
    metric: str
    head_weights: dict[str, float] = field(default_factory=dict)  # several heads: each one's loss weight
    label_smoothing: float = 0.0

    def loss(self, output, batch: dict) -> torch.Tensor:
        return batch_loss(output, batch, self.head_weights, self.label_smoothing)

    def evaluate(self, model, loader, accelerator) -> dict:
        return evaluate(model, loader, accelerator, self.num_classes)

    def evaluate_with_outputs(self, model, loader, accelerator) -> tuple[dict, dict]:
        return evaluate_with_outputs(model, loader, accelerator, self.num_classes)

    def score(self, metrics: dict) -> float:
        return metrics[self.metric]

    def correct(self, output, batch: dict) -> torch.Tensor:
        """Of the first head when there are several (its labels are the first column)."""
        if isinstance(output, dict):
            return (next(iter(output.values())).detach().argmax(dim=-1) == batch["label"][:, 0]).sum()
        return (output.detach().argmax(dim=-1) == batch["label"]).sum()


def fit(
    model: torch.nn.Module,
    loaders: dict,
    cfg: TrainConfig,
    accelerator,
    *,
    num_classes: int,
    checkpoint_dir: Path | None = None,
    on_eval: OnEval | None = None,
    inputs: BatchStage | None = None,
    device_inputs: DeviceStep | None = None,
) -> FitResult:
    """Train a classifier with early stopping on `cfg.metric`; resume from
    `checkpoint_dir/last.pt` when it exists (written every `cfg.checkpoint_every` epochs and
    after the last). A model with a `param_groups(lr)` method trains each group at its own
    rate. `device_inputs` turns every split's batches into model inputs once they are on the
    device (avbench.data.device_inputs: the cached uint8 frames normalised); `inputs` then
    transforms them (augmentation on train, feature computation on every split)."""
    smoothing = inputs.label_smoothing if inputs is not None else 0.0
    objective = Classification(num_classes, cfg.metric, dict(cfg.head_weights), smoothing)
    return train_loop(
        model,
        loaders,
        cfg,
        accelerator,
        objective,
        checkpoint_dir=checkpoint_dir,
        on_eval=on_eval,
        inputs=inputs,
        device_inputs=device_inputs,
    )


def train_loop(
    model: torch.nn.Module,
    loaders: dict,
    cfg: TrainConfig,
    accelerator,
    objective: Objective,
    *,
    checkpoint_dir: Path | None = None,
    on_eval: OnEval | None = None,
    inputs: BatchStage | None = None,
    device_inputs: DeviceStep | None = None,
) -> FitResult:
    """Epochs of `objective.loss` until `cfg.epochs`, early stopping or pruning; then the best
    epoch's weights and one evaluation of test (none when pruned)."""
    generators = loader_generators(loaders)
    optimizer = build_optimizer(model_param_groups(model, cfg.lr), cfg)
    model, optimizer, train_loader, val_loader, test_loader = prepare(
        accelerator, model, optimizer, loaders["train"], loaders["val"], loaders["test"]
    )
    train_loader, val_loader, test_loader = staged(train_loader, val_loader, test_loader, device_inputs, inputs)
    if inputs is not None:
        generators["augment"] = inputs.generator
    scheduler = build_scheduler(optimizer, cfg, -(-len(train_loader) // cfg.grad_accum))
    unwrapped = unwrap(accelerator, model)
    resume = ResumePoint(checkpoint_dir, generators) if checkpoint_dir is not None else None
    state, warning = resume.load_or_start_over(unwrapped, optimizer, scheduler) if resume else (LoopState(), None)
    result = FitResult(resumed_from_epoch=state.epoch, resume_warning=warning)
    saving, best_unsaved = resume is not None and accelerator.is_main_process, False
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        started = time.perf_counter()
        trained = train_epoch(model, train_loader, optimizer, scheduler, cfg, accelerator, objective)
        if not np.isfinite(trained["train/loss"]):
            raise NonFiniteLoss(f"training loss became {trained['train/loss']} in epoch {epoch}")
        val = objective.evaluate(model, val_loader, accelerator)
        metrics = {"epoch": epoch, **trained, **{f"val/{k}": v for k, v in val.items() if is_logged(k)}}
        metrics["lr"] = optimizer.param_groups[0]["lr"]  # after the epoch's scheduler steps
        metrics["epoch_time_s"] = time.perf_counter() - started
        accelerator.log({k: v for k, v in metrics.items() if k != "epoch"}, step=epoch)
        state.history.append(metrics)
        best_unsaved |= state.observe(epoch, objective.score(val), val, unwrapped)
        if saving and epoch == result.resumed_from_epoch + 1:  # before this process's first checkpoint
            check_free_space(checkpoint_dir, unwrapped, optimizer)
        if saving and (epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs):
            best_unsaved = save_resume_point(resume, state, best_unsaved, unwrapped, optimizer, scheduler)
        if on_eval is not None and on_eval(epoch, metrics):
            result.stopped = "pruned"
            break
        if cfg.patience and state.bad_epochs >= cfg.patience:
            result.stopped = "early_stopped"
            break
    if saving and best_unsaved:  # stopped between resume points: the run's best.pt all the same
        resume.save_best(state)
    if state.best_weights is not None:
        unwrapped.load_state_dict(state.best_weights)
    result.history, result.best_epoch, result.val = state.history, state.best_epoch, state.best_val
    if result.stopped != "pruned":
        with_outputs = getattr(objective, "evaluate_with_outputs", None)
        if with_outputs is not None:
            result.test, result.test_outputs = with_outputs(model, test_loader, accelerator)
        else:
            result.test = objective.evaluate(model, test_loader, accelerator)
    return result


def staged(train, val, test, device_inputs: DeviceStep | None, inputs: BatchStage | None) -> tuple:
    """The prepared loaders (their batches already on the device) through `device_inputs` on
    every split, then `inputs`: its `train` on the training split, its `eval` on the others."""
    if device_inputs is not None:
        train, val, test = (MappedLoader(loader, device_inputs) for loader in (train, val, test))
    if inputs is not None:
        train, val, test = (
            MappedLoader(train, inputs.train),
            MappedLoader(val, inputs.eval),
            MappedLoader(test, inputs.eval),
        )
    return train, val, test


def save_resume_point(resume: ResumePoint, state: LoopState, best_unsaved: bool, model, optimizer, scheduler) -> bool:
    """best.pt (when a better epoch came since the last write), then last.pt: written at the
    same epochs, so a resume from last.pt never meets a best.pt from an epoch after it."""
    if best_unsaved:
        resume.save_best(state)
    resume.save_last(state, model, optimizer, scheduler)
    return False


def train_epoch(model, loader, optimizer, scheduler, cfg: TrainConfig, accelerator, objective: Objective) -> dict:
    """One pass over the training split: {"train/loss"} (the mean per example over every rank)
    and, for an objective that predicts labels, {"train/acc"}."""
    model.train()
    totals = torch.zeros(3, device=accelerator.device)  # loss x examples, examples, correct
    labelled = False
    for batch in loader:
        with accelerator.accumulate(model):
            output = model(batch)
            loss = objective.loss(output, batch)
            accelerator.backward(loss)
            if cfg.max_grad_norm > 0 and accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
            if scheduler is not None and accelerator.sync_gradients:
                scheduler.step()
        count = len(batch["label"])
        correct = objective.correct(output, batch)
        # Summed on the device: a per-step .item() would sync the GPU every batch.
        totals[0] += loss.detach().float() * count
        totals[1] += count
        if correct is not None:
            totals[2] += correct
            labelled = True
    # Summed over all ranks first, so every rank takes the same NaN decision at the same point.
    loss_sum, seen, correct_sum = accelerator.reduce(totals, reduction="sum").tolist()
    epoch = {"train/loss": loss_sum / max(seen, 1.0)}
    if labelled:
        epoch["train/acc"] = correct_sum / max(seen, 1.0)
    return epoch
