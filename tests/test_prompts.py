"""Contract: every shipped template carries a version and renders with all its slots filled."""

import pytest

from affect_llm.errors import UnknownNameError
from affect_llm.prompting import available_templates, get_template, template_versions

FULL = dict(
    text="I can't believe you forgot.",
    speaker="Monica",
    context=[{"speaker": "Chandler", "text": "Happy Tuesday!"}],
    dialogue=[{"id": "E2", "line": 'Chandler: "Happy Tuesday!"'}],
    words=[{"id": "E1", "text": "can't believe", "kind": "negation"}],
    signals=[{"id": "E3", "modality": "speech", "text": "pitch falls at the end (-4 st)"}],
    prior=[("anger", 41), ("sadness", 22)],
    cues=[{"modality": "speech", "cue": "pitch falls at the end", "evidence": "-4 st", "start": 0.5, "end": 1.2}],
    label_space=["anger", "joy", "neutral"],
    demos=[{"text": "Great.", "speaker": "Ross", "label": "neutral"}],
    soft=["audio", "face"],
    # the LLM-judge and label-extraction templates' slots
)


@pytest.mark.parametrize("name", sorted(available_templates()))
def test_every_template_renders(name):
    t = get_template(name)
    assert t.version and t.tag == f"{name}@{t.version}"
    out = t.render(**FULL)
    assert out.strip()
    if name != "system":
        assert "I can't believe you forgot." in out


def test_explain_slots_fill():
    out = get_template("explain").render(**FULL)
    assert 'E2 Chandler: "Happy Tuesday!"' in out
    assert 'E1 "can\'t believe" (negation)' in out
    assert "E3 [speech] pitch falls at the end (-4 st)" in out
    assert "Label model: anger 41%, sadness 22%" in out
    assert 'Ross: "Great." -> neutral' in out and "anger, joy, neutral" in out


def test_soft_token_placeholders():
    out = get_template("explain").render(**FULL)
    assert "Their voice: <audio>" in out and "Their face: <face>" in out
    plain = get_template("explain").render(**{**FULL, "soft": []})
    assert "<audio>" not in plain and "<face>" not in plain


def test_missing_variable_is_an_error():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        get_template("explain").render(text="x")


def test_unknown_template_lists_choices():
    with pytest.raises(UnknownNameError, match="explain"):
        get_template("nope")


def test_versions_table():
    assert template_versions()["explain"].startswith("explain@")
