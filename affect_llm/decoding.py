"""The one table of decoding defaults every entry point reads (CLI, Python API, eval, server, backends)."""

from __future__ import annotations

DECODING: dict[str, float | int] = {
    # labels + <= 2 evidence ids + one sentence of <= 140 characters fit in ~60 tokens; 96 leaves room.
    "max_new_tokens": 96,
    "temperature": 0.0,
    # Evidence ids and quoted words repeat by design, and the schema bounds every string, so no penalty.
    "repetition_penalty": 1.0,
    # Weight of the label model's log-probability added to the LLM's when it picks a label (backends that
    # decode in-process; 0 = the LLM alone, 1 = a plain product of the two experts). The shipped 135M adapter
    # over-answers "neutral". With the TF-IDF label model, 16 against 8 on the same dev draws
    # (bench/answer_quality.py llm --prior-weight): MELD wF1 .467 vs .460 (its label model .465), with a
    # MELD-trained label model .542 vs .525 (.536), EmoryNLP .479 vs .456 (.408), GoEmotions macro-28 / Ekman
    # .277 / .464 vs .271 / .446 (.267 / .426), OV-MERD EW-L1 .098 vs .065. A larger model that knows the
    # labels itself wants less: lower it there.
    "prior_weight": 16.0,
}
