"""Settings of the HTTP service: one dataclass, every field documented, all problems reported at once."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from affect_llm.decoding import DECODING
from affect_llm.errors import AffectError

ENGINES = ("vllm", "transformers")
ASR_BACKENDS = ("faster-whisper", "openai-whisper", "none")


@dataclass
class ServeSettings:
    """What `affect-llm serve` runs. CLI flags map one to one onto these fields."""

    #: Interface and port of the public API; port 0 picks a free port (printed at start-up).
    host: str = "127.0.0.1"
    port: int = 8000
    #: Asset name, local checkpoint folder or HF id; None = the embedded default LLM.
    model: str | None = None
    #: LoRA adapters served beside the base model, name -> folder; requests choose one by name.
    adapters: dict[str, str] = field(default_factory=dict)
    #: "vllm" (managed child OpenAI-compatible server) or "transformers" (in-process).
    engine: str = "vllm"
    #: Bearer key required on /v1/* when set (/healthz, /metrics and the demo page stay open).
    api_key: str | None = None
    #: Largest accepted request body (JSON or multipart), in MiB.
    max_request_mb: float = 25.0
    #: Longest accepted audio/video, in seconds (checked while decoding).
    max_audio_seconds: float = 60.0
    #: Seconds one request may wait for the engine before it gets a 504.
    request_timeout_s: float = 120.0
    #: Seconds the engine may take to become ready; past it start-up fails (reported, not hung on).
    engine_start_timeout_s: float = 900.0
    #: transformers engine: most explain requests decoded together in one batch, and how long (ms) the
    #: engine waits for concurrent requests before it decodes a batch.
    max_batch: int = 8
    batch_wait_ms: float = 10.0
    #: Token budget of one explain answer.
    max_new_tokens: int = int(DECODING["max_new_tokens"])
    #: Label model whose prior the explain answers use: "default" (bundled, for the embedded model), a folder,
    #: or None (no prior).
    label_model: str | None = "default"
    #: Demonstration index folder (`affect-llm index build`); enables the `demos` request option.
    demo_index: str | None = None
    #: Speech recogniser for audio inputs ("none": prosody cues only).
    asr_backend: str = "faster-whisper"
    #: Weights dtype for both engines (None: bfloat16 on a GPU, float32 on a CPU without native bf16).
    dtype: str | None = None
    #: vLLM: context length, KV-cache size on CPU hosts (GiB), log file of the child, extra arguments.
    max_model_len: int = 2048
    kv_cache_gib: float = 1.0
    engine_log: str | None = None
    vllm_args: list[str] = field(default_factory=list)
    #: Mild repetition penalty (the transformers backend's default), applied by both engines.
    repetition_penalty: float = float(DECODING["repetition_penalty"])
    #: Seconds uvicorn waits for in-flight requests at shutdown before it closes them.
    graceful_timeout_s: float = 10.0
    #: Seconds one engine job may run before /healthz calls the engine wedged (None: request timeout + 30 s).
    wedged_after_s: float | None = None
    #: Adapter merged into the base model: "default" = the bundled tuned adapter, as the CLI uses it (only
    #: for the embedded default model), None = the bare model, or an adapter folder.
    base_adapter: str | None = "default"
    log_level: str = "info"

    def __post_init__(self) -> None:
        errors: list[str] = []
        if self.engine not in ENGINES:
            errors.append(f"engine {self.engine!r} is unknown; choose one of: {', '.join(ENGINES)}")
        if self.asr_backend not in ASR_BACKENDS:
            errors.append(f"asr backend {self.asr_backend!r} is unknown; choose one of: {', '.join(ASR_BACKENDS)}")
        if not 0 <= self.port <= 65535:
            errors.append(f"port must be 0..65535, got {self.port}")
        for name, value in (
            ("max_request_mb", self.max_request_mb), ("max_audio_seconds", self.max_audio_seconds),
            ("request_timeout_s", self.request_timeout_s), ("engine_start_timeout_s", self.engine_start_timeout_s),
            ("kv_cache_gib", self.kv_cache_gib), ("graceful_timeout_s", self.graceful_timeout_s),
            *([("wedged_after_s", self.wedged_after_s)] if self.wedged_after_s is not None else []),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                errors.append(f"{name} must be a positive number, got {value!r}")
        if self.max_batch < 1:
            errors.append(f"max_batch must be >= 1, got {self.max_batch}")
        if not 0 <= self.batch_wait_ms <= 1000:
            errors.append(f"batch_wait_ms must be 0..1000, got {self.batch_wait_ms}")
        if not 8 <= self.max_new_tokens <= 4096:
            errors.append(f"max_new_tokens must be 8..4096, got {self.max_new_tokens}")
        if self.max_model_len < 256:
            errors.append(f"max_model_len must be >= 256, got {self.max_model_len}")
        if self.repetition_penalty <= 0:
            errors.append(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        for name, folder in self.adapters.items():
            if not name or not all(ch.isalnum() or ch in "-_." for ch in name):
                errors.append(f"adapter name {name!r} must be letters, digits, '-', '_' or '.'")
            if not (Path(folder) / "adapter_config.json").is_file():
                errors.append(f"adapter {name!r}: {folder} has no adapter_config.json")
        if self.label_model not in (None, "default") and not Path(self.label_model).is_dir():
            errors.append(f"label model folder not found: {self.label_model}")
        if self.demo_index is not None and not Path(self.demo_index).is_dir():
            errors.append(f"demo index folder not found: {self.demo_index}")
        if self.base_adapter not in (None, "default") and not (Path(self.base_adapter) / "adapter_config.json").is_file():
            errors.append(f"base adapter {self.base_adapter}: no adapter_config.json")
        if self.api_key is not None and not self.api_key.strip():
            errors.append("api key is empty; leave it unset to serve without authentication")
        if errors:
            raise AffectError("invalid serve settings: " + "; ".join(errors))

    @property
    def wedged_after(self) -> float:
        return self.wedged_after_s if self.wedged_after_s is not None else self.request_timeout_s + 30.0

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)


def parse_adapters(specs: list[str]) -> dict[str, str]:
    """`["calm=runs/lora1", ...]` -> {"calm": "runs/lora1"}; a bare folder is named after itself."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep:
            folder = spec
            name = Path(spec.rstrip("/")).name
        name, folder = name.strip(), folder.strip()
        if not folder:
            raise AffectError(f"--adapter {spec!r}: give NAME=DIR")
        if name in out:
            raise AffectError(f"--adapter name {name!r} is given twice")
        out[name] = folder
    return out
