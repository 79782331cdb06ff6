"""Evidence first: the numbered list of things an answer may cite, built from the input before the LLM runs.

Items are spans, never paraphrases, so a cited cue exists in the input by construction:
- words and short phrases of the target turn: emotion words (VADER valence, Empath emotion categories;
  both MIT), a negation with the word it negates, an intensifier with its word, words in capitals,
  emoji, and the punctuation that carries tone (!, ?!, ...) with the words before it;
- the earlier turns that matter (the last two by other speakers, the speaker's own previous turn);
- the speech and face cues of the textualizers, as they describe themselves.

The answer schema makes the model cite item ids ("E3"); the report shows the item's exact text. The ids
never reach users.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from affect_llm.textualize.text import BOOSTERS_UP, EMOJI_RE, NEGATE, vader_lexicon

MAX_TEXT_ITEMS = 6
MAX_CONTEXT_ITEMS = 2
MAX_SIGNAL_ITEMS = 4
MAX_SPAN_WORDS = 6
MAX_TURN_WORDS = 14
MIN_VALENCE = 1.0  # VADER scale (0..4): weaker words are not evidence of an emotion
# Rated words whose everyday use is mostly not emotional ("tastes like feet", "well, ...").
NOT_EVIDENCE = frozenset("like well pretty kind right please ok okay yes yeah sure true fine want".split())
_WORD = re.compile(r"[\w'’\-]+|[^\w\s]+", re.UNICODE)
_STRIP = "\"'.,!?;:()[]{}<>«»“”‘’…-"
_TONE = re.compile(r"(\?!|!\?|!+|\?{2,}|\.{3}|…)")


@dataclass(frozen=True)
class Evidence:
    """One citable item. `text` is exactly what the answer shows as the cue's evidence."""

    id: str
    modality: str  # text | context | speech | face
    kind: str  # what sort of signal it is, shown as the cue's name
    text: str
    family: str | None = None  # the emotion family the item points to, where the lexicons say
    polarity: int = 0  # -1 negative, +1 positive, 0 unknown

    def prompt_line(self) -> str:
        quoted = self.text if self.modality in ("speech", "face", "context") else f'"{self.text}"'
        return f"{self.id} ({self.modality}, {self.kind}): {quoted}"


@functools.lru_cache(maxsize=1)
def empath_words() -> dict[str, str]:
    """word -> Ekman family, from Empath's emotion categories (bundled, MIT)."""
    text = resources.files("affect_llm.textualize").joinpath("lexicon/empath_emotions.tsv").read_text("utf-8")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        _cat, fam, words = line.split("\t")
        for w in words.split():
            out.setdefault(w, fam)
    return out


def _clean(tok: str) -> str:
    return tok.strip(_STRIP).lower().replace("’", "'")


def _family_of(word: str, valence: float) -> str | None:
    from affect_llm.emotion_groups import family

    return family(word) or empath_words().get(word) or ("joy" if valence >= 2.0 else None)


def text_spans(text: str) -> list[tuple[int, int, str, str | None, int, float]]:
    """Salient spans of one turn: (start, end, kind, family, polarity, salience), non-overlapping."""
    lex = vader_lexicon()
    toks = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    words = [(i, s, e, _clean(t)) for i, (s, e, t) in enumerate(toks) if any(c.isalnum() for c in t)]
    letters = [c for c in text if c.isalpha()]
    mostly_caps = bool(letters) and sum(c.isupper() for c in letters) / len(letters) > 0.8
    spans: list[tuple[int, int, str, str | None, int, float]] = []
    for k, (i, s, e, w) in enumerate(words):
        prev = words[k - 1] if k else None
        val = 0.0 if w in NOT_EVIDENCE else lex.get(w, 0.0)
        fam = _family_of(w, val) if (abs(val) >= MIN_VALENCE or w in empath_words()) and w not in NOT_EVIDENCE else None
        negated = prev is not None and (prev[3] in NEGATE or prev[3].endswith("n't"))
        if negated:
            # "can't believe", "not happy": the negation and the word it governs, whatever that word is.
            spans.append((prev[1], e, "negation", None, -1 if val > 0 else 0, 2.0 + abs(val)))
        elif abs(val) >= MIN_VALENCE or fam:
            start, kind = s, "emotion word"
            if prev is not None and prev[3] in BOOSTERS_UP:
                start, kind = prev[1], "intensified emotion word"
            spans.append((start, e, kind, fam, (val > 0) - (val < 0), 1.0 + abs(val) + (0.5 if fam else 0.0)))
        raw = text[s:e]
        if len(raw) >= 2 and raw.isalpha() and raw.isupper() and not mostly_caps and raw != "I":
            spans.append((s, e, "capitals (emphasis)", None, 0, 2.5))
    for m in EMOJI_RE.finditer(text):
        spans.append((m.start(), m.end(), "emoji", None, 0, 3.0))
    for m in _TONE.finditer(text):
        # The tone mark with up to three words before it: "It tastes like feet!" -> "tastes like feet!"
        before = [w for w in words if w[2] <= m.start()][-3:]
        start = before[0][1] if before else m.start()
        kind = "exclamation" if "!" in m.group() else "question" if "?" in m.group() else "trailing off"
        spans.append((start, m.end(), kind, None, 0, 1.5 + 0.5 * len(m.group())))
    if mostly_caps and len(words) >= 2:
        spans.append((words[0][1], words[min(len(words), MAX_SPAN_WORDS) - 1][2], "shouting (all capitals)", None, 0, 3.5))
    # Keep the most salient non-overlapping spans, then show them in reading order.
    picked: list[tuple[int, int, str, str | None, int, float]] = []
    for sp in sorted(spans, key=lambda x: -x[5]):
        if all(sp[1] <= p[0] or sp[0] >= p[1] for p in picked):
            picked.append(sp)
    return sorted(picked[:MAX_TEXT_ITEMS])


def _clauses(text: str) -> list[tuple[int, int]]:
    """Short clauses of the turn, for turns whose words carry no lexicon signal: clauses of 2..6 words,
    and the first five words of longer clauses."""
    out = []
    for m in re.finditer(r"[^,;.!?…]+", text):
        chunk = m.group()
        words = list(re.finditer(r"\S+", chunk))
        if len(words) < 2:
            continue
        last = words[min(len(words), MAX_SPAN_WORDS if len(words) <= MAX_SPAN_WORDS else 5) - 1]
        out.append((m.start() + words[0].start(), m.start() + last.end()))
    return out


def _turn_text(speaker: str | None, text: str) -> str:
    words = text.split()
    body = " ".join(words[:MAX_TURN_WORDS]) + (" …" if len(words) > MAX_TURN_WORDS else "")
    return f'{speaker or "Someone"}: "{body}"'


def build_evidence(text: str, *, speaker: str | None = None, context: Sequence[Any] = (),
                   cues: Sequence[Any] = ()) -> list[Evidence]:
    """The numbered evidence list for one request (E1, E2, ... in reading order, then context, then signals)."""
    items: list[tuple[str, str, str, str | None, int]] = []
    spans = text_spans(text)
    n_words = len(text.split())
    for s, e, kind, fam, pol, _ in spans:
        span = text[s:e].strip()
        if span and (len(span.split()) < n_words or n_words <= 3):
            items.append(("text", kind, span, fam, pol))
    if not items:
        # No lexicon signal: offer the turn's short clauses (never the whole of a longer turn).
        for s, e in _clauses(text)[:3]:
            span = text[s:e]
            if len(span.split()) < n_words or n_words <= 4:
                items.append(("text", "phrase", span, None, 0))
        if not items and n_words:
            items.append(("text", "phrase", " ".join(text.split()[:MAX_SPAN_WORDS]), None, 0))
    others, own = [], None
    turns = list(context)
    for pos in range(len(turns) - 1, -1, -1):
        t = turns[pos]
        spk = getattr(t, "speaker", None) if not isinstance(t, dict) else t.get("speaker")
        body = (getattr(t, "text", None) if not isinstance(t, dict) else t.get("text")) or ""
        if not body.strip():
            continue
        if speaker and spk == speaker:
            own = own or (pos, spk, body)
        elif len(others) < MAX_CONTEXT_ITEMS:
            others.append((pos, spk, body))
    ctx = others + ([own] if own else [])
    for _, spk, body in sorted(ctx):  # dialogue order
        kind = "their own earlier turn" if speaker and spk == speaker else "previous turn"
        items.append(("context", kind, _turn_text(spk, body), None, 0))
    signals = [c for c in cues if getattr(c, "modality", None) in ("speech", "face")]
    signals.sort(key=lambda c: -(getattr(c, "strength", None) or 0.0))
    for c in signals[:MAX_SIGNAL_ITEMS]:
        shown = f"{c.cue} ({c.evidence})" if getattr(c, "evidence", "") else c.cue
        items.append((c.modality, "voice" if c.modality == "speech" else "face", shown, None, 0))
    return [Evidence(id=f"E{i}", modality=m, kind=k, text=t, family=f, polarity=p)
            for i, (m, k, t, f, p) in enumerate(items, start=1)]
