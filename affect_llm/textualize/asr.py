"""Speech recognition that knows the language, or knows that it does not.

Default model: multilingual Whisper base (asset `whisper-base`, CTranslate2, 99 languages); Whisper
tiny.en (`whisper-tiny-en`) is still there for English-only use and for the projector's frame encoder.
Backends: faster-whisper (default) or openai-whisper (a checkpoint converted once by `whisper_convert`).

Order of work, cheapest gate first, so unusable audio costs little:
1. Silero VAD (shipped inside faster-whisper): no speech -> no decoding at all.
2. One encoder pass over the speech only. CTranslate2 accepts fewer than Whisper's 3000 mel frames, so a
   2 s clip is encoded as speech + 2 s of silence (>= 3 s) instead of a zero-padded 30 s window (~8x less
   encoder work; checked on EmoDB and espeak clips: same language, transcripts equal up to a letter).
3. Language from that same encoder output (or `language=` as given); an uncertain or unsupported
   language stops here.
4. One greedy (or `beam_size`) decode at temperature 0: no temperature-fallback loop, which on unreliable audio is
   where most of the time went; unreliable text is flagged (`asr_quality`), not decoded again.
Models load once per process and are reused.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from affect_llm.errors import AffectError, lookup
from affect_llm.extras import install_hint, is_available, require
from affect_llm.textualize import asr_quality

DEFAULT_ASSET = "whisper-base"  # multilingual: what `textualize` uses
ENGLISH_ASSET = "whisper-tiny-en"  # English only: --asr-model whisper-tiny-en, and the projector's encoder
ASR_ASSET = ENGLISH_ASSET  # kept for callers that meant "the tiny model" (projector frame encoder)
# Greedy by default: on EmoDB and espeak clips beam 5 gave the same words at ~15-25 % more decoding time
# (bench/textualize_speed.py); `--beam-size 5` is there for noisier speech.
BEAM_SIZE = 1
SAMPLE_RATE = 16_000
HOP = 160  # samples per mel frame
MAX_FRAMES = 3000  # Whisper's 30 s window
MIN_FRAMES = 300  # shortest encoder input (3 s): shorter contexts drifted on espeak test clips
PAD_FRAMES = 200  # 2 s of silence after the speech: with 1 s tiny.en looped on an espeak clip


class Word(BaseModel):
    """One recognised word with its time span in seconds."""

    word: str
    start: float
    end: float
    probability: float | None = None


class Transcript(BaseModel):
    """ASR output plus what the recogniser says about it. `text` is the raw output even when unreliable;
    callers must check `reliable` before using it as evidence."""

    text: str
    words: list[Word] = Field(default_factory=list)
    language: str | None = None  # ISO 639-1; None when unknown
    language_probability: float | None = None  # None when given by the caller
    language_source: str = "detected"  # detected | given
    backend: str
    model: str = ""
    reliable: bool = True
    issue: str | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    speech_seconds: float | None = None  # what the VAD kept


def normalize_transcript(text: str) -> str:
    """Lower-case words without punctuation: how two backends' transcripts are compared."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def _model_dir(model: str | Path | None, default: str = ASR_ASSET) -> Path:
    """A CTranslate2 Whisper folder: `model` as a folder or an asset name, else the `default` asset."""
    from affect_llm.assets import REGISTRY, asset_path

    if model is not None and str(model) in REGISTRY:
        if REGISTRY[str(model)].role != "asr":
            raise AffectError(f"asset {model!r} is a {REGISTRY[str(model)].role} model, not a speech recogniser")
        return asset_path(str(model))
    if model is not None:
        path = Path(model).expanduser()
        if not (path / "model.bin").is_file():
            raise AffectError(f"ASR model folder {path} has no model.bin (a CTranslate2 Whisper export)")
        return path
    return asset_path(default)


def resolve_model(model: str | Path | None) -> Path:
    """The folder `transcribe` uses: `model` (folder or asset name) or the multilingual default."""
    return _model_dir(model, DEFAULT_ASSET)


def whisper_languages() -> tuple[str, ...]:
    """The ISO 639-1 codes Whisper knows (99 + 'yue'), without loading a model."""
    if is_available("faster_whisper"):
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        return tuple(_LANGUAGE_CODES)
    if is_available("whisper"):
        from whisper.tokenizer import LANGUAGES

        return tuple(LANGUAGES)
    raise AffectError(f"ASR needs faster_whisper: {install_hint('speech')}")


def check_language(language: str | None) -> str | None:
    """Validate a user's `--language` (ISO 639-1, lower case) before any model loads."""
    if language is None:
        return None
    code = language.strip().lower()
    codes = whisper_languages()
    if code not in codes:
        raise AffectError(f"unknown language {language!r}: give an ISO 639-1 code Whisper knows, e.g. en, de, es, zh "
                          f"({len(codes)} codes)")
    return code


def _threads() -> int:
    """CTranslate2 threads: the project-wide count (1 on <= 2-CPU hosts), without importing torch."""
    from affect_llm.threads import default_threads

    return default_threads()


_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str], object] = {}


def _cached(backend: str, path: Path, make: Callable[[], object]) -> object:
    key = (backend, str(path))
    with _LOCK:
        if key not in _MODELS:
            _MODELS[key] = make()
        return _MODELS[key]


# ---------------------------------------------------------------------------------------------- VAD


def speech_chunks(audio: np.ndarray) -> list[dict[str, int]] | None:
    """Silero VAD speech spans (sample offsets), or None when faster-whisper (which ships it) is absent."""
    if not is_available("faster_whisper"):
        return None
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return list(get_speech_timestamps(audio, VadOptions()))


def _restore_times(words: list[Word], chunks: list[dict[str, int]] | None) -> list[Word]:
    """Map word times on the VAD-cropped audio back to the original clip."""
    if not chunks:
        return words
    from faster_whisper.vad import SpeechTimestampsMap

    ts = SpeechTimestampsMap(chunks, SAMPLE_RATE)
    out = []
    for w in words:
        idx = ts.get_chunk_index((w.start + w.end) / 2)
        out.append(w.model_copy(update={"start": round(ts.get_original_time(w.start, idx), 3),
                                        "end": round(ts.get_original_time(w.end, idx), 3)}))
    return out


def _encoder_frames(n_samples: int) -> int:
    frames = -(-n_samples // HOP) + PAD_FRAMES
    return int(min(MAX_FRAMES, max(MIN_FRAMES, -(-frames // 100) * 100)))


# ------------------------------------------------------------------------------------ faster-whisper


def _fw_options(tokenizer, beam_size: int, model_cls):
    """faster-whisper's TranscriptionOptions with its own defaults, then ours (taken from `transcribe`'s
    signature so a new field in a later release keeps its default)."""
    from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

    names = {f.name for f in dataclasses.fields(TranscriptionOptions)}
    opts = {k: p.default for k, p in inspect.signature(model_cls.transcribe).parameters.items() if k in names}
    opts.update(
        beam_size=beam_size, best_of=1, temperatures=[0.0],  # one pass: no fallback loop
        compression_ratio_threshold=None, log_prob_threshold=None,
        no_speech_threshold=None,  # keep every segment; asr_quality judges the whole transcript
        condition_on_previous_text=False,  # a long clip cannot carry one window's loop into the next
        word_timestamps=True, clip_timestamps="0", multilingual=False,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
    )
    return TranscriptionOptions(**opts)


def _faster_whisper(audio: np.ndarray, path: Path, beam_size: int, language: str | None) -> Transcript:
    require("speech", "ASR backend 'faster-whisper'", ("ctranslate2", "faster_whisper"))
    import ctranslate2
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

    m = _cached(
        "faster-whisper",
        path,
        lambda: WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=_threads(), num_workers=1),
    )
    multilingual = bool(m.model.is_multilingual)  # type: ignore[attr-defined]
    base, speech, chunks = _start("faster-whisper", audio, path, language, multilingual)
    if speech is None:
        return base
    # One encoder pass on the speech (plus 1 s of silence), shared by language detection and decoding.
    frames = _encoder_frames(len(speech))
    padded = np.zeros(max(frames * HOP, len(speech)), np.float32)
    padded[: len(speech)] = speech
    feats = m.feature_extractor(padded)[:, :frames]  # type: ignore[attr-defined]
    enc = m.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None])))  # type: ignore[attr-defined]
    if multilingual and language is None:
        top = [(tok[2:-2], float(p)) for tok, p in m.model.detect_language(enc)[0]]  # type: ignore[attr-defined]
        base = _with_language(base, top)
    early = _language_gate(base, path.name)
    if early is not None:
        return early
    language = base.language
    tok = Tokenizer(m.hf_tokenizer, multilingual, task="transcribe", language=language or "en")  # type: ignore[attr-defined]
    opts = _fw_options(tok, beam_size, WhisperModel)
    full = m.feature_extractor(speech)  # type: ignore[attr-defined]
    segments = [dataclasses.asdict(s) for s in m.generate_segments(full, tok, opts, False, enc)]  # type: ignore[attr-defined]
    return _finish(base, "".join(s["text"] for s in segments), segments, chunks)


def _start(backend: str, audio: np.ndarray, path: Path, language: str | None,
           multilingual: bool) -> tuple[Transcript, np.ndarray | None, list[dict[str, int]] | None]:
    """(transcript so far, speech to decode, VAD chunks); speech is None when there is nothing to decode
    (no speech found, or an English-only model asked for another language or to detect one)."""
    base = Transcript(text="", backend=backend, model=path.name, language=language,
                      language_source="given" if language else "detected")
    chunks = speech_chunks(audio)
    if chunks is not None and not chunks:
        return base.model_copy(update={"reliable": False, "issue": "no speech found (voice activity detection)",
                                       "speech_seconds": 0.0}), None, chunks
    speech = (np.concatenate([audio[c["start"] : c["end"]] for c in chunks]) if chunks else audio).astype(
        np.float32, copy=False)
    base.speech_seconds = round(len(speech) / SAMPLE_RATE, 3)
    if not multilingual and language not in (None, "en"):
        return base.model_copy(update={"reliable": False, "issue": f"language {language!r} is not supported by the "
                                       f"English-only model {path.name}; use the multilingual whisper-base"}), None, chunks
    if not multilingual and language is None:
        return base.model_copy(update={"reliable": False, "issue": f"the English-only model {path.name} cannot tell "
                                       "the spoken language; pass --language en if the speech is English"}), None, chunks
    return base, speech, chunks


def _with_language(base: Transcript, top: list[tuple[str, float]]) -> Transcript:
    """`base` with the detected language (`top`: code, probability, best first); unsure = unreliable."""
    language, prob = top[0]
    issue = asr_quality.language_issue(language, prob, top)
    base = base.model_copy(update={"language": language, "language_probability": round(prob, 3)})
    return base.model_copy(update={"language": None, "reliable": False, "issue": issue}) if issue else base


def _language_gate(base: Transcript, model_name: str) -> Transcript | None:
    """The transcript to return undecoded (unsure detection, or a language we would withhold), else None."""
    if not base.reliable:
        return base
    issue = asr_quality.unsupported_language(base.language or "en", model_name)
    return base.model_copy(update={"reliable": False, "issue": issue}) if issue else None


def _finish(base: Transcript, text: str, segments: list[dict[str, Any]],
            chunks: list[dict[str, int]] | None) -> Transcript:
    """The transcript from decoded segments (both backends' segments as dicts of the same fields)."""
    text = text.strip()
    words = [Word(word=w["word"].strip(), start=float(w["start"]), end=float(w["end"]),
                  probability=float(w["probability"])) for s in segments for w in (s.get("words") or [])]
    n_tok = [max(1, len(s["tokens"])) for s in segments]
    cr = round(asr_quality.compression_ratio(text), 3) if text else None
    signals = asr_quality.Signals(
        avg_logprob=round(float(np.average([s["avg_logprob"] for s in segments], weights=n_tok)), 3) if segments else None,
        no_speech_prob=round(max(float(s["no_speech_prob"]) for s in segments), 3) if segments else None,
        chars_per_second=asr_quality.chars_per_second([(s["text"], float(s["start"]), float(s["end"])) for s in segments]),
        compression_ratio=cr,
    )
    words = _restore_times(words, chunks)
    issue = asr_quality.transcript_issue(text, signals)
    return base.model_copy(update={
        "text": text, "words": words, "reliable": issue is None, "issue": issue,
        "avg_logprob": signals.avg_logprob, "no_speech_prob": signals.no_speech_prob, "compression_ratio": cr,
    })


# ------------------------------------------------------------------------------------ openai-whisper


def _openai_whisper(audio: np.ndarray, path: Path, beam_size: int, language: str | None) -> Transcript:
    require("whisper", "ASR backend 'openai-whisper'", ("torch", "whisper"))
    import torch
    import whisper

    from affect_llm.assets import cache_dir
    from affect_llm.textualize.whisper_convert import load_openai_whisper
    from affect_llm.threads import configure_threads

    # Re-pinned on every call (configure_threads re-applies): openai-whisper's word timing (numba)
    # resets torch to all cores, which on a busy 2-CPU host made decoding 3x slower in CPU time.
    configure_threads()
    m = _cached("openai-whisper", path, lambda: load_openai_whisper(path, cache_dir() / "converted"))
    multilingual = bool(m.is_multilingual)  # type: ignore[attr-defined]
    base, speech, chunks = _start("openai-whisper", audio, path, language, multilingual)
    if speech is None:
        return base
    if multilingual and language is None:
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(speech), n_mels=m.dims.n_mels)  # type: ignore[attr-defined]
        with torch.inference_mode():
            _, probs = m.detect_language(mel)  # type: ignore[attr-defined]
        top = sorted(((k, float(v)) for k, v in probs.items()), key=lambda kv: -kv[1])
        base = _with_language(base, top)
    early = _language_gate(base, path.name)
    if early is not None:  # no decoding for text we would withhold anyway
        return early
    language = base.language
    result = whisper.transcribe(
        m, speech,  # an array, so openai-whisper never calls the ffmpeg binary
        language=language or "en", task="transcribe",
        beam_size=beam_size if beam_size > 1 else None,  # None = greedy, as faster-whisper's beam 1
        temperature=(0.0,), compression_ratio_threshold=None, logprob_threshold=None, no_speech_threshold=None,
        word_timestamps=True, condition_on_previous_text=False, fp16=False, verbose=None,
    )
    return _finish(base, result["text"], result["segments"], chunks)


BACKENDS: dict[str, Callable[..., Transcript]] = {
    "faster-whisper": _faster_whisper,
    "openai-whisper": _openai_whisper,
}


def transcribe(
    audio: np.ndarray,
    backend: str = "faster-whisper",
    model: str | Path | None = None,
    beam_size: int = BEAM_SIZE,
    language: str | None = None,
) -> Transcript:
    """Transcribe 16 kHz mono float audio and judge the result.

    model: a CTranslate2 Whisper folder or an ASR asset name (default: multilingual `whisper-base`).
    language: ISO 639-1 code to skip detection. Never raises for unintelligible audio: the transcript
    comes back with `reliable=False` and `issue` saying why.
    """
    if beam_size < 1:
        raise AffectError(f"beam_size must be at least 1, got {beam_size}")
    fn = lookup(BACKENDS, "ASR backend", backend)
    return fn(np.asarray(audio, dtype=np.float32), resolve_model(model), beam_size, check_language(language))
