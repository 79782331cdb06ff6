"""Cue-overlap and explanation metrics: splitter, embedding matching, grounding, score parsing, judge, CLI.

Hand-computed values use a fake embedder (fixed vectors per text) so the arithmetic is exact; the real
MiniLM and a tiny random Llama (the judge) run end to end once each.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from affect_llm.eval.cue_split import Clue, split_clues, split_sentences
from affect_llm.eval.cues import CueSample, CueScorer, get_cue_metric, match_scores, score_cues
from affect_llm.eval.grounding import (
    aggregate_grounding,
    cited_from_answer,
    evidence_from_input,
    grounding_scores,
    is_interpretation,
)
from affect_llm.eval.judge import Judge, parse_label_list, parse_score, score_schema

from affect_llm.errors import AffectError, UnknownNameError


# --------------------------------------------------------------------------- clause splitter
def test_splitter_headers_connectives_and_modalities():
    text = "In the video, he frowns deeply, with lips pressed tight. In the audio, the voice is loud and fast."
    assert split_clues(text) == [
        Clue("he frowns deeply", "face"),
        Clue("lips pressed tight", "face"),
        Clue("the voice is loud and fast", "speech"),
    ]


def test_splitter_short_fragments_join_and_quotes_stay_whole():
    text = ('The tone is heavy.In the text, the subtitle reads: "I, I, I don\'t know. Go." '
            "She may feel nervous, uneasy, and worried.")
    assert split_clues(text) == [
        Clue("The tone is heavy", None),
        Clue('the subtitle reads: "I, I, I don\'t know. Go."', "text"),
        Clue("She may feel nervous, uneasy, worried", "text"),
    ]


def test_splitter_abbreviations_decimals_synthesis_and_empty():
    assert split_sentences("Dr. Wang waited 3.5 seconds. Then he left!") == [
        "Dr. Wang waited 3.5 seconds.", "Then he left!"]
    text = "In the audio, the voice trembles slightly. Based on the trembling voice, he is afraid."
    assert split_clues(text) == [Clue("the voice trembles slightly", "speech"),
                                 Clue("Based on the trembling voice", None), Clue("he is afraid", None)]
    assert split_clues("") == [] and split_clues("   ") == []


# --------------------------------------------------------------------------- embedding matching
def test_match_scores_threshold_hand_computed():
    sim = np.array([[0.9, 0.2, 0.1], [0.3, 0.55, 0.65]])
    hard, soft = match_scores(sim, 0.6)
    assert hard.precision == pytest.approx(2 / 3) and hard.recall == 1.0
    assert hard.f1 == pytest.approx(0.8)
    sp, sr = (0.9 + 0.55 + 0.65) / 3, (0.9 + 0.65) / 2
    assert soft.precision == pytest.approx(sp) and soft.recall == pytest.approx(sr)
    assert soft.f1 == pytest.approx(2 * sp * sr / (sp + sr))
    # A cosine exactly at the threshold matches.
    assert match_scores(np.array([[0.6]]), 0.6)[0].f1 == 1.0
    # No gold cues: not scored; no predicted cues: zero.
    assert match_scores(np.zeros((0, 2)), 0.6) == (None, None)
    assert match_scores(np.zeros((2, 0)), 0.6)[0].f1 == 0.0


class FakeEmbedder:
    """Fixed unit vectors per text: cos(a, a') = 0.8, every other pair is orthogonal or as set below."""

    model_id = "fake"

    def __init__(self, table: dict[str, list[float]]):
        self.table = table

    def encode(self, texts):
        return np.array([self.table[t] for t in texts], dtype=np.float32)


def _vec(*xs: float) -> list[float]:
    return list(xs) + [0.0] * (5 - len(xs))


FAKE = FakeEmbedder({
    "he frowns deeply": _vec(1),
    "his brows are knitted": _vec(0.8, 0.6),
    "the voice is loud and fast": _vec(0, 0, 1),
    "he speaks slowly and softly": _vec(0, 0, 0, 1),
    "a smile crosses her face": _vec(0, 0, 0, 0, 1),
})


def test_cue_scorer_end_to_end_on_fake_vectors():
    gold = "In the video, he frowns deeply. In the audio, the voice is loud and fast."
    pred = "In the video, his brows are knitted. In the audio, he speaks slowly and softly."
    hard_at = {}
    for thr in (0.7, 0.9):
        report = score_cues([CueSample("a", gold, pred), CueSample("b", gold, "")],
                            metrics=["cue_f1", "cue_soft_f1"], scorer=CueScorer(FAKE, threshold=thr))
        hard_at[thr] = report.metrics["cue_f1"]
    # thr 0.7: one of two predicted cues matches (0.8), one of two gold cues is recalled → p = r = 0.5 for
    # sample a; sample b has no prediction → 0. Means: P = R = 0.25, F = 0.25.
    assert hard_at[0.7] == {"f1": pytest.approx(0.25), "precision": pytest.approx(0.25),
                            "recall": pytest.approx(0.25), "n": 2}
    assert hard_at[0.9]["f1"] == 0.0
    soft = report.metrics["cue_soft_f1"]
    assert soft["precision"] == pytest.approx((0.8 + 0.0) / 2 / 2)


def test_cue_metric_registry_and_judge_requirement():
    assert get_cue_metric("cue_f1").direction == "higher"
    with pytest.raises(UnknownNameError, match="cue_f1"):
        get_cue_metric("bleu")
    with pytest.raises(AffectError, match="--judge"):
        score_cues([CueSample("a", "x y z", "x y z")], metrics=["clue_overlap"], scorer=CueScorer(FAKE))


# --------------------------------------------------------------------------- grounding
def test_grounding_rate_hand_computed():
    ev = evidence_from_input({
        "transcript": "I can't believe you forgot my birthday again.",
        "cues": [{"modality": "face", "cue": "a smile crosses her face", "evidence": "AU12 0.7"}],
    })
    assert [u.modality for u in ev.units] == ["face", "text"]
    cited = cited_from_answer([
        {"modality": "face", "cue": "a smile crosses her face", "evidence": ""},         # same phrase: cos 1
        {"modality": "text", "cue": "blames the listener", "evidence": "forgot my birthday"},  # quoted words present
        {"modality": "speech", "cue": "he speaks slowly and softly", "evidence": ""},    # no speech in the input
    ])
    table = dict(FAKE.table)
    table["I can't believe you forgot my birthday again."] = _vec(0, 1)
    table["blames the listener"] = _vec(0, 0, 0, 1)
    scorer = CueScorer(FakeEmbedder(table), threshold=0.6)
    (g,) = grounding_scores([cited], [ev], scorer.embed, scorer.threshold)
    assert g.flags == (True, True, False) and g.rate == pytest.approx(2 / 3)
    # A second sample citing one supported cue: macro = (2/3 + 1) / 2, micro = 3/4; no input → not scored.
    (g2,) = grounding_scores([cited[:1]], [ev], scorer.embed, 0.6)
    agg = aggregate_grounding([g, g2, None])
    assert agg["rate"] == pytest.approx((2 / 3 + 1) / 2) and agg["micro"] == pytest.approx(3 / 4)
    assert agg["n"] == 2 and agg["cited"] == 4


def test_interpretations_are_not_cited_cues():
    assert is_interpretation("we can infer that she is sad")
    assert is_interpretation("This suggests he is joking")
    assert not is_interpretation("his brows are knitted")
    assert not is_interpretation('the subtitle reads: "It may rain."')
    clues = cited_from_answer(None, "In the video, he frowns deeply. This may indicate anger.")
    assert clues == [Clue("he frowns deeply", "face")]
    with pytest.raises(AffectError, match="modality"):
        cited_from_answer([{"modality": "smell", "cue": "x"}])


# --------------------------------------------------------------------------- score parsing
@pytest.mark.parametrize("text,expected", [
    ('{"score": 7}', 7.0),
    ('{"score": "8"}', 8.0),
    ("'预测分数'：6；'原因'：两者情感一致", 6.0),
    ("Score: 8/10. The clues overlap.", 8.0),
    ("I would give it 10 out of 10", 10.0),
    ("The score is 12, no wait, 9.", 9.0),
    ("7.5", 7.5),
    ("0", None),
    ("11", None),
    ("no idea", None),
    ("", None),
])
def test_parse_score(text, expected):
    assert parse_score(text) == expected


@pytest.mark.parametrize("text,expected", [
    ("[happy, sad, angry]", ["happy", "sad", "angry"]),
    ('Output: ["Happy", "sad", "happy"]', ["happy", "sad"]),
    ("[]", []),
    ("relieved, humorous", ["relieved", "humorous"]),
    ('{"labels": ["joy"]}', ["joy"]),
])
def test_parse_label_list(text, expected):
    assert parse_label_list(text) == expected


def test_score_schema_is_integer_1_to_10():
    prop = score_schema()["properties"]["score"]
    assert prop["type"] == "integer" and prop["enum"] == list(range(1, 11))


# --------------------------------------------------------------------------- judge on a tiny random Llama
def test_judge_end_to_end_tiny_llama(tiny_llama_dir, tmp_path):
    from affect_llm.backends import make_backend

    judge = Judge(make_backend("transformers", model=str(tiny_llama_dir), dtype="float32"), cache=tmp_path / "c")
    gold = ["In the video, he frowns deeply. In the audio, the voice is loud.", ""]
    pred = ["He looks angry and shouts.", "whatever"]
    scores = judge.clue_overlap(gold, pred)
    # Constrained decoding: an integer in 1..10 whatever the random weights say; empty gold → not scored.
    assert scores[1] is None
    assert scores[0] is not None and float(scores[0]).is_integer() and 1 <= scores[0] <= 10
    assert judge.generated == 1
    labels = judge.extract_labels(pred)
    assert all(isinstance(x, list) and all(isinstance(s, str) for s in x) for x in labels)
    # Cached: same answers, no new generation.
    before = judge.generated
    assert judge.clue_overlap(gold, pred) == scores and judge.generated == before and judge.cache_hits >= 1
    info = judge.info()
    assert info["templates"]["judge_clue_overlap"].startswith("judge_clue_overlap@") and info["temperature"] == 0.0


# --------------------------------------------------------------------------- CLI with the real MiniLM
def _minilm_or_skip():
    from affect_llm.assets import MissingAssetError, asset_path

    try:
        asset_path("minilm")
    except MissingAssetError:
        pytest.skip("minilm asset not pulled")


def test_cli_eval_cues_json_and_errors(tmp_path, capsys, tiny_llama_dir):
    _minilm_or_skip()
    from affect_llm.cli.app import main

    gold = tmp_path / "gold.jsonl"
    pred = tmp_path / "pred.jsonl"
    gold.write_text("\n".join(json.dumps(x) for x in [
        {"id": "a", "description": "In the video, she smiles broadly. In the audio, her voice is bright and lively.",
         "labels": ["happy"], "input": {"transcript": "We won!", "cues": [{"modality": "face", "cue": "smiling"}]}},
        {"id": "b", "description": "In the video, he frowns and clenches his jaw. In the audio, he shouts."},
    ]) + "\n")
    pred.write_text(json.dumps({"id": "a", "explanation": "In the video, she is smiling widely. In the audio, "
                                "the voice sounds bright and lively."}) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["eval", "cues", "--pred", str(pred), "--gold", str(gold), "--json", "--judge", str(tiny_llama_dir),
              "--judge-cache", str(tmp_path / "cache"), "--metrics", "cue_f1,grounding_rate,label_overlap,ov_extracted"])
    assert e.value.code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n"] == 2
    f1 = doc["metrics"]["cue_f1"]
    # Sample a: paraphrased cues match; sample b has no prediction → 0. So F is about one half.
    assert 0.4 < f1["f1"] <= 0.5 and f1["n"] == 2
    assert doc["metrics"]["grounding_rate"]["n"] == 1
    assert doc["config"]["labels"]["gold"] == {"given": 1, "extracted": 1}
    lo = doc["metrics"]["label_overlap"]
    assert lo["n"] + lo["failed"] >= 1 and (lo["mean"] is None or 1 <= lo["mean"] <= 10)
    assert "m_avg" in doc["metrics"]["ov_extracted"]
    assert doc["config"]["judge"]["templates"]["extract_labels"].startswith("extract_labels@")
    assert doc["directions"]["cue_f1"] == "higher" and not math.isnan(doc["headline"]["cue_f1"])

    pred.write_text(json.dumps({"id": "zzz", "explanation": "x"}) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["eval", "cues", "--pred", str(pred), "--gold", str(gold)])
    assert e.value.code == 2
    assert "not in the gold file" in capsys.readouterr().err


def test_reader_takes_run_predictions_and_canonical_gold(tmp_path):
    from affect_llm.eval.cues import align_cue_files, read_cue_file

    gold = tmp_path / "g.jsonl"
    gold.write_text("\n".join(json.dumps(x) for x in [
        {"id": "a", "dataset": "d", "split": "test", "text": "We won!", "labels": ["joy"], "description": "She beams.",
         "cues": [{"modality": "face", "cue": "smiling", "evidence": ""}], "context": [{"speaker": "B", "text": "And?"}]},
        {"id": "b", "text": "Fine.", "openset": "[calm, neutral]", "description": "He shrugs."},
    ]))
    pred = tmp_path / "p.jsonl"
    pred.write_text("\n".join(json.dumps(x) for x in [
        {"id": "a", "input": "3f2a9c", "labels": ["joy"], "explanation": "She smiles.",
         "cues": [{"modality": "face", "cue": "smiling", "evidence": ""}]},
        {"id": "b", "input": "77aa01", "labels": [], "confidence": None, "error": "no labels"},
    ]))
    samples = align_cue_files(read_cue_file(gold, "gold"), read_cue_file(pred, "prediction"))
    a, b = samples
    assert a.gold_text == "She beams." and a.pred_text == "She smiles." and a.pred_cues == [Clue("smiling", "face")]
    assert [u.modality for u in a.evidence.units] == ["face", "text", "context"]
    assert b.pred_text == "" and b.gold_labels == ["calm", "neutral"] and b.evidence.words == ["Fine."]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "labels": []}\n')
    with pytest.raises(AffectError, match=r"bad.jsonl:1: needs a description"):
        read_cue_file(bad, "prediction")
