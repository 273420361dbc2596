"""The feature cache: build throughput with 1 vs N processes, epoch time decoding every epoch vs
reading the cache, and a second experiment with the same features building nothing.

Writes a synthetic CREMA-D stand-in (WAV + FLV) or uses --data, then:
1. fills an empty cache with 1 process, with --workers processes, and as the default does
   (workers only when its timing of the first files says they pay off), for log-mel and, with
   --video, video frames, printing files/s and the ratio;
2. times one pass over the training split decoding every item (WAV + resampling + log-mel, or
   FLV + frame sampling) against the memory-mapped cache, and the same with the cpu preset's
   model training on every batch;
3. runs prepare_data for a second experiment (other split seed and label control, same feature
   settings) on the same cache and prints its hit rate.
The data epochs run with one intra-op thread (as the cache's builders do), so the baseline is
not slowed by thread contention the cache does not have; the training epochs use torch's default.

    python benchmarks/feature_cache.py [--size small] [--data DIR] [--workers 2] [--video]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    parser.add_argument("--data", type=Path, default=None, help="an existing CREMA-D layout")
    parser.add_argument("--workers", type=int, default=2, help="processes for the parallel build")
    parser.add_argument("--video", action="store_true", help="also cache video frames (FLV)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import torch

    from avbench.config import DataConfig
    from avbench.data.cache import FeatureCache
    from avbench.data.dataset import ArrayDataset, feature_extractors, prepare_data
    from avbench.registry import MODELS
    from avbench.tasks.cremad import CremaD

    task = CremaD()
    modalities = ["audio", "video"] if args.video else ["audio"]
    data = DataConfig(clip_seconds=1.5, modalities=modalities, num_frames=8, image_size=64)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "cremad"
            task.synthesize(root, size=args.size, seed=0, video=args.video)
        items = task.items(root, data)
        extractors = feature_extractors(data)
        sources = {"audio": [item.audio for item in items], "video": [item.video for item in items]}

        print(f"{len(items)} clips, features {', '.join(f'{m} {extractors[m].settings.shape}' for m in modalities)}")
        for modality in modalities:
            rates, chose = {}, ""
            for label, workers, threshold in (
                ("1", 1, math.inf),
                ("N", args.workers, 0.0),
                ("auto", args.workers, None),
            ):
                folder = Path(tmp) / f"build-{modality}-{label}"
                cache = FeatureCache(folder, workers=workers, pool_after_s=threshold)
                started = time.perf_counter()
                cache.fetch({modality: (extractors[modality], sources[modality])})
                rates[label] = len(items) / (time.perf_counter() - started)
                writers = {shard.stem.split("-")[1] for shard in folder.glob("*/*.npy")}
                chose = "workers" if writers - {str(os.getpid())} else "in-process"
            print(
                f"cache build, {modality}: 1 process {rates['1']:.1f} files/s, {args.workers} processes "
                f"{rates['N']:.1f} files/s (with their start-up), ratio {rates['N'] / rates['1']:.2f}x; "
                f"default choice: {chose}, {rates['auto']:.1f} files/s"
            )
        shared = Path(tmp) / "shared"
        prepared = prepare_data(task, root, data, FeatureCache(shared, workers=args.workers))
        train = [item for item in items if item.split == "train"]

        class DecodeEveryEpoch(torch.utils.data.Dataset):
            def __len__(self):
                return len(train)

            def __getitem__(self, i):
                example = {"label": train[i].label}
                audio = extractors["audio"](train[i].audio).astype(np.float32)
                example["audio"] = torch.from_numpy(audio).unsqueeze(0)
                if args.video:
                    example["video"] = torch.from_numpy(extractors["video"](train[i].video).astype(np.float32))
                return example

        model = MODELS.get("spectrogram-cnn")(prepared.spec, width=0.25, depth=0.25)
        optimizer = torch.optim.Adam(model.parameters())

        def epoch(dataset, train_model: bool = False) -> float:
            loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True)
            started = time.perf_counter()
            for batch in loader:
                if train_model:
                    model(batch).logsumexp(-1).mean().backward()
                    optimizer.step()
                    optimizer.zero_grad()
                else:
                    batch["audio"].sum()
            return time.perf_counter() - started

        cached_split = ArrayDataset(prepared.splits["train"])
        with one_thread():  # the data path alone: torch's threads would only add contention noise
            decoded = min(epoch(DecodeEveryEpoch()) for _ in range(2))
            cached = min(epoch(cached_split) for _ in range(3))
        decoded_default_threads = epoch(DecodeEveryEpoch())  # what the old benchmark compared against
        decoded_train = epoch(DecodeEveryEpoch(), train_model=True)
        cached_train = epoch(cached_split, train_model=True)

        other = data.model_copy(update={"split_seed": 1, "shuffle_train_labels": True})
        second = prepare_data(task, root, other, FeatureCache(shared, workers=args.workers))

    print(f"data epoch ({len(train)} training clips), decoding every epoch: {decoded:.3f}s")
    print(f"data epoch, from the cache:                        {cached:.3f}s")
    print(f"epoch-time ratio decode/cache: {decoded / cached:.1f}x  (target >= 10x)")
    print(
        f"  (decoding with torch's default intra-op threads instead: {decoded_default_threads:.3f}s, "
        f"{decoded_default_threads / cached:.1f}x; those threads only contend on a busy machine)"
    )
    print(
        f"training epoch (B0 x0.25): decoding {decoded_train:.2f}s, cached {cached_train:.2f}s, "
        f"ratio {decoded_train / cached_train:.2f}x"
    )
    totals = second.cache
    print(
        f"second experiment, same features: {totals['decoded']} files decoded, {totals['hits']} hits, "
        f"{totals['misses']} misses, hit rate {totals['hit_rate']:.0%}"
    )


if __name__ == "__main__":
    main()
