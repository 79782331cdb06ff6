"""The label model's prior as a decoding bias, for decoders that see only the text written so far (vLLM).

The in-process transformers and llama.cpp backends read the JSON parser's state to know when the answer
writes a label (`JsonSchemaLogitsProcessor._prior_bias`). vLLM's structured outputs keep their grammar
state to themselves, so `TextLabelPrior` finds the label being written in the answer's text instead: the
schema puts `"labels"` first, so the labels array is the text's first array, and a label is being written
while that array is open. Both paths score a token with the same rule (`token_bias`): over a label's
tokens the biases add up to `prior_weight * log prior(label)`.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Mapping
from typing import Any

# Keys of the per-request arguments (vLLM `SamplingParams.extra_args`, or `vllm_xargs` over HTTP). vLLM
# accepts only strings and numbers there, so the prior travels as a JSON string.
XARG_PRIOR = "affect_llm_label_prior"
XARG_WEIGHT = "affect_llm_prior_weight"


def prior_xargs(prior: Mapping[str, float] | None, weight: float) -> dict[str, Any] | None:
    """The per-request arguments that carry `prior` to `LabelPriorLogitsProcessor` (None: no prior)."""
    if not prior or len(prior) < 2:
        return None
    return {XARG_PRIOR: json.dumps({k: float(v) for k, v in prior.items()}), XARG_WEIGHT: float(weight)}


def read_xargs(extra: Mapping[str, Any] | None) -> tuple[dict[str, float], float] | None:
    """(prior, weight) from per-request arguments, or None when they carry none (or a malformed one)."""
    if not extra or XARG_PRIOR not in extra:
        return None
    try:
        prior = {str(k): float(v) for k, v in json.loads(extra[XARG_PRIOR]).items()}
        weight = float(extra.get(XARG_WEIGHT, 1.0))
    except (TypeError, ValueError, AttributeError):
        return None
    return (prior, weight) if len(prior) >= 2 and weight > 0 else None


def token_bias(written: str, text: str, live: Mapping[str, float], total: float, weight: float) -> float:
    """`weight * log` of the prior mass, among the `live` labels (mass `total`), that stays possible once
    `text` is written after `written` inside a label string (a label may end in this token: `anger"`)."""
    full = written + text
    mass = sum(p for lab, p in live.items() if (lab + '"').startswith(full) or full.startswith(lab + '"'))
    return weight * math.log(max(mass / total, 1e-6))


class TextLabelPrior:
    """Per-token biases from the answer text so far: `bias(text, prior, weight) -> {token id: bias}`.

    `texts`: id -> text of every regular token, as it reads after other text (leading spaces kept)."""

    def __init__(self, texts: Mapping[int, str]) -> None:
        self.by_text: dict[str, list[int]] = {}
        for i, t in texts.items():
            if t:
                self.by_text.setdefault(t, []).append(i)
        self.sorted_texts = sorted(self.by_text)

    @staticmethod
    def position(text: str) -> tuple[str, str] | None:
        """Where the answer is in its labels array: ("in", label text written so far) inside a label
        string, ("between", "") before the next one, or None outside the array (not yet, or closed)."""
        key = text.find('"labels"')
        if key < 0:
            return None
        start = text.find("[", key)
        if start < 0:
            return None
        body = text[start + 1:]
        if "]" in body:  # labels are enum strings: a bracket means the array is closed
            return None
        if body.count('"') % 2:
            return "in", body[body.rindex('"') + 1:]
        return "between", ""

    def _texts_from(self, prefix: str) -> list[str]:
        """Token texts that start with `prefix` (`prefix` itself included)."""
        out = []
        i = bisect.bisect_left(self.sorted_texts, prefix)
        while i < len(self.sorted_texts) and self.sorted_texts[i].startswith(prefix):
            out.append(self.sorted_texts[i])
            i += 1
        return out

    def bias(self, text: str, prior: Mapping[str, float], weight: float) -> dict[int, float] | None:
        """Biases for the tokens that continue a label of `prior` after the answer `text`; None when the
        answer is not writing a label or only one label is still possible."""
        pos = self.position(text)
        if pos is None:
            return None
        state, written = pos
        live = {lab: p for lab, p in prior.items() if lab.startswith(written)}
        total = sum(live.values())
        if len(live) < 2 or total <= 0:
            return None
        # Between labels a token may open the string and start the label at once (`"s`, `,"ang`).
        openers = ["", ",", ", "] if state == "between" else [""]
        out: dict[int, float] = {}
        for opener in openers:
            lead = opener + '"' if state == "between" else ""
            for lab in live:
                rest = (lab + '"')[len(written):]
                candidates = {lead + rest[:k] for k in range(1, len(rest) + 1)} | set(self._texts_from(lead + rest))
                for cand in candidates:
                    ids = self.by_text.get(cand)
                    if not ids or (lead and cand == lead):
                        continue
                    b = token_bias(written, cand[len(lead):], live, total, weight)
                    for i in ids:
                        out[i] = b
        return out or None
