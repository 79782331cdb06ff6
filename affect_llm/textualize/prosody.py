"""Prosody: measure how something was said, compare it with a reference, and say it in words.

Features (all from a 16 kHz mono array):
- pitch: probabilistic YIN (librosa.pyin, 10 ms hop) -> mean F0 in Hz, range (5th-95th percentile) and
  spread in semitones, and the final slope (semitones/s fitted over the last 0.5 s of voicing);
- loudness: frame RMS in dBFS over active frames (activity = within 30 dB of the loud frames); and,
  since recordings are often level-normalised, the alpha ratio (eGeMAPS: energy 1-5 kHz over 50 Hz-1 kHz
  on voiced frames, dB), which rises with vocal effort whatever the gain;
- timing: syllable nuclei counted as intensity peaks with >= 2 dB prominence on voiced frames (after
  de Jong & Wempe 2009, language independent, so German EmoDB works as well as English), speech rate =
  nuclei / speech span, pause ratio = silences >= 0.2 s inside the span / span;
- voice quality: jitter, shimmer, HNR from Praat (`praat-parselmouth`, GPL, optional extra `praat`),
  else frame-level approximations from the same pitch track (documented in `voice_quality_method`;
  their scales differ from Praat's, so each method has its own norms).

Normalisation: a deviation is (value - reference) / typical within-speaker spread. The reference is the
mean of the same speaker's *other* clips when several are given (`speaker_reference`), else population
norms (`POPULATION_NORMS`). Deviations become graded phrases ("speaks much higher than usual") with the
numbers as evidence; the thresholds are the `GRADES` below.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from affect_llm.errors import AffectError
from affect_llm.extras import is_praat_available, require
from affect_llm.schema import Cue

SR = 16_000
HOP = 160  # 10 ms
PITCH_FRAME = 1024
RMS_FRAME = 400  # 25 ms
FMIN, FMAX = 60.0, 600.0
_PYIN_LOCK = threading.Lock()
HNR_STEP_S = 0.04  # Praat harmonicity time step: its clip mean is as stable as at 0.01 s, at 1/3 the cost
ACTIVE_RANGE_DB = 30.0  # frames this far below the loud frames (95th percentile) count as silence
ACTIVE_FLOOR_DB = -60.0
MIN_PAUSE_S = 0.2
SYLLABLE_PROMINENCE_DB = 2.0
MIN_SYLLABLE_GAP_S = 0.08
FINAL_WINDOW_S = 0.5
VOICED_PROB_FALLBACK = 0.3
# Absolute thresholds for the final pitch movement (semitones per second), not speaker-relative: a
# declarative fall is typically 5-20 st/s over the last syllable; rises of that size read as questions.
FINAL_FALL_ST_PER_S = -10.0
FINAL_RISE_ST_PER_S = 10.0
FINAL_STRONG_ST_PER_S = 25.0

# |z| thresholds for the three grades of a phrase; below the first no cue is emitted.
GRADES = (1.0, 2.0, 3.0)


class ProsodyFeatures(BaseModel):
    """What was measured. Times are seconds from the start of the clip."""

    duration_s: float
    speech_start: float | None = None
    speech_end: float | None = None
    f0_mean_hz: float | None = None
    f0_range_semitones: float | None = None
    f0_sd_semitones: float | None = None
    f0_final_slope: float | None = Field(default=None, description="semitones per second over the last 0.5 s")
    intensity_mean_db: float | None = None
    intensity_range_db: float | None = None
    alpha_ratio_db: float | None = Field(
        default=None, description="energy 1-5 kHz over 50 Hz-1 kHz on voiced frames, dB: vocal effort, level-free"
    )
    speech_rate_syll_per_s: float | None = None
    articulation_rate_syll_per_s: float | None = None
    pause_ratio: float | None = None
    n_pauses: int = 0
    longest_pause_s: float = 0.0
    voiced_fraction: float | None = None
    jitter_local: float | None = Field(default=None, description="relative period perturbation, percent")
    shimmer_local: float | None = Field(default=None, description="relative amplitude perturbation, percent")
    hnr_db: float | None = None
    voice_quality_method: Literal["praat", "librosa"] = "librosa"
    pauses: list[tuple[float, float]] = Field(default_factory=list)
    final_span: tuple[float, float] | None = None


# Feature -> how deviations are measured: "st" = semitone difference of the values, "diff" = plain
# difference, "log" = 100 * ln ratio (percent-like). `sd` is a typical within-speaker spread on that scale.
SCALES: dict[str, str] = {
    "f0_mean_hz": "st",
    "f0_range_semitones": "diff",
    "f0_final_slope": "diff",
    "intensity_mean_db": "diff",
    "alpha_ratio_db": "diff",
    "speech_rate_syll_per_s": "diff",
    "pause_ratio": "diff",
    "hnr_db": "diff",
    "jitter_local": "log",
    "shimmer_local": "log",
}

# Within-speaker spreads (on the SCALES scale) and population centres. Centres and spreads were set to
# round values close to what neutral, read speech gives (EmoDB neutral clips, 8 speakers; see
# bench/results/emodb_prosody.md), so the population route is calibrated for calm speech.
WITHIN_SPEAKER_SD: dict[str, float] = {
    "f0_mean_hz": 1.5,
    "f0_range_semitones": 2.0,
    "intensity_mean_db": 2.0,
    "alpha_ratio_db": 2.5,
    "speech_rate_syll_per_s": 0.6,
    "pause_ratio": 0.08,
    "hnr_db": 2.0,
    "jitter_local": 25.0,
    "shimmer_local": 20.0,
}
POPULATION_NORMS: dict[str, tuple[float, float]] = {
    # feature: (centre, spread across people); F0 mixes men (~110 Hz) and women (~200 Hz).
    "f0_mean_hz": (150.0, 5.0),
    "f0_range_semitones": (8.0, 3.0),
    "intensity_mean_db": (-26.0, 6.0),
    "alpha_ratio_db": (-14.0, 4.0),
    "speech_rate_syll_per_s": (4.0, 1.0),
    "pause_ratio": (0.10, 0.10),
}
POPULATION_NORMS_BY_METHOD: dict[str, dict[str, tuple[float, float]]] = {
    "praat": {"hnr_db": (12.0, 3.0), "jitter_local": (1.5, 40.0), "shimmer_local": (7.0, 35.0)},
    "librosa": {"hnr_db": (8.0, 3.0), "jitter_local": (1.0, 40.0), "shimmer_local": (15.0, 35.0)},
}


class ProsodyReference(BaseModel):
    """What 'usual' means for one clip: the speaker's other clips, or the population."""

    kind: Literal["speaker", "population"]
    centre: dict[str, float]
    sd: dict[str, float]
    n_clips: int = 0


def population_reference(method: str = "librosa") -> ProsodyReference:
    norms = {**POPULATION_NORMS, **POPULATION_NORMS_BY_METHOD[method]}
    return ProsodyReference(
        kind="population", centre={k: c for k, (c, _) in norms.items()}, sd={k: s for k, (_, s) in norms.items()}
    )


def speaker_reference(others: Sequence[ProsodyFeatures]) -> ProsodyReference:
    """Mean of the same speaker's other clips (at least one); spreads are the within-speaker constants."""
    if not others:
        raise AffectError("a speaker reference needs at least one other clip of the same speaker")
    centre: dict[str, float] = {}
    for key in WITHIN_SPEAKER_SD:
        vals = [getattr(f, key) for f in others if getattr(f, key) is not None]
        if not vals:
            continue
        if SCALES[key] in ("st", "log"):  # geometric mean for ratio scales
            centre[key] = float(np.exp(np.mean(np.log(np.maximum(vals, 1e-6)))))
        else:
            centre[key] = float(np.mean(vals))
    return ProsodyReference(kind="speaker", centre=centre, sd=dict(WITHIN_SPEAKER_SD), n_clips=len(others))


def deviation(key: str, value: float | None, ref: ProsodyReference) -> float | None:
    """Signed deviation of `value` from the reference in spreads (a z-score); None if unmeasurable."""
    if value is None or key not in ref.centre or key not in ref.sd:
        return None
    centre, sd = ref.centre[key], ref.sd[key]
    scale = SCALES[key]
    if scale == "st":
        diff = 12.0 * math.log2(max(value, 1e-6) / max(centre, 1e-6))
    elif scale == "log":
        diff = 100.0 * math.log(max(value, 1e-6) / max(centre, 1e-6))
    else:
        diff = value - centre
    return diff / sd


# ---------------------------------------------------------------------------------------------- features


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs in a boolean array."""
    if not mask.any():
        return []
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _praat_voice_quality(y: np.ndarray) -> tuple[float | None, float | None, float | None]:
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(y.astype(np.float64), SR)
    points = call(snd, "To PointProcess (periodic, cc)", FMIN, FMAX)
    jitter = call(points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3)
    shimmer = call([snd, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6)
    harm = call(snd, "To Harmonicity (cc)", HNR_STEP_S, FMIN, 0.1, 1.0)
    hnr = call(harm, "Get mean", 0, 0)

    def clean(x: float, scale: float = 1.0) -> float | None:
        return None if x is None or not math.isfinite(x) else float(x) * scale

    return clean(jitter, 100.0), clean(shimmer, 100.0), clean(hnr)


def _approx_voice_quality(
    y: np.ndarray, f0: np.ndarray, voiced: np.ndarray
) -> tuple[float | None, float | None, float | None]:
    """Frame-level stand-ins for jitter/shimmer and an autocorrelation HNR (Boersma 1993's r/(1-r))."""
    idx = np.flatnonzero(voiced & np.isfinite(f0))
    if len(idx) < 5:
        return None, None, None
    jit, shim, hnrs = [], [], []
    prev_i, prev_p, prev_a = None, None, None
    for i in idx:
        period = SR / f0[i]
        lag = round(period)
        centre = i * HOP
        half = max(int(1.5 * lag), 200)
        seg = y[max(0, centre - half) : centre + half]
        if len(seg) < 2 * lag + 8:
            continue
        seg = seg - seg.mean()
        amp = float(np.max(np.abs(seg)))
        a, b = seg[:-lag], seg[lag:]
        denom = math.sqrt(float(np.dot(a, a) * np.dot(b, b))) + 1e-12
        r = min(max(float(np.dot(a, b)) / denom, 1e-4), 0.9999)
        hnrs.append(10.0 * math.log10(r / (1.0 - r)))
        if prev_i is not None and i == prev_i + 1 and prev_a and prev_p:
            jit.append(abs(period - prev_p) / ((period + prev_p) / 2))
            shim.append(abs(amp - prev_a) / ((amp + prev_a) / 2 + 1e-12))
        prev_i, prev_p, prev_a = i, period, amp
    if not hnrs:
        return None, None, None
    return (
        float(np.mean(jit) * 100) if jit else None,
        float(np.mean(shim) * 100) if shim else None,
        float(np.median(hnrs)),
    )


def _sparse_viterbi(prob: np.ndarray, transition: np.ndarray, p_init: np.ndarray | None = None,
                    return_logp: bool = False):
    """`librosa.sequence.viterbi` over only the non-zero transitions, with its log-domain arithmetic.

    Why: pYIN's transition matrix is banded (each of its 2 x 160 states has 34 possible predecessors), but
    librosa's Viterbi is dense, O(frames x states^2): half of pYIN's time on a long clip. Visiting the
    predecessors of each state in index order keeps librosa's tie-breaking, so the path is the same.
    """
    from librosa.util import tiny

    if prob.ndim > 2:  # channels first, as librosa allows: decode each independently
        out = [_sparse_viterbi(p, transition, p_init, return_logp) for p in prob.reshape(-1, *prob.shape[-2:])]
        if return_logp:
            return (np.stack([o[0] for o in out]).reshape(*prob.shape[:-2], -1),
                    np.array([o[1] for o in out]).reshape(prob.shape[:-2]))
        return np.stack(out).reshape(*prob.shape[:-2], -1)
    n_states, n_steps = prob.shape
    eps = tiny(prob)
    log_prob = np.log(prob + eps).T
    log_init = np.log((np.full(n_states, 1.0 / n_states) if p_init is None else p_init) + eps)
    rows, cols = np.nonzero(transition.T)  # rows: target state j, cols: its predecessors i, ascending
    width = np.bincount(rows, minlength=n_states).max()
    pred = np.zeros((n_states, width), dtype=np.int64)
    log_a = np.full((n_states, width), -np.inf)
    slot = np.arange(len(rows)) - np.searchsorted(rows, rows)
    pred[rows, slot] = cols
    log_a[rows, slot] = np.log(transition[cols, rows] + eps)
    ptr = np.zeros((n_steps, n_states), dtype=np.int64)
    value = log_prob[0] + log_init
    for t in range(1, n_steps):
        scores = value[pred] + log_a
        best = scores.argmax(axis=1)
        ptr[t] = pred[np.arange(n_states), best]
        value = scores[np.arange(n_states), best] + log_prob[t]
    states = np.zeros(n_steps, dtype=np.int64)
    states[-1] = int(value.argmax())
    for t in range(n_steps - 1, 0, -1):
        states[t - 1] = ptr[t, states[t]]
    return (states, float(value.max())) if return_logp else states


def _pyin(y: np.ndarray):
    """librosa's pYIN with the sparse Viterbi above swapped in for the call. Resolution 0.25 semitone: 4x
    faster than the default 0.1 with the same medians on speech."""
    import librosa
    from librosa import sequence

    # One swap at a time: two threads swapping and restoring could leave either function installed for good.
    with _PYIN_LOCK:
        dense = sequence.viterbi
        sequence.viterbi = _sparse_viterbi
        try:
            return librosa.pyin(y, fmin=FMIN, fmax=FMAX, sr=SR, frame_length=PITCH_FRAME, hop_length=HOP,
                                resolution=0.25, center=True, fill_na=None)
        finally:
            sequence.viterbi = dense


def pitch_track(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per 10 ms frame: level (dBFS), F0 (Hz, NaN unvoiced), voicing probability, activity and voicing masks.

    Shared by the clip measures below and the projector's frame encoder, so both see the same pitch.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    rms = librosa.feature.rms(y=y, frame_length=RMS_FRAME, hop_length=HOP, center=True)[0]
    db = 20.0 * np.log10(rms + 1e-10)
    f0, voiced_flag, voiced_prob = _pyin(y)
    n = min(len(db), len(f0))
    db, f0, voiced_flag, voiced_prob = db[:n], f0[:n], voiced_flag[:n], np.nan_to_num(voiced_prob[:n])
    loud = float(np.percentile(db, 95))
    active = db > max(loud - ACTIVE_RANGE_DB, ACTIVE_FLOOR_DB)
    voiced = voiced_flag & active & np.isfinite(f0)
    if voiced.sum() < max(5, 0.05 * active.sum()):
        # pYIN's HMM occasionally rejects a whole clip of fast, high pitch (seen on angry EmoDB clips);
        # fall back to frames whose voicing probability alone is clear.
        # Its path then sits on unvoiced states, so the pitch comes from plain YIN on those frames.
        yin = librosa.yin(y, fmin=FMIN, fmax=FMAX, sr=SR, frame_length=PITCH_FRAME, hop_length=HOP, center=True)[:n]
        f0 = np.asarray(yin, dtype=np.float64)
        voiced = (voiced_prob >= VOICED_PROB_FALLBACK) & active & np.isfinite(f0)
    return db, f0, voiced_prob, active, voiced


def extract_prosody(y: np.ndarray, praat: bool | None = None) -> ProsodyFeatures:
    """Measure prosody of a 16 kHz mono clip. `praat`: None = use Praat when installed."""
    require("speech", "prosody", "librosa")
    import librosa
    from scipy.signal import find_peaks

    use_praat = is_praat_available() if praat is None else praat
    if use_praat:
        require("praat", "Praat voice quality", "parselmouth")
    y = np.asarray(y, dtype=np.float32)
    duration = len(y) / SR
    db, f0, _, active, voiced = pitch_track(y)
    n = len(db)
    loud = float(np.percentile(db, 95))
    times = np.arange(n) * HOP / SR
    feat = ProsodyFeatures(duration_s=round(duration, 3))
    if not active.any():
        return feat
    first, last = int(np.argmax(active)), int(n - 1 - np.argmax(active[::-1]))
    span_s = max((last - first + 1) * HOP / SR, HOP / SR)
    feat.speech_start, feat.speech_end = round(float(times[first]), 3), round(float(times[last] + HOP / SR), 3)

    # pauses: inactive stretches of at least MIN_PAUSE_S strictly inside the speech span
    min_frames = round(MIN_PAUSE_S * SR / HOP)
    pauses = [(a, b) for a, b in _runs(~active[first : last + 1]) if b - a >= min_frames]
    pause_frames = sum(b - a for a, b in pauses)
    feat.pauses = [(round(float(times[first + a]), 3), round(float(times[first + b - 1] + HOP / SR), 3)) for a, b in pauses]
    feat.n_pauses = len(pauses)
    feat.longest_pause_s = round(max((b - a for a, b in pauses), default=0) * HOP / SR, 3)
    feat.pause_ratio = round(pause_frames * HOP / SR / span_s, 4)

    act_db = db[active]
    feat.intensity_mean_db = round(float(act_db.mean()), 2)
    feat.intensity_range_db = round(float(np.percentile(act_db, 95) - np.percentile(act_db, 5)), 2)
    feat.voiced_fraction = round(float(voiced[first : last + 1].mean()), 4)
    if voiced.sum() >= 5:
        spec = np.abs(librosa.stft(y, n_fft=512, hop_length=HOP, center=True)) ** 2
        spec = spec[:, : len(voiced)][:, voiced[: spec.shape[1]]]
        freqs = librosa.fft_frequencies(sr=SR, n_fft=512)
        low = spec[(freqs >= 50) & (freqs < 1000)].sum()
        high = spec[(freqs >= 1000) & (freqs < 5000)].sum()
        if low > 0 and high > 0:
            feat.alpha_ratio_db = round(float(10.0 * np.log10(high / low)), 2)

    # syllable nuclei: prominent intensity peaks on voiced frames
    smooth = np.convolve(db, np.ones(3) / 3, mode="same")
    peaks, _ = find_peaks(
        smooth, prominence=SYLLABLE_PROMINENCE_DB, distance=max(1, int(MIN_SYLLABLE_GAP_S * SR / HOP))
    )
    near_voiced = np.convolve(voiced.astype(float), np.ones(5), mode="same") > 0
    peaks = [p for p in peaks if active[p] and near_voiced[p] and smooth[p] > loud - ACTIVE_RANGE_DB + 5]
    feat.speech_rate_syll_per_s = round(len(peaks) / span_s, 3)
    speaking_s = max(span_s - pause_frames * HOP / SR, HOP / SR)
    feat.articulation_rate_syll_per_s = round(len(peaks) / speaking_s, 3)

    vidx = np.flatnonzero(voiced)
    if len(vidx) >= 5:
        semis = 12.0 * np.log2(f0[vidx] / 100.0)
        feat.f0_mean_hz = round(float(np.mean(f0[vidx])), 2)
        feat.f0_range_semitones = round(float(np.percentile(semis, 95) - np.percentile(semis, 5)), 3)
        feat.f0_sd_semitones = round(float(np.std(semis)), 3)
        end_t = times[vidx[-1]]
        tail = vidx[times[vidx] >= end_t - FINAL_WINDOW_S]
        # only the last voiced run(s) close to the end: a long unvoiced gap breaks the contour
        if len(tail) >= 5:
            t_tail, s_tail = times[tail], 12.0 * np.log2(f0[tail] / 100.0)
            slope = float(np.polyfit(t_tail - t_tail[0], s_tail, 1)[0])
            feat.f0_final_slope = round(slope, 2)
            feat.final_span = (round(float(t_tail[0]), 3), round(float(t_tail[-1] + HOP / SR), 3))
    if use_praat:
        feat.jitter_local, feat.shimmer_local, feat.hnr_db = _praat_voice_quality(y)
        feat.voice_quality_method = "praat"
    else:
        feat.jitter_local, feat.shimmer_local, feat.hnr_db = _approx_voice_quality(y, f0, voiced)
        feat.voice_quality_method = "librosa"
    for key in ("jitter_local", "shimmer_local", "hnr_db"):
        val = getattr(feat, key)
        if val is not None:
            setattr(feat, key, round(val, 3))
    return feat


# ---------------------------------------------------------------------------------------------- cues

# feature -> (phrases above, phrases below) by grade; "{usual}" becomes " than usual" for a speaker
# reference. An empty tuple: no cue in that direction. Pitch height against population norms says
# "high-pitched voice" instead (POPULATION_F0), since a deep male voice is not "lower than usual".
PHRASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "f0_mean_hz": (
        ("speaks slightly higher than usual", "speaks higher than usual", "speaks much higher than usual"),
        ("speaks slightly lower than usual", "speaks lower than usual", "speaks much lower than usual"),
    ),
    "f0_range_semitones": (
        ("somewhat lively intonation", "lively, varied intonation", "very animated intonation"),
        ("somewhat flat intonation", "flat, monotone intonation", "very monotone intonation"),
    ),
    "intensity_mean_db": (
        ("slightly louder{usual}", "loud speech", "very loud speech"),
        ("slightly quieter{usual}", "quiet speech", "very quiet, soft speech"),
    ),
    "alpha_ratio_db": (
        ("slightly tense voice", "tense, effortful voice", "very strained, forceful voice"),
        ("slightly soft, lax voice", "soft, lax voice", "very soft, sighing voice"),
    ),
    "speech_rate_syll_per_s": (
        ("slightly fast speech", "fast speech", "very fast speech"),
        ("slightly slow speech", "slow speech", "very slow, drawn-out speech"),
    ),
    # short utterances often have no pause at all, so "fewer pauses" says nothing: upward only
    "pause_ratio": (("some long pauses", "long pauses", "very long pauses"), ()),
    "hnr_db": (
        ("slightly clearer voice{usual}", "clear, ringing voice", "very clear, tense voice"),
        ("slightly breathy voice", "breathy or rough voice", "very breathy, rough voice"),
    ),
    "jitter_local": (("slightly unsteady voice", "unsteady, shaky voice", "very shaky voice"), ()),
}
POPULATION_F0 = (
    ("slightly high-pitched voice", "high-pitched voice", "very high-pitched voice"),
    ("slightly low-pitched voice", "low-pitched voice", "very low-pitched voice"),
)
_UNITS = {
    "f0_mean_hz": ("mean F0", "{:.0f} Hz"),
    "f0_range_semitones": ("F0 range", "{:.1f} st"),
    "intensity_mean_db": ("level", "{:.1f} dBFS"),
    "alpha_ratio_db": ("alpha ratio", "{:.1f} dB"),
    "speech_rate_syll_per_s": ("rate", "{:.1f} syll/s"),
    "pause_ratio": ("pauses", "{:.0%} of the time"),
    "hnr_db": ("HNR", "{:.1f} dB"),
    "jitter_local": ("jitter", "{:.2f}%"),
}


def _grade(z: float) -> int:
    """0, 1 or 2 for |z| past GRADES[0], [1], [2]; -1 when below the first."""
    a = abs(z)
    return 2 if a >= GRADES[2] else 1 if a >= GRADES[1] else 0 if a >= GRADES[0] else -1


def _span(feat: ProsodyFeatures, words: Sequence[object] | None) -> tuple[float | None, float | None]:
    if words:
        return float(words[0].start), float(words[-1].end)  # type: ignore[attr-defined]
    return feat.speech_start, feat.speech_end


def _final_span(feat: ProsodyFeatures, words: Sequence[object] | None) -> tuple[float | None, float | None]:
    if words:
        last = words[-1]
        return float(last.start), float(last.end)  # type: ignore[attr-defined]
    return feat.final_span if feat.final_span else (feat.speech_start, feat.speech_end)


def prosody_cues(
    feat: ProsodyFeatures, ref: ProsodyReference, words: Sequence[object] | None = None
) -> tuple[list[Cue], dict[str, float]]:
    """Graded cue phrases for the deviations of `feat` from `ref`, strongest first, and the z-scores."""
    usual = " than usual" if ref.kind == "speaker" else ""
    start, end = _span(feat, words)
    cues: list[Cue] = []
    zs: dict[str, float] = {}
    for key, (ups, downs) in PHRASES.items():
        if key == "f0_mean_hz" and ref.kind == "population":
            ups, downs = POPULATION_F0
        if key == "jitter_local" and feat.voice_quality_method != "praat":
            continue  # frame-level approximation is too coarse to name a shaky voice
        z = deviation(key, getattr(feat, key), ref)
        if z is None:
            continue
        zs[key] = round(z, 2)
        g = _grade(z)
        phrases = ups if z > 0 else downs
        if g < 0 or not phrases:
            continue
        label, fmt = _UNITS[key]
        value = fmt.format(getattr(feat, key))
        refv = fmt.format(ref.centre[key])
        evidence = f"{label} {value} vs {'usual' if ref.kind == 'speaker' else 'typical'} {refv} (z={z:+.1f})"
        s, e = start, end
        if key == "pause_ratio" and z > 0 and feat.pauses:
            s, e = max(feat.pauses, key=lambda p: p[1] - p[0])
            evidence += f", longest {feat.longest_pause_s:.1f} s"
        cues.append(
            Cue(
                modality="speech",
                cue=phrases[g].format(usual=usual),
                evidence=evidence,
                start=s,
                end=e,
                strength=round(min(1.0, abs(z) / 4.0), 3),
            )
        )
    # "fast, loud speech": one phrase for the classic high-arousal pair
    zr, zl = zs.get("speech_rate_syll_per_s", 0.0), zs.get("intensity_mean_db", 0.0)
    if zr >= GRADES[1] and zl >= GRADES[1]:
        pair = [c for c in cues if c.cue in PHRASES["speech_rate_syll_per_s"][0] + PHRASES["intensity_mean_db"][0]]
        cues = [c for c in cues if c not in pair]
        cues.append(
            Cue(
                modality="speech",
                cue="fast, loud speech",
                evidence="; ".join(c.evidence for c in pair),
                start=start,
                end=end,
                strength=round(min(1.0, max(zr, zl) / 4.0), 3),
            )
        )
    slope = feat.f0_final_slope
    if slope is not None:
        s, e = _final_span(feat, words)
        if slope <= FINAL_FALL_ST_PER_S or slope >= FINAL_RISE_ST_PER_S:
            strong = abs(slope) >= FINAL_STRONG_ST_PER_S
            falls = slope < 0
            phrase = ("pitch falls sharply at the end" if strong else "pitch falls at the end") if falls else (
                "pitch rises sharply at the end" if strong else "pitch rises at the end"
            )
            cues.append(
                Cue(
                    modality="speech",
                    cue=phrase,
                    evidence=f"final F0 slope {slope:+.0f} st/s",
                    start=s,
                    end=e,
                    strength=round(min(1.0, abs(slope) / (2 * FINAL_STRONG_ST_PER_S)), 3),
                )
            )
    cues.sort(key=lambda c: -(c.strength or 0.0))
    return cues, zs
