"""Integration on a tiny random Llama (real tokenizer): generation, enforced JSON schema, batching."""

import json

import jsonschema
import pytest

from affect_llm.backends.transformers_backend import TransformersBackend
from affect_llm.pipeline import Explainer, request_from
from affect_llm.explain_task import answer_schema
from affect_llm.vocabulary import EMOTION_WORDS

MSG = [{"role": "system", "content": "You read emotions."}, {"role": "user", "content": "I lost my keys again!"}]


@pytest.fixture(scope="module")
def backend(tiny_llama_dir):
    return TransformersBackend(model=str(tiny_llama_dir), dtype="float32")


def test_free_generation_reports_tokens(backend):
    g = backend.generate([MSG], max_new_tokens=12)[0]
    assert g.completion_tokens <= 12
    assert "".join(g.pieces) == g.text
    assert len(g.logprobs) == g.completion_tokens
    assert all(lp <= 0.0 for lp in g.logprobs)


def test_random_model_is_forced_into_the_schema(backend):
    schema = answer_schema(["anger", "joy"], 2, ["E1", "E2"])
    g = backend.generate([MSG], max_new_tokens=400, json_schema=schema)[0]
    assert g.finish_reason == "stop", g.text
    jsonschema.validate(json.loads(g.text), schema)


def test_batch_matches_single(backend):
    other = [MSG[0], {"role": "user", "content": "Thank you so much, this is wonderful news."}]
    single = [backend.generate([m], max_new_tokens=10)[0].text for m in (MSG, other)]
    batched = [g.text for g in backend.generate([MSG, other], max_new_tokens=10)]
    assert batched == single


def test_sampling_is_seeded(backend):
    a = backend.generate([MSG], max_new_tokens=10, temperature=1.0, seed=7)[0].text
    b = backend.generate([MSG], max_new_tokens=10, temperature=1.0, seed=7)[0].text
    assert a == b


def test_decode_loop_matches_generate(backend):
    """Our decoding loop gives exactly transformers' greedy tokens (it only drops generate's overhead)."""
    import torch

    enc = backend.tokenizer([backend.prompt_text(MSG)], return_tensors="pt", add_special_tokens=False).to(backend.device)
    with torch.inference_mode():
        ref = backend.model.generate(**enc, max_new_tokens=12, min_new_tokens=12, do_sample=False,
                                     pad_token_id=backend.tokenizer.pad_token_id)
    ours = backend.generate([MSG], max_new_tokens=12)[0]
    want = ref[0, enc["input_ids"].shape[1]:].tolist()
    eos = backend.tokenizer.eos_token_id
    got = backend.tokenizer(ours.text, add_special_tokens=False)["input_ids"]
    assert got == [t for t in want if t != eos][: len(got)] and len(got) >= 1


def test_cancel_stops_generation(backend):
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) >= 3

    g = backend.generate([MSG], max_new_tokens=50, cancelled=cancelled)[0]
    assert g.completion_tokens == 3 and g.finish_reason == "cancelled"


def test_explainer_on_tiny_model(tiny_llama_dir):
    ex = Explainer(model=str(tiny_llama_dir), dtype="float32", max_new_tokens=400, label_model=None)
    reports = ex.explain_many(
        [request_from(text="I lost my keys again!"),
         request_from(text="Whatever.", label_space=["anger", "neutral"],
                      context=[{"speaker": "A", "text": "Are you coming?"}], speaker="B")],
        batch_size=2,
    )
    assert all(lbl in EMOTION_WORDS for lbl in reports[0].labels)
    assert reports[0].template.startswith("explain@")
    assert reports[1].labels[0] in ("anger", "neutral") and len(reports[1].labels) == 1
    assert reports[1].template.startswith("explain@")
    for r in reports:
        assert r.confidence is not None and 0.0 <= r.confidence <= 1.0
        assert r.timings["completion_tokens"] > 0
    assert ex.describe()["templates"]["explain"].startswith("explain@")


def test_label_prior_steers_the_label_choice(backend):
    """The label model's prior is added to the model's own score at the label: a near-certain prior wins."""
    schema = answer_schema(["anger", "joy", "neutral"], 1, ["E1"])
    for want in ("anger", "joy", "neutral"):
        prior = {lab: (0.998 if lab == want else 0.001) for lab in ("anger", "joy", "neutral")}
        g = backend.generate([MSG], max_new_tokens=60, json_schema=schema, label_priors=[prior])[0]
        assert json.loads(g.text)["labels"] == [want], g.text


def test_one_schema_per_row_in_one_batch(backend):
    """Explain answers differ in their enums; a batch takes one schema per conversation."""
    other = [MSG[0], {"role": "user", "content": "Thank you so much, this is wonderful news."}]
    a = answer_schema(["anger"], 1, ["E1"])
    b = answer_schema(["joy", "relief"], 1, ["E1", "E2", "E3"])
    gens = backend.generate([MSG, other], max_new_tokens=80, json_schema=[a, b])
    for g, sc in zip(gens, (a, b)):
        jsonschema.validate(json.loads(g.text, strict=False), sc)  # a random model may write raw tabs


def test_device_is_resolved_with_clear_errors(monkeypatch):
    import torch

    from affect_llm.backends.transformers_backend import resolve_device
    from affect_llm.errors import AffectError

    assert resolve_device("cpu").type == "cpu"
    monkeypatch.setenv("AFFECT_LLM_DEVICE", "cpu")
    assert resolve_device().type == "cpu"
    with pytest.raises(AffectError, match="unknown device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(AffectError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_cpu_and_default_device_agree(tiny_llama_dir, backend):
    """On a GPU host the default backend runs on CUDA: its constrained answer must be the CPU one."""
    cpu = TransformersBackend(model=str(tiny_llama_dir), dtype="float32", device="cpu")
    schema = answer_schema(["anger", "joy"], 2, ["E1", "E2"])
    priors = [{"anger": 0.9, "joy": 0.1}]
    a = cpu.generate([MSG], max_new_tokens=200, json_schema=schema, label_priors=priors)[0]
    b = backend.generate([MSG], max_new_tokens=200, json_schema=schema, label_priors=priors)[0]
    assert json.loads(a.text)["labels"] == json.loads(b.text)["labels"]
    assert a.finish_reason == b.finish_reason == "stop"
