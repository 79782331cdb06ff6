import math

import pytest

from affect_llm.parsing import ParseError, label_probabilities, parse_answer


def test_parses_clean_json():
    a = parse_answer('{"labels": ["Anger ", "anger", "frustration"], "cues": ["E1", "E3"], "explanation": "they shout"}')
    assert a.labels == ["anger", "frustration"]
    assert a.explanation == "they shout"
    assert a.cues == ["E1", "E3"]  # raw citations: the explain task resolves them


def test_parses_json_inside_prose_and_fences():
    a = parse_answer('Sure!\n```json\n{"labels": ["joy"], "explanation": "wins", "cues": []}\n```')
    assert a.labels == ["joy"]


def test_single_citation_becomes_a_list():
    a = parse_answer('{"labels": ["joy"], "explanation": "", "cues": "E2"}')
    assert a.cues == ["E2"]


def test_truncated_answer_keeps_complete_labels():
    a = parse_answer('{"explanation": "they are upset", "labels": ["sadness"], "cues": [{"modality": "te')
    assert a.labels == ["sadness"] and a.explanation == "they are upset"


def test_label_lines():
    a = parse_answer("Labels: anger, sadness\nExplanation: because")
    assert a.labels == ["anger", "sadness"] and a.explanation == "because"


def test_no_labels_raises():
    with pytest.raises(ParseError, match="no emotion labels"):
        parse_answer("I don't know.")


def test_confidence_is_probability_of_label_tokens():
    pieces = ['{"', 'labels', '":', ' ["', 'ang', 'er', '",', ' "', 'joy', '"]}']
    text = "".join(pieces)
    lp = [0.0, 0.0, 0.0, math.log(0.9), math.log(0.5), math.log(0.8), 0.0, 0.0, math.log(0.6), 0.0]
    # anger: tokens ' ["' (overlaps? no: ends before 'a'), 'ang', 'er' -> 0.5*0.8 = 0.4; joy: 0.6
    assert label_probabilities(text, pieces, lp) == pytest.approx([0.4, 0.6])


def test_confidence_none_without_logprobs():
    assert label_probabilities('{"labels": ["joy"]}', [], None) == []
    assert label_probabilities('{"labels": ["joy"]}', ['{"labels": ["joy"]}'], [0.0]) == pytest.approx([1.0])


def test_combined_confidence():
    from affect_llm.explain_task import combine_confidence

    assert combine_confidence(["joy"], [0.8], {"joy": 0.4}) == pytest.approx(0.4)  # the calibrated label model
    assert combine_confidence(["joy"], [], {"joy": 0.4}) == pytest.approx(0.4)
    assert combine_confidence(["joy"], [0.9], {}) == pytest.approx(0.9)
    assert combine_confidence(["joy"], [], {}) is None


def test_openai_logprobs_drop_the_stop_token():
    from affect_llm.backends.openai_backend import _aligned_logprobs

    content = [{"token": '{"labels": ["', "logprob": 0.0}, {"token": "joy", "logprob": -0.5},
               {"token": '"]}', "logprob": 0.0}, {"token": "<|im_end|>", "logprob": -0.1}]
    pieces, lps = _aligned_logprobs('{"labels": ["joy"]}', content)
    assert "".join(pieces) == '{"labels": ["joy"]}' and lps == [0.0, -0.5, 0.0]
    assert _aligned_logprobs("other text", content) == ([], None)
