"""What every in-process decode loop shares, in numpy: the logits processors, the choice of each token and
its log-probability, and the `Generation`s made of the chosen ids.

Why numpy: the llama.cpp backend hands over logits as numpy arrays and needs no torch at all (its import
alone costs ~2.3 s of a cold CLI answer); the transformers backend converts its logits once per step
(a view on a CPU).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from affect_llm.backends.base import Generation
from affect_llm.decoding import DECODING


class RepetitionPenalty:
    """CTRL's repetition penalty (as transformers applies it): the score of every token already in the
    sequence is divided by `penalty` when positive, multiplied when negative."""

    def __init__(self, penalty: float) -> None:
        self.penalty = penalty

    def __call__(self, seqs: list[list[int]], scores: np.ndarray) -> np.ndarray:
        out = scores.copy()
        for row, seq in enumerate(seqs):
            idx = np.unique(np.asarray(seq, dtype=np.int64))
            idx = idx[idx < scores.shape[-1]]
            got = out[row, idx]
            out[row, idx] = np.where(got < 0, got * self.penalty, got / self.penalty)
        return out


def logits_processors(tokenizer, json_schema: Any, label_priors: Any, repetition_penalty: float) -> list[Any]:
    """The decode loop's processors: the repetition penalty (when not 1) and the schema constraint with the
    label prior (when there is a schema). Each is `proc(seqs, scores) -> scores` over a (rows, vocab) array."""
    processors: list[Any] = []
    if repetition_penalty != 1.0:
        processors.append(RepetitionPenalty(repetition_penalty))
    if json_schema is not None:
        from affect_llm.backends.json_constraint import JsonSchemaLogitsProcessor

        processors.append(JsonSchemaLogitsProcessor(tokenizer, json_schema, label_priors=label_priors,
                                                    prior_weight=float(DECODING["prior_weight"])))
    return processors


def log_softmax(scores: np.ndarray) -> np.ndarray:
    top = scores.max(axis=-1, keepdims=True)
    shifted = scores - top
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def choose(scores: np.ndarray, temperature: float, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """(token per row, its log-probability among the valid tokens): greedy, or sampled at `temperature`."""
    lp = log_softmax(scores.astype(np.float32, copy=False))
    if temperature > 0:
        if rng is None:
            raise ValueError("sampling needs a random generator")
        probs = np.exp(log_softmax(scores.astype(np.float64) / temperature))
        tok = np.array([rng.choice(probs.shape[-1], p=p / p.sum()) for p in probs], dtype=np.int64)
    else:
        tok = lp.argmax(axis=-1)
    return tok, lp[np.arange(lp.shape[0]), tok]


def forced_tokens(jump: Any, tokenizer, seq: list[int], budget: int) -> list[int]:
    """Jump-forward: the token ids of the text the schema forces after `seq` (at most `budget`), walked through
    the constraint's parser so that it knows them. Both in-process loops append these without asking the model."""
    forced = jump.forced_text(seq)
    extra = tokenizer(forced, add_special_tokens=False)["input_ids"][: max(0, budget)] if forced else []
    jump.register(seq, extra)
    return extra


def generations(tokenizer, new: list[list[int]], logps: list[list[float]], prompt_tokens: list[int],
                cancelled: Any = None) -> list[Generation]:
    """`Generation`s from the decode loop's token ids and log-probabilities (cut at the first EOS)."""
    results = []
    eos = tokenizer.eos_token_id
    for row, ids in enumerate(new):
        n = len(ids)
        finish = "length"
        if eos in ids:
            n = ids.index(eos)
            finish = "stop"
        elif cancelled is not None and cancelled():
            finish = "cancelled"
        text_pieces = pieces(tokenizer, ids[:n])
        results.append(Generation(text="".join(text_pieces), pieces=text_pieces, logprobs=logps[row][:n],
                                  prompt_tokens=prompt_tokens[row], completion_tokens=n, finish_reason=finish))
    return results


def pieces(tokenizer, ids: list[int]) -> list[str]:
    """Text added by each token, from incremental decoding (handles multi-byte characters)."""
    out, prev = [], ""
    for k in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:k], skip_special_tokens=True)
        if text.endswith("\ufffd") and k < len(ids):
            out.append("")  # incomplete UTF-8 sequence: the next token completes it
            continue
        out.append(text[len(prev):])
        prev = text
    return out
