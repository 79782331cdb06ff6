"""The one table of decoding defaults every entry point reads (CLI, Python API, eval, server, backends)."""

from __future__ import annotations

DECODING: dict[str, float | int] = {
    # labels + <= 2 evidence ids + one sentence of <= 140 characters fit in ~60 tokens; 96 leaves room.
    "max_new_tokens": 96,
    "temperature": 0.0,
    # Evidence ids and quoted words repeat by design, and the schema bounds every string, so no penalty.
    "repetition_penalty": 1.0,
    # Weight of the label model's log-probability added to the LLM's when it picks a label (backends that
    # decode in-process; 0 = the LLM alone). 1 = a product of the two experts.
    "prior_weight": 1.0,
}
