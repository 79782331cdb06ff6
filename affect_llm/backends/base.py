"""The one small protocol every LLM backend implements (the registry is `affect_llm.backends.BACKENDS`).

A backend turns a batch of chat conversations into generations. It reports, per generated token, the
text piece and its log-probability so the pipeline can compute a confidence from the model's own
probabilities of the labels it chose (not a constant). `json_schema`, when given, must be *enforced*
by the backend (constrained decoding or the server's structured output), not merely requested. It may be
one schema for the whole batch or a list with one per conversation (explain answers differ in their
label and evidence enums, and a batch should not be split by them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from affect_llm.decoding import DECODING
from affect_llm.errors import AffectError

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}


@dataclass
class Generation:
    text: str
    # Text piece of each generated token; "".join(pieces) == text when the backend reports tokens.
    pieces: list[str] = field(default_factory=list)
    # Log-probability of each generated token (None if the backend cannot report it).
    logprobs: list[float] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"


@runtime_checkable
class Backend(Protocol):
    name: str
    model_id: str

    def generate(
        self,
        batch: list[list[Message]],
        *,
        max_new_tokens: int = int(DECODING["max_new_tokens"]),
        temperature: float = float(DECODING["temperature"]),
        seed: int = 0,
        json_schema: dict[str, Any] | list[dict[str, Any]] | None = None,
    ) -> list[Generation]: ...


def schemas_for(json_schema: Any, n: int) -> list[Any]:
    """One schema (or None) per conversation, from a single schema or a list."""
    if isinstance(json_schema, list):
        if len(json_schema) != n:
            raise ValueError(f"{len(json_schema)} schemas for {n} conversations")
        return list(json_schema)
    return [json_schema] * n


def check_adapter_dir(adapter: str) -> None:
    """A LoRA adapter folder must hold PEFT's adapter_config.json (checked before any engine loads)."""
    from pathlib import Path

    if not (Path(adapter) / "adapter_config.json").is_file():
        raise AffectError(f"adapter folder {adapter!r} has no adapter_config.json")


def cpu_dtype() -> str:
    """Weights dtype for a CPU: float32 unless the CPU computes bf16 natively (AVX512-BF16 / AMX). Emulated
    bf16 matmuls are slower than float32 ones (vLLM on this AVX2 host: oneDNN refuses bf16 and falls back to
    torch's linear: 4x slower on a batch of answers), and a 135M model's weights fit either way."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"
