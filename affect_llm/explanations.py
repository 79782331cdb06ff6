"""Explanations: the training targets' phrasings, and the checks that catch an explanation a reader can't
trust: broken (a copied turn, a list, a JSON fragment, too short, unfinished), a quote that is not in the input
or is given to the wrong speaker, or a sentence that points at nothing in the input. `ExplainTask.report`
replaces such a sentence with a target phrasing of the model's own cited evidence.

Targets cite the evidence that supports the gold label and name the label (or its adjective). Several
phrasings are used, chosen by a hash of the sample id, so the model learns to say why, not one template.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
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
_CONTEXT_NEUTRAL = (
    'After {spk}\'s {q}, {who} answers without strong feeling.',
    '{who} replies to {spk}\'s {q} in a neutral tone.',
    '{who} meets {spk}\'s {q} without strong feeling.',
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
    if main is not None and main.modality == "context":
        spk, _, body = main.text.partition(": ")
        spk = "their own earlier words" if spk == request.speaker else spk
        pool = _CONTEXT_NEUTRAL if label == "neutral" else _CONTEXT
        pattern = pool[h % len(pool)]
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
# Labels written as "label: …" are the prompt's label-model line copied out ("'anger: irest"). The check takes
# the prompt's own labels; these are the ones it falls back on when none are given.
_COMMON_LABELS = ("neutral", "anger", "joy", "sadness", "fear", "surprise", "disgust")


def _label_colon(labels: Iterable[str]) -> re.Pattern[str]:
    words = sorted({w.lower() for w in (*_COMMON_LABELS, *labels) if w and w.strip()}, key=len, reverse=True)
    return re.compile(r"(?i)(?:^|[\s'\"])(?:" + "|".join(map(re.escape, words)) + r")\s*:\s*\S")


def _turn_text(t: Any) -> str:
    return str(getattr(t, "text", "") or (t.get("text", "") if isinstance(t, dict) else ""))


def _open_quote(e: str, turns: Sequence[str]) -> bool:
    """A quote left open: an odd number of double quotes, and what follows the last one is words of the input
    (`Joey says "What did you say to him?`). A stray quote inside a quoted span (`"for sure!”"`) is not one."""
    marks = list(re.finditer(r'["“”]', e))
    if len(marks) % 2 == 0:
        return False
    tail = " ".join(re.findall(r"\w+", e[marks[-1].end():].lower()))
    return bool(tail) and any(tail in " ".join(re.findall(r"\w+", t.lower())) for t in turns)


def explanation_problems(explanation: str, text: str, context: Sequence[Any] = (),
                         labels: Iterable[str] = ()) -> list[str]:
    """Why an explanation is broken (empty list: it is not): a copied turn, a list (or one of `labels`, the
    prompt's labels, written as "label: …"), a JSON fragment, fewer than 4 words, a line break, a trailing tag
    (`…: neutral.`), or a sentence
    cut off (ending in ':', ',', ';' or a word that needs a continuation, a quote left open, or a sentence
    stopped by the length limit without its full stop)."""
    problems = []
    e = explanation.strip()
    if len(re.findall(r"\w+", e)) < 4:
        problems.append("fewer than 4 words")
    if re.search(r"[:,;]$|\b(?:and|or|but|like|the|a|an|of|to|with|as|that|is|are)$", e, flags=re.IGNORECASE) \
            or _open_quote(e, [text] + [_turn_text(t) for t in context]) \
            or len(e) >= MAX_EXPLANATION_CHARS - 2 and not re.search(r"[.!?…'\"”)]$", e):
        # ... or a quote of the input never closed, or a sentence the length limit cut off ("is a matter-b")
        problems.append("unfinished sentence")
    if "\n" in e:
        problems.append("a line break")
    if re.search(r'[{}]|"\s*:|\\"|\]\s*,', e):
        problems.append("JSON fragment")
    if e.startswith("[") or re.search(r"\w+, \w+, \w+, \w+", e) and len(e.split()) <= 10 \
            or re.search(r"[a-z]+:? \d+ ?[%;,]", e) or _label_colon(labels).search(e):
        problems.append("a list")  # or the prompt's label-model prior copied out ("anger: 83%", "'anger: irest")
    if re.search(r":\s*(?![\'\"“‘])\w+(?:\s\w+)?\W*$", e):
        problems.append("a trailing tag")  # "Joey says: 'With Carol?' no matter: neutral." ends on a tag, not a sentence
    norm = " ".join(re.findall(r"\w+", e.lower()))
    for turn in [text] + [_turn_text(t) for t in context]:
        t = " ".join(re.findall(r"\w+", str(turn).lower()))
        if t and len(t.split()) >= 4 and (norm == t or (norm.startswith(t) and len(norm) - len(t) < 12)):
            problems.append("a copied turn")
            break
    if re.match(r"^\s*\w+\s*:\s", e) and any(
            e.split(":")[0].strip() == (getattr(t, "speaker", "") or "") for t in context):
        problems.append("a copied turn")
    return problems


# ------------------------------------------------------------------------------ quotes and speakers
_QUOTE = re.compile(r'"([^"]+)"|“([^”]+)”|‘([^’]+)’|`([^`]+)`|(?<!\w)\'(.+?)\'(?!\w)')
# "Joey says, 'Damn'": the name right before a quote is who the sentence says spoke it.
_SPEAKS = re.compile(r"\b([A-Z][\w.]*(?: [A-Z][\w.]*)?)(?:'s words|’s words|'s| says| said| asks| tells \w+| answers|"
                     r" replies| adds| shouts| yells)[:,]?\s*$")
_SPEAKER_PREFIX = re.compile(r"^\s*[A-Z][\w.]*(?: [A-Z][\w.]*)?:\s*")


def _words(s: str) -> list[str]:
    # Apostrophes dropped, so "Youre" matches "You're" and curly "don’t" matches "don't".
    return re.findall(r"\w+", s.lower().replace("'", "").replace("’", "").replace("‘", ""))


def _contains(hay: list[str], needle: list[str]) -> bool:
    n = len(needle)
    return any(hay[i : i + n] == needle for i in range(len(hay) - n + 1))


def quote_problems(explanation: str, text: str, speaker: str | None, context: Sequence[Any] = (),
                   other_sources: Sequence[str] = ()) -> list[str]:
    """Quotes in the sentence that are not in the input, or that it gives to the wrong speaker.

    Sources: the target turn (by `speaker`), the context turns (by theirs) and `other_sources` (textualized
    cues, no speaker). A quote may start with the speaker's name as the dialogue shows it ("Rachel: Okay")."""
    raw: list[tuple[str | None, str]] = [(speaker, text)]
    for t in context:
        spk = getattr(t, "speaker", None) if not isinstance(t, dict) else t.get("speaker")
        body = getattr(t, "text", None) if not isinstance(t, dict) else t.get("text")
        raw.append((spk or None, str(body or "")))
    raw += [(None, s) for s in other_sources]
    # Word sequences, and the words joined without spaces: scripts written without spaces (Chinese,
    # Japanese) make one "word" of a whole clause, so a quote of part of it is found as a substring.
    sources = [(spk, ws, "".join(ws)) for spk, ws in ((spk, _words(body)) for spk, body in raw)]
    speakers = {s for s, _, _ in sources if s}
    problems: list[str] = []
    for m in _QUOTE.finditer(explanation):
        quote = next(g for g in m.groups() if g is not None)
        words = _words(_SPEAKER_PREFIX.sub("", quote)) or _words(quote)
        if not words:
            continue
        joined = "".join(words)
        owners = {s for s, ws, flat in sources
                  if _contains(ws, words) or (not joined.isascii() and joined in flat)}
        if not owners:
            problems.append("a quote not in the input")
            continue
        named = _SPEAKS.search(explanation[: m.start()])
        if named and named.group(1) in speakers and named.group(1) not in owners and None not in owners:
            problems.append("a quote given to the wrong speaker")
    return list(dict.fromkeys(problems))


# ------------------------------------------------------------------------------------ citing nothing
_SCAFFOLD = set("""the a an and or but so to of in on at is are was were be been it its this that with for as they
them their he she his her him you your me my we our us not no nothing any all some very just words word says
say said saying sounds sound sounding tone feeling feelings strong emotion emotions shows show showing makes
make made which when what who there here then than also only matter fact plainly remark statement
comes come through points point signals signal speaker writer answers reacting after before stays""".split())


def cites_input(explanation: str, sources: Sequence[str], names: Sequence[str] = ()) -> bool:
    """Does the sentence point at anything in the input: a quote, or a content word of a turn or a cue?

    "The words matter, so Ross sounds neutral." cites nothing: its only content words are the scaffold of
    an explanation, a speaker's name and an emotion."""
    from affect_llm.explain_task import named_emotions

    if any(next(g for g in m.groups() if g is not None).strip() for m in _QUOTE.finditer(explanation)):
        return True
    vocab = {w for s in sources for w in _words(s)}
    skip = _SCAFFOLD | {w for n in names for w in _words(n)}
    return any(w in vocab for w in _words(explanation)
               if len(w) > 2 and w not in skip and not named_emotions(w))
