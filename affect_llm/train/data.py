"""Canonical samples -> TRL datasets, with prompts built by the *inference* code path.

`Explainer.messages(req)` renders the versioned templates exactly as `affect-llm explain` does, so the
prompt a model is trained on is the prompt it is served with. Datasets are conversational (TRL applies
the model's chat template): SFT rows are `{"prompt": [system, user], "completion": [assistant]}`, which
gives completion-only loss; DPO rows add `chosen`/`rejected`; GRPO rows carry `gold_labels` for rewards.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from affect_llm.schema import (
    MAX_CUE_CHARS,
    MAX_CUES,
    MAX_EVIDENCE_CHARS,
    MAX_EXPLANATION_CHARS,
    MAX_LABELS,
    AnswerCue,
    AnswerPayload,
)

__all__ = [
    "data_licences",
    "dpo_rows",
    "file_sha256",
    "grpo_rows",
    "load_samples",
    "negative_answers",
    "prompt_builder",
    "request_for",
    "sft_rows",
    "target_answer",
]

# Closed-set labels that are not in the served vocabulary, mapped to the nearest vocabulary word.
VOCAB_ALIASES = {
    "joyful": "joy", "peaceful": "calm", "powerful": "confidence", "scared": "fear", "mad": "anger",
    "sad": "sadness", "happy": "happiness", "angry": "anger", "worried": "worry", "excited": "excitement",
    "frustrated": "frustration", "afraid": "fear", "terrified": "terror", "surprised": "surprise",
    "disgusted": "disgust", "ashamed": "shame", "anxious": "anxiety", "grateful": "gratitude",
    "proud": "pride", "lonely": "loneliness", "guilty": "guilt", "embarrassed": "embarrassment",
    "jealous": "jealousy", "hopeful": "hope", "annoyed": "annoyance", "furious": "rage",
    "disappointed": "disappointment", "confident": "confidence", "content": "contentment",
    "nostalgic": "nostalgia", "trusting": "trust", "devastated": "despair", "apprehensive": "unease",
    "impressed": "admiration", "sentimental": "nostalgia", "anticipating": "anticipation",
}


class _NoBackend:
    """Placeholder so an `Explainer` can render prompts without loading a model."""

    name = "none"
    model_id = "none"


def prompt_builder(label_vocabulary: str = "emotions"):
    """An `Explainer` that only renders prompts (the same templates as inference)."""
    from affect_llm.pipeline import Explainer

    return Explainer(backend=_NoBackend(), label_vocabulary=None if label_vocabulary == "free" else label_vocabulary)


def load_samples(path: str | Path, max_samples: int | None = None, shuffle: bool = True, seed: int = 0):
    from affect_llm.data_builders.schema import read_samples

    samples = [s for s in read_samples(path) if s.labels and s.text.strip()]
    if shuffle:
        random.Random(seed).shuffle(samples)
    return samples[:max_samples] if max_samples else samples


def data_licences(path: str | Path) -> dict[str, str]:
    """{dataset: licence} as the builders recorded it per sample (for run cards of shipped adapters)."""
    from affect_llm.data_builders.schema import read_samples

    out: dict[str, str] = {}
    for s in read_samples(path):
        out.setdefault(s.dataset, str(s.meta.get("licence", "unknown")))
    return out


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def request_for(sample, closed_label_space: bool = False):
    """The `ExplainRequest` inference would build for this sample."""
    from affect_llm.pipeline import ExplainRequest

    label_space = None
    if closed_label_space and sample.label_space:
        from affect_llm.data_builders.label_spaces import LABEL_SPACES

        label_space = list(LABEL_SPACES[sample.label_space])
    input_cues = [c for c in sample.cues if c.modality in ("speech", "face")]  # textualized non-verbal cues
    return ExplainRequest(
        text=sample.text, speaker=sample.speaker, context=sample.context, cues=input_cues, label_space=label_space
    )


def _vocab_labels(labels: list[str], vocabulary: list[str] | None) -> list[str]:
    if vocabulary is None:
        return labels[:MAX_LABELS]
    vocab = set(vocabulary)
    out: list[str] = []
    for lab in labels:
        lab = VOCAB_ALIASES.get(lab, lab)
        if lab in vocab and lab not in out:
            out.append(lab)
    return out[:MAX_LABELS]


def _clip(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


def _explanation(sample, labels: list[str], mode: str) -> str:
    if mode == "auto" and sample.description:
        return _clip(sample.description, MAX_EXPLANATION_CHARS)
    who = sample.speaker or "The writer"
    words = " ".join(sample.text.split()[:8])
    if labels == ["neutral"]:
        return _clip(f'{who} states it plainly in "{words}" with no strong emotional wording.', MAX_EXPLANATION_CHARS)
    return _clip(f'{who}\'s words "{words}" express {" and ".join(labels)}.', MAX_EXPLANATION_CHARS)


def _answer_cues(sample) -> list[AnswerCue]:
    cues: list[AnswerCue] = []
    for c in sample.cues[:MAX_CUES]:
        cues.append(AnswerCue(modality=c.modality, cue=_clip(c.cue, MAX_CUE_CHARS),
                              evidence=_clip(c.evidence or c.cue, MAX_EVIDENCE_CHARS)))
    if not cues:
        cues.append(AnswerCue(modality="text", cue="the words used", evidence=_clip(sample.text, MAX_EVIDENCE_CHARS)))
    return cues


def target_answer(sample, label_vocabulary: list[str] | None, explanation_from: str = "auto",
                  label_space: list[str] | None = None) -> AnswerPayload | None:
    """The structured answer the model should write for `sample` (None: no label survives)."""
    labels = [lab for lab in sample.labels if lab in label_space][:1] if label_space else _vocab_labels(
        sample.labels, label_vocabulary)
    if not labels:
        return None
    return AnswerPayload(explanation=_explanation(sample, labels, explanation_from), labels=labels,
                         cues=_answer_cues(sample))


def answer_json(payload: AnswerPayload) -> str:
    """Serialise in the schema's field order (explanation, labels, cues), as constrained decoding writes."""
    from affect_llm.schema import answer_json_schema

    body = payload.model_dump(mode="json")
    return json.dumps({k: body[k] for k in answer_json_schema()["properties"]}, ensure_ascii=False)


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def sft_rows(samples, *, closed_label_space: bool = False, label_vocabulary: str = "emotions",
             explanation_from: str = "auto") -> list[dict[str, Any]]:
    ex = prompt_builder(label_vocabulary)
    rows = []
    for s in samples:
        req = request_for(s, closed_label_space)
        ans = target_answer(s, ex.label_vocabulary, explanation_from, req.label_space)
        if ans is None:
            continue
        rows.append({"prompt": ex.messages(req), "completion": _assistant(answer_json(ans))})
    return rows


def grpo_rows(samples, *, closed_label_space: bool = False, label_vocabulary: str = "emotions") -> list[dict[str, Any]]:
    ex = prompt_builder(label_vocabulary)
    return [{"prompt": ex.messages(request_for(s, closed_label_space)), "gold_labels": list(s.labels)} for s in samples]


# ------------------------------------------------------------------------------ DPO negatives
_FAKE_CUES = [
    ("speech", "voice trembles", "pitch shaking near the end"),
    ("face", "tears in the eyes", "eyes glistening"),
    ("text", "mentions a funeral", "the funeral yesterday"),
    ("face", "broad smile", "lip corners raised"),
    ("speech", "shouting", "loudness far above baseline"),
]
_OPPOSITE = {
    "joy": "sadness", "happiness": "grief", "sadness": "joy", "anger": "calm", "fear": "confidence",
    "surprise": "boredom", "disgust": "admiration", "neutral": "rage", "love": "contempt",
}


def negative_answers(sample, chosen: AnswerPayload, kinds: list[str], rng: random.Random) -> list[tuple[str, AnswerPayload]]:
    """AVERE-style rejected answers for one sample: (kind, answer) pairs.

    - hallucinated_cue: same labels, but cites a cue that is nowhere in the input;
    - spurious_label: the sample's cues linked to an unrelated (opposite) label;
    - text_only: drops the non-verbal (speech/face) cues the input provides; only built when there are any.
    """
    out: list[tuple[str, AnswerPayload]] = []
    haystack = " ".join([sample.text] + [t.text for t in sample.context] + [c.cue + " " + c.evidence for c in sample.cues]).lower()
    if "hallucinated_cue" in kinds:
        fakes = [f for f in _FAKE_CUES if f[2].split()[0].lower() not in haystack and f[1].split()[0] not in haystack]
        if fakes:
            mod, cue, ev = rng.choice(fakes)
            out.append(("hallucinated_cue", AnswerPayload(
                explanation=_clip(f"The {cue} shows {' and '.join(chosen.labels)}.", MAX_EXPLANATION_CHARS),
                labels=chosen.labels, cues=[AnswerCue(modality=mod, cue=cue, evidence=ev)])))
    if "spurious_label" in kinds:
        wrong = _OPPOSITE.get(chosen.labels[0], "neutral" if chosen.labels[0] != "neutral" else "rage")
        out.append(("spurious_label", AnswerPayload(
            explanation=_clip(f"These cues show {wrong}.", MAX_EXPLANATION_CHARS), labels=[wrong], cues=chosen.cues)))
    if "text_only" in kinds:
        nonverbal = [c for c in chosen.cues if c.modality in ("speech", "face")]
        if nonverbal:
            out.append(("text_only", AnswerPayload(
                explanation=_clip("Judging from the words alone.", MAX_EXPLANATION_CHARS), labels=chosen.labels,
                cues=[AnswerCue(modality="text", cue="the words used", evidence=_clip(sample.text, MAX_EVIDENCE_CHARS))])))
    return out


def dpo_rows(samples=(), pairs=(), *, kinds: list[str] | None = None, closed_label_space: bool = False,
             label_vocabulary: str = "emotions", seed: int = 0) -> list[dict[str, Any]]:
    """Preference rows: EmoPrefer pairs as given (prompt as a user turn) + built negatives per sample."""
    rows: list[dict[str, Any]] = []
    for p in pairs:
        rows.append({"prompt": [{"role": "user", "content": p.prompt}], "chosen": _assistant(p.chosen),
                     "rejected": _assistant(p.rejected)})
    if samples:
        ex = prompt_builder(label_vocabulary)
        rng = random.Random(seed)
        for s in samples:
            req = request_for(s, closed_label_space)
            chosen = target_answer(s, ex.label_vocabulary, "auto", req.label_space)
            if chosen is None:
                continue
            prompt = ex.messages(req)
            for _kind, rej in negative_answers(s, chosen, list(kinds or []), rng):
                rows.append({"prompt": prompt, "chosen": _assistant(answer_json(chosen)),
                             "rejected": _assistant(answer_json(rej))})
    return rows
