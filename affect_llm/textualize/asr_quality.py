"""Is a transcript trustworthy? Judged from the recogniser's own signals, never from the words' meaning.

Whisper writes fluent text whatever it hears: music, noise or a language it was not trained on come out
as confident-looking sentences ("Thank you for watching!"). A transcript that becomes lexical evidence
must pass these checks first; one that fails is withheld and the reason reported instead. Thresholds are
Whisper's own defaults where it has one (log-prob -1.0, no-speech 0.6, compression ratio 2.4,
language 0.5 as in faster-whisper's `language_detection_threshold`).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

LANGUAGE_MIN_PROB = 0.5
AVG_LOGPROB_MIN = -1.0
NO_SPEECH_MAX = 0.6
# A high no-speech probability is forgiven when the decoded text is this confident (Whisper forgives
# at -1.0; we ask for more, since a forgiven segment becomes evidence).
NO_SPEECH_CONFIDENT_LOGPROB = -0.5
COMPRESSION_RATIO_MAX = 2.4
# Characters per second of one segment (>= 20 characters): people speak ~15, fast ones ~25. A decoding
# loop places whole sentences in a few hundredths of a second at the end of the audio.
CHARS_PER_SECOND_MAX = 50.0
# Whisper's stock outputs on non-speech (subtitle credits, video outros): a transcript that is only
# one of these is an artefact of the training data, not something the speaker said.
ARTEFACTS = (
    "thank you for watching", "thanks for watching", "see you in the next video", "please subscribe",
    "subscribe to my channel", "you", "untertitel im auftrag des zdf",
    "untertitelung des zdf", "untertitel der amara.org-community", "sous-titres réalisés par la communauté d'amara.org",
    "subtítulos realizados por la comunidad de amara.org", "字幕由amara.org社区提供",
)


# Languages the bundled multilingual model transcribes well enough to quote: those with >= ~1,000 hours
# of transcribed training audio in the Whisper paper (Appendix E). Whisper base still *detects* 99
# languages, but below that it writes fluent nonsense, and rare labels ('la', 'nn', 'haw') are what it
# says when it does not know (espeak's Spanish came out as Latin at p=0.6). A user's own model folder
# (`--asr-model`, e.g. large-v3) is trusted for every language it knows.
SUPPORTED_LANGUAGES: dict[str, frozenset[str]] = {
    "whisper-base": frozenset(
        ["en", "zh", "de", "es", "ru", "fr", "pt", "ja", "ko", "it", "pl", "tr", "nl", "sv", "ca", "fi", "id"]
    ),
    "whisper-tiny-en": frozenset({"en"}),
}


def unsupported_language(language: str, model: str) -> str | None:
    """Why `model` (an asset name) cannot be trusted on `language`, or None."""
    langs = SUPPORTED_LANGUAGES.get(model)
    if langs is None or language in langs:
        return None
    return (f"language {language!r} is not one {model} transcribes reliably; it does {', '.join(sorted(langs))}; "
            "a larger Whisper can be given with --asr-model")


@dataclass(frozen=True)
class Signals:
    """What the recogniser says about its own output (aggregated over segments)."""

    avg_logprob: float | None = None  # token-weighted mean over segments
    no_speech_prob: float | None = None  # the highest over segments
    compression_ratio: float | None = None  # of the whole text
    chars_per_second: float | None = None  # the fastest segment of >= 20 characters


def chars_per_second(spans: list[tuple[str, float, float]]) -> float | None:
    """The fastest segment's rate, over segments (text, start, end) of at least 20 characters."""
    rates = [len(t.strip()) / max(e - s, 0.01) for t, s, e in spans if len(t.strip()) >= 20]
    return round(max(rates), 1) if rates else None


def compression_ratio(text: str) -> float:
    """gzip ratio as Whisper computes it: looping text compresses far better than speech."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def repeated_ngram(text: str, max_n: int = 4) -> str | None:
    """The n-gram (n <= max_n) that repeats back to back: 4+ times for one word, 3+ for longer ones.

    That is Whisper's decoding loop ("the the the the", "I'm going. I'm going. I'm going."); a speaker
    rarely says the same phrase three times in a row.
    """
    toks = _tokens(text)
    for n in range(1, max_n + 1):
        need = 4 if n == 1 else 3
        for i in range(len(toks) - n * need + 1):
            gram = toks[i : i + n]
            if all(toks[i + k * n : i + (k + 1) * n] == gram for k in range(1, need)):
                return " ".join(gram)
    return None


def is_artefact(text: str) -> bool:
    """The text is one stock phrase, give or take a few words ("I'll see you in the next video!")."""
    toks = _tokens(text)
    norm = " ".join(toks)
    for a in ARTEFACTS:
        art = _tokens(a)
        if norm == " ".join(art) or (len(art) >= 3 and f" {' '.join(art)} " in f" {norm} " and len(toks) <= len(art) + 2):
            return True
    return False


def language_issue(language: str | None, probability: float | None, top: list[tuple[str, float]]) -> str | None:
    """Why the detected language cannot be trusted, or None."""
    if language is None or probability is None:
        return None
    if probability < LANGUAGE_MIN_PROB:
        guesses = ", ".join(f"{code} {p:.2f}" for code, p in top[:3])
        return f"spoken language uncertain ({guesses}; needs {LANGUAGE_MIN_PROB})"
    return None


def transcript_issue(text: str, signals: Signals) -> str | None:
    """The first reason the transcript is unreliable, or None when every check passes."""
    if not text.strip():
        return "no words recognised"
    lp, ns = signals.avg_logprob, signals.no_speech_prob
    if ns is not None and ns > NO_SPEECH_MAX and not (lp is not None and lp > NO_SPEECH_CONFIDENT_LOGPROB):
        return f"probably not speech (no-speech probability {ns:.2f} > {NO_SPEECH_MAX})"
    if lp is not None and lp < AVG_LOGPROB_MIN:
        return f"low recognition confidence (average log-probability {lp:.2f} < {AVG_LOGPROB_MIN})"
    cr = signals.compression_ratio if signals.compression_ratio is not None else compression_ratio(text)
    if cr > COMPRESSION_RATIO_MAX:
        return f"repetitive text (compression ratio {cr:.2f} > {COMPRESSION_RATIO_MAX})"
    if signals.chars_per_second is not None and signals.chars_per_second > CHARS_PER_SECOND_MAX:
        return f"decoding loop (a segment at {signals.chars_per_second:.0f} characters/s, > {CHARS_PER_SECOND_MAX:.0f})"
    gram = repeated_ngram(text)
    if gram is not None:
        return f"decoding loop ('{gram}' repeated back to back)"
    if is_artefact(text):
        return f"stock Whisper phrase {text.strip()!r}, typical on non-speech"
    return None
