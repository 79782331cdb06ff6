"""The emotion wheel: bundled mapping, M1/M2/M3 look-ups, normalisation, relatedness."""

from __future__ import annotations

import json

import pytest

from affect_llm.errors import AffectError, UnknownNameError
from affect_llm.emotion_wheel import OV_METRICS, EmotionWheel, metric_key


@pytest.fixture(scope="module")
def wheel() -> EmotionWheel:
    return EmotionWheel.default()


def test_bundled_mapping_and_licence_ship_with_the_package(wheel):
    from importlib import resources

    data = resources.files("affect_llm").joinpath("wheel_data")
    assert data.joinpath("LICENSE-CC-BY-NC-4.0.txt").read_text().startswith("MER2025 Dataset - CC BY-NC 4.0")
    assert "CC BY-NC 4.0" in data.joinpath("NOTICE.md").read_text()
    assert len(wheel.vocabulary) == 7356
    assert EmotionWheel.default() is wheel  # loaded once per process


def test_m1_m2_m3_of_known_words(wheel):
    # Values read off wheel_mapping.json by hand.
    assert wheel.m1("happy") == "happiness"
    assert wheel.m2("happy") == "joy"
    assert wheel.m3("happy", 1, 1) == "happy"
    assert wheel.m3("happy", "wheel1", "level2") == "joyful"
    assert wheel.m3("worry", 1, 1) == "scared"
    assert wheel.m3("worry", 2, 1) == "fearful"
    assert wheel.m3("joyful", 3, "level1") == "joyful"


def test_normalisation_is_lower_then_strip(wheel):
    assert wheel.normalize("  HaPPy \t") == "happy"
    assert wheel.codes(" Happy ") == wheel.codes("happy")
    assert "  Worried " in wheel
    assert wheel.map_set(["Happy", " happy ", "HAPPY"], "wheel1_level1") == {"happy"}


def test_out_of_vocabulary_maps_to_nothing(wheel):
    for word in ("humorous", "self-deprecating", "", "   "):
        assert word not in wheel
        assert wheel.codes(word) == (-1,) * len(OV_METRICS)
        assert wheel.m1(word) is None and wheel.m3(word, 1, 1) is None
    assert wheel.map_set(["humorous", "happy"], "m2") == {"joy"}


def test_a_word_whose_cluster_depends_on_the_wheel(wheel):
    # "abashed" is 'sad' on wheels 1, 2, 3, 5 but 'disgust' on wheel 4 (level 1).
    assert [wheel.m3("abashed", k, 1) for k in range(1, 6)] == ["sad", "sad", "sad", "disgust", "sad"]
    # "relaxed" is on wheels 3-5 only.
    assert [wheel.m3("relaxed", k, 1) for k in range(1, 6)] == [None, None, "peaceful", "joy", "peaceful"]


def test_m3_takes_the_first_sorted_candidate_a_wheel_knows(wheel):
    # Recompute the rule from the raw tables for every form and compare with the cached codes.
    fm, rm = wheel._format, wheel._raw
    wm = json.loads((__import__("importlib").resources.files("affect_llm") / "wheel_data" / "wheel_mapping.json")
                    .read_text())["wheel_map_whole"]
    for form in sorted(fm)[::37]:
        cands = sorted(w for base in fm[form] for w in rm[base])
        for k in range(1, 6):
            for lv in ("level1", "level2"):
                table = wm[f"wheel{k}"][lv]
                expect = next((table[c] for c in cands if c in table), None)
                assert wheel.m3(form, k, lv) == expect, (form, k, lv)


def test_metric_names_accept_official_aliases():
    assert metric_key("case1") == "m1"
    assert metric_key("CASE3_wheel2_level1") == "wheel2_level1"
    assert metric_key(" m2 ") == "m2"
    with pytest.raises(UnknownNameError, match="choose one of"):
        metric_key("wheel9_level1")


def test_relatedness_gives_partial_credit(wheel):
    same = wheel.relatedness("happy", "Happy ")
    assert same.score() == 1.0
    close = wheel.relatedness("happy", "joyful")  # same coarse cluster everywhere, fine only on 3-5
    assert close.same_level1 == (True,) * 5
    assert close.same_level2 == (False, False, True, True, True)
    assert close.score() == pytest.approx((0.5 + 0.5 + 1 + 1 + 1) / 5)
    assert wheel.relatedness("happy", "sad").score() == 0.0
    assert wheel.relatedness("happy", "humorous").score() == 0.0


def test_from_json_rejects_bad_files(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text('{"format_mapping": {}}')
    with pytest.raises(AffectError, match="needs the keys"):
        EmotionWheel.from_json(bad)
    with pytest.raises(AffectError, match="no such"):
        EmotionWheel.from_json(tmp_path / "missing.json")
