"""The numpy steps every in-process decode loop shares: the repetition penalty, the token choice and its
log-probability."""

from __future__ import annotations

import numpy as np
import pytest

from affect_llm.backends.decode_steps import RepetitionPenalty, choose, log_softmax


def test_repetition_penalty_matches_transformers():
    torch = pytest.importorskip("torch")
    from transformers import RepetitionPenaltyLogitsProcessor

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2, 50)).astype(np.float32)
    seqs = [[1, 2, 2, 7, 49], [0, 3, 3, 3]]
    before = scores.copy()
    ours = RepetitionPenalty(1.3)(seqs, scores)
    ref = RepetitionPenaltyLogitsProcessor(1.3)(torch.tensor(seqs[:1]), torch.from_numpy(scores[:1].copy())).numpy()
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-6)
    assert ours[1, 3] != scores[1, 3] and ours[1, 4] == scores[1, 4]
    np.testing.assert_array_equal(scores, before)  # the input is not modified


def test_greedy_choice_and_log_probability_over_valid_tokens():
    scores = np.array([[0.0, 2.0, -np.inf, 1.0], [5.0, -np.inf, -np.inf, -np.inf]], dtype=np.float32)
    tok, lp = choose(scores, 0.0, None)
    assert tok.tolist() == [1, 0]
    expected = 2.0 - np.log(np.exp(0.0) + np.exp(2.0) + np.exp(1.0))
    assert lp[0] == pytest.approx(expected, rel=1e-6)
    assert lp[1] == 0.0  # the only valid token has probability 1
    assert np.isneginf(log_softmax(scores)[0, 2])


def test_sampling_is_seeded_and_never_picks_a_masked_token():
    scores = np.array([[0.0, 0.1, -np.inf, 0.2]], dtype=np.float32)
    draws = [int(choose(scores, 1.0, np.random.default_rng(s))[0][0]) for s in range(40)]
    assert 2 not in draws and len(set(draws)) > 1
    again = [int(choose(scores, 1.0, np.random.default_rng(s))[0][0]) for s in range(40)]
    assert draws == again
    with pytest.raises(ValueError, match="random generator"):
        choose(scores, 1.0, None)
