"""OV-MER metrics (hand-computed and against a transcription of the official code), hit rate,
classification, calibration and the metric registry."""

from __future__ import annotations

import csv
import importlib.util
import random
from pathlib import Path

import pytest
from affect_llm.eval import calibration, classification
from affect_llm.eval.metrics import METRICS, Context, Example, compute, get_metric
from affect_llm.eval.ov import (
    aggregate_prf,
    evaluate_ov,
    hit_rate,
    ov_sample_scores,
    ov_sample_scores_all,
    sample_hits,
    score_ov,
    soft_sample_scores,
    string_to_list,
)

from affect_llm.errors import AffectError, UnknownNameError
from affect_llm.emotion_wheel import OV_METRICS, EmotionWheel

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"

# A: partial hit; B: gold out of vocabulary (skipped); C: empty prediction; D: duplicates, case, OOV;
# E: "abashed" is 'sad' on wheel 1 but 'disgust' on wheel 4.
GOLD = [["happy", "worried"], ["humorous"], ["sad"], ["Sad", "sad"], ["abashed"]]
PRED = [[" Joyful "], ["happy"], [], ["sad", "angry", "xyz"], ["sad"]]


def _official():
    spec = importlib.util.spec_from_file_location("ov_official", REPO / "bench" / "ov_official.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hand_computed_corpus():
    s = score_ov(GOLD, PRED)
    # wheel1 level1 — A: G={happy, scared} P={happy} → p 1, r .5; C: 0, 0; D: G={sad} P={sad, mad} → .5, 1;
    # E: G={sad} P={sad} → 1, 1.  P = R = 2.5 / 4.
    assert s["wheel1_level1"].precision == pytest.approx(0.625)
    assert s["wheel1_level1"].recall == pytest.approx(0.625)
    assert s["wheel1_level1"].n == 4
    # wheel4 level1 differs only in E: G={disgust} P={sad} → 0, 0.
    assert s["wheel4_level1"].precision == pytest.approx(0.375)
    assert s["wheel4_level1"].f1 == pytest.approx(0.375)
    # M1 — happiness/worried vs joy: 0; D: .5, 1; E: abashed vs sad: 0 → P .125, R .25, F 1/6.
    assert (s["m1"].precision, s["m1"].recall) == pytest.approx((0.125, 0.25))
    assert s["m1"].f1 == pytest.approx(1 / 6)
    # M2 — A: {joy, anxious} vs {joy} → 1, .5; D: .5, 1; E: ashamed vs depressed: 0.
    assert (s["m2"].precision, s["m2"].recall, s["m2"].f1) == pytest.approx((0.375, 0.375, 0.375))


def test_per_sample_scores():
    assert ov_sample_scores(["humorous"], ["happy"]) is None  # skipped gold
    assert ov_sample_scores(["sad"], []) == (0.0, 0.0, 0.0)  # empty prediction
    assert ov_sample_scores(["sad"], ["xyz"]) == (0.0, 0.0, 0.0)  # prediction maps to nothing
    p, r, f = ov_sample_scores(["happy", "worried"], [" Joyful "], metric="case3_wheel1_level1")
    assert (p, r, f) == pytest.approx((1.0, 0.5, 2 / 3))
    assert ov_sample_scores(["abashed"], ["sad"], metric="wheel4_level1") == (0.0, 0.0, 0.0)
    assert ov_sample_scores(["abashed"], ["sad"], metric="wheel1_level1") == (1.0, 1.0, 1.0)


def test_nothing_scored_gives_zero_not_nan():
    s = score_ov([["humorous"], []], [["happy"], ["sad"]])
    assert all(v.n == 0 and v.f1 == 0.0 and v.precision == 0.0 for v in s.values())
    assert evaluate_ov([], [])["m_avg"] == 0.0


def test_summary_shape_and_averages():
    doc = evaluate_ov(GOLD, PRED)
    assert set(doc) == {"m1", "m2", "wheels", "ew_level1", "ew_level2", "m_avg"}
    assert set(doc["m1"]) == {"f1", "precision", "recall"}
    assert set(doc["wheels"]) == {f"wheel{k}" for k in range(1, 6)}
    assert set(doc["wheels"]["wheel3"]["level2"]) == {"f1", "precision", "recall", "n"}
    for lv in ("level1", "level2"):
        for key in ("f1", "precision", "recall"):
            mean = sum(doc["wheels"][f"wheel{k}"][lv][key] for k in range(1, 6)) / 5
            assert doc[f"ew_{lv}"][key] == pytest.approx(mean)
    twelve = [doc["m1"]["f1"], doc["m2"]["f1"]] + [
        doc["wheels"][f"wheel{k}"][lv]["f1"] for k in range(1, 6) for lv in ("level1", "level2")
    ]
    assert doc["m_avg"] == pytest.approx(sum(twelve) / 12)


def _random_corpus(n: int, seed: int):
    rng = random.Random(seed)
    vocab = sorted(EmotionWheel.default().vocabulary)

    def lab():
        x = rng.random()
        if x < 0.15:
            return rng.choice(["humorous", "", " ", "meh"])
        w = rng.choice(vocab)
        return f" {w.upper()} " if x < 0.25 else w

    gold = [[lab() for _ in range(rng.randint(0, 5))] for _ in range(n)]
    pred = [[lab() for _ in range(rng.randint(0, 5))] for _ in range(n)]
    return gold, pred


def test_fast_corpus_path_equals_official_transcription_and_per_sample_path():
    gold, pred = _random_corpus(400, seed=1)
    ours = evaluate_ov(gold, pred)
    ids = [f"s{i}" for i in range(len(gold))]
    ref = _official().evaluate(dict(zip(ids, gold)), dict(zip(ids, pred)))
    assert ours == ref  # bit-identical floats
    fast = score_ov(gold, pred)
    records = [ov_sample_scores_all(g, p) for g, p in zip(gold, pred)]
    for m in OV_METRICS:
        assert aggregate_prf(r[m] for r in records) == fast[m]
    assert aggregate_prf(ov_sample_scores(g, p, metric="m2") for g, p in zip(gold, pred)) == fast["m2"]


def test_gold_against_itself_scores_one_on_ov_merd():
    path = SHARED / "data" / "OV-MERD" / "ov_labels.csv"
    if not path.is_file():
        pytest.skip(f"{path} not available")
    with path.open(encoding="utf-8") as fh:
        gold = [string_to_list(row["openset"]) for row in csv.DictReader(fh)]
    assert len(gold) == 332
    doc = evaluate_ov(gold, gold)
    assert doc["m_avg"] == 1.0
    assert doc["ew_level1"] == {"f1": 1.0, "precision": 1.0, "recall": 1.0}
    assert all(doc["wheels"][w][lv]["n"] > 0 for w in doc["wheels"] for lv in ("level1", "level2"))


def test_string_to_list_matches_official_parsing():
    assert string_to_list("['happy', 'sad']") == ["happy", "sad"]
    assert string_to_list("[worried, tense ]") == ["worried", "tense"]
    assert string_to_list('["a", "b"]') == ["a", "b"]
    assert string_to_list("happy") == ["happy"]
    assert string_to_list("") == [] and string_to_list("[]") == [] and string_to_list(None) == []
    assert string_to_list(["x", "y"]) == ["x", "y"]


def test_soft_scores_give_partial_credit():
    assert soft_sample_scores(["happy"], ["happy"]) == (1.0, 1.0, 1.0)
    p, r, f = soft_sample_scores(["happy"], ["joyful"])  # same coarse cluster, fine only on wheels 3-5
    assert (p, r, f) == pytest.approx((0.8, 0.8, 0.8))
    assert soft_sample_scores(["happy"], ["sad"]) == (0.0, 0.0, 0.0)
    assert soft_sample_scores(["humorous"], ["happy"]) is None
    assert soft_sample_scores(["happy"], ["humorous"]) == (0.0, 0.0, 0.0)


def test_hit_rate():
    # happy vs joyful: same level-1 cluster on all five wheels → 1; angry vs sad → 0; neutral is not
    # in the mapping → not counted.
    assert sample_hits(["happy"], ["joyful", "sad"]) == (1, 1, 1, 1, 1)
    assert sample_hits(["neutral"], ["sad"]) == (None,) * 5
    assert hit_rate([["happy"], ["angry"], ["neutral"]], [["joyful", "sad"], ["sad"], ["sad"]]) == 0.5
    assert hit_rate([], []) == 0.0


# --------------------------------------------------------------------------- classification
CG = [["a"], ["a"], ["b"], ["B "], ["c"]]
CP = [["a"], ["b"], ["b"], [], ["a", "c"]]


def test_classification_hand_computed():
    c = classification.Counts.from_pairs(classification.pair(g, p) for g, p in zip(CG, CP))
    # a: tp1 fp1 fn1 → F .5; b: tp1 fp1 fn1 (empty answer) → .5; c: tp0 → 0.
    assert classification.accuracy(c) == pytest.approx(0.4)
    assert classification.macro_f1(c) == pytest.approx(1 / 3)
    assert classification.weighted_f1(c) == pytest.approx(0.4)
    assert classification.uar(c) == pytest.approx(1 / 3)
    assert classification.war(c) == pytest.approx(0.4)
    assert c.as_dict() == {
        "labels": ["a", "b", "c"],
        "columns": ["a", "b", "c", "(none)"],
        "matrix": [[1, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0]],
    }


def test_classification_agrees_with_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = random.Random(3)
    space = ["anger", "joy", "sadness", "neutral"]
    gold = [[rng.choice(space)] for _ in range(300)]
    pred = [[rng.choice(space + ["fear"])] if rng.random() > 0.1 else [] for _ in range(300)]
    y = [g[0] for g in gold]
    yhat = [p[0] if p else "(none)" for p in pred]
    ctx = Context(task="closed")
    ex = [Example(g, p) for g, p in zip(gold, pred)]
    labels = sorted(set(y) | {v for v in yhat if v != "(none)"})
    assert compute("macro_f1", ex, ctx) == pytest.approx(sk.f1_score(y, yhat, labels=labels, average="macro"))
    assert compute("weighted_f1", ex, ctx) == pytest.approx(sk.f1_score(y, yhat, labels=labels, average="weighted"))
    assert compute("accuracy", ex, ctx) == pytest.approx(sk.accuracy_score(y, yhat))
    assert compute("uar", ex, ctx) == pytest.approx(sk.recall_score(y, yhat, labels=sorted(set(y)), average="macro"))


def test_label_space_limits_macro_average_but_keeps_stray_answers_visible():
    ctx = Context(task="closed", label_space=["a", "b"])
    ex = [Example(["a"], ["a"]), Example(["b"], ["z"])]
    assert compute("macro_f1", ex, ctx) == pytest.approx(0.5)  # a: 1, b: 0; z is not averaged
    assert compute("confusion_matrix", ex, ctx)["columns"] == ["a", "b", "z"]


# --------------------------------------------------------------------------- calibration
def test_ece_and_brier_hand_computed():
    recs = [(0.9, 1.0), (0.8, 0.0), (0.3, 0.0), (0.35, 1.0), None]
    # bins 9, 8, 3, 3: .25·|1−.9| + .25·|0−.8| + .5·|.5−.325|
    assert calibration.ece(recs) == pytest.approx(0.3125)
    assert calibration.brier(recs) == pytest.approx((0.01 + 0.64 + 0.09 + 0.4225) / 4)
    assert calibration.ece([None]) is None and calibration.brier([]) is None
    assert calibration.ece([(1.0, 1.0)]) == 0.0


def test_calibration_targets_per_task():
    closed = Context(task="closed")
    assert compute("brier", [Example(["a"], ["a"], 0.75), Example(["a"], ["b"], None)], closed) == pytest.approx(0.0625)
    # Open vocabulary: the target is the mean level-1 precision over the wheels (here 1.0).
    assert compute("brier", [Example(["happy"], ["joyful"], 0.5)], Context(task="ov")) == pytest.approx(0.25)


# --------------------------------------------------------------------------- registry
def test_registry_names_directions_and_paths():
    assert get_metric("ece").direction == "lower" and get_metric("ov").direction == "higher"
    assert {"ov", "hit_rate", "accuracy", "macro_f1", "weighted_f1", "uar", "war", "confusion_matrix", "ece",
            "brier"} <= set(METRICS)
    with pytest.raises(UnknownNameError, match="choose one of"):
        get_metric("f2")
    with pytest.raises(AffectError, match="does not apply"):
        compute("accuracy", [Example(["a"], ["a"])], Context(task="ov"))
    ex = [Example(g, p) for g, p in zip(GOLD, PRED)]
    m = get_metric("ov")
    per_sample = m.aggregate([m.per_sample(e, Context()) for e in ex], Context())
    assert per_sample == compute("ov", ex)  # per-sample + aggregate == the vectorised batch path
    assert m.scalar(compute("ov", ex)) == compute("ov", ex)["m_avg"]
