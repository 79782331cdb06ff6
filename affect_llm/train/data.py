"""Canonical samples -> TRL datasets, with prompts built by the *inference* code path.

`ExplainTask.prepare` renders the versioned templates, the evidence list and the label model's prior
exactly as `affect-llm explain` does, so the prompt a model is trained on is the prompt it is served with;
`ExplainTask.target` writes the answer it should give. Datasets are conversational (TRL applies the
model's chat template): SFT rows are `{"prompt": [system, user], "completion": [assistant]}`, which gives
completion-only loss; DPO rows add `chosen`/`rejected`; GRPO rows carry `gold_labels` for rewards.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

from affect_llm.schema import MAX_EXPLANATION_CHARS

__all__ = [
    "data_licences",
    "dpo_rows",
    "grpo_rows",
    "load_samples",
    "explain_task",
    "negative_answers",
    "request_for",
    "sft_rows",
]



def explain_task(label_vocabulary: str = "emotions", label_model: Any = None):
    """The `ExplainTask` inference uses, without a model: the same templates, evidence and prior."""
    from affect_llm.explain_task import ExplainTask
    from affect_llm.vocabulary import EMOTION_WORDS

    vocab = None if label_vocabulary == "free" else list(EMOTION_WORDS)
    return ExplainTask(label_vocabulary=vocab, label_model=label_model)


def _closed(sample, closed_label_space: bool | float) -> bool:
    """Whether this sample is shown with its closed label set: always, never, or for a seeded share p."""
    if isinstance(closed_label_space, bool):
        return closed_label_space
    h = int(hashlib.sha1(sample.id.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return h < float(closed_label_space)


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


def request_for(sample, closed_label_space: bool | float = False):
    """The `ExplainRequest` inference would build for this sample."""
    from affect_llm.explain_task import ExplainRequest

    label_space = None
    if sample.label_space and _closed(sample, closed_label_space):
        from affect_llm.data_builders.label_spaces import LABEL_SPACES

        label_space = list(LABEL_SPACES[sample.label_space])
    input_cues = [c for c in sample.cues if c.modality in ("speech", "face")]  # textualized non-verbal cues
    return ExplainRequest(
        text=sample.text, speaker=sample.speaker, context=sample.context, cues=input_cues, label_space=label_space
    )


def _clip(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


def prepared_targets(samples, *, closed_label_space: bool | float = False, label_vocabulary: str = "emotions",
                     label_model: Any = None, explanation_from: str = "auto", requests: list | None = None):
    """[(sample, Prepared, target answer JSON)] for the samples that have a usable target."""
    task = explain_task(label_vocabulary, label_model)
    reqs = requests if requests is not None else [request_for(s, closed_label_space) for s in samples]
    out = []
    for s, prep in zip(samples, task.prepare_many(reqs)):
        answer = task.target(prep, s.labels, s.id)
        if answer is None:
            continue
        if explanation_from == "auto" and s.description:  # a gold explanation (EMER, RECCON) replaces ours
            obj = json.loads(answer)
            obj["explanation"] = _clip(s.description, MAX_EXPLANATION_CHARS)
            answer = json.dumps(obj, ensure_ascii=False)
        out.append((s, prep, answer))
    return out


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def sft_rows(samples, *, closed_label_space: bool | float = False, label_vocabulary: str = "emotions",
             label_model: Any = None, explanation_from: str = "auto") -> list[dict[str, Any]]:
    return [{"prompt": prep.messages, "completion": _assistant(answer)}
            for _s, prep, answer in prepared_targets(samples, closed_label_space=closed_label_space,
                                                      label_vocabulary=label_vocabulary, label_model=label_model,
                                                      explanation_from=explanation_from)]


def grpo_rows(samples, *, closed_label_space: bool | float = False, label_vocabulary: str = "emotions",
              label_model: Any = None) -> list[dict[str, Any]]:
    task = explain_task(label_vocabulary, label_model)
    preps = task.prepare_many([request_for(s, closed_label_space) for s in samples])
    return [{"prompt": p.messages, "gold_labels": list(s.labels)} for s, p in zip(samples, preps)]


# ------------------------------------------------------------------------------ DPO negatives
_FAKE_CUES = ["a trembling voice", "tears in the eyes", "a mention of a funeral", "a broad smile", "shouting"]
_OPPOSITE = {
    "joy": "sadness", "happiness": "grief", "sadness": "joy", "anger": "calm", "fear": "confidence",
    "surprise": "boredom", "disgust": "admiration", "neutral": "anger", "love": "contempt",
}


def negative_answers(prep, chosen: str, kinds: list[str], rng: random.Random) -> list[tuple[str, str]]:
    """AVERE-style rejected answers for one prepared sample: (kind, answer JSON) pairs.

    - hallucinated_cue: same labels, an explanation built on a cue that is nowhere in the input, no citation;
    - spurious_label: the same evidence linked to an unrelated (opposite) label;
    - text_only: cites only the words when the input also has voice/face evidence (built only then).
    """
    good = json.loads(chosen)
    out: list[tuple[str, str]] = []
    haystack = " ".join([prep.request.text] + [e.text for e in prep.evidence]).lower()
    if "hallucinated_cue" in kinds:
        fakes = [f for f in _FAKE_CUES if f.split()[-1] not in haystack]
        if fakes:
            fake = rng.choice(fakes)
            out.append(("hallucinated_cue", json.dumps({"labels": good["labels"], "cues": [],
                        "explanation": f"{fake[0].upper()}{fake[1:]} shows {' and '.join(good['labels'])}."})))
    if "spurious_label" in kinds:
        wrong = _OPPOSITE.get(good["labels"][0], "neutral")
        if prep.candidates is not None and wrong not in prep.candidates:
            others = [c for c in prep.candidates if c not in good["labels"]]
            wrong = others[-1] if others else None
        if wrong:
            out.append(("spurious_label", json.dumps({"labels": [wrong], "cues": good["cues"],
                                                      "explanation": f"This evidence shows {wrong}."})))
    if "text_only" in kinds:
        nonverbal = [e for e in prep.evidence if e.modality in ("speech", "face")]
        words = [e.id for e in prep.evidence if e.modality == "text"]
        if nonverbal and words:
            out.append(("text_only", json.dumps({"labels": good["labels"], "cues": words[:1],
                                                 "explanation": "Judging from the words alone, ignoring the voice."})))
    return out


def dpo_rows(samples=(), pairs=(), *, kinds: list[str] | None = None, closed_label_space: bool | float = False,
             label_vocabulary: str = "emotions", label_model: Any = None, seed: int = 0) -> list[dict[str, Any]]:
    """Preference rows: EmoPrefer pairs as given (prompt as a user turn) + built negatives per sample."""
    rows: list[dict[str, Any]] = []
    for p in pairs:
        rows.append({"prompt": [{"role": "user", "content": p.prompt}], "chosen": _assistant(p.chosen),
                     "rejected": _assistant(p.rejected)})
    if samples:
        rng = random.Random(seed)
        for _s, prep, chosen in prepared_targets(samples, closed_label_space=closed_label_space,
                                                 label_vocabulary=label_vocabulary, label_model=label_model):
            for _kind, rej in negative_answers(prep, chosen, list(kinds or []), rng):
                rows.append({"prompt": prep.messages, "chosen": _assistant(chosen), "rejected": _assistant(rej)})
    return rows
