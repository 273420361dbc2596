"""Scoring learned representations as auDeep does: an MLP trained on them, cross-validated
over the task's predefined folds, the whole cross-validation repeated with other seeds.

The protocol, and what its numbers mean:
- Rotation k (one per fold): fold k is the test set, fold k mod F + 1 the validation set (the
  split `data.fold = k` gives every other avbench run), the other folds train the MLP. A
  task without folds gives one rotation: its own train / val / test split.
- The MLP is auDeep's: `num_layers` hidden ReLU layers of `num_units` with dropout
  1 - keep_prob, trained full-batch with Adam for a fixed number of epochs on features
  standardised with the training folds' mean and std. Its output layer is linear (auDeep
  puts a ReLU on the logits, a quirk not copied).
- val = the mean over rotations of the validation-fold scores: what a sweep selects on.
  test = the mean over rotations of the test-fold scores, ± their std over folds: reported,
  never selected on. Every fold is the validation fold of one rotation, though, so a sweep's
  choice has seen each fold's labels once through a validation score: the test mean is
  not a nested cross-validation estimate. auDeep's own figures train on four folds, test on
  the fifth and leave hyperparameter choice to the user.
- Each fold's scores are averaged over the repeats; the confusion matrices are summed over
  folds and repeats (rows = true class), so every clip counts once per repeat.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avbench.config import EvaluationConfig
from avbench.errors import DatasetError
from avbench.spec import METRICS
from avbench.threads import capped_torch_threads
from avbench.train.metrics import classification_metrics
from avbench.train.optim import eager


@dataclass(frozen=True)
class Rotation:
    fold: int | None  # the test fold; None for a task's own split
    val_fold: int | None
    train: np.ndarray  # indices
    val: np.ndarray
    test: np.ndarray


def rotations(folds: np.ndarray, splits: Sequence[str]) -> list[Rotation]:
    """One rotation per fold (test k, validate k mod F + 1, train on the rest), or the one
    given by the task's split when the clips have no folds (fold 0)."""
    folds = np.asarray(folds)
    count = int(folds.max()) if len(folds) else 0
    if count == 0:
        named = np.asarray(splits)
        found = [Rotation(None, None, *(np.flatnonzero(named == s) for s in ("train", "val", "test")))]
    elif count < 3:
        raise DatasetError(f"cross-validation needs at least 3 folds (train, validation, test); the clips have {count}")
    else:
        found = []
        for fold in range(1, count + 1):
            val_fold = fold % count + 1
            train = np.flatnonzero((folds != fold) & (folds != val_fold))
            found.append(
                Rotation(fold, val_fold, train, np.flatnonzero(folds == val_fold), np.flatnonzero(folds == fold))
            )
    for rotation in found:
        for name in ("train", "val", "test"):
            if not len(getattr(rotation, name)):
                where = f"rotation with test fold {rotation.fold}" if rotation.fold else "the task's split"
                raise DatasetError(f"cross-validation: the {name} part of the {where} holds no clip")
    return found


@dataclass
class CrossValidationResult:
    val: dict  # metric → mean over rotations, metric_std, confusion (summed)
    test: dict
    per_fold: list[dict] = field(default_factory=list)  # {"fold", "val_fold", "val": {...}, "test": {...}}
    repeats: int = 1

    def cv_record(self, group: str) -> dict:
        """What a run record's `cv` field holds: one record that already covers every fold."""
        return {
            "group": group,
            "fold": None,
            "folds": len(self.per_fold),
            "repeats": self.repeats,
            "per_fold": self.per_fold,
        }


def make_mlp(inputs: int, num_classes: int, cfg: EvaluationConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = inputs
    for _ in range(cfg.num_layers):
        layers += [nn.Linear(width, cfg.num_units), nn.ReLU(), nn.Dropout(1.0 - cfg.keep_prob)]
        width = cfg.num_units
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def train_mlp(x: torch.Tensor, y: torch.Tensor, num_classes: int, cfg: EvaluationConfig, seed: int) -> nn.Module:
    """Full-batch Adam for cfg.epochs steps; the seed fixes initialisation and dropout without
    touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make_mlp(x.shape[1], num_classes, cfg).to(x.device)
        optimizer = eager(torch.optim.Adam)(model.parameters(), lr=cfg.lr)
        model.train()
        for _ in range(cfg.epochs):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    if not torch.isfinite(loss):
        raise FloatingPointError(f"MLP training loss became {float(loss)}")
    return model.eval()


def cross_validate(
    features: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    splits: Sequence[str],
    num_classes: int,
    cfg: EvaluationConfig,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> CrossValidationResult:
    """Repeated cross-validation of auDeep's MLP on `features` [clips, ...] (flattened)."""
    # The MLP's steps are far too small for torch's intra-op threads on a CPU: on the loaded
    # 2-core machine two threads made this cross-validation 3x slower than one (24.6 s vs 8.3 s).
    with capped_torch_threads(1 if torch.device(device).type == "cpu" else None):
        return _cross_validate(features, labels, folds, splits, num_classes, cfg, seed, device)


def _cross_validate(features, labels, folds, splits, num_classes, cfg, seed, device) -> CrossValidationResult:
    features = np.asarray(features, np.float32).reshape(len(features), -1)
    labels = np.asarray(labels, np.int64)
    parts = rotations(folds, splits)
    scores: list[dict[str, list[dict]]] = [{"val": [], "test": []} for _ in parts]
    for repeat in range(cfg.repeats):
        for index, rotation in enumerate(parts):
            mean = features[rotation.train].mean(axis=0)
            std = features[rotation.train].std(axis=0) + 1e-6

            def scaled(rows: np.ndarray, mean=mean, std=std) -> torch.Tensor:
                return torch.from_numpy((features[rows] - mean) / std).to(device)

            target = torch.from_numpy(labels[rotation.train]).to(device)
            model = train_mlp(scaled(rotation.train), target, num_classes, cfg, seed=seed + 1000 * repeat + index)
            with torch.no_grad():
                for split in ("val", "test"):
                    rows = getattr(rotation, split)
                    predicted = model(scaled(rows)).argmax(dim=1).cpu().numpy()
                    scores[index][split].append(classification_metrics(labels[rows], predicted, num_classes))
    per_fold = []
    for rotation, fold_scores in zip(parts, scores, strict=True):
        entry: dict = {"fold": rotation.fold, "val_fold": rotation.val_fold}
        for split in ("val", "test"):
            entry[split] = {m: statistics.fmean(s[m] for s in fold_scores[split]) for m in METRICS}
        per_fold.append(entry)
    summary = {}
    for split in ("val", "test"):
        values = {m: [entry[split][m] for entry in per_fold] for m in METRICS}
        summary[split] = {m: statistics.fmean(v) for m, v in values.items()}
        summary[split].update({f"{m}_std": statistics.pstdev(v) for m, v in values.items()})
        confusion = sum(np.asarray(s["confusion"]) for fold_scores in scores for s in fold_scores[split])
        summary[split]["confusion"] = confusion.tolist()
    return CrossValidationResult(summary["val"], summary["test"], per_fold, cfg.repeats)
