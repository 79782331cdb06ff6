"""Explanations: the training targets' phrasings, and the checks that catch a broken explanation.

Targets cite the evidence that supports the gold label and name the label (or its adjective). Several
phrasings are used, chosen by a hash of the sample id, so the model learns to say why, not one template.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from affect_llm.schema import MAX_EXPLANATION_CHARS

ADJECTIVES: dict[str, str] = {
    "anger": "angry", "annoyance": "annoyed", "joy": "happy", "happiness": "happy", "sadness": "sad",
    "fear": "afraid", "surprise": "surprised", "disgust": "disgusted", "neutral": "neutral", "calm": "calm",
    "confidence": "confident", "nervousness": "nervous", "excitement": "excited", "gratitude": "grateful",
    "admiration": "impressed", "amusement": "amused", "approval": "approving", "caring": "caring",
    "confusion": "confused", "curiosity": "curious", "desire": "eager", "disappointment": "disappointed",
    "disapproval": "disapproving", "embarrassment": "embarrassed", "grief": "grieving", "love": "loving",
    "optimism": "hopeful", "pride": "proud", "realization": "struck by a realization", "relief": "relieved",
    "remorse": "sorry", "frustration": "frustrated", "worry": "worried", "anxiety": "anxious",
    "joyful": "joyful", "mad": "mad", "sad": "sad", "scared": "scared", "peaceful": "at peace",
    "powerful": "self-assured", "angry": "angry", "happy": "happy", "worried": "worried", "boredom": "bored",
}

_PATTERNS = (
    '{who} says {a}, which shows {label}.',
    '{A} signals {label}{ctx}.',
    'The words {a} make {whom} sound {adj}.',
    '{Label} comes through in {a}{ctx}.',
    '{who} sounds {adj}: {a}.',
    'Saying {a}{ctx} points to {label}.',
)
_CONTEXT = (
    'After {spk}\'s {q}, {who} sounds {adj}.',
    'Reacting to {spk}\'s {q}, {whom} shows {label}.',
    '{who} answers {spk}\'s {q} with {label}.',
)
_NEUTRAL = (
    '{who} states {a} plainly, with no strong feeling.',
    '{A} is a matter-of-fact remark; the tone stays neutral.',
    'Nothing in {a} carries emotion, so {whom} sounds neutral.',
)


def _quote(e: Any) -> str:
    if e.modality in ("speech", "face"):
        return e.text.split(" (")[0]  # the cue's name: "speaks much higher than usual"
    if e.modality == "context":
        spk, _, body = e.text.partition(": ")
        return f"{spk}'s {body}" if body else e.text
    return f'"{e.text}"'


def target_explanation(request: Any, labels: Sequence[str], cited: Sequence[Any], key: str) -> str:
    """One sentence that cites `cited` evidence and names `labels[0]`."""
    h = int(hashlib.sha1(key.encode("utf-8")).hexdigest(), 16)
    label = labels[0]
    who = request.speaker or "The speaker"
    whom = request.speaker or "the speaker"
    words = [e for e in cited if e.modality != "context"]
    ctx_items = [e for e in cited if e.modality == "context"]
    main = words[0] if words else (cited[0] if cited else None)
    if main is None:
        a = f'"{" ".join(request.text.split()[:5])}"'
    else:
        a = _quote(main)
        if len(words) > 1:
            a = f"{a} and {_quote(words[1])}"
    ctx = ""
    if ctx_items and main is not ctx_items[0]:
        spk = ctx_items[0].text.partition(": ")[0]
        ctx = f" after {spk}'s words" if spk and spk != request.speaker else " after their own earlier words"
    adj = ADJECTIVES.get(label, f"full of {label}")
    if main is not None and main.modality == "context" and label != "neutral":
        spk, _, body = main.text.partition(": ")
        spk = "their own earlier words" if spk == request.speaker else spk
        pattern = _CONTEXT[h % len(_CONTEXT)]
        out = pattern.format(who=who, whom=whom, spk=spk, q=body or main.text, label=label, adj=adj)
        out = out.replace("their own earlier words's ", "their own earlier ")
    else:
        pool = _NEUTRAL if label == "neutral" else _PATTERNS
        pattern = pool[h % len(pool)]
        out = pattern.format(who=who, whom=whom, a=a, A=a[0].upper() + a[1:] if a else a, label=label,
                             Label=label[:1].upper() + label[1:], adj=adj, ctx=ctx)
    if len(labels) > 1:
        out = out[:-1] + f", with some {labels[1]}."
    if len(out) > MAX_EXPLANATION_CHARS:  # a long quote: fall back to the shortest phrasing
        out = f"{a} shows {label}."
        if len(out) > MAX_EXPLANATION_CHARS:
            out = f"{who}'s words show {label}."
    return out


# -------------------------------------------------------------------------------------- checks
def explanation_problems(explanation: str, text: str, context: Sequence[Any] = ()) -> list[str]:
    """Why an explanation is broken (empty list: it is not): a copied turn, a list, a JSON fragment,
    fewer than 4 words, or a sentence cut off (ending in ':', ',', ';' or a word that needs a continuation)."""
    problems = []
    e = explanation.strip()
    if len(re.findall(r"\w+", e)) < 4:
        problems.append("fewer than 4 words")
    if re.search(r"[:,;]$|\b(?:and|or|but|like|the|a|an|of|to|with|as|that|is|are)$", e, flags=re.IGNORECASE):
        problems.append("unfinished sentence")
    if re.search(r'[{}]|"\s*:|\\"|\]\s*,', e):
        problems.append("JSON fragment")
    if e.startswith("[") or re.search(r"\w+, \w+, \w+, \w+", e) and len(e.split()) <= 10 \
            or re.search(r"[a-z]+:? \d+ ?[%;,]", e):  # the prompt's label-model prior copied out ("anger: 83%")
        problems.append("a list")
    norm = " ".join(re.findall(r"\w+", e.lower()))
    for turn in [text] + [getattr(t, "text", "") or (t.get("text", "") if isinstance(t, dict) else "") for t in context]:
        t = " ".join(re.findall(r"\w+", str(turn).lower()))
        if t and len(t.split()) >= 4 and (norm == t or (norm.startswith(t) and len(norm) - len(t) < 12)):
            problems.append("a copied turn")
            break
    if re.match(r"^\s*\w+\s*:\s", e) and any(
            e.split(":")[0].strip() == (getattr(t, "speaker", "") or "") for t in context):
        problems.append("a copied turn")
    return problems
