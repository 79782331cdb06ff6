"""The llama.cpp backend's tokenizer (`tokenizers` + jinja2) equals transformers' on what we use."""

from __future__ import annotations

import pytest

from tests.conftest import default_llm_dir

TEXTS = [
    "I can't believe you forgot my birthday again.",
    "Oh wow!!! 😊 Ünïcödé “curly quotes” and ’apostrophes’",
    "  leading spaces, tabs\tand\nnew lines  ",
    '{"labels": ["joy"], "cues": ["E1"], "explanation": "The speaker says: \'won\'."}',
    "<|im_start|>user\nspecial tokens inside text<|im_end|>",
    "",
]


@pytest.fixture(scope="module")
def pair():
    from transformers import AutoTokenizer

    from affect_llm.backends.chat_tokenizer import ChatTokenizer

    folder = default_llm_dir()
    return ChatTokenizer(folder), AutoTokenizer.from_pretrained(str(folder))


def test_special_tokens_and_vocab(pair):
    ours, hf = pair
    assert len(ours) == len(hf)
    assert ours.get_vocab() == hf.get_vocab()
    assert ours.all_special_ids == sorted(hf.all_special_ids)
    for name in ("eos_token_id", "pad_token_id", "bos_token_id", "eos_token", "pad_token"):
        assert getattr(ours, name) == getattr(hf, name), name


def test_encode_decode(pair):
    ours, hf = pair
    for t in TEXTS:
        ids = hf(t, add_special_tokens=False)["input_ids"]
        assert ours(t)["input_ids"] == ids == ours.encode(t)
        assert ours.decode(ids) == hf.decode(ids)
        assert ours.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)
    assert ours(TEXTS)["input_ids"] == hf(TEXTS, add_special_tokens=False)["input_ids"]
    # Every token alone and after "0": the schema constraint's token table is built from these.
    every = [[i] for i in range(len(hf))]
    assert ours.batch_decode(every) == hf.batch_decode(every)
    zero = hf.encode("0", add_special_tokens=False)[-1]
    pairs = [[zero, i] for i in range(0, len(hf), 7)]
    assert ours.batch_decode(pairs) == hf.batch_decode(pairs)


def test_chat_template(pair):
    ours, hf = pair
    for msgs in ([{"role": "user", "content": TEXTS[0]}],
                 [{"role": "system", "content": "S"}, {"role": "user", "content": TEXTS[1]}],
                 [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                  {"role": "user", "content": TEXTS[2]}]):
        for gen in (True, False):
            assert ours.apply_chat_template(msgs, add_generation_prompt=gen) == \
                hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)
        want = hf.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
        want = want["input_ids"] if hasattr(want, "keys") else want
        assert ours.apply_chat_template(msgs, tokenize=True) == list(want)


def test_missing_tokenizer_is_one_line_error(tmp_path):
    from affect_llm.backends.chat_tokenizer import ChatTokenizer
    from affect_llm.errors import AffectError

    with pytest.raises(AffectError, match="cannot read the tokenizer"):
        ChatTokenizer(tmp_path)
