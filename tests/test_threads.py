import pytest

from affect_llm.errors import AffectError
from affect_llm.threads import configure_threads, default_threads


def test_env_override(monkeypatch):
    monkeypatch.setenv("AFFECT_LLM_THREADS", "3")
    assert default_threads() == 3


def test_bad_env(monkeypatch):
    monkeypatch.setenv("AFFECT_LLM_THREADS", "many")
    with pytest.raises(AffectError, match="AFFECT_LLM_THREADS"):
        default_threads()


def test_small_hosts_get_one_thread(monkeypatch):
    monkeypatch.delenv("AFFECT_LLM_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1})
    assert default_threads() == 1
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(16)))
    assert default_threads() == 16


def test_configure_sets_torch():
    import torch

    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
