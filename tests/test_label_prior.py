"""The label model's prior as a text-driven decoding bias (the vLLM path), on the real default tokenizer."""

from __future__ import annotations

import json
import math

import pytest

from affect_llm.backends.label_prior import TextLabelPrior, prior_xargs, read_xargs, token_bias
from tests.conftest import default_llm_dir

PRIOR = {"anger": 0.6, "annoyance": 0.25, "joy": 0.1, "sadness": 0.05}


@pytest.fixture(scope="module")
def tok_and_prior():
    from transformers import AutoTokenizer

    from affect_llm.backends.json_constraint import token_texts

    tok = AutoTokenizer.from_pretrained(str(default_llm_dir()))
    return tok, TextLabelPrior(token_texts(tok))


def test_position_in_the_labels_array():
    pos = TextLabelPrior.position
    assert pos('{"lab') is None and pos('{"labels":') is None
    assert pos('{"labels":[') == ("between", "")
    assert pos('{"labels":["ang') == ("in", "ang")
    assert pos('{"labels":["anger",') == ("between", "")
    assert pos('{"labels":["anger", "jo') == ("in", "jo")
    assert pos('{"labels":["anger"],"cues":["E1') is None  # the array closed: a cue id is not a label


def _walk(tok, prior_bias: TextLabelPrior, answer: str, prior: dict[str, float], weight: float) -> float:
    """Sum of the biases the decoder would add to the tokens of `answer`, token by token."""
    ids = tok.encode(answer, add_special_tokens=False)
    total = 0.0
    for n, t in enumerate(ids):
        bias = prior_bias.bias(tok.decode(ids[:n]), prior, weight)
        if bias is not None:
            assert t in bias, (tok.decode(ids[:n]), tok.decode([t]))  # every label token is scored
            total += bias[t]
    return total


@pytest.mark.parametrize("label", list(PRIOR))
def test_biases_over_a_labels_tokens_add_up_to_its_log_prior(tok_and_prior, label):
    tok, prior_bias = tok_and_prior
    got = _walk(tok, prior_bias, '{"labels":["' + label + '"],"cues":["E1"]}', PRIOR, 4.0)
    assert got == pytest.approx(4.0 * math.log(PRIOR[label]), abs=1e-6)


def test_second_label_gets_the_prior_too(tok_and_prior):
    tok, prior_bias = tok_and_prior
    both = _walk(tok, prior_bias, '{"labels":["anger","joy"]}', PRIOR, 2.0)
    assert both == pytest.approx(2.0 * (math.log(0.6) + math.log(0.1)), abs=1e-6)


def test_no_bias_outside_the_labels_or_when_one_label_is_left(tok_and_prior):
    _, prior_bias = tok_and_prior
    assert prior_bias.bias('{"labels":["anger"],"explanation":"Ross', PRIOR, 16.0) is None
    assert prior_bias.bias('{"labels":["jo', PRIOR, 16.0) is None  # only "joy" starts so
    assert prior_bias.bias('{"labels":["ang', {"anger": 0.5, "annoyance": 0.5}, 16.0) is None


def test_token_bias_is_the_conditional_log_mass():
    live = {"anger": 0.6, "annoyance": 0.2}
    assert token_bias("", "an", live, 0.8, 1.0) == pytest.approx(0.0)  # both labels still possible
    assert token_bias("an", "ger", live, 0.8, 1.0) == pytest.approx(math.log(0.75))
    assert token_bias("anger", '"', live, 0.8, 1.0) == pytest.approx(math.log(0.75))


def test_xargs_round_trip_and_bad_values():
    xargs = prior_xargs(PRIOR, 16.0)
    assert all(isinstance(v, (str, float)) for v in xargs.values())  # what vLLM accepts per request
    assert read_xargs(xargs) == (PRIOR, 16.0)
    assert prior_xargs({"anger": 1.0}, 16.0) is None  # one label: nothing to steer
    assert read_xargs(None) is None and read_xargs({"other": 1}) is None
    assert read_xargs({"affect_llm_label_prior": "not json"}) is None
    assert read_xargs({"affect_llm_label_prior": json.dumps(PRIOR), "affect_llm_prior_weight": -1}) is None
