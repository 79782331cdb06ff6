"""In-process generation with llama.cpp (`llama-cpp-python`) on an 8-bit GGUF of the same weights.

Why: on a CPU a 135M model's decoding step is bound by reading its weights. transformers reads 538 MB of
float32 per forward; llama.cpp reads the Q8_0 GGUF's 145 MB, with its own quantized kernels, and steps
many sequences in one evaluation. Everything else is shared with the transformers backend: the same
tokenizer and chat template, the same processors and token choice (`decode_steps`: the schema constraint,
the label prior, log-probabilities over valid tokens), jump-forward over forced text. llama.cpp only
computes the next-token logits, and this path imports no torch (2.3 s of a cold CLI answer).

The GGUF is written once from the (merged) checkpoint and cached under `~/.cache/affect_llm/gguf/`.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from affect_llm.backends.base import Generation, Message
from affect_llm.decoding import DECODING
from affect_llm.errors import AffectError
from affect_llm.extras import require

N_CTX = 8192  # KV cells, shared by a batch's rows: one query at the input limit (4096) plus its answer fits
N_BATCH = 512  # tokens per llama_decode call
MAX_ROWS = 8  # sequences decoded together (100 MELD turns: 75 s at 8, 89 s at 16, 107 s one by one)


class LlamaCppEngine:
    """Next-token logits from one llama.cpp context: one sequence at a time, or several in one batch.

    One sequence (seq 0): the context keeps the KV cache of the last sequence it saw, and which spans were
    evaluated together (`bounds`). A new sequence reuses the cache up to the last span boundary it shares,
    and evaluates the rest in one call. Reusing only whole spans keeps answers a function of the input:
    llama.cpp's kernels round differently for a 1-token call than for a many-token one, and a near-tie
    between two tokens would otherwise flip on a repeated query. `prime(head)` evaluates the system prompt
    as a span of its own, so every query shares it.

    Several sequences (`start_rows`/`step_rows`/`end_rows`): row r is seq r+1; its KV cells start with seq
    0's system prompt (shared, not copied: the cache is unified), and every decoding step evaluates one
    token (plus any schema-forced ones) of every unfinished row in one call. On a CPU a step's cost is
    reading the weights, so eight rows step for little more than one. Rounding then depends on the batch,
    as on every batching engine: a near-tie may resolve differently than in a single query.
    """

    def __init__(self, gguf_path: str | Path, *, threads: int, n_ctx: int = N_CTX) -> None:
        import llama_cpp
        from llama_cpp import _internals, _logger

        _logger.set_verbose(False)
        llama_cpp.llama_backend_init()
        self.model = _internals.LlamaModel(path_model=str(gguf_path), params=llama_cpp.llama_model_default_params(),
                                           verbose=False)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n_ctx, N_BATCH, N_BATCH
        params.n_seq_max, params.kv_unified = MAX_ROWS + 1, True
        params.n_threads = params.n_threads_batch = threads
        # Flash attention skips masked KV cells: a batch's rows share one cache, and without it every row
        # attended over every other row's cells (40 MELD rows: 35 s with it, 45 s without).
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        params.no_perf = True
        self.ctx = _internals.LlamaContext(model=self.model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=N_BATCH, embd=0, n_seq_max=1, verbose=False)
        self._llama = llama_cpp
        self.n_vocab = self.model.n_vocab()
        self.n_ctx = n_ctx
        self.gguf_path = str(gguf_path)
        self.tokens: list[int] = []  # seq 0's cached tokens
        self.bounds: list[int] = [0]  # ends of seq 0's spans, in order
        self.rows: list[int] = []  # cached length of each row of the current batch

    def close(self) -> None:
        """Free the context and the weights (the context first, as llama.cpp requires)."""
        for part in ("batch", "ctx", "model"):
            obj = self.__dict__.pop(part, None)
            if obj is not None:
                obj.close()

    # One sequence -----------------------------------------------------------------------------------------

    def _reusable(self, tokens: list[int], limit: int) -> int:
        """The longest cached span boundary <= `limit` whose tokens are a prefix of `tokens`."""
        common = 0
        for a, b in zip(self.tokens, tokens):
            if a != b:
                break
            common += 1
        return max(b for b in self.bounds if b <= min(common, limit))

    def _eval(self, tokens: list[int], start: int) -> Any:
        if len(tokens) > self.n_ctx:
            raise AffectError(f"prompt and answer need {len(tokens)} tokens; this engine holds {self.n_ctx}")
        self._forget(0, start)
        self.tokens = self.tokens[:start]  # what the cache holds if the evaluation below fails
        self.bounds = [b for b in self.bounds if b <= start]
        (logits,) = self._decode([(0, start, tokens[start:])])
        self.tokens = list(tokens)
        self.bounds.append(len(tokens))
        return logits

    def prime(self, head: list[int]) -> None:
        """Make `head` (the shared system prompt) a cached span of its own."""
        start = self._reusable(head, len(head))
        if start < len(head):
            self._eval(head, start)

    def logits(self, tokens: list[int]) -> Any:
        """Next-token logits after `tokens` (a float32 numpy vector), reusing the cached spans it starts with."""
        return self._eval(tokens, self._reusable(tokens, len(tokens) - 1))

    # Several sequences ------------------------------------------------------------------------------------

    def fits(self, head: int, lengths: list[int]) -> bool:
        """Whether rows of these lengths (prompt + answer budget) fit next to a `head`-token system prompt."""
        return len(lengths) <= MAX_ROWS and head + sum(n - head for n in lengths) <= self.n_ctx

    def start_rows(self, prompts: list[list[int]], head: list[int]) -> list[Any]:
        """Evaluate every prompt as a row of its own after the shared `head`; the logits after each."""
        n = len(head)
        if n and any(p[:n] != head or len(p) <= n for p in prompts):
            raise ValueError("every row must start with the head")
        self.end_rows()
        if n:
            self.prime(head)
        self._forget(0, n)  # seq 0 keeps only the head the rows share
        self.tokens, self.bounds = self.tokens[:n], [b for b in self.bounds if b <= n]
        for r in range(len(prompts) if n else 0):
            self._llama.llama_memory_seq_cp(self.ctx.memory, 0, r + 1, 0, n)
        self.rows = [n] * len(prompts)
        return self.step_rows({r: p[n:] for r, p in enumerate(prompts)})

    def step_rows(self, feeds: dict[int, list[int]]) -> dict[int, Any]:
        """Append `feeds[row]` to each listed row in one evaluation; the next-token logits of each."""
        items = [(r + 1, self.rows[r], toks) for r, toks in feeds.items()]
        out = self._decode(items)
        for r, toks in feeds.items():
            self.rows[r] += len(toks)
        return dict(zip(feeds, out))

    def end_rows(self) -> None:
        for r in range(len(self.rows)):
            self._forget(r + 1, 0)
        self.rows = []

    # llama.cpp ----------------------------------------------------------------------------------------------

    def _forget(self, seq: int, start: int) -> None:
        self._llama.llama_memory_seq_rm(self.ctx.memory, seq, start, -1)

    def _decode(self, items: list[tuple[int, int, list[int]]]) -> list[Any]:
        """Evaluate (seq id, first position, tokens) items in as few calls as fit `N_BATCH`; the logits after
        each item's last token, in order."""
        import numpy as np

        out: list[Any] = [None] * len(items)
        flat = [(i, seq, pos + k, t, k == len(toks) - 1)
                for i, (seq, pos, toks) in enumerate(items) for k, t in enumerate(toks)]
        b = self.batch.batch
        for lo in range(0, len(flat), N_BATCH):
            chunk = flat[lo:lo + N_BATCH]
            for j, (_i, seq, pos, t, last) in enumerate(chunk):
                b.token[j], b.pos[j], b.n_seq_id[j], b.logits[j] = t, pos, 1, last
                b.seq_id[j][0] = seq
            b.n_tokens = len(chunk)
            try:
                self.ctx.decode(self.batch)
            except RuntimeError as exc:  # the KV cache is full (we check first) or llama.cpp failed
                raise AffectError(f"llama.cpp could not evaluate the prompt: {exc}") from None
            for j, (i, _seq, _pos, _t, last) in enumerate(chunk):
                if last:
                    ptr = self.ctx.get_logits_ith(j)
                    out[i] = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
        return out


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
        self.repetition_penalty = repetition_penalty
        source, self.model_id = checkpoint_for(model, adapter)
        from affect_llm.backends.chat_tokenizer import ChatTokenizer

        self.tokenizer = ChatTokenizer(source)  # transformers' own costs ~2 s of import (chat_tokenizer.py)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        gguf = gguf_for(source, model, qtype)
        self.threads = threads or engine_threads()
        self.lm = LlamaCppEngine(gguf, threads=self.threads)
        # Free llama.cpp's context before interpreter shutdown: its bindings may be gone by then, and a
        # destructor that runs late printed a traceback after every CLI answer.
        weakref.finalize(self, self.lm.close)
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
        """As `TransformersBackend.generate`. Rows that share the system prompt decode together, up to
        `MAX_ROWS` at a time (one evaluation per step for all of them); a lone row reuses the cache of the
        query before it."""
        import numpy as np

        from affect_llm.backends.base import schemas_for
        from affect_llm.backends.decode_steps import generations, logits_processors

        if media and any(media):
            raise AffectError("audio/face soft tokens need the transformers backend with a projector")
        schemas = schemas_for(json_schema, len(batch))
        priors = label_priors or [None] * len(batch)
        prompts = [self.tokenizer(self.prompt_text(m), add_special_tokens=False)["input_ids"] for m in batch]
        heads = [self._head(m) for m in batch]
        head = heads[0] if all(h == heads[0] for h in heads) else []
        if any(p[: len(head)] != head or len(p) <= len(head) for p in prompts):
            head = []
        results: list[Generation | None] = [None] * len(batch)
        for group in self._groups(prompts, len(head), max_new_tokens):
            if cancelled is not None and cancelled():  # one result per row, as every backend returns
                for row in group:
                    results[row] = Generation(text="", pieces=[], logprobs=[], finish_reason="cancelled")
                continue
            processors = [logits_processors(self.tokenizer, None if schemas[r] is None else [schemas[r]],
                                            [priors[r]], self.repetition_penalty) for r in group]
            rngs = [np.random.default_rng(seed + r) if temperature > 0 else None for r in group]
            new, logps = self._decode([prompts[r] for r in group], head, processors, rngs,
                                      max_new_tokens=max_new_tokens, temperature=temperature,
                                      emit=(lambda i, tid, group=group: emit(group[i], self.tokenizer, tid)) if emit else None,
                                      cancelled=cancelled)
            for r, g in zip(group, generations(self.tokenizer, new, logps, [len(prompts[r]) for r in group], cancelled)):
                results[r] = g
        return results  # type: ignore[return-value]

    def _groups(self, prompts: list[list[int]], head: int, max_new_tokens: int) -> list[list[int]]:
        """Rows in order, cut into groups whose prompts and answers fit the context together."""
        groups: list[list[int]] = []
        for r, p in enumerate(prompts):
            if groups and self.lm.fits(head, [len(prompts[i]) + max_new_tokens for i in groups[-1]] +
                                       [len(p) + max_new_tokens]):
                groups[-1].append(r)
            else:
                groups.append([r])
        return groups

    def _decode(self, prompts: list[list[int]], head: list[int], processors: list[list[Any]], rngs: list[Any], *,
                max_new_tokens: int, temperature: float, emit: Any, cancelled: Any) -> tuple[list[list[int]], list[list[float]]]:
        """Greedy (or sampled) decoding of every row, one evaluation per step for all unfinished rows.

        Per row, as the transformers backend's loop: the processors (schema constraint, label prior), the
        choice and its log-probability over valid tokens, and jump-forward: text the schema forces is
        appended without asking the model and evaluated with the token before it."""
        from affect_llm.backends.decode_steps import choose, forced_tokens

        lm, eos, tok = self.lm, self.tokenizer.eos_token_id, self.tokenizer
        seqs = [list(p) for p in prompts]
        if len(prompts) == 1:
            if head:
                lm.prime(head)
            logits = {0: lm.logits(seqs[0])}

            def step(feeds: dict[int, list[int]]) -> dict[int, Any]:
                return {0: lm.logits(seqs[0])}  # seqs[0] already holds the feed
        else:
            logits = lm.start_rows(prompts, head)
            step = lm.step_rows  # type: ignore[assignment]
        jumps = [next((p for p in procs if hasattr(p, "forced_text")), None) for procs in processors]
        new: list[list[int]] = [[] for _ in prompts]
        logps: list[list[float]] = [[] for _ in prompts]
        live = list(range(len(prompts)))
        try:
            while live:
                feeds: dict[int, list[int]] = {}
                for r in live:
                    scores = logits[r][None, :]
                    for proc in processors[r]:
                        scores = proc([seqs[r]], scores)
                    picked, chosen = choose(scores, temperature, rngs[r])
                    t = int(picked[0])
                    new[r].append(t)
                    logps[r].append(float(chosen[0]))
                    seqs[r].append(t)
                    if t == eos:
                        continue
                    if emit is not None:
                        emit(r, t)
                    feed = [t]
                    if jumps[r] is not None:
                        extra = forced_tokens(jumps[r], tok, seqs[r], max_new_tokens - len(new[r]))
                        for e in extra:
                            new[r].append(e)
                            logps[r].append(0.0)
                            seqs[r].append(e)
                            if emit is not None:
                                emit(r, e)
                        feed += extra
                    if len(new[r]) < max_new_tokens:
                        feeds[r] = feed
                live = list(feeds)
                if not live or (cancelled is not None and cancelled()):
                    break
                logits = step(feeds)
        finally:
            if len(prompts) > 1:
                lm.end_rows()
        return new, logps


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
