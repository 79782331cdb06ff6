"""Frozen frame encoders for the projector route: one input -> a `[T, dim]` float32 frame sequence.

The projector route (AffectGPT / Emotion-LLaMA style) feeds an LLM learned projections of frozen
per-frame features at the `<audio>` / `<face>` placeholders, instead of the cue phrases of the
textualize route. The encoders here are that frozen half: no gradients, no training, deterministic, so
features are computed once per file and cached (`encode_cached`) while the projector trains.

They reuse the textualizers' models and settings rather than bringing new ones: the bundled Whisper
tiny.en (its encoder), the same pYIN pitch tracker as `textualize.prosody`, and the MediaPipe
FaceLandmarker of `textualize.face`. So both routes see the same signal and no new asset is needed.

Encoders:
- `whisper` (audio, 384-d, 50 frames/s): Whisper tiny.en encoder states, the usual speech encoder of
  AffectGPT-style models; 30 s windows, trimmed to the frames that cover real audio.
- `prosody` (audio, `len(PROSODY_COLUMNS)`-d, 100 frames/s): low-level descriptors (pitch, voicing,
  level, their deltas, spectral shape) that Whisper, trained to ignore how words are said, under-codes.
- `face` (face, 56-d, `face.DEFAULT_FPS` frames/s): 52 blendshapes, head pose and a face-present flag.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from affect_llm.errors import AffectError, lookup
from affect_llm.extras import require
from affect_llm.textualize.face import DEFAULT_FPS as FACE_FPS  # light: mediapipe loads lazily

Source = str | Path | np.ndarray


@runtime_checkable
class FrameEncoder(Protocol):
    name: str  # registry name
    modality: str  # "audio" or "face": the prompt placeholder it feeds (<audio> or <face>)
    dim: int  # feature size per frame
    frame_rate: float  # frames per second
    version: int  # bump when the features change: it is part of the cache key

    def encode(self, source: Source) -> np.ndarray: ...


def _audio(source: Source) -> np.ndarray:
    """16 kHz mono float32 from a file (decoded and checked) or an array (checked), else AffectError."""
    from affect_llm.textualize.audio import check_audio, load_audio

    if isinstance(source, np.ndarray):
        return check_audio(source, "audio array")
    if not isinstance(source, (str, Path)):
        raise AffectError(f"audio input must be a file path or a 16 kHz mono array, got {type(source).__name__}")
    return load_audio(source)


def _as_frames(x: np.ndarray, dim: int) -> np.ndarray:
    out = np.ascontiguousarray(x, dtype=np.float32)
    assert out.ndim == 2 and out.shape[1] == dim and out.shape[0] >= 1, out.shape
    return out


# ---------------------------------------------------------------------------------------------- whisper


class WhisperEncoder:
    """Encoder states of the bundled Whisper tiny.en: 384-d frames every 20 ms.

    Whisper always encodes a 30 s window (its positional embeddings are fixed), so the audio is padded to
    30 s as in decoding and only the ceil(n / 320) frames that cover real samples are kept: the padding
    frames carry no information and would only lengthen the LLM's input. Longer audio is encoded in
    consecutive 30 s windows. The model is the one `textualize.asr` converts and caches, shared with it.
    """

    name = "whisper"
    modality = "audio"
    dim = 384
    frame_rate = 50.0
    version = 1
    SAMPLES_PER_FRAME = 320  # 16 kHz / 50 Hz: the mel hop (160) times the encoder's stride-2 conv

    def __init__(self, model: str | Path | None = None) -> None:
        self.model_path = model  # a CTranslate2 Whisper folder; None = the `whisper-tiny-en` asset

    def _model(self):
        require("whisper", "the whisper frame encoder", "whisper")
        from affect_llm.assets import cache_dir
        from affect_llm.textualize.asr import _cached, _model_dir
        from affect_llm.textualize.whisper_convert import load_openai_whisper

        path = _model_dir(self.model_path)
        # Same cache key as the ASR backend: one converted model per process, whichever loads it first.
        return _cached("openai-whisper", path, lambda: load_openai_whisper(path, cache_dir() / "converted"))

    def encode(self, source: Source) -> np.ndarray:
        y = _audio(source)
        model = self._model()
        if model.dims.n_audio_state != self.dim:  # another Whisper size would break the projector's input
            raise AffectError(f"the whisper frame encoder expects {self.dim}-d states (tiny), this model has "
                              f"{model.dims.n_audio_state}")
        import torch
        import whisper

        from affect_llm.threads import configure_threads

        configure_threads()  # re-pinned: numba (openai-whisper's word timing) may have reset it
        window = whisper.audio.N_SAMPLES
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(y), window):
                piece = y[start : start + window]
                mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(piece), n_mels=model.dims.n_mels)
                states = model.encoder(mel.unsqueeze(0).float())[0]
                keep = max(1, math.ceil(len(piece) / self.SAMPLES_PER_FRAME))
                chunks.append(states[:keep].float().numpy())
        return _as_frames(np.concatenate(chunks), self.dim)


# ---------------------------------------------------------------------------------------------- prosody

# Column -> what it holds. Scales keep speech roughly within [-2, 2] so no column dominates the projector's
# first layer before it learns its own normalisation.
PROSODY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("f0", "F0 in semitones re 100 Hz / 12 (octaves; 60-600 Hz -> -0.74..2.58); 0 where unvoiced"),
    ("voiced", "1 where pYIN finds voicing on an active frame (within 30 dB of the loud frames), else 0"),
    ("voicing_prob", "pYIN voicing probability, 0..1"),
    ("level", "RMS level in dBFS / 60 + 1, clipped to 0..1 (0 = -60 dBFS or quieter, 1 = full scale)"),
    ("f0_delta", "F0 slope in semitones/s / 50, clipped to +-2; 0 unless all 5 frames of its window are voiced"),
    ("level_delta", "level slope in dB per 10 ms frame / 10, clipped to +-2 (onsets and offsets)"),
    ("centroid", "spectral centroid above 50 Hz, log8(Hz / 1000) (125 Hz -> -1, 8 kHz -> 1); 0 if inactive"),
    ("alpha_ratio", "energy 1-5 kHz over 50 Hz-1 kHz in dB / 20, clipped to +-2 (effort); 0 if inactive"),
)
DELTA_HALF_WIDTH = 2  # regression deltas over +-2 frames (5 frames, 50 ms), as in HTK/openSMILE deltas
CENTROID_REF_HZ = 1000.0
N_FFT = 512  # as prosody's alpha ratio


def _delta(x: np.ndarray) -> np.ndarray:
    """Regression slope per frame over +-DELTA_HALF_WIDTH frames (edges repeated)."""
    k = DELTA_HALF_WIDTH
    pad = np.pad(x, k, mode="edge")
    num = sum(i * (pad[k + i : len(pad) - k + i] - pad[k - i : len(pad) - k - i]) for i in range(1, k + 1))
    return num / (2 * sum(i * i for i in range(1, k + 1)))


class ProsodyEncoder:
    """Frame-level prosody (100 frames/s): the descriptors `textualize.prosody` summarises per clip.

    The pitch track is `textualize.prosody.pitch_track`, the one `extract_prosody` summarises, so the
    frames agree with the clip-level numbers the textualize route reports. T = ceil(n / 160): frame t
    is centred at t * 10 ms. See `PROSODY_COLUMNS` for the columns and their scales.
    """

    name = "prosody"
    modality = "audio"
    dim = len(PROSODY_COLUMNS)
    frame_rate = 100.0
    version = 1

    def encode(self, source: Source) -> np.ndarray:
        require("speech", "the prosody frame encoder", "librosa")
        import librosa

        from affect_llm.textualize.prosody import (
            ACTIVE_FLOOR_DB,
            FINAL_STRONG_ST_PER_S,
            HOP,
            SR,
            pitch_track,
        )

        y = _audio(source)
        n = max(1, math.ceil(len(y) / HOP))
        db, f0, vprob, active, voiced = (a[:n] for a in pitch_track(y))
        semis = np.where(voiced, 12.0 * np.log2(np.where(voiced, f0, 100.0) / 100.0), 0.0)
        # A slope across a voicing boundary would be the jump to 0, not a pitch movement.
        k = DELTA_HALF_WIDTH
        whole = np.convolve(voiced.astype(float), np.ones(2 * k + 1), mode="same") >= 2 * k + 1 - 1e-9
        # / 50 st/s, prosody's strength scale for final movements: on EmoDB 0.4% of voiced frames clip
        f0_delta = np.where(whole, _delta(semis) * (SR / HOP) / (2 * FINAL_STRONG_ST_PER_S), 0.0)
        floor_db = np.maximum(db, ACTIVE_FLOOR_DB)  # so onsets from digital silence stay bounded
        level_delta = _delta(floor_db) / 10.0

        power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP, center=True))[:, :n] ** 2
        freqs = librosa.fft_frequencies(sr=SR, n_fft=N_FFT)
        # Centroid from 50 Hz up: a DC offset or rumble (common in older recordings) would otherwise pull it
        # towards 0 Hz on quiet frames. Shape columns are left 0 on inactive frames, as prosody's measures.
        band = freqs >= 50
        total = power[band].sum(axis=0)
        sounding = active & (total > 0)
        centroid = (freqs[band] @ power[band]) / np.maximum(total, 1e-20)
        centroid_col = np.where(sounding, np.log(np.maximum(centroid, 1.0) / CENTROID_REF_HZ) / np.log(8.0), 0.0)
        low = power[(freqs >= 50) & (freqs < 1000)].sum(axis=0)
        high = power[(freqs >= 1000) & (freqs < 5000)].sum(axis=0)
        alpha = 10.0 * np.log10((high + 1e-20) / (low + 1e-20))
        alpha_col = np.where(sounding & (low > 0) & (high > 0), alpha / 20.0, 0.0)

        cols = [
            semis / 12.0,
            voiced.astype(float),
            vprob,
            np.clip(db / 60.0 + 1.0, 0.0, 1.0),
            np.clip(f0_delta, -2.0, 2.0),
            np.clip(level_delta, -2.0, 2.0),
            np.clip(centroid_col, -2.0, 2.0),
            np.clip(alpha_col, -2.0, 2.0),
        ]
        return _as_frames(np.stack(cols, axis=1), self.dim)


# ---------------------------------------------------------------------------------------------- face

# MediaPipe FaceLandmarker's 52 blendshape categories in its output order ("_neutral" plus 51 ARKit
# names; ARKit's tongueOut is not predicted). Fixed here so a column means the same thing in every file.
BLENDSHAPES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)
POSE_KEYS = ("pitch", "yaw", "roll")
POSE_SCALE_DEG = 45.0


class FaceEncoder:
    """Per sampled frame: 52 blendshape scores, head pitch/yaw/roll in degrees / 45, face-present flag.

    Runs `textualize.face.analyze_face`, so tracking, small-face search and pose correction are the
    textualizer's. Rows follow its sampling grid: row i is the 1/fps slot starting at i / fps, and a slot
    without a face (or without a decoded frame, in a video slower than `fps`) is zeros with flag 0, so the
    sequence stays time-aligned with the audio. An image is one row.
    """

    name = "face"
    modality = "face"
    dim = len(BLENDSHAPES) + len(POSE_KEYS) + 1
    frame_rate = FACE_FPS
    version = 1

    def __init__(self, model: str | Path | None = None) -> None:
        self.model_path = model  # a face_landmarker.task file or its folder; None = the asset

    def _row(self, frame) -> np.ndarray:
        shapes = [frame.blendshapes.get(b, 0.0) for b in BLENDSHAPES]
        pose = [frame.head_pose.get(k, 0.0) / POSE_SCALE_DEG for k in POSE_KEYS]
        return np.asarray([*shapes, *pose, 1.0], dtype=np.float32)

    def encode(self, source: Source) -> np.ndarray:
        from affect_llm.textualize.face import analyze_face

        if not isinstance(source, (str, Path)):
            raise AffectError(f"the face encoder needs an image or video file path, got {type(source).__name__}")
        summary, _, frames = analyze_face(source, fps=self.frame_rate, model=self.model_path)
        if summary.duration_s is None:  # a still image: one row
            out = np.zeros((1, self.dim), np.float32)
            if frames:
                out[0] = self._row(frames[0])
            return out
        n = math.floor(summary.duration_s * self.frame_rate + 1e-6) + 1
        out = np.zeros((n, self.dim), np.float32)
        filled = np.zeros(n, bool)
        for f in frames:
            # the same slot arithmetic as iter_video_frames, on the ms-rounded time it reports
            i = min(n - 1, math.floor(f.t * self.frame_rate + 1e-6))
            if not filled[i]:
                out[i], filled[i] = self._row(f), True
        return _as_frames(out, self.dim)


# ---------------------------------------------------------------------------------------------- registry

ENCODERS: dict[str, type] = {"whisper": WhisperEncoder, "prosody": ProsodyEncoder, "face": FaceEncoder}


def build_encoder(name: str) -> FrameEncoder:
    """A fresh encoder by registry name; models load lazily on the first `encode`."""
    return lookup(ENCODERS, "frame encoder", name)()


def _features_root() -> Path:
    from affect_llm.assets import cache_dir

    return cache_dir() / "features"


def feature_cache_path(encoder: FrameEncoder, path: str | Path, cache_dir: Path | None = None) -> Path:
    """Where `encode_cached` keeps the features of `path`: keyed by content, not by name or mtime."""
    from affect_llm.hashing import sha256_file

    path = Path(path)
    if not path.is_file():
        raise AffectError(f"{path}: no such {'audio' if encoder.modality == 'audio' else 'image or video'} file")
    root = Path(cache_dir).expanduser() if cache_dir is not None else _features_root()
    return root / f"{encoder.name}-v{encoder.version}" / f"{sha256_file(path, 20)}.npy"


def encode_cached(encoder: FrameEncoder, path: str | Path, cache_dir: Path | None = None) -> np.ndarray:
    """`encoder.encode(path)`, computed once per file content and encoder version.

    Root: `cache_dir`, else `$AFFECT_LLM_CACHE/features` (default ~/.cache/affect_llm/features). A cached
    file that cannot be read or has the wrong shape is recomputed; writes are atomic, so concurrent
    data-loader workers at worst compute the same features twice.
    """
    from affect_llm.fileio import atomic_write

    out = feature_cache_path(encoder, path, cache_dir)
    if out.is_file():
        try:
            arr = np.load(out, allow_pickle=False)
        except (OSError, ValueError):
            arr = None
        if arr is not None and arr.dtype == np.float32 and arr.ndim == 2 and arr.shape[1] == encoder.dim:
            return arr
    arr = encoder.encode(path)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    atomic_write(out, buf.getvalue())
    return arr
