"""The embedded default model, for real (about 15-30 s on a 2-vCPU VM)."""

import json
import subprocess
import sys

from affect_llm.vocabulary import EMOTION_WORDS


def test_explain_json_with_default_model():
    proc = subprocess.run(
        [sys.executable, "-m", "affect_llm.cli.app", "explain", "--text", "I can't believe you forgot my birthday again.",
         "--json"], capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    from affect_llm.assets import default_adapter_dir

    # The bundled tuned adapter is on by default for the embedded model.
    assert obj["model"] == ("smollm2-135m-instruct+default" if default_adapter_dir() else "smollm2-135m-instruct")
    assert 1 <= len(obj["labels"]) <= 3 and all(lbl in EMOTION_WORDS for lbl in obj["labels"])
    assert 0.0 < obj["confidence"] <= 1.0
    assert "smollm" not in obj["raw"].lower()
    # Evidence first: the bundled label model's prior is used and every cited cue quotes the input.
    assert obj["label_prior"] and obj["labels"][0] in obj["label_prior"]
    assert obj["cues"] and all(c["evidence"] in "I can't believe you forgot my birthday again." for c in obj["cues"])
    from affect_llm.explanations import explanation_problems

    assert explanation_problems(obj["explanation"], "I can't believe you forgot my birthday again.") == []


def test_no_label_model_flag():
    proc = subprocess.run(
        [sys.executable, "-m", "affect_llm.cli.app", "explain", "--text", "We won!", "--json", "--no-label-model"],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label_prior"] is None


def test_no_adapter_gives_the_bare_model():
    proc = subprocess.run(
        [sys.executable, "-m", "affect_llm.cli.app", "explain", "--text", "What a lovely surprise!", "--json",
         "--no-adapter", "--max-new-tokens", "60"], capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] == "smollm2-135m-instruct"
