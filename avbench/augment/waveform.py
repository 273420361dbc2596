"""Waveform transforms on a batch of clips [B, ..., samples], each example drawn on its own
(speed and pitch: one draw per batch, as resampling a whole batch at once is what keeps them
cheap). Every draw comes from the pipeline's torch.Generator, so a seed fixes them."""

from __future__ import annotations

import math

import torch

from avbench.augment.channel import coloured_noise, random_channel
from avbench.config_augment import AugmentConfig

ROOM_SECONDS = (0.1, 0.6)  # RT60 range of the synthetic rooms
SNR_SPAN_DB = 20.0  # noise SNRs are drawn from [noise_snr_db, noise_snr_db + this]


def uniform(generator: torch.Generator, size: tuple[int, ...], low: float, high: float, like: torch.Tensor):
    """Uniform draws on the CPU generator, moved to the batch's device and dtype."""
    return (low + (high - low) * torch.rand(size, generator=generator)).to(like.device, like.dtype)


def chosen(generator: torch.Generator, count: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """[count, 1, 1] booleans: which examples a transform applied with probability p touches."""
    return (torch.rand((count, 1, 1), generator=generator) < p).to(like.device)


def _power(wave: torch.Tensor) -> torch.Tensor:
    return wave.pow(2).mean(dim=-1, keepdim=True).clamp_min(1e-10)


def gain(wave: torch.Tensor, db: float, generator: torch.Generator) -> torch.Tensor:
    scale = 10.0 ** (uniform(generator, (wave.shape[0], 1, 1), -db, db, wave) / 20.0)
    return wave * scale


def add_noise(wave: torch.Tensor, cfg: AugmentConfig, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """Noise of cfg.noise_colour, or with mix_background another clip of the batch, at an SNR per example."""
    count = wave.shape[0]
    if cfg.mix_background and count > 1:
        noise = wave.roll(1, dims=0)
    else:
        noise = coloured_noise(wave.shape, cfg.noise_colour, sample_rate, generator).to(wave.device, wave.dtype)
    snr = uniform(generator, (count, 1, 1), cfg.noise_snr_db, cfg.noise_snr_db + SNR_SPAN_DB, wave)
    noise = noise * torch.sqrt(_power(wave) / (_power(noise) * 10.0 ** (snr / 10.0)))
    return torch.where(chosen(generator, count, cfg.noise_p, wave), wave + noise, wave)


def time_shift(wave: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """A circular shift of each clip by up to `share` of its length, either way."""
    samples = wave.shape[-1]
    limit = int(share * samples)
    shifts = torch.randint(-limit, limit + 1, (wave.shape[0], 1, 1), generator=generator).to(wave.device)
    index = (torch.arange(samples, device=wave.device).view(1, 1, -1) - shifts) % samples
    return wave.gather(-1, index.expand_as(wave))


def fit_centre(wave: torch.Tensor, samples: int) -> torch.Tensor:
    """Centre-crop or zero-pad the last axis to `samples`, as the cache fits its clips."""
    have = wave.shape[-1]
    if have >= samples:
        start = (have - samples) // 2
        return wave[..., start : start + samples]
    before = (samples - have) // 2
    return torch.nn.functional.pad(wave, (before, samples - have - before))


def speed(wave: torch.Tensor, spread: float, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """Speed perturbation (tempo and pitch together, as Kaldi's and ESPnet's): the batch is
    resampled by 1 - spread, 1 or 1 + spread, then fitted back to its length."""
    import torchaudio

    factor = (1.0 - spread, 1.0, 1.0 + spread)[int(torch.randint(3, (), generator=generator))]
    if factor == 1.0:
        return wave
    base = 100
    faster = torchaudio.functional.resample(wave, orig_freq=round(base * factor), new_freq=base)
    return fit_centre(faster, wave.shape[-1])


def pitch_shift(wave: torch.Tensor, semitones: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """With probability p, the batch's pitch moved by a whole, non-zero number of semitones in
    ±semitones (an octave at 12), tempo kept: a phase vocoder stretches time by the pitch factor,
    then resampling by a ratio of small integers (within 1 % of it) brings the length back.
    torchaudio's own pitch_shift resamples by the exact ratio, whose kernel is 100× slower on a CPU."""
    import torchaudio

    shifted = bool(torch.rand((), generator=generator) < p)
    drawn = int(torch.randint(2 * semitones, (), generator=generator))  # one of ±1 … ±semitones
    steps = drawn - semitones if drawn < semitones else drawn - semitones + 1
    if not shifted:
        return wave
    base = 50
    up = round(base * 2.0 ** (steps / 12.0))
    factor, n_fft, hop = up / base, 512, 128
    window = torch.hann_window(n_fft, device=wave.device)
    flat = wave.reshape(-1, wave.shape[-1])
    spec = torch.stft(flat, n_fft, hop, window=window, return_complex=True)
    advance = torch.linspace(0, torch.pi * hop, spec.shape[-2], device=wave.device)[..., None]
    stretched = torchaudio.functional.phase_vocoder(spec, 1.0 / factor, advance)
    longer = torch.istft(stretched, n_fft, hop, window=window, length=round(flat.shape[-1] * factor))
    shifted = torchaudio.functional.resample(longer, orig_freq=up, new_freq=base)
    return fit_centre(shifted, wave.shape[-1]).reshape(wave.shape).to(wave.dtype)


def reverb(wave: torch.Tensor, p: float, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """A synthetic room per chosen clip: exponentially decaying noise after a direct path,
    RT60 drawn from ROOM_SECONDS; the result keeps the clip's loudness."""
    import torchaudio

    count, length = wave.shape[0], int(ROOM_SECONDS[1] * sample_rate)
    rt60 = uniform(generator, (count, 1, 1), *ROOM_SECONDS, wave)
    t = torch.arange(length, device=wave.device, dtype=wave.dtype).view(1, 1, -1) / sample_rate
    tail = torch.randn((count, 1, length), generator=generator).to(wave.device, wave.dtype)
    room = tail * torch.exp(-3.0 * math.log(10.0) * t / rt60) * 0.1
    room[..., 0] = 1.0
    wet = torchaudio.functional.fftconvolve(wave, room)[..., : wave.shape[-1]]
    wet = wet * torch.sqrt(_power(wave) / _power(wet))
    return torch.where(chosen(generator, count, p, wave), wet, wave)


def augment_waveform(wave: torch.Tensor, cfg: AugmentConfig, sample_rate: int, generator: torch.Generator):
    """Every waveform transform that is on, in a fixed order; shape and dtype kept."""
    shape = wave.shape
    flat = wave.reshape(shape[0], -1, shape[-1]).float()
    if cfg.speed:
        flat = speed(flat, cfg.speed, sample_rate, generator)
    if cfg.pitch_semitones:
        flat = pitch_shift(flat, cfg.pitch_semitones, cfg.pitch_p, generator)
    if cfg.reverb_p:
        flat = reverb(flat, cfg.reverb_p, sample_rate, generator)
    if cfg.eq_p:
        flat = random_channel(flat, cfg.eq_p, sample_rate, generator)
    if cfg.time_shift:
        flat = time_shift(flat, cfg.time_shift, generator)
    if cfg.noise_p:
        flat = add_noise(flat, cfg, sample_rate, generator)
    if cfg.gain_db:
        flat = gain(flat, cfg.gain_db, generator)
    return flat.reshape(shape).to(wave.dtype)
