"""Training rows use the inference prompt code path (ExplainTask) and the served answer format."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest
from affect_llm.data_builders.schema import Sample

from affect_llm.schema import Cue
from affect_llm.train import data


def sample(**kw) -> Sample:
    base = dict(id="s1", dataset="t", split="train", text="I can't believe you forgot again!", labels=["anger"],
                speaker="Monica", context=[{"speaker": "Ross", "text": "Sorry, what day is it?"}])
    base.update(kw)
    return Sample(**base)


def test_sft_prompt_is_the_explain_prompt():
    from affect_llm.pipeline import ExplainRequest

    s = sample()
    row = data.sft_rows([s])[0]
    prep = data.explain_task().prepare(ExplainRequest(text=s.text, speaker=s.speaker, context=s.context))
    assert row["prompt"] == prep.messages
    body = json.loads(row["completion"][0]["content"])
    assert list(body) == ["labels", "cues", "explanation"]  # the schema's decoding order
    assert body["labels"] == ["anger"]
    jsonschema.validate(body, prep.schema)  # the target is an answer constrained decoding can write
    assert body["cues"] and all(c in {e.id for e in prep.evidence} for c in body["cues"])


def test_target_explanation_names_the_label_and_quotes_evidence():
    s = sample()
    row = data.sft_rows([s])[0]
    body = json.loads(row["completion"][0]["content"])
    assert "anger" in body["explanation"] or "angry" in body["explanation"]
    assert '"' in body["explanation"] or "'s " in body["explanation"]


def test_target_phrasings_vary_across_samples():
    rows = data.sft_rows([sample(id=f"s{i}") for i in range(30)])
    shapes = {json.loads(r["completion"][0]["content"])["explanation"].split('"')[0] for r in rows}
    assert len(shapes) >= 3


def test_closed_label_space_one_label():
    s = sample(label_space="meld7")
    row = data.sft_rows([s], closed_label_space=True)[0]
    req = data.request_for(s, closed_label_space=True)
    assert req.label_space and "anger" in req.label_space
    assert row["prompt"] == data.explain_task().prepare(req).messages
    assert "Choose one label from" in row["prompt"][1]["content"]


def test_closed_label_space_share_is_seeded():
    samples = [sample(id=f"x{i}", label_space="meld7") for i in range(200)]
    closed = [data.request_for(s, 0.5).label_space is not None for s in samples]
    assert 60 < sum(closed) < 140
    assert closed == [data.request_for(s, 0.5).label_space is not None for s in samples]


def test_labels_mapped_into_vocabulary_or_dropped():
    body = json.loads(data.sft_rows([sample(labels=["mad", "scared"])])[0]["completion"][0]["content"])
    assert body["labels"] == ["anger"]  # mad -> anger; open answers carry one label
    assert data.sft_rows([sample(labels=["zzz"])]) == []
    free = json.loads(data.sft_rows([sample(labels=["zzz"])], label_vocabulary="free")[0]["completion"][0]["content"])
    assert free["labels"] == ["zzz"]


def test_description_becomes_explanation_and_is_clipped():
    body = json.loads(data.sft_rows([sample(description="x " * 200)])[0]["completion"][0]["content"])
    assert len(body["explanation"]) <= 140


def test_dpo_negatives():
    s = sample(cues=[Cue(modality="speech", cue="raised voice", evidence="loudness +8 dB")])
    (_, prep, chosen), = data.prepared_targets([s])
    negs = dict(data.negative_answers(prep, chosen, ["hallucinated_cue", "spurious_label", "text_only"],
                                      random.Random(0)))
    assert set(negs) == {"hallucinated_cue", "spurious_label", "text_only"}
    assert json.loads(negs["hallucinated_cue"])["cues"] == []
    good = json.loads(chosen)
    assert json.loads(negs["spurious_label"])["labels"] != good["labels"]
    text_ids = {e.id for e in prep.evidence if e.modality == "text"}
    assert set(json.loads(negs["text_only"])["cues"]) <= text_ids
    (_, plain_prep, plain_chosen), = data.prepared_targets([sample()])
    assert [k for k, _ in data.negative_answers(plain_prep, plain_chosen, ["text_only"], random.Random(0))] == []


def test_dpo_rows_from_pairs_and_samples():
    from affect_llm.data_builders.schema import PreferencePair

    p = PreferencePair(id="p", dataset="emoprefer", split="all", prompt="Describe.", chosen="A", rejected="B")
    rows = data.dpo_rows([sample()], [p], kinds=["spurious_label"])
    assert rows[0] == {"prompt": [{"role": "user", "content": "Describe."}],
                       "chosen": [{"role": "assistant", "content": "A"}],
                       "rejected": [{"role": "assistant", "content": "B"}]}
    assert len(rows) == 2 and rows[1]["chosen"] != rows[1]["rejected"]


def test_grpo_rows_carry_gold():
    rows = data.grpo_rows([sample(labels=["anger", "frustration"])])
    assert rows[0]["gold_labels"] == ["anger", "frustration"]


@pytest.mark.parametrize("vocab", ["emotions", "free"])
def test_task_vocab(vocab):
    task = data.explain_task(vocab)
    assert (task.label_vocabulary is None) == (vocab == "free")
