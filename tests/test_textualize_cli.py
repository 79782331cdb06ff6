"""`affect-llm textualize --json` contract (text needs no extras) and one-line errors."""

from __future__ import annotations

import json

from _textualize_util import need, need_asset, run_cli


def test_text_json_contract(capsys):
    code, out, _ = run_cli(["textualize", "--text", "I am NOT happy about this!!", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert isinstance(data, list) and len(data) == 1
    item = data[0]
    assert item["source"] == "text" and item["kind"] == "text"
    assert {"valence", "negations", "caps"} <= set(item["text"])
    cues = {c["cue"]: c for c in item["cues"]}
    assert "negation flips an emotion word" in cues
    for c in item["cues"]:
        assert set(c) == {"modality", "cue", "evidence", "start", "end", "strength"} and c["modality"] == "text"


def test_errors_are_one_line(capsys, tmp_path):
    code, _, err = run_cli(["textualize"], capsys)
    assert code == 2 and err.startswith("error: nothing to textualize")
    need("soundfile", "soxr", "librosa")
    code, _, err = run_cli(["textualize", "--audio", str(tmp_path / "missing.wav"), "--json"], capsys)
    assert code == 2 and "no such audio file" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["textualize", "--text", "hi", "--reference", "nobody"], capsys)
    assert code == 2 and "unknown prosody reference 'nobody'" in err


def test_image_and_order(capsys, tmp_path):
    need("mediapipe", "av", "PIL", "skimage")
    need_asset("face-landmarker")
    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "a.png")
    Image.fromarray(data.coffee()).save(tmp_path / "c.png")
    code, out, _ = run_cli(
        ["textualize", "--image", str(tmp_path / "a.png"), "--image", str(tmp_path / "c.png"), "--text", "yay", "--json"],
        capsys,
    )
    assert code == 0
    data_ = json.loads(out)
    assert [d["kind"] for d in data_] == ["image", "image", "text"]
    assert data_[0]["face"]["coverage"] == 1.0 and data_[0]["cues"][0]["cue"] == "broad smile"
    assert data_[1]["face"]["coverage"] == 0.0 and data_[1]["cues"] == []
    assert {"blendshapes_mean", "head_pose_mean", "coverage"} <= set(data_[0]["face"])
