"""In-process generation with transformers (bf16 on CPU by default), batched with left padding."""

from __future__ import annotations

from typing import Any

from affect_llm.backends.base import Generation, Message, check_adapter_dir, register_backend
from affect_llm.errors import AffectError

DTYPES = ("bfloat16", "float32", "float16")


class TransformersBackend:
    name = "transformers"

    def __init__(
        self,
        model: str | None = None,
        *,
        adapter: str | None = None,
        projector: str | None = None,
        dtype: str = "bfloat16",
        threads: int | None = None,
        repetition_penalty: float = 1.1,
        model_obj: Any = None,
        tokenizer_obj: Any = None,
    ) -> None:
        """Load `model` (registry name, folder or HF id) or wrap an already-built `model_obj`.

        `projector`: a folder saved by the projector SFT stages; prompts may then hold `<audio>` / `<face>`
        and `generate(..., media=[{"audio": path}, ...])` fills them with soft tokens.
        """
        import torch

        from affect_llm.runtime import configure_threads

        configure_threads(threads)
        if dtype not in DTYPES:
            raise AffectError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
        self.dtype = dtype
        # A mild penalty stops the small default model from repeating one phrase until its budget ends.
        self.repetition_penalty = repetition_penalty
        if model_obj is not None:
            self.model, self.tokenizer, self.model_id = model_obj, tokenizer_obj, getattr(model_obj, "name_or_path", "custom")
        else:
            from affect_llm.assets import resolve_model

            label, path = resolve_model(model)
            self.model_id = label
            self.model, self.tokenizer = _load(path, getattr(torch, dtype))
        if adapter:
            from pathlib import Path

            from affect_llm.assets import default_adapter_dir

            self.model = _attach_adapter(self.model, adapter)
            bundled = default_adapter_dir()
            self.model_id = f"{self.model_id}+{'default' if bundled and Path(adapter).resolve() == bundled else adapter}"
        self.affect = None
        if projector:
            from affect_llm.projector.affect_lm import AffectLM

            self.affect = AffectLM.from_pretrained(projector, self.model, self.tokenizer)
            self.model_id = f"{self.model_id}+projector"
        self.accepts_media = self.affect is not None
        self.model.eval()
        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token

    def prompt_text(self, messages: list[Message]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(
        self,
        batch: list[list[Message]],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        json_schema: dict[str, Any] | None = None,
        media: list[dict[str, Any]] | None = None,
    ) -> list[Generation]:
        """`media`: per conversation {"audio"|"face": path or array} for the soft-token placeholders."""
        import torch
        from transformers import LogitsProcessorList

        prompts = [self.prompt_text(m) for m in batch]
        if self.affect is not None:  # spliced prompt embeddings (+ the ids, with pad ids in the slots)
            enc = self.affect.prompt_batch(prompts, media or [{} for _ in prompts])
        else:
            if media and any(media):
                raise AffectError("audio/face soft tokens need a projector (load one with --projector DIR)")
            enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        processors = LogitsProcessorList()
        if json_schema is not None:
            from affect_llm.backends.json_constraint import JsonSchemaLogitsProcessor

            processors.append(JsonSchemaLogitsProcessor(self.tokenizer, json_schema))
        sample = temperature > 0
        kwargs: dict[str, Any] = dict(
            max_new_tokens=max_new_tokens,
            do_sample=sample,
            logits_processor=processors,
            repetition_penalty=self.repetition_penalty,
            return_dict_in_generate=True,
            output_scores=True,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        if sample:
            kwargs.update(temperature=temperature, top_p=1.0, top_k=0)
            torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        n_prompt = enc["input_ids"].shape[1]
        new = out.sequences[:, n_prompt:]
        # Scores are the processed logits: with a schema, probabilities renormalised over valid tokens.
        logps = torch.stack(out.scores, dim=1).float().log_softmax(-1)
        chosen = logps.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        results = []
        eos = self.tokenizer.eos_token_id
        for row in range(new.shape[0]):
            ids = new[row].tolist()
            n = len(ids)
            finish = "length"
            if eos in ids:
                n = ids.index(eos)
                finish = "stop"
            pieces = _pieces(self.tokenizer, ids[:n])
            results.append(
                Generation(
                    text="".join(pieces),
                    pieces=pieces,
                    logprobs=[float(x) for x in chosen[row, :n]],
                    prompt_tokens=int(enc["attention_mask"][row].sum()),
                    completion_tokens=n,
                    finish_reason=finish,
                )
            )
        return results


def _pieces(tokenizer, ids: list[int]) -> list[str]:
    """Text added by each token, from incremental decoding (handles multi-byte characters)."""
    pieces, prev = [], ""
    for k in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:k], skip_special_tokens=True)
        if text.endswith("\ufffd") and k < len(ids):
            pieces.append("")  # incomplete UTF-8 sequence: the next token completes it
            continue
        pieces.append(text[len(prev):])
        prev = text
    return pieces


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


def _attach_adapter(model, adapter: str):
    check_adapter_dir(adapter)
    try:
        from peft import PeftModel
    except ImportError:
        raise AffectError("adapters need the train extra: pip install 'affect-llm[train]'") from None
    # One adapter per backend: fold it into the weights, so generation costs what the bare model costs.
    return PeftModel.from_pretrained(model, adapter).merge_and_unload()


register_backend("transformers")(TransformersBackend)
