"""Builders of the field's benchmark sets (IEMOCAP, CMU-MOSI/MOSEI, CH-SIMS/v2, MER2024/2025), each on
invented rows in the published file formats."""

from __future__ import annotations

from pathlib import Path

import pytest
from affect_llm.data_builders.registry import BUILDERS, build_dataset, run_builder
from affect_llm.data_builders.sentiment import mosi_label, sims_label

from affect_llm.errors import AffectError

FIX = Path(__file__).parent / "fixtures" / "data"


def build(name: str, folder: str, split: str, **opts):
    result, _ = run_builder(name, FIX / folder, split, {k: str(v) for k, v in opts.items()})
    return result


def test_iemocap_six_class_protocol_and_splits() -> None:
    train = build("iemocap", "IEMOCAP", "train")
    recs = train.records
    # the xxx (no agreement) turn stays in the context but is not a sample; turns follow start times
    assert [r.labels[0] for r in recs] == ["neutral", "frustrated", "excited", "sad"]
    assert [r.speaker for r in recs] == ["Ses01_F", "Ses01_M", "Ses01_F", "Ses01_F"]
    assert [t.text for t in recs[3].context][-1] == "That one is the old form."
    assert recs[1].meta["vad"] == [2.0, 3.5, 3.5] and recs[1].label_space == "iemocap6"
    assert train.skipped == {"label xxx outside the 6-class protocol": 1}
    assert {r.meta["session"] for r in recs} == {1}
    dev = build("iemocap", "IEMOCAP", "dev").records  # a fixed tenth of sessions 1-4
    assert {r.meta["dialogue_id"] for r in dev} == {"Ses02F_impro01"}
    test = build("iemocap", "IEMOCAP", "test").records
    assert {r.meta["session"] for r in test} == {5} and [r.labels[0] for r in test] == ["neutral", "excited", "frustrated"]


def test_iemocap_four_class_merges_excited_into_happy(tmp_path: Path) -> None:
    res = build("iemocap", "IEMOCAP", "test", classes=4)
    assert [r.labels for r in res.records] == [["neutral"], ["happy"]]
    assert res.label_space == "iemocap4" and "excited merged into happy" in res.notes[-1]
    assert [r.labels[0] for r in build("iemocap", "IEMOCAP", "train", classes=4).records] == ["neutral", "happy", "sad"]
    with pytest.raises(AffectError, match="does not look like IEMOCAP_full_release"):
        run_builder("iemocap", tmp_path, "test")


@pytest.mark.parametrize("score, classes, binary, label", [
    (2.6, "2", "non0", "positive"), (-0.4, "2", "non0", "negative"), (0.0, "2", "non0", None),
    (0.0, "2", "has0", "positive"), (2.5, "7", "non0", "positive"),  # round half to even, as np.round
    (-3.4, "7", "non0", "strongly negative"), (-0.5, "7", "non0", "neutral"), (1.6666666, "7", "non0", "positive"),
])
def test_mosi_binning(score: float, classes: str, binary: str, label: str | None) -> None:
    assert mosi_label(score, classes, binary) == label


@pytest.mark.parametrize("score, classes, label", [
    (0.0, "2", "negative"), (0.2, "2", "positive"), (-0.1, "3", "negative"), (0.1, "3", "neutral"),
    (0.2, "3", "positive"), (-0.7, "5", "strongly negative"), (0.7, "5", "weakly positive"),
    (0.8, "5", "strongly positive"), (-1.4, "5", "strongly negative"),
])
def test_sims_binning(score: float, classes: str, label: str) -> None:
    assert sims_label(score, classes) == label


def test_mosi_mosei_and_sims_builders() -> None:
    mosi = build("cmu-mosi", "CMU-MOSI", "test")
    assert [r.labels for r in mosi.records] == [["negative"], ["positive"]]
    assert mosi.skipped == {"score 0 (Acc-2 non0 leaves it out)": 1} and "Acc-7" in mosi.notes[0]
    assert mosi.records[0].id == "cmu-mosi/test/vid_beta02_2" and mosi.records[0].meta["score"] == -2.8
    assert [r.labels[0] for r in build("cmu-mosi", "CMU-MOSI", "test", classes=7).records] == [
        "neutral", "strongly negative", "strongly positive"]
    assert len(build("cmu-mosi", "CMU-MOSI", "test", binary="has0").records) == 3
    assert [r.split for r in build("cmu-mosi", "CMU-MOSI", "dev").records] == ["dev"]  # MMSA's "valid"
    mosei = build("cmu-mosei", "CMU-MOSEI", "test", classes=7)
    assert [r.labels[0] for r in mosei.records] == ["positive", "weakly negative", "neutral"]
    sims = build("ch-sims", "CH-SIMS", "test", classes=3).records
    assert [r.labels[0] for r in sims] == ["negative", "neutral", "negative"]
    assert sims[0].text == "你怎么又迟到了？" and sims[0].meta["label_t"] == -0.8
    assert [r.labels[0] for r in build("ch-sims2", "CH-SIMS-v2", "test", classes=5).records] == [
        "weakly positive", "weakly negative"]
    with pytest.raises(AffectError, match="must be one of 2, 7"):
        build("cmu-mosi", "CMU-MOSI", "test", classes=5)
    with pytest.raises(AffectError, match="has no option 'binary'"):
        build("ch-sims", "CH-SIMS", "test", binary="has0")


def test_mer2024_tracks() -> None:
    train = build("mer2024", "MER2024", "train")
    assert [r.labels for r in train.records] == [["happy"], ["angry"]] and train.skipped == {"empty english subtitle": 1}
    assert train.records[0].meta["valence"] == 3.5 and train.records[0].label_space == "mer6"
    assert [r.labels for r in build("mer2024", "MER2024", "test").records] == [["worried"], ["sad"]]
    assert len(build("mer2024", "MER2024", "test", track="noise").records) == 1
    ov = build("mer2024", "MER2024", "test", track="ov").records
    assert ov[1].labels == ["lonely", "sad"] and ov[1].label_space is None
    with pytest.raises(AffectError, match="track 'ov' has no train labels"):
        build("mer2024", "MER2024", "train", track="ov")
    zh = build("mer2024", "MER2024", "test", lang="chinese").records
    assert zh[0].text == "明天会下雨吗？"


def test_mer2025_tracks(tmp_path: Path) -> None:
    assert [r.labels for r in build("mer2025", "MER2025", "train").records] == [["happy"], ["angry"]]
    assert [r.labels for r in build("mer2025", "MER2025", "test").records] == [["worried"]]
    fg = build("mer2025", "MER2025", "train", track="fg").records
    assert fg[0].labels == ["excited", "proud"] and fg[0].description.startswith("She raises both arms")
    assert fg[1].description is None
    assert build("mer2025", "MER2025", "test", track="fg").records[0].labels == ["worried", "impatient"]
    bad = tmp_path / "MER2025"
    bad.mkdir()
    (bad / "subtitle_chieng.csv").write_text("name,chinese,english\ns1,x,y\n")
    (bad / "track1_test_dis.csv").write_text("name,discrete\ns1,bored\n")
    with pytest.raises(AffectError, match=r"track1_test_dis.csv:2: discrete label 'bored'"):
        run_builder("mer2025", bad, "test")
    with pytest.raises(AffectError, match="missing track2_train_mercaptionplus.csv"):
        run_builder("mer2025", FIX / "MER2025", "train", {"track": "fg", "ov_train": "mercaptionplus"})


@pytest.mark.parametrize("name", ["iemocap", "cmu-mosi", "cmu-mosei", "ch-sims", "ch-sims2", "mer2024", "mer2025"])
def test_each_builder_writes_a_card_with_licence_and_metrics(tmp_path: Path, name: str) -> None:
    folder = {"iemocap": "IEMOCAP", "cmu-mosi": "CMU-MOSI", "cmu-mosei": "CMU-MOSEI", "ch-sims": "CH-SIMS",
              "ch-sims2": "CH-SIMS-v2", "mer2024": "MER2024", "mer2025": "MER2025"}[name]
    card = build_dataset(name, FIX / folder, tmp_path / f"{name}.jsonl", split="test")
    assert card["licence"] == BUILDERS[name].licence and card["licence"]
    assert any("the field reports" in n for n in card["notes"])
    assert card["counts"]["records"] >= 1
