"""Epoch time with features decoded every epoch vs read from the feature cache.

Writes a synthetic CREMA-D stand-in (or uses --data), then times one pass over the training
files both ways: decoding WAV + resampling + log-mel per item, against the memory-mapped
cache entry. Also reports the cost of building the cache once and a second lookup's hit.

    python benchmarks/feature_cache.py [--size small] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    parser.add_argument("--data", type=Path, default=None, help="an existing CREMA-D layout")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    from avbench.config import DataConfig
    from avbench.data.cache import FeatureCache
    from avbench.data.dataset import ArrayDataset, logmel_settings, prepare_data
    from avbench.data.features import LogMelExtractor
    from avbench.tasks.cremad import CremaD

    task = CremaD()
    data = DataConfig(clip_seconds=1.5)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "cremad"
            task.synthesize(root, size=args.size, seed=0)
        train_files = [item.audio for item in task.items(root, data) if item.split == "train"]
        extract = LogMelExtractor(logmel_settings(data))

        class DecodeEveryEpoch(torch.utils.data.Dataset):
            def __len__(self):
                return len(train_files)

            def __getitem__(self, i):
                return {"audio": torch.from_numpy(extract(train_files[i]).astype(np.float32)).unsqueeze(0)}

        cache = FeatureCache(Path(tmp) / "cache")
        started = time.perf_counter()
        prepared = prepare_data(task, root, data, cache)
        build = time.perf_counter() - started
        started = time.perf_counter()
        again = prepare_data(task, root, data, FeatureCache(Path(tmp) / "cache"))
        lookup = time.perf_counter() - started
        assert again.cache_hits == 1 and again.cache_misses == 0

        from avbench.registry import MODELS

        model = MODELS.get("spectrogram-cnn")(prepared.spec, width=0.25, depth=0.25)
        optimizer = torch.optim.Adam(model.parameters())

        def epoch(dataset, train: bool = False) -> float:
            loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
            started = time.perf_counter()
            for batch in loader:
                if train:
                    logits = model(batch)
                    logits.logsumexp(-1).mean().backward()
                    optimizer.step()
                    optimizer.zero_grad()
                else:
                    batch["audio"].sum()
            return time.perf_counter() - started

        decoded = min(epoch(DecodeEveryEpoch()) for _ in range(2))
        cached = min(epoch(ArrayDataset(prepared.splits["train"])) for _ in range(3))
        # The same with the cpu preset's model training on every batch: what a user feels.
        decoded_train = epoch(DecodeEveryEpoch(), train=True)
        cached_train = epoch(ArrayDataset(prepared.splits["train"]), train=True)
    total = sum(prepared.sizes().values())
    print(f"{len(train_files)} training clips ({total} in all splits), log-mel {logmel_settings(data).shape}")
    print(f"cache build (all splits, once): {build:.2f}s = {total / build:.1f} files/s; "
          f"second lookup {lookup:.3f}s (hit)")
    print(f"data epoch, decoding every epoch: {decoded:.3f}s")
    print(f"data epoch, from the cache:       {cached:.3f}s")
    print(f"epoch-time ratio decode/cache: {decoded / cached:.1f}x  (target >= 10x)")
    print(f"training epoch (B0 x0.25): decoding {decoded_train:.2f}s, cached {cached_train:.2f}s, "
          f"ratio {decoded_train / cached_train:.2f}x")


if __name__ == "__main__":
    main()
