"""`affect-llm data mix`: seeded draws from several canonical files, shuffled, no duplicates."""

from __future__ import annotations

from test_cli_explain import assert_user_error, run

from affect_llm.data_builders.schema import read_samples, write_samples


def _file(path, prefix, n):
    write_samples(path, [dict(id=f"{prefix}/{i}", dataset=prefix, split="train", text=f"t{i}", labels=["joy"])
                         for i in range(n)])
    return str(path)


def test_mix_draws_counts_and_is_seeded(tmp_path):
    a, b = _file(tmp_path / "a.jsonl", "a", 10), _file(tmp_path / "b.jsonl", "b", 5)
    out1, out2 = tmp_path / "m1.jsonl", tmp_path / "m2.jsonl"
    assert run("data", "mix", f"{a}:4", b, "--out", str(out1), "--ids-out", str(tmp_path / "ids.txt")).returncode == 0
    assert run("data", "mix", f"{a}:4", b, "--out", str(out2)).returncode == 0
    s1 = read_samples(out1)
    assert [s.id for s in s1] == [s.id for s in read_samples(out2)]  # same seed, same mix
    assert sum(s.dataset == "a" for s in s1) == 4 and sum(s.dataset == "b" for s in s1) == 5
    assert (tmp_path / "ids.txt").read_text().split() == [s.id for s in s1]


def test_mix_errors(tmp_path):
    a = _file(tmp_path / "a.jsonl", "a", 3)
    assert_user_error(run("data", "mix", f"{a}:9", "--out", str(tmp_path / "m.jsonl")), "asked for 9 samples, it has 3")
    assert_user_error(run("data", "mix", a, a, "--out", str(tmp_path / "m.jsonl")), "drawn twice")
    assert not (tmp_path / "m.jsonl").exists()
