"""Loss and metrics for one head or several (emotion + state).

A single-head model gives a logits tensor and its batch a label per example, as always. A
multi-head model gives a dict of logits per head and its batch a label column per head
([B, heads], in the order of the spec's heads): the loss is the weighted sum of the heads'
cross-entropies, and every metric is reported per head (`emotion/acc`, `state/uar`, …).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from avbench.config import TrainConfig
from avbench.errors import ConfigError
from avbench.spec import METRICS, TaskSpec, split_metric
from avbench.train.metrics import classification_metrics

Logits = torch.Tensor | dict[str, torch.Tensor]


def _columns(logits: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """head → its label column."""
    return {name: labels[:, i] for i, name in enumerate(logits)}


def per_example_loss(
    logits: Logits, labels: torch.Tensor, weights: dict[str, float] | None = None, smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy of every example; with several heads the (weighted) sum of theirs."""
    if not isinstance(logits, dict):
        return F.cross_entropy(logits.float(), labels, reduction="none", label_smoothing=smoothing)
    weights = weights or {}
    columns = _columns(logits, labels)
    return sum(
        weights.get(name, 1.0)
        * F.cross_entropy(out.float(), columns[name], reduction="none", label_smoothing=smoothing)
        for name, out in logits.items()
    )


def classification_loss(
    logits: Logits, labels: torch.Tensor, weights: dict[str, float] | None = None, smoothing: float = 0.0
) -> torch.Tensor:
    """The training loss: mean cross-entropy, summed over heads with `train.head_weights`."""
    return per_example_loss(logits, labels, weights, smoothing).mean()


def batch_loss(logits: Logits, batch: dict, weights: dict[str, float], smoothing: float = 0.0) -> torch.Tensor:
    """The training loss of a batch; a mixed batch (mixup/cutmix, avbench.augment.batch) scores
    both labels, weighted by its mix_lambda: λ·CE(label) + (1 − λ)·CE(mix_label)."""
    loss = classification_loss(logits, batch["label"], weights, smoothing)
    if "mix_lambda" not in batch:
        return loss
    weight = batch["mix_lambda"]
    return weight * loss + (1 - weight) * classification_loss(logits, batch["mix_label"], weights, smoothing)


@dataclass
class EvalCollector:
    """Predictions, labels and losses of a split, gathered batch by batch, then scored."""

    num_classes: int
    preds: dict[str | None, list[torch.Tensor]] = field(default_factory=dict)
    labels: dict[str | None, list[torch.Tensor]] = field(default_factory=dict)
    widths: dict[str | None, int] = field(default_factory=dict)
    losses: list[torch.Tensor] = field(default_factory=list)
    # Class probabilities per head, kept only when asked for (the test split's per-clip predictions).
    keep_probabilities: bool = False
    probabilities: dict[str | None, list[torch.Tensor]] = field(default_factory=dict)

    def add(self, logits: Logits, labels: torch.Tensor, loss: torch.Tensor) -> None:
        outputs = logits if isinstance(logits, dict) else {None: logits}
        columns = _columns(logits, labels) if isinstance(logits, dict) else {None: labels}
        for name, out in outputs.items():
            self.preds.setdefault(name, []).append(out.argmax(dim=-1).cpu())
            if self.keep_probabilities:
                self.probabilities.setdefault(name, []).append(out.float().softmax(dim=-1).cpu())
            self.labels.setdefault(name, []).append(columns[name].cpu())
            self.widths[name] = out.shape[-1]
        self.losses.append(loss.float().cpu())

    def outputs(self) -> dict[str | None, dict]:
        """head (None for one) → {"labels" [N], "predictions" [N], "probabilities" [N, C]} as numpy."""
        return {
            name: {
                "labels": torch.cat(self.labels[name]).numpy(),
                "predictions": torch.cat(self.preds[name]).numpy(),
                "probabilities": torch.cat(probabilities).numpy(),
            }
            for name, probabilities in self.probabilities.items()
        }

    def metrics(self) -> dict:
        """{acc, uar, macro_f1, confusion, loss, examples}; with heads each under `<head>/`, plus the total loss."""
        result: dict = {}
        for name, preds in self.preds.items():
            width = self.num_classes if name is None else self.widths[name]
            scored = classification_metrics(torch.cat(self.labels[name]).numpy(), torch.cat(preds).numpy(), width)
            result.update(scored if name is None else {f"{name}/{k}": v for k, v in scored.items()})
        result["loss"] = float(torch.cat(self.losses).mean()) if self.losses else float("nan")
        # How many examples the split's metrics stand on (what a difference between runs can mean).
        result["examples"] = sum(len(labels) for labels in next(iter(self.labels.values()), []))
        return result


def is_logged(metric: str) -> bool:
    """Whether an evaluation value goes into the per-epoch log (confusion matrices do not)."""
    return split_metric(metric)[1] != "confusion"


def resolve_for_heads(cfg: TrainConfig, spec: TaskSpec) -> TrainConfig:
    """The training settings with `metric` naming its head (`acc` → the first head's `acc`),
    checked against the task's heads in one line before anything trains."""
    head, base = split_metric(cfg.metric)
    names = list(spec.heads)
    unknown = sorted(set(cfg.head_weights) - set(names))
    if unknown:
        listed = ", ".join(names) or "none: the task has one head"
        raise ConfigError(f"train.head_weights names no head of the task: {', '.join(unknown)} (heads: {listed})")
    if base not in METRICS:
        raise ConfigError(f"train.metric '{cfg.metric}': choose {', '.join(METRICS)}")
    if not names:
        if head is not None:
            raise ConfigError(f"train.metric '{cfg.metric}': the task has one head, use '{base}'")
        return cfg
    if head is None:
        return cfg.model_copy(update={"metric": f"{names[0]}/{base}"})
    if head not in names:
        raise ConfigError(f"train.metric '{cfg.metric}': no head '{head}' (heads: {', '.join(names)})")
    return cfg
