"""The llama.cpp backend: the GGUF written from our checkpoint computes what transformers computes, the
prefix cache gives the same logits as a fresh context, and an explain answer keeps every guarantee."""

from __future__ import annotations

import pytest

from tests.conftest import default_llm_dir

pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def backend():
    default_llm_dir()  # skips when the asset is not pulled
    from affect_llm.assets import resolve_adapter
    from affect_llm.backends.llamacpp_backend import LlamaCppBackend

    return LlamaCppBackend(adapter=resolve_adapter("default", None), threads=1)


def test_gguf_logits_match_transformers(backend):
    """Q8_0 weights, permuted q/k heads: llama.cpp's next-token logits follow the float32 model's."""
    import torch
    from transformers import AutoModelForCausalLM

    from affect_llm.assets import resolve_adapter
    from affect_llm.backends.llamacpp_backend import checkpoint_for

    source, _ = checkpoint_for(None, resolve_adapter("default", None))
    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32).eval()
    msgs = [{"role": "user", "content": "My dog died this morning and I keep looking for him."}]
    ids = backend.tokenizer(backend.prompt_text(msgs), add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        ref = model(input_ids=torch.tensor([ids])).logits[0, -1].numpy()
    got = backend.lm.logits(ids)
    assert got.shape == ref.shape
    assert int(got.argmax()) == int(ref.argmax())
    top = ref.argsort()[-20:]
    # Scrambled q/k heads (a wrong permutation) move these by several units; Q8_0 rounding (and f16 attention)
    # by up to ~0.76 on short chat prompts.
    assert abs(got[top] - ref[top]).max() < 1.0
    assert torch.corrcoef(torch.tensor([got, ref]))[0, 1] > 0.99


def test_prefix_cache_gives_fresh_logits(backend):
    import numpy as np

    from affect_llm.backends.llamacpp_backend import LlamaCppEngine

    tok = backend.tokenizer
    a = tok("The system line. Then: I am so happy today!", add_special_tokens=False)["input_ids"]
    b = tok("The system line. Then: why would you do that to me?", add_special_tokens=False)["input_ids"]
    lm = backend.lm
    lm.logits(a)
    reused = lm.logits(b)  # keeps the common head, recomputes the rest
    again = lm.logits(b)  # everything cached: re-evaluates the last token only
    fresh_engine = LlamaCppEngine(lm.gguf_path, threads=1, n_ctx=256)
    fresh = fresh_engine.logits(b)
    fresh_engine.close()
    np.testing.assert_allclose(reused, fresh, atol=1e-3)
    np.testing.assert_allclose(again, fresh, atol=1e-3)


def test_explain_through_llamacpp_is_grounded(backend):
    from affect_llm.explanations import explanation_problems
    from affect_llm.pipeline import Explainer, request_from

    text = "Get out of my room right now!"
    ex = Explainer(backend=backend)
    rep = ex.explain(text)
    assert rep.labels and 0.0 < rep.confidence <= 1.0
    assert rep.cues and all(c.evidence in text for c in rep.cues)
    assert explanation_problems(rep.explanation, text) == []
    assert ex.explain(text).explanation == rep.explanation  # a repeated query gets the same answer
    # A batch decodes its rows together (rounding then depends on the batch, so no equality with the single
    # answer is asked), keeps every guarantee, and answers the same batch the same way.
    reqs = [request_from(text=text), request_from(text="We won the final!")]
    two = ex.explain_many(reqs, batch_size=2)
    for got, src in zip(two, ("Get out of my room right now!", "We won the final!")):
        assert got.labels and got.cues and all(c.evidence in src for c in got.cues)
        assert explanation_problems(got.explanation, src) == []
    assert [r.explanation for r in ex.explain_many(reqs, batch_size=2)] == [r.explanation for r in two]


def test_rows_of_a_batch_see_only_their_own_prompt(backend):
    """Seq ids, positions and the shared head are right: each row's logits are those of its prompt alone."""
    import numpy as np

    tok, lm = backend.tokenizer, backend.lm
    head = tok("The system line. Then:", add_special_tokens=False)["input_ids"]
    a = head + tok(" I am so happy today!", add_special_tokens=False)["input_ids"]
    b = head + tok(" why would you do that to me? Tell me now", add_special_tokens=False)["input_ids"]
    nxt = 1234
    ref_a, ref_b, ref_b2 = lm.logits(a), lm.logits(b), lm.logits(b + [nxt])
    first = lm.start_rows([a, b], head)
    second = lm.step_rows({1: [nxt]})  # row 0 waits: only row 1 steps
    lm.end_rows()
    for got, ref in ((first[0], ref_a), (first[1], ref_b), (second[1], ref_b2)):
        assert int(got.argmax()) == int(ref.argmax())
        np.testing.assert_allclose(got, ref, atol=0.1)  # another row, or a wrong position, moves them by units
    assert lm.rows == []


def test_unknown_gguf_type_is_one_line_error(tmp_path):
    from affect_llm.backends.gguf_export import export_gguf
    from affect_llm.errors import AffectError

    with pytest.raises(AffectError, match="unknown GGUF type"):
        export_gguf(tmp_path, tmp_path / "x.gguf", tmp_path / "y.gguf", qtype="Q3_K")


def test_cancelled_batch_still_answers_every_row(backend):
    msgs = [[{"role": "user", "content": "Hello there"}]] * 3
    out = backend.generate(msgs, max_new_tokens=4, cancelled=lambda: True)
    assert len(out) == 3 and all(g.finish_reason == "cancelled" and g.text == "" for g in out)


def test_llamacpp_answers_without_importing_torch():
    """torch's import is 2.3 s of a cold CLI answer; the llama.cpp path must not need it."""
    import os
    import subprocess
    import sys

    default_llm_dir()
    code = ("import sys\n"
            "from affect_llm.pipeline import Explainer\n"
            "ex = Explainer(backend='auto')\n"
            "rep = ex.explain('We won the final!')\n"
            "assert rep.labels and ex.backend.name == 'llamacpp', rep\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "AFFECT_LLM_DEVICE": "cpu"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "False"
