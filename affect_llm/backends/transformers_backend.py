"""In-process generation with transformers (bf16 on CPU by default), batched with left padding."""

from __future__ import annotations

from typing import Any

from affect_llm.backends.base import Generation, Message, check_adapter_dir
from affect_llm.decoding import DECODING
from affect_llm.errors import AffectError
from affect_llm.extras import require

DTYPES = ("bfloat16", "float32", "float16")


class TransformersBackend:
    name = "transformers"

    def __init__(
        self,
        model: str | None = None,
        *,
        adapter: str | None = None,
        projector: str | None = None,
        dtype: str | None = None,
        device: str | None = None,
        threads: int | None = None,
        repetition_penalty: float = float(DECODING["repetition_penalty"]),
        model_obj: Any = None,
        tokenizer_obj: Any = None,
    ) -> None:
        """Load `model` (registry name, folder or HF id) or wrap an already-built `model_obj`.

        `projector`: a folder saved by the projector SFT stages; prompts may then hold `<audio>` / `<face>`
        and `generate(..., media=[{"audio": path}, ...])` fills them with soft tokens.
        `device`: "cpu", "cuda", "cuda:1", ... (default: $AFFECT_LLM_DEVICE, else CUDA when present, else CPU);
        a `model_obj` stays where it is.
        """
        import torch

        from affect_llm.threads import configure_threads

        configure_threads(threads)
        self.device = resolve_device(device) if model_obj is None else next(model_obj.parameters()).device
        dtype = dtype or default_dtype(self.device)
        if dtype not in DTYPES:
            raise AffectError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
        self.dtype = dtype
        # A mild penalty stops the small default model from repeating one phrase until its budget ends.
        self.repetition_penalty = repetition_penalty
        merged = None
        if model_obj is not None:
            self.model, self.tokenizer, self.model_id = model_obj, tokenizer_obj, getattr(model_obj, "name_or_path", "custom")
        else:
            from affect_llm.assets import resolve_model

            label, path = resolve_model(model)
            self.model_id = label
            merged = _merged_dir(path, adapter, dtype) if adapter else None
            if merged is not None and (merged / "config.json").is_file():
                path = str(merged)  # the adapter was merged into these weights before: no PEFT needed
                merged = None
                adapter_done = True
            else:
                adapter_done = False
            self.model, self.tokenizer = _load(path, getattr(torch, dtype))
        if adapter:
            from pathlib import Path

            from affect_llm.assets import default_adapter_dir

            if model_obj is not None or not adapter_done:
                self.model = _attach_adapter(self.model, adapter)
                if merged is not None:
                    _save_merged(self.model, self.tokenizer, merged)
            bundled = default_adapter_dir()
            self.model_id = f"{self.model_id}+{'default' if bundled and Path(adapter).resolve() == bundled else adapter}"
        if model_obj is None:
            self.model.to(self.device)
        self.affect = None
        if projector:
            from affect_llm.projector.affect_lm import AffectLM

            # Built after the move, on the LM's device: the projector's own weights are not part of the LM.
            self.affect = AffectLM.from_pretrained(projector, self.model, self.tokenizer).to(self.device)
            self.model_id = f"{self.model_id}+projector"
        self.accepts_media = self.affect is not None
        self.accepts_label_priors = True
        self._prefixes: dict[tuple[int, ...], Any] = {}
        self.model.eval()
        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token

    def _with_prefix(self, batch: list[list[Message]], prompts: list[str]):
        """(enc, (n, KV cache)) when every conversation starts with the same system message, else None.

        Every explain prompt starts with the same system message; recomputing it costs ~0.4 s per answer on a
        CPU. Its KV cache is computed once and reused; the rest of each prompt is left-padded *after* the
        shared prefix ([prefix | pads | rest]), so a batch shares it too. Used only when each prompt's token
        ids really start with the prefix's.
        """
        import torch

        if hasattr(self.model, "peft_config") or any(len(m) < 2 or not m[-1]["content"] for m in batch):
            return None  # PEFT models switch adapters per request: a cached prefix would be the wrong one
        heads = {p[: p.rfind(m[-1]["content"])] for p, m in zip(prompts, batch)}
        if len(heads) != 1:
            return None
        head_ids = self.tokenizer(heads.pop(), add_special_tokens=False)["input_ids"]
        n = len(head_ids)
        rows = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        if n < 8 or any(len(r) <= n or r[:n] != head_ids for r in rows):
            return None
        cached = self._prefixes.get(tuple(head_ids))
        if cached is None:
            ids = torch.tensor([head_ids], device=self.device)
            with torch.inference_mode():
                out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True,
                                 logits_to_keep=1)
            cached = (n, out.past_key_values)
            if len(self._prefixes) >= 4:  # a few system prompts at most; never grows with traffic
                self._prefixes.pop(next(iter(self._prefixes)))
            self._prefixes[tuple(head_ids)] = cached
        width = max(len(r) for r in rows) - n
        pad = self.tokenizer.pad_token_id
        ids = [head_ids + [pad] * (width - len(r) + n) + r[n:] for r in rows]
        mask = [[1] * n + [0] * (width - len(r) + n) + [1] * (len(r) - n) for r in rows]
        return {"input_ids": torch.tensor(ids, device=self.device),
                "attention_mask": torch.tensor(mask, device=self.device)}, cached

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
        """`media`: per conversation {"audio"|"face": path or array} for the soft-token placeholders.
        `emit(row, piece)` streams text pieces as they are decided; `cancelled()` stops generation early.
        `label_priors`: per conversation, a label model's probabilities of the schema's label enum values,
        combined with the model's own when it picks a label (see `JsonSchemaLogitsProcessor`)."""
        import numpy as np
        import torch

        from affect_llm.backends.decode_steps import generations, logits_processors

        prompts = [self.prompt_text(m) for m in batch]
        prefix = None
        if self.affect is not None:  # spliced prompt embeddings (+ the ids, with pad ids in the slots)
            enc = self.affect.prompt_batch(prompts, media or [{} for _ in prompts])
        else:
            if media and any(media):
                raise AffectError("audio/face soft tokens need a projector (load one with --projector DIR)")
            shared = self._with_prefix(batch, prompts)
            enc, prefix = shared if shared is not None else (
                self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device),
                None)
        if isinstance(json_schema, list) and all(sc is None for sc in json_schema):
            json_schema = None
        processors = logits_processors(self.tokenizer, json_schema, label_priors, self.repetition_penalty)
        gen = np.random.default_rng(seed) if temperature > 0 else None
        with torch.inference_mode():
            new, logps = decode_loop(self.model, enc, processors, max_new_tokens=max_new_tokens,
                                     eos=self.tokenizer.eos_token_id, temperature=temperature, generator=gen,
                                     emit=(lambda row, tid: emit(row, self.tokenizer, tid)) if emit else None,
                                     cancelled=cancelled, tokenizer=self.tokenizer if json_schema else None,
                                     prefix=prefix)
        return generations(self.tokenizer, new, logps, [int(m.sum()) for m in enc["attention_mask"]], cancelled)


def decode_loop(model, enc: dict[str, Any], processors: list[Any], *, max_new_tokens: int, eos: int,
                temperature: float = 0.0, generator: Any = None, emit: Any = None, cancelled: Any = None,
                tokenizer: Any = None, prefix: Any = None) -> tuple[list[list[int]], list[list[float]]]:
    """Prefill once, then one forward per decision with the KV cache: greedy (or sampled) decoding.

    Why not `model.generate`: on a CPU a 135M model's step is bound by reading its weights (~110 ms per
    forward here, whether it holds 1 token or 8), so the loop spends forwards only on real decisions:
    - text the JSON schema forces (structure, the rest of an enum value) is appended without asking the
      model and fed in the same forward as the token before it (jump-forward; batch size 1, with `tokenizer`);
    - `prefix` = (number of tokens, KV cache) of a prompt prefix every row starts with (the system message),
      computed once, is reused instead of recomputed;
    - every row stops as soon as it is finished.
    Log-probabilities are over schema-valid tokens; a forced token has probability 1 (log-prob 0).
    """
    import copy

    import torch

    from affect_llm.backends.decode_steps import choose, forced_tokens

    ids = enc["input_ids"]
    mask = enc["attention_mask"]
    rows = ids.shape[0]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    if prefix is not None and "inputs_embeds" not in enc:
        n_prefix, cache = prefix
        past = copy.deepcopy(cache)
        if rows > 1:
            past.batch_repeat_interleave(rows)
        out = model(input_ids=ids[:, n_prefix:], attention_mask=mask, position_ids=pos[:, n_prefix:],
                    past_key_values=past, use_cache=True, logits_to_keep=1)
    else:
        first = {"inputs_embeds": enc["inputs_embeds"]} if "inputs_embeds" in enc else {"input_ids": ids}
        out = model(**first, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1)
    past = out.past_key_values
    logits = out.logits[:, -1, :].float()
    seq = ids
    new: list[list[int]] = [[] for _ in range(rows)]
    logps: list[list[float]] = [[] for _ in range(rows)]
    done = torch.zeros(rows, dtype=torch.bool, device=ids.device)
    next_pos = pos[:, -1:] + 1
    jump = None
    if rows == 1 and tokenizer is not None:
        jump = next((p for p in processors if hasattr(p, "forced_text")), None)
    while max(len(n) for n in new) < max_new_tokens:
        scores = logits.cpu().numpy()
        seqs = seq.tolist()
        for proc in processors:
            scores = proc(seqs, scores)
        picked, chosen = choose(scores, temperature, generator)
        tok = torch.where(done, torch.full_like(done, eos, dtype=torch.long),
                          torch.from_numpy(picked).to(device=ids.device, dtype=torch.long))
        for r in range(rows):
            if not done[r]:
                t = int(tok[r])
                new[r].append(t)
                logps[r].append(float(chosen[r]))
                if emit is not None and t != eos:
                    emit(r, t)
        done |= tok == eos
        if bool(done.all()) or (cancelled is not None and cancelled()):
            break
        step = tok[:, None]
        if jump is not None:
            extra = forced_tokens(jump, tokenizer, seq[0].tolist() + [int(tok[0])], max_new_tokens - len(new[0]))
            for t in extra:
                new[0].append(t)
                logps[0].append(0.0)
                if emit is not None:
                    emit(0, t)
            if extra:
                step = torch.cat([step, torch.tensor([extra], dtype=step.dtype, device=step.device)], dim=1)
        k = step.shape[1]
        seq = torch.cat([seq, step], dim=1)
        mask = torch.cat([mask, torch.ones((rows, k), dtype=mask.dtype, device=mask.device)], dim=1)
        step_pos = next_pos + torch.arange(k, device=mask.device)[None, :]
        if max(len(n) for n in new) >= max_new_tokens:
            break
        out = model(input_ids=step, attention_mask=mask, position_ids=step_pos, past_key_values=past,
                    use_cache=True, logits_to_keep=1)
        past = out.past_key_values
        logits = out.logits[:, -1, :].float()
        next_pos = next_pos + k
    return new, logps


def resolve_device(device: str | None = None):
    """The torch device to run on: `device`, else $AFFECT_LLM_DEVICE, else CUDA when present, else CPU."""
    import os

    import torch

    name = device or os.environ.get("AFFECT_LLM_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise AffectError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise AffectError(f"device {name!r} asked for, but this torch build sees no CUDA GPU")
    return dev


def default_dtype(device: Any = None) -> str:
    """On a GPU bfloat16 where supported. On a CPU float32 unless it computes bf16 natively (AVX512-BF16 /
    AMX): emulated bf16 matmuls are slower than float32 ones, and a 135M model's weights fit either way."""
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    from affect_llm.backends.base import cpu_dtype

    return cpu_dtype()


def _load(path: str, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a per-load weight bar is noise in a one-line CLI answer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as err:
        raise AffectError(
            f"cannot load model {path!r}: {str(err).splitlines()[0]} (model hubs may be unreachable: "
            "use a local folder or a registered asset, see `affect-llm assets list`)"
        ) from None
    return model, tokenizer


def merged_base(path: str, adapter: str) -> str:
    """A model folder with `adapter` merged into `path`'s weights (cached; built once on first use)."""
    out = _merged_dir(path, adapter, "float32")
    if out is None:
        raise AffectError(f"merging the adapter {adapter} needs a local model folder, not {path!r}")
    if not (out / "config.json").is_file():
        TransformersBackend(model=path, adapter=adapter, dtype="float32", device="cpu")  # merges, saves the copy
    if not (out / "config.json").is_file():
        raise AffectError(f"could not write the merged model to {out} (is the cache writable?)")
    return str(out)


def _merged_dir(base: str, adapter: str, dtype: str):
    """Where the base model with `adapter` merged in is cached: keyed by the base's and the adapter's files.

    Merging needs PEFT, whose import alone took 9 s here; a cold `explain` loads the merged copy instead."""
    import hashlib
    from pathlib import Path

    from affect_llm.assets import cache_dir

    if not (Path(base) / "config.json").is_file():
        return None  # a hub id: nothing local to key on
    h = hashlib.sha256(dtype.encode())  # saved in the dtype it was loaded in: a bf16 copy must not serve float32
    for folder in (Path(base), Path(adapter)):
        for f in sorted(folder.glob("*.json")) + sorted(folder.glob("*.safetensors")):
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
            if f.suffix == ".json" or st.st_size < 16 * 2**20:  # small files (the adapter): by content
                h.update(f.read_bytes())
    return cache_dir() / "merged" / h.hexdigest()[:24]


def _save_merged(model, tokenizer, out) -> None:
    """Save the merged model atomically; a cache that cannot be written only costs the merge next time."""
    import shutil
    import tempfile
    from pathlib import Path

    from affect_llm.fileio import replace_dir

    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        replace_dir(tmp, out)
    except OSError:
        if tmp is not None:  # a full disk must not leave half a model copy in the cache
            shutil.rmtree(tmp, ignore_errors=True)


def _attach_adapter(model, adapter: str):
    check_adapter_dir(adapter)
    require("train", "adapters", "peft")
    from peft import PeftModel

    # One adapter per backend: fold it into the weights, so generation costs what the bare model costs.
    return PeftModel.from_pretrained(model, adapter).merge_and_unload()
