"""Where the segments of a clip lie, shared by audio and video so both cut the same moments.

OpenAV feeds a model `max_segment` overlapping windows of one clip instead of one long
window. A clip of `clip_seconds` (the centre-cropped/padded clip every modality uses) is cut
into `count` windows of `segment_seconds`: the first starts at 0, the last ends at the clip's
end, the others are equally spaced between (they overlap when count × length > clip).
"""

from __future__ import annotations

from avbench.errors import ConfigError


def clip_windows(clip_seconds: float, count: int, segment_seconds: float) -> list[tuple[float, float]]:
    """(start, end) in seconds from the clip's start; one window = the whole clip when count is 0."""
    if count <= 0:
        return [(0.0, clip_seconds)]
    if segment_seconds > clip_seconds + 1e-9:
        raise ConfigError(
            f"data.segment_seconds ({segment_seconds}) is longer than data.clip_seconds ({clip_seconds}); "
            "segments are cut from the clip"
        )
    if count == 1:
        start = (clip_seconds - segment_seconds) / 2
        return [(start, start + segment_seconds)]
    step = (clip_seconds - segment_seconds) / (count - 1)
    return [(k * step, k * step + segment_seconds) for k in range(count)]


def sample_windows(num_samples: int, count: int, segment_samples: int) -> list[tuple[int, int]]:
    """The same windows in samples of a clip of `num_samples`, each exactly `segment_samples` long."""
    if count <= 0:
        return [(0, num_samples)]
    starts = [round(start) for start, _ in clip_windows(float(num_samples), count, float(segment_samples))]
    return [(start, start + segment_samples) for start in starts]
