"""Audio input: WAV files (standard library `wave`, PCM 8/16/32-bit), mono mixing, resampling, and the waveform
feature extraction of transformers' `Wav2Vec2FeatureExtractor` (pad or trim to a fixed clip, zero-mean unit-variance
per example). numpy only; resampling imports scipy when it is needed and says how to install it when it is not."""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Any

import numpy as np

from bmsdk.errors import InputError
from bmsdk.manifest import MAX_SAMPLING_RATE

WAV_SUFFIXES = {".wav", ".wave"}
MAX_WAV_SECONDS = 3600
NORM_EPSILON = 1e-7  # transformers' zero_mean_unit_var_norm


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1], sampling rate) of a PCM WAV file; several channels are averaged (what
    ffmpeg's downmix to one channel does when transformers' pipeline reads a file)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"audio file {path} does not exist", "pass an existing .wav file")
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            if not 0 < rate <= MAX_SAMPLING_RATE:
                raise InputError(f"{path} declares a sampling rate of {rate} Hz", "re-save it as a standard WAV file")
            if frames > MAX_WAV_SECONDS * rate:
                raise InputError(f"{path} is longer than {MAX_WAV_SECONDS} s", "cut the audio into shorter clips")
            data = w.readframes(frames)
    except (wave.Error, EOFError) as e:
        reason = str(e) or type(e).__name__
        fix = "save it as PCM WAV (8, 16 or 32-bit integer samples)"
        if "unknown format: 3" in reason:
            reason, fix = "float WAV", "save it as 16-bit PCM WAV, or read it yourself and pass a float array"
        raise InputError(f"{path} is not a readable PCM WAV file ({reason})", fix) from None
    if width not in (1, 2, 4):
        raise InputError(f"{path} has {8 * width}-bit samples", "save it as 8, 16 or 32-bit PCM WAV")
    usable = len(data) - len(data) % (width * channels)
    if usable == 0:
        raise InputError(f"{path} holds no audio samples", "pass a WAV file with at least one sample")
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        samples = (np.frombuffer(data[:usable], dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        kind = np.dtype(f"<i{width}")
        samples = (np.frombuffer(data[:usable], dtype=kind).astype(np.float64) / float(2 ** (8 * width - 1))).astype(
            np.float32
        )
    samples = samples.reshape(-1, channels)
    mono = samples[:, 0] if channels == 1 else samples.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32), rate


def write_wav(path: str | Path, samples: np.ndarray, rate: int, width: int = 2) -> Path:
    """Write float samples in [-1, 1] ([n] mono or [n, channels]) as PCM WAV of `width` bytes (tests, examples)."""
    samples = np.asarray(samples, dtype=np.float64)
    frames = samples if samples.ndim == 2 else samples[:, None]
    clipped = np.clip(frames, -1.0, 1.0)
    if width == 1:
        raw = np.clip(np.round(clipped * 128.0 + 128.0), 0, 255).astype(np.uint8)
    else:
        top = 2 ** (8 * width - 1)
        raw = np.clip(np.round(clipped * top), -top, top - 1).astype(f"<i{width}")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(width)
        w.setframerate(int(rate))
        w.writeframes(raw.tobytes())
    return Path(path)


def waveform(array: Any) -> np.ndarray:
    """A 1-D waveform array checked (numbers, not empty, finite) as float32; other shapes are refused with the fix."""
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        what = f"{array.dtype} array" if isinstance(array, np.ndarray) else type(array).__name__
        raise InputError(
            f"an audio input must be a WAV path or a float waveform array, got a {what}",
            "pass a .wav path or a 1-D numpy float32 array of samples in [-1, 1]",
        )
    if array.ndim != 1:
        raise InputError(
            f"a waveform array must be 1-D (mono samples), got shape {array.shape}",
            "pass one clip as a 1-D array, a batch as a list of them; average the channels of multi-channel audio "
            "first (x.mean(axis=channel_axis))",
        )
    if array.size == 0:
        raise InputError("the waveform array is empty", "pass at least one sample")
    if array.dtype.kind in "iu":
        raise InputError(
            f"a waveform array of {array.dtype} integers is ambiguous (PCM scale unknown)",
            "pass float samples in [-1, 1], e.g. int16 samples / 32768",
        )
    if not np.isfinite(array).all():
        raise InputError("the waveform array holds NaN or infinite values", "pass finite samples")
    return array.astype(np.float32, copy=False)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """`samples` at `rate` Hz resampled to `target` Hz: scipy's polyphase FIR (`resample_poly`, Kaiser window)."""
    if rate == target:
        return samples
    if not (isinstance(rate, (int, np.integer)) and 0 < rate <= MAX_SAMPLING_RATE):
        raise InputError(f"sampling_rate must be an integer from 1 to {MAX_SAMPLING_RATE} Hz, got {rate!r}", None)
    try:
        from scipy.signal import resample_poly
    except ImportError:
        raise InputError(
            f"the audio is at {rate} Hz but the model takes {target} Hz, and resampling needs scipy",
            f"pip install scipy, or resample the audio to {target} Hz yourself",
        ) from None
    g = math.gcd(int(rate), int(target))
    return resample_poly(samples.astype(np.float64), int(target) // g, int(rate) // g).astype(np.float32)


def extract(
    clips: list[np.ndarray], samples: int, do_normalize: bool, padding_value: float, mask: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """(input_values [N, samples] float32, attention_mask [N, samples] int32 or None) of mono float32 clips as
    `Wav2Vec2FeatureExtractor(clips, padding="max_length", max_length=samples, truncation=True)` gives them: trim or
    pad with padding_value, then (do_normalize) each row to zero mean, unit variance over its real samples when an
    attention mask is returned, else over the whole padded row."""
    values = np.full((len(clips), samples), padding_value, dtype=np.float32)
    lengths = np.array([min(len(c), samples) for c in clips], dtype=np.int64)
    for r, clip in enumerate(clips):
        values[r, : lengths[r]] = clip[: lengths[r]]
    attention = (np.arange(samples)[None, :] < lengths[:, None]).astype(np.int32) if mask else None
    if do_normalize:
        for r in range(len(clips)):
            real = values[r, : lengths[r]] if mask else values[r]
            row = (values[r] - real.mean()) / np.sqrt(real.var() + NORM_EPSILON)
            if mask and lengths[r] < samples:
                row[lengths[r] :] = padding_value
            values[r] = row
    return values, attention
