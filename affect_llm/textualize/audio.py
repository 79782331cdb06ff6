"""Decode speech files into one mono 16 kHz float32 array, and refuse audio no cue can come from.

Why two decoders: libsndfile (`soundfile`) reads wav/flac/ogg/mp3 exactly and tells the declared length,
which is how a truncated file is caught; PyAV (FFmpeg) reads everything else (m4a, webm, the audio track
of a video). Both are optional (`affect-llm[speech]`); neither needs an `ffmpeg` binary on the PATH.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np

from affect_llm.errors import AffectError
from affect_llm.extras import is_available, require

SAMPLE_RATE = 16_000
DEFAULT_MAX_SECONDS = 600.0
MIN_SECONDS = 0.2
# Peak below this (about -60 dBFS) is digital silence or a muted microphone: no prosody to measure.
SILENCE_PEAK = 1e-3
# A declared length this much longer than the samples actually read means the file was cut short.
TRUNCATION_TOLERANCE = 0.02

_SNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif"}


def _resample(y: np.ndarray, sr: int) -> np.ndarray:
    if sr == SAMPLE_RATE:
        return y.astype(np.float32, copy=False)
    import soxr  # librosa's default resampler; a direct dependency of librosa

    return soxr.resample(y, sr, SAMPLE_RATE, quality="HQ").astype(np.float32)


def _decode_soundfile(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as err:
        raise _UseAv(str(err)) from None
    declared = info.frames
    if info.samplerate <= 0:
        raise AffectError(f"{path}: invalid sample rate {info.samplerate}")
    if declared > 0 and declared / info.samplerate > max_seconds:
        raise AffectError(
            f"{path}: audio is {declared / info.samplerate:.1f} s long, over the limit of {max_seconds:g} s "
            "(raise it with --max-seconds)"
        )
    try:
        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise AffectError(f"{path}: cannot decode audio ({err}); the file may be truncated or corrupt") from None
    if path.suffix.lower() == ".wav":
        _check_wav_truncation(path, info, len(y))
    elif declared > 0 and len(y) < declared * (1 - TRUNCATION_TOLERANCE):
        raise AffectError(f"{path}: truncated audio: header declares {declared} samples, only {len(y)} decoded")
    return y.mean(axis=1), sr


def _check_wav_truncation(path: Path, info, n_read: int) -> None:
    """libsndfile quietly shortens a WAV whose data chunk is cut; compare with the chunk's declared size."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:4] != b"RIFF":
        return
    pos = head.find(b"data")
    if pos < 0:
        return
    declared_bytes = int.from_bytes(head[pos + 4 : pos + 8], "little")
    if declared_bytes in (0, 0xFFFFFFFF):  # streaming writers leave it unset
        return
    frame_bytes = max(1, path.stat().st_size - (pos + 8))
    if frame_bytes < declared_bytes * (1 - TRUNCATION_TOLERANCE):
        raise AffectError(
            f"{path}: truncated WAV: data chunk declares {declared_bytes} bytes, file holds {frame_bytes}"
        )
    if n_read == 0 and declared_bytes > 0:
        raise AffectError(f"{path}: truncated WAV: no samples could be read")


class _UseAv(Exception):
    """libsndfile does not know the container; try FFmpeg."""


@contextmanager
def av_stream(path: Path, kind: Literal["audio", "video"]) -> Iterator[tuple[Any, Any]]:
    """(container, its first `kind` stream), opened with PyAV and closed on exit; one-line errors."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise AffectError(f"{path}: cannot open {kind} ({err})") from None
    with container:
        streams = getattr(container.streams, kind)
        if not streams:
            raise AffectError(f"{path}: no {kind} stream in this file")
        yield container, streams[0]


def _decode_av(path: Path, max_seconds: float) -> tuple[np.ndarray, int]:
    require("speech", f"{path}: this format (FFmpeg decoding)", "av")
    import av

    with av_stream(path, "audio") as (container, stream):
        if stream.duration is not None and stream.time_base is not None:
            secs = float(stream.duration * stream.time_base)
            if secs > max_seconds:
                raise AffectError(
                    f"{path}: audio is {secs:.1f} s long, over the limit of {max_seconds:g} s "
                    "(raise it with --max-seconds)"
                )
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        n = 0
        limit = int(max_seconds * SAMPLE_RATE) + 1
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    chunks.append(arr)
                    n += len(arr)
                if n > limit:
                    raise AffectError(
                        f"{path}: audio is over the limit of {max_seconds:g} s (raise it with --max-seconds)"
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as err:
            raise AffectError(f"{path}: cannot decode audio ({err}); the file may be truncated") from None
    y = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    return y.astype(np.float32), SAMPLE_RATE


def load_audio(path: str | Path, max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Return the file as mono float32 at 16 kHz, or raise `AffectError` saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise AffectError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise AffectError(f"{path}: audio file is empty (0 bytes)")
    if not (max_seconds > 0 and math.isfinite(max_seconds)):
        raise AffectError(f"max_seconds must be a positive number, got {max_seconds}")
    y: np.ndarray | None = None
    sr = SAMPLE_RATE
    if path.suffix.lower() in _SNDFILE_SUFFIXES and is_available("soundfile"):
        try:
            y, sr = _decode_soundfile(path, max_seconds)
        except _UseAv:
            y = None
    if y is None:
        y, sr = _decode_av(path, max_seconds)
    return check_audio(_resample(y, sr), str(path), max_seconds)


def check_audio(y: np.ndarray, name: str = "audio", max_seconds: float = DEFAULT_MAX_SECONDS) -> np.ndarray:
    """Validate a 16 kHz mono array: non-empty, finite, not silent, within the length limit."""
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    secs = len(y) / SAMPLE_RATE
    if len(y) == 0:
        raise AffectError(f"{name}: audio is empty (no samples decoded)")
    if secs < MIN_SECONDS:
        raise AffectError(f"{name}: audio is {secs:.3f} s long; at least {MIN_SECONDS} s is needed")
    if secs > max_seconds:
        raise AffectError(
            f"{name}: audio is {secs:.1f} s long, over the limit of {max_seconds:g} s (raise it with --max-seconds)"
        )
    if not np.all(np.isfinite(y)):
        raise AffectError(f"{name}: audio contains NaN or infinite samples")
    peak = float(np.max(np.abs(y)))
    if peak < SILENCE_PEAK:
        raise AffectError(f"{name}: audio is silent (peak {20 * math.log10(peak + 1e-12):.0f} dBFS)")
    return y
