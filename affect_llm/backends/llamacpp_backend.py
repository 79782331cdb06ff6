"""In-process generation with llama.cpp (`llama-cpp-python`) on an 8-bit GGUF of the same weights.

Why: on a CPU a 135M model's decoding step is bound by reading its weights. transformers reads 538 MB of
float32 per forward; llama.cpp reads the Q8_0 GGUF's 145 MB, with its own quantized kernels. Everything
else is the transformers backend's: the same tokenizer and chat template, the same decode loop (the
schema constraint, the label prior, jump-forward over forced text, log-probabilities over valid tokens).
llama.cpp only computes the next-token logits.

The GGUF is written once from the (merged) checkpoint and cached under `~/.cache/affect_llm/gguf/`.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from affect_llm.backends.base import Generation, Message
from affect_llm.decoding import DECODING
from affect_llm.errors import AffectError
from affect_llm.extras import require

N_CTX = 4096 + 512  # the input limit (affect_llm.limits.MAX_INPUT_TOKENS) plus an answer


class LlamaCppLM:
    """The decode loop's model interface (`model(input_ids=..., past_key_values=...)`) over one llama.cpp
    context, batch size 1.

    `past_key_values` is the list of token ids that precede `input_ids`. The context keeps the KV cache of
    the last sequence it saw, and which spans were evaluated together (`bounds`). A new sequence reuses the
    cache up to the last span boundary it shares, and evaluates the rest in one call. Reusing only whole
    spans keeps answers a function of the input: llama.cpp's kernels round differently for a 1-token call
    than for a many-token one, and a near-tie between two tokens would otherwise flip on a repeated query.
    `prime(head)` evaluates the system prompt as a span of its own, so every query shares it.
    """

    def __init__(self, gguf_path: str | Path, *, threads: int, n_ctx: int = N_CTX) -> None:
        import weakref

        from llama_cpp import Llama

        self.llm = Llama(model_path=str(gguf_path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                         n_batch=512, logits_all=False, verbose=False)
        # Free the context before interpreter shutdown: Llama.__del__ at exit finds llama.cpp's bindings
        # already gone and prints a traceback after every CLI answer.
        weakref.finalize(self, self.llm.close)
        self.n_vocab = self.llm.n_vocab()
        self.n_ctx = n_ctx
        self.bounds: list[int] = [0]  # ends of the spans in the cache, in order

    def _reusable(self, tokens: list[int], limit: int) -> int:
        """The longest cached span boundary <= `limit` whose tokens are a prefix of `tokens`."""
        llm = self.llm
        have = llm.input_ids[: llm.n_tokens]
        common = 0
        for a, b in zip(have.tolist(), tokens):
            if a != b:
                break
            common += 1
        return max(b for b in self.bounds if b <= min(common, limit))

    def _eval(self, tokens: list[int], start: int) -> None:
        if len(tokens) > self.n_ctx:
            raise AffectError(f"prompt and answer need {len(tokens)} tokens; this engine holds {self.n_ctx}")
        self.llm.n_tokens = start  # eval() drops the cache from n_tokens on
        self.bounds = [b for b in self.bounds if b <= start]
        self.llm.eval(tokens[start:])
        self.bounds.append(len(tokens))

    def prime(self, head: list[int]) -> None:
        """Make `head` (the shared system prompt) a cached span of its own."""
        start = self._reusable(head, len(head))
        if start < len(head):
            self._eval(head, start)

    def logits(self, tokens: list[int]) -> Any:
        """Next-token logits after `tokens` (a float32 numpy vector), reusing the cached spans it starts with."""
        import numpy as np

        self._eval(tokens, self._reusable(tokens, len(tokens) - 1))
        ptr = self.llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()

    def __call__(self, *, input_ids: Any = None, past_key_values: Any = None, **_: Any) -> SimpleNamespace:
        import torch

        if input_ids.shape[0] != 1:
            raise ValueError("LlamaCppLM evaluates one sequence at a time")
        tokens = list(past_key_values or []) + input_ids[0].tolist()
        logits = torch.from_numpy(self.logits(tokens))
        return SimpleNamespace(logits=logits[None, None, :], past_key_values=tokens)


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(
        self,
        model: str | None = None,
        *,
        adapter: str | None = None,
        threads: int | None = None,
        dtype: str | None = None,
        qtype: str = "Q8_0",
        repetition_penalty: float = float(DECODING["repetition_penalty"]),
    ) -> None:
        """Load `model` (registry name or folder of a Llama checkpoint) with `adapter` merged in.

        `dtype` is accepted for the CLI's sake and ignored: the GGUF's type is `qtype`."""
        require("llamacpp", "the llama.cpp backend", "llama_cpp")
        from affect_llm.threads import configure_threads

        configure_threads()  # torch only runs the schema mask here: its own default
        self.repetition_penalty = repetition_penalty
        source, self.model_id = checkpoint_for(model, adapter)
        from affect_llm.backends.chat_tokenizer import ChatTokenizer

        self.tokenizer = ChatTokenizer(source)  # transformers' own costs ~2 s of import (chat_tokenizer.py)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        gguf = gguf_for(source, model, qtype)
        self.threads = threads or engine_threads()
        self.lm = LlamaCppLM(gguf, threads=self.threads)
        self.accepts_media = False
        self.accepts_label_priors = True
        self._heads: dict[str, list[int]] = {}

    def _head(self, messages: list[Message]) -> list[int]:
        """Token ids of the prompt up to the last message's text (the system prompt every query shares)."""
        if len(messages) < 2 or not messages[-1]["content"]:
            return []
        prompt = self.prompt_text(messages)
        cut = prompt.rfind(messages[-1]["content"])
        key = prompt[:cut]
        if key not in self._heads:
            if len(self._heads) >= 8:
                self._heads.pop(next(iter(self._heads)))
            self._heads[key] = self.tokenizer(key, add_special_tokens=False)["input_ids"]
        return self._heads[key]

    def prompt_text(self, messages: list[Message]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(
        self,
        batch: list[list[Message]],
        *,
        max_new_tokens: int = int(DECODING["max_new_tokens"]),
        temperature: float = float(DECODING["temperature"]),
        seed: int = 0,
        json_schema: dict[str, Any] | list[dict[str, Any]] | None = None,
        media: list[dict[str, Any]] | None = None,
        emit: Any = None,
        cancelled: Any = None,
        label_priors: list[dict[str, float] | None] | None = None,
    ) -> list[Generation]:
        """As `TransformersBackend.generate`; rows run one after another (a row's forward costs what a batch's
        does here, and one row at a time keeps jump-forward over schema-forced text)."""
        import torch

        from affect_llm.backends.base import schemas_for
        from affect_llm.backends.transformers_backend import decode_loop, generations, logits_processors

        if media and any(media):
            raise AffectError("audio/face soft tokens need the transformers backend with a projector")
        schemas = schemas_for(json_schema, len(batch))
        priors = label_priors or [None] * len(batch)
        results: list[Generation] = []
        for row, messages in enumerate(batch):
            if cancelled is not None and cancelled():  # one result per row, as every backend returns
                results.append(Generation(text="", pieces=[], logprobs=[], finish_reason="cancelled"))
                continue
            ids = self.tokenizer(self.prompt_text(messages), add_special_tokens=False)["input_ids"]
            head = self._head(messages)
            if head and ids[: len(head)] == head and len(ids) > len(head):
                self.lm.prime(head)
            enc = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones((1, len(ids)), dtype=torch.long)}
            processors = logits_processors(self.tokenizer, None if schemas[row] is None else [schemas[row]],
                                           [priors[row]], self.repetition_penalty)
            gen = torch.Generator().manual_seed(seed + row) if temperature > 0 else None
            new, logps = decode_loop(self.lm, enc, processors, max_new_tokens=max_new_tokens,
                                     eos=self.tokenizer.eos_token_id, temperature=temperature, generator=gen,
                                     emit=(lambda _r, tid, row=row: emit(row, self.tokenizer, tid)) if emit else None,
                                     cancelled=cancelled, tokenizer=self.tokenizer if schemas[row] is not None else None)
            results += generations(self.tokenizer, new, logps, [len(ids)], cancelled)
        return results


def engine_threads() -> int:
    """llama.cpp's threads: $AFFECT_LLM_THREADS, else the CPUs this process may use that were idle over the
    last minute (at least 1, at most 8).

    Unlike torch's float32 decoding, which is bound by memory and no faster with 2 threads here, llama.cpp's
    prompt evaluation is bound by arithmetic: on an idle 2-vCPU VM 2 threads answered in p50 1.15 s against
    1.52 s (bench/explain_latency.py). But its threads spin while they wait for each other: with a compile
    job on both CPUs, 2 threads took 6.1 s and once 50 s for an answer that 1 thread gave in 4.5 s. So
    CPUs already busy (the load average) are not counted."""
    import os

    if os.environ.get("AFFECT_LLM_THREADS", "").strip():
        from affect_llm.threads import default_threads

        return default_threads()  # validates the variable
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except (OSError, AttributeError):
        busy = 0.0
    return max(1, min(cpus, 8, int(cpus - busy + 0.5)))


def checkpoint_for(model: str | None, adapter: str | None) -> tuple[Path, str]:
    """(transformers checkpoint folder, model id): the base, or the base with `adapter` merged in (cached)."""
    from affect_llm.assets import resolve_model
    from affect_llm.backends.transformers_backend import merged_base

    label, path = resolve_model(model)
    if not (Path(path) / "config.json").is_file():
        raise AffectError(f"the llama.cpp backend needs a local checkpoint folder, not {path!r}")
    if not adapter:
        return Path(path), label
    merged = Path(merged_base(path, adapter))
    from affect_llm.assets import default_adapter_dir

    bundled = default_adapter_dir()
    return merged, f"{label}+{'default' if bundled and Path(adapter).resolve() == bundled else adapter}"


def gguf_for(source: Path, model: str | None, qtype: str) -> Path:
    """The cached GGUF of checkpoint `source`, written on first use from the model asset's GGUF template."""
    import hashlib

    from affect_llm.assets import REGISTRY, asset_path, cache_dir, resolve_model
    from affect_llm.backends.gguf_export import export_gguf

    label, _ = resolve_model(model)
    spec = REGISTRY.get(label)
    template_name = spec.convert_options.get("gguf_file") if spec is not None else None
    if not template_name:
        raise AffectError(f"the llama.cpp backend needs a model asset shipped as GGUF; {label!r} is not one "
                          "(use --backend transformers)")
    template = asset_path(label) / template_name
    h = hashlib.sha256(qtype.encode())
    for f in sorted(source.glob("*.json")) + sorted(source.glob("*.safetensors")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    out = cache_dir() / "gguf" / f"{h.hexdigest()[:24]}-{qtype.lower()}.gguf"
    if not out.is_file():
        export_gguf(source, template, out, qtype=qtype)
    return out
