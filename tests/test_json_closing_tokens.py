"""String values may end mid-token: `.",` (text, closing quote, comma) must stay allowed under the schema.

lm-format-enforcer's in-string fast path drops such tokens; without them SmolLM2 escaped the quote
(`gratitude.\\"}}`) and rambled on inside the string (seen with the tuned default adapter)."""

from __future__ import annotations

import pytest

from tests.conftest import default_llm_dir


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(default_llm_dir()))


def _walk(proc, tok, prefix: str) -> list[int]:
    seq = [tok.eos_token_id]  # stands for the prompt
    proc.enforcer.get_allowed_tokens(seq)
    for t in tok(prefix, add_special_tokens=False)["input_ids"]:
        seq = seq + [t]
        proc.enforcer.get_allowed_tokens(seq)
    return seq


def test_mid_token_string_closer_is_allowed(tok):
    from affect_llm.backends.json_constraint import JsonSchemaLogitsProcessor
    from affect_llm.explain_task import answer_schema

    schema = answer_schema(["gratitude"], 1, ["E1"])
    props = schema["properties"]
    schema["properties"] = {"explanation": props["explanation"], "labels": props["labels"]}  # free text, then more
    schema["required"] = ["explanation", "labels"]
    proc = JsonSchemaLogitsProcessor(tok, schema)
    seq = _walk(proc, tok, '{"explanation": "The words of the speaker express gratitude')
    closer = tok.convert_tokens_to_ids(tok.tokenize('.",'))
    assert len(closer) == 1
    assert closer[0] not in proc.enforcer.get_allowed_tokens(seq).allowed_tokens  # lmfe alone drops it
    assert closer[0] in proc._closing_allowed(seq)
    # Outside a string nothing is added; `.",` right after the key's colon would be invalid JSON.
    assert proc._closing_allowed(_walk(proc, tok, '{"explanation":')) == []


def test_escaped_quotes_are_not_closers(tok):
    from affect_llm.backends.json_constraint import closing_tokens

    for tail, tokens in closing_tokens(tok).items():
        assert tail.startswith('"')
        for token_id, content in tokens:
            text = tok.decode([token_id])
            assert content in text
            assert (len(content) - len(content.rstrip("\\"))) % 2 == 0, text


def test_no_escapes_inside_free_text(tok):
    """A backslash would let the model quote JSON inside its explanation (`\\"joy\\", \\"joy\\"},`)."""
    import numpy as np

    from affect_llm.backends.json_constraint import JsonSchemaLogitsProcessor
    from affect_llm.explain_task import answer_schema

    proc = JsonSchemaLogitsProcessor(tok, answer_schema(["joy"], 1, ["E1"]))
    seq = _walk(proc, tok, '{"labels": ["joy"], "cues": ["E1"], "explanation": "Monica says')
    scores = proc([seq], np.zeros((1, len(tok)), dtype=np.float32))[0]
    backslashed = [i for i in range(len(tok)) if "\\" in tok.decode([i])]
    plain = tok.convert_tokens_to_ids(tok.tokenize(" that"))
    assert backslashed and all(scores[i] == float("-inf") for i in backslashed)
    assert scores[plain[0]] == 0.0


def test_no_percent_inside_free_text(tok):
    """The prompt's only percentages are the label model's; explanations must not copy them out."""
    import numpy as np

    from affect_llm.backends.json_constraint import JsonSchemaLogitsProcessor
    from affect_llm.explain_task import answer_schema

    proc = JsonSchemaLogitsProcessor(tok, answer_schema(["anger"], 1, ["E1"]))
    seq = _walk(proc, tok, '{"labels": ["anger"], "cues": ["E1"], "explanation": "Joey says it: anger 83')
    scores = proc([seq], np.zeros((1, len(tok)), dtype=np.float32))[0]
    percent = [i for i in range(len(tok)) if "%" in tok.decode([i])]
    assert percent and all(scores[i] == float("-inf") for i in percent)


def test_explanation_closes_only_after_its_sentence_ends(tok):
    """`…with no strong feeling:` then a closing quote read as a cut-off answer: closing waits for . ! ?"""
    import numpy as np

    from affect_llm.backends.json_constraint import JsonSchemaLogitsProcessor
    from affect_llm.explain_task import answer_schema

    proc = JsonSchemaLogitsProcessor(tok, answer_schema(["neutral"], 1, ["E1"]))
    head = '{"labels": ["neutral"], "cues": ["E1"], "explanation": "The speaker says it plainly, with no strong feeling'
    quote = tok.convert_tokens_to_ids(tok.tokenize('"'))[0]
    period_close = tok.convert_tokens_to_ids(tok.tokenize('."'))
    word = tok.convert_tokens_to_ids(tok.tokenize(" at"))[0]
    for tail, closes in ((":", False), ("", False), (" like", False), (".", True), (": 'Hey!'", True)):
        seq = _walk(proc, tok, head + tail)
        scores = proc([seq], np.zeros((1, len(tok)), dtype=np.float32))[0]
        assert (scores[quote] == 0.0) == closes, tail
        assert scores[word] == 0.0  # the sentence may always go on
    seq = _walk(proc, tok, head)
    scores = proc([seq], np.zeros((1, len(tok)), dtype=np.float32))[0]
    if len(period_close) == 1:  # `."` ends the sentence and the string in one token
        assert scores[period_close[0]] == 0.0
    # Labels are not explanations: a closing quote after an enum value stays forced as before.
    assert proc._unfinished_closers(_walk(proc, tok, '{"labels": ["neutr')) == []


def test_no_label_model_numbers_after_a_label_or_colon(tok):
    """`…call back.'anger: 83; sadness: 4` and `'who is it?'; shock: 81` copied the prompt's label-model
    prior out of it."""
    import numpy as np

    from affect_llm.backends.json_constraint import JsonSchemaLogitsProcessor
    from affect_llm.explain_task import answer_schema

    prior = {"anger": 0.83, "sadness": 0.04}
    proc = JsonSchemaLogitsProcessor(tok, answer_schema(["anger", "sadness"], 1, ["E1"]), label_priors=[prior])
    eight = tok.convert_tokens_to_ids(tok.tokenize("8"))[0]
    head = '{"labels": ["anger"], "cues": ["E1"], "explanation": "Joey says: \'the call back.\''
    for tail, blocked in (("anger: ", True), ("Anger ", True), ("shock: ", True), ("and counts to ", False)):
        seq = _walk(proc, tok, head + tail)
        scores = proc([seq], np.zeros((1, len(tok)), dtype=np.float32))[0]
        assert (scores[eight] == float("-inf")) == blocked, tail


def test_label_prior_follows_a_label_past_its_first_token(tok):
    """A token that starts two labels ("s": surprise, sadness) must not hand the rest of the choice to the
    LLM: the prior keeps splitting them, token by token (the product over the label's tokens is the prior)."""
    import math

    import numpy as np

    from affect_llm.backends.json_constraint import JsonSchemaLogitsProcessor, token_texts
    from affect_llm.explain_task import answer_schema

    prior = {"surprise": 0.6, "sadness": 0.1, "joy": 0.3}
    proc = JsonSchemaLogitsProcessor(tok, answer_schema(list(prior), 1, ["E1"]), label_priors=[prior],
                                     prior_weight=1.0)
    texts = token_texts(tok)
    by_text = {t: i for i, t in texts.items()}
    seq = _walk(proc, tok, '{"labels": ["s')
    allowed = [t for t in ("urprise", "ur", "u") if t in by_text][:1] + [t for t in ("adness", "ad", "a") if t in by_text][:1]
    assert len(allowed) == 2, "the vocabulary splits both labels after 's'"
    idx = np.array([by_text[t] for t in allowed])
    bias = proc._prior_bias(seq, idx, prior)
    assert bias is not None
    assert bias[0] == pytest.approx(math.log(0.6 / 0.7), abs=1e-4)
    assert bias[1] == pytest.approx(math.log(0.1 / 0.7), abs=1e-4)
    # At the start of the label the shared token carries both labels' mass, a whole label its own.
    first = _walk(proc, tok, '{"labels": ["')
    start = [t for t in ("s", "joy") if t in by_text]
    got = proc._prior_bias(first, np.array([by_text[t] for t in start]), prior)
    assert got is not None and got[0] == pytest.approx(math.log(0.7), abs=1e-4)


def test_explanation_never_repeats_three_tokens(tok):
    """`…matter: matter; matter: matter;` looped until the length limit: no 3-token sequence twice inside
    the explanation (the JSON around it may repeat)."""
    import numpy as np

    from affect_llm.backends.json_constraint import JsonSchemaLogitsProcessor
    from affect_llm.explain_task import answer_schema

    proc = JsonSchemaLogitsProcessor(tok, answer_schema(["neutral"], 1, ["E1"]))
    head = '{"labels": ["neutral"], "cues": ["E1"], "explanation": "'
    seq = _walk(proc, tok, head)
    proc([seq], np.zeros((1, len(tok)), dtype=np.float32))  # the explanation starts here
    loop = tok(" matter: matter; matter:", add_special_tokens=False)["input_ids"]
    for t in loop:
        proc.enforcer.get_allowed_tokens(seq)
        seq = seq + [t]
        scores = proc([seq], np.zeros((1, len(tok)), dtype=np.float32))[0]
    again = tok(" matter", add_special_tokens=False)["input_ids"][0]
    assert scores[again] == -np.inf  # ": matter" after "matter:" was written once already
    assert scores[tok(" so", add_special_tokens=False)["input_ids"][0]] == 0.0
    # Outside the explanation nothing is banned for repeating.
    assert proc._repeats(0, _walk(proc, tok, '{"labels": ["neutr')) == []
