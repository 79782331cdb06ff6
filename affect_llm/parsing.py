"""Turn a model's raw answer into an `AnswerPayload`, and its token log-probs into a confidence.

Constrained decoding makes the JSON valid for local and vLLM backends; endpoints that cannot constrain
may wrap it in prose or code fences, or write loose JSON, so the parser looks for the first balanced
object, and falls back to "Labels: a, b" style lines. It never invents labels: an answer with none
parses to an error the caller reports.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from affect_llm.errors import AffectError
from affect_llm.schema import MAX_LABELS, AnswerPayload


class ParseError(AffectError):
    """The model's answer holds no usable labels."""


def _balanced_objects(text: str):
    """Yield (start, end) spans of top-level balanced {...} blocks, quotes respected."""
    depth, start, in_str, esc = 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                yield start, i + 1


def _clean_labels(raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = re.split(r"[,;/]| and ", raw)
    if not isinstance(raw, list):
        return []
    out: list[str] = []
    for item in raw:
        label = str(item).strip().strip(".\"'").lower()
        if label and label not in out:
            out.append(label)
    return out[:MAX_LABELS]


def _coerce(obj: dict[str, Any]) -> AnswerPayload | None:
    labels = _clean_labels(obj.get("labels", obj.get("label", obj.get("emotions", obj.get("emotion")))))
    if not labels:
        return None
    cues = obj.get("cues") or obj.get("evidence") or []
    if not isinstance(cues, list):
        cues = [cues]
    explanation = str(obj.get("explanation", obj.get("reason", ""))).strip()
    # Citations stay raw here: the explain task resolves them against its evidence list.
    return AnswerPayload.model_construct(labels=labels, explanation=explanation, cues=cues)


def parse_answer(text: str) -> AnswerPayload:
    """Parse a structured answer from model output; raise ParseError when no labels can be found."""
    for start, end in _balanced_objects(text):
        try:
            obj = json.loads(text[start:end], strict=False)  # tolerate raw tabs/newlines in strings
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            payload = _coerce(obj)
            if payload is not None:
                return payload
    span = _labels_array_span(text)  # a truncated answer may still hold a complete labels array
    if span is not None:
        try:
            labels = _clean_labels(json.loads("[" + text[span[0] : span[1]] + "]", strict=False))
        except json.JSONDecodeError:
            labels = []
        if labels:
            expl = re.search(r'"explanation"\s*:\s*"((?:[^"\\]|\\.)*)', text)
            return AnswerPayload.model_construct(labels=labels, explanation=expl.group(1) if expl else "", cues=[])
    match = re.search(r"(?im)^\W*(?:labels?|emotions?)\s*[:=]\s*(.+)$", text)
    if match:
        labels = _clean_labels(match.group(1))
        if labels:
            rest = re.search(r"(?im)^\W*(?:explanation|reason|because)\s*[:=]?\s*(.+)$", text)
            return AnswerPayload.model_construct(labels=labels, explanation=rest.group(1).strip() if rest else "", cues=[])
    snippet = text.strip().replace("\n", " ")[:80]
    raise ParseError(f"the model's answer contains no emotion labels: {snippet!r}")


def _labels_array_span(text: str) -> tuple[int, int] | None:
    m = re.search(r'"labels"\s*:\s*\[', text)
    if not m:
        return None
    i, in_str, esc = m.end(), False, False
    while i < len(text):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "]":
            return m.end(), i
        i += 1
    return None


def label_probabilities(text: str, pieces: list[str], logprobs: list[float] | None) -> list[float]:
    """The model's probability of writing each chosen label, in answer order ([] when unknown).

    A label's probability is exp(sum of log-probs) of the tokens that overlap its characters inside the
    `"labels": [...]` array, i.e. the probability of the whole label string given the prompt and the
    answer so far (renormalised over schema-valid tokens when decoding was constrained).
    """
    if not logprobs or not pieces or "".join(pieces) != text:
        return []
    span = _labels_array_span(text)
    if span is None:
        return []
    starts, pos = [], 0
    for p in pieces:
        starts.append(pos)
        pos += len(p)
    probs = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"', text[span[0] : span[1]]):
        a, b = span[0] + m.start(1), span[0] + m.end(1)
        if a == b:
            continue
        total = sum(lp for s, p, lp in zip(starts, pieces, logprobs) if s < b and s + len(p) > a and p)
        probs.append(min(1.0, max(0.0, math.exp(total))))
    return probs
