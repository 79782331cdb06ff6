"""`affect-llm eval bench`: cells over the fixture corpora (the runner does the scoring), skipped rows,
resuming, anchors in the report, `--compare` with paired bootstrap CIs (hand-computed cases), and the
CLI end to end with a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from affect_llm.eval.bench import CELLS, compare_runs, paired_bootstrap, run_bench, select_cells

from affect_llm.cli.app import main
from affect_llm.errors import AffectError
from affect_llm.schema import EmotionReport

FIX = Path(__file__).parent / "fixtures" / "data"
KEYS = ["meld-7", "iemocap-4", "mosi-2", "mer2025-fg", "mer2023-hit"]


class RuleExplainer:
    """Answers from word rules; `flip` answers the opposite sentiment (a worse 'model' for --compare)."""

    def __init__(self, model: str = "rule", flip: bool = False) -> None:
        self.model, self.flip, self.n = model, flip, 0

    def explain_many(self, requests, batch_size=8, progress=False):
        self.n += len(requests)
        out = []
        for r in requests:
            text = r.text.lower()
            positive = any(w in text for w in ("wonderful", "got in", "won", "great"))
            if r.label_space and "positive" in r.label_space:
                labels = ["positive" if positive != self.flip else "negative"]
            elif r.label_space:
                labels = ["happy" if positive else "neutral"]
            else:
                labels = ["happy", "excited"] if positive else ["worried"]
            out.append(EmotionReport(labels=labels, explanation="rule", cues=[], confidence=0.5, model=self.model,
                                     template="rule@1", raw=json.dumps(labels)))
        return out

    def describe(self):
        return {"model": self.model, "backend": "rule", "template": "rule@1", "temperature": 0.0, "seed": 0}


def _bench(out: Path, explainer: RuleExplainer, **kw):
    return run_bench(out, FIX, lambda: (explainer, {"adapter": None}), cells=select_cells(KEYS), progress=False, **kw)


# ------------------------------------------------------------------------------------------ bootstrap


def _mean(records: list[int]) -> float:
    """Accuracy of per-sample 0/1 hits."""
    return sum(records) / len(records)


def test_bootstrap_identical_and_opposite_runs() -> None:
    acc = _mean
    same = paired_bootstrap([1, 0, 1], [1, 0, 1], acc, n_boot=200)
    assert same["diff"] == 0 and same["low"] == same["high"] == 0
    flipped = paired_bootstrap([0, 0, 0, 0], [1, 1, 1, 1], acc, n_boot=200)
    assert flipped["diff"] == 1 and flipped["low"] == flipped["high"] == 1


def test_bootstrap_matches_hand_computed_distributions() -> None:
    acc = _mean
    # A right on sample 1 only, B on sample 2 only: a draw of 2 indices gives B - A = -1, 0, +1 with
    # probabilities 1/4, 1/2, 1/4, so the 95% interval is [-1, +1] around an observed 0.
    r = paired_bootstrap([1, 0], [0, 1], acc, n_boot=4000, seed=1)
    assert r["diff"] == 0 and (r["low"], r["high"]) == (-1.0, 1.0)
    # B right on 2 of 4 samples, A on none: B - A = Binomial(4, 1/2) / 4; P(0) = P(1) = 1/16 > 2.5%,
    # so the 2.5% and 97.5% quantiles are exactly 0 and 1.
    r = paired_bootstrap([0, 0, 0, 0], [1, 1, 0, 0], acc, n_boot=4000, seed=2)
    assert r["diff"] == 0.5 and (r["low"], r["high"]) == (0.0, 1.0)
    with pytest.raises(AffectError, match="aligned"):
        paired_bootstrap([1], [1, 0], acc)


# ------------------------------------------------------------------------------------------ bench


def test_bench_runs_cells_with_data_and_lists_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    explainer = RuleExplainer()
    summary = _bench(out, explainer, limit=3)
    rows = {r["cell"]: r for r in summary["rows"]}
    assert rows["meld-7"]["status"] == "skipped" and "missing test_sent_emo.csv" in rows["meld-7"]["reason"]
    assert [rows[k]["status"] for k in KEYS[1:]] == ["ok"] * 4
    iem = rows["iemocap-4"]
    assert iem["n"] == 2 and [v["name"] for v in iem["values"]] == ["WA", "UA"]
    assert iem["values"][0]["value"] == 1.0  # neutral + "I got in!" → happy, both right
    mosi = rows["mosi-2"]
    assert mosi["values"][0]["value"] == 1.0 and mosi["values"][0]["anchors"][0]["model"] == "Self-MM"
    assert rows["mer2025-fg"]["values"][0]["metric"] == "ov.ew_level1.f1"
    assert rows["mer2023-hit"]["values"][0]["name"] == "hit rate"
    assert summary["seed"] == 0 and "no second model" in summary["label_extraction"]
    assert summary["explainer"]["model"] == "rule" and "test data" in summary["selection"]
    md = (out / "bench.md").read_text()
    assert "| IEMOCAP (`iemocap-4`) | 4 classes (excited → happy), Session 5" in md and "| WA | 2 | 100.00 |" in md
    assert "85.98 Self-MM (BERT-base 110M" in md and "## Skipped (no data)" in md and "`meld-7`" in md
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "bench.json").read_text())["rows"][1]["run_dir"] == "iemocap-4"
    assert (out / "iemocap-4" / "predictions.jsonl").is_file() and (out / "data" / "mosi-2.card.json").is_file()

    again = RuleExplainer()
    _bench(out, again, limit=3)  # resumed: every answer is cached
    assert again.n == 0


def test_compare_runs_with_paired_bootstrap(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _bench(a, RuleExplainer(), plots=False)
    _bench(b, RuleExplainer(model="flipped", flip=True), plots=False)
    doc = compare_runs([a, b], tmp_path / "cmp", n_boot=300)
    mosi = next(r for r in doc["rows"] if r["cell"] == "mosi-2" and r["metric"] == "accuracy")
    assert mosi["n_paired"] == 2 and mosi["values"] == [1.0, 0.0]
    d = mosi["diffs"][0]
    assert d["diff"] == -1.0 and d["low"] == d["high"] == -1.0
    assert doc["models"] == ["rule", "flipped"] and "meld-7" not in {r["cell"] for r in doc["rows"]}
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "-100.00 [-100.00, -100.00]*" in md and "run 2 − run 1" in md
    with pytest.raises(AffectError, match="two or more"):
        compare_runs([a], tmp_path / "x")
    with pytest.raises(AffectError, match="no bench.json"):
        compare_runs([a, tmp_path], tmp_path / "x")


def test_cells_and_errors(tmp_path: Path) -> None:
    assert len({c.key for c in CELLS}) == len(CELLS)
    with pytest.raises(AffectError, match=r"unknown bench cell\(s\) 'nope'; choose from meld-7"):
        select_cells(["nope"])
    with pytest.raises(AffectError, match="no such folder"):
        run_bench(tmp_path / "o", tmp_path / "missing", lambda: None)
    summary = run_bench(tmp_path / "o", FIX, lambda: pytest.fail("no cell has data: no model is loaded"),
                        cells=select_cells(["mer2024-semi"]), split="dev", plots=False)
    assert summary["rows"][0]["reason"] == "MER2024 has no dev split under this protocol"


def test_cli_bench_end_to_end_with_a_tiny_model(tmp_path: Path, tiny_llama_dir: Path, capsys) -> None:
    out = tmp_path / "bench"
    args = ["eval", "bench", "--data-root", str(FIX), "--cells", "iemocap-4,mosi-2,meld-7", "--model",
            str(tiny_llama_dir), "--no-adapter", "--limit", "2", "--batch-size", "2", "--out", str(out)]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0, capsys.readouterr().err
    assert "2 cells scored, 1 skipped" in capsys.readouterr().out
    summary = json.loads((out / "bench.json").read_text())
    assert summary["explainer"]["model"] == str(tiny_llama_dir) and summary["provenance"]["adapter"] is None
    assert all(r["n"] == 2 for r in summary["rows"] if r["status"] == "ok")
    assert (out / "bench.md").is_file() and (out / "bench.png").is_file()
    with pytest.raises(SystemExit) as exc:
        main(["eval", "bench", "--compare", str(out), str(out), "--out", str(tmp_path / "cmp"), "--n-boot", "100"])
    assert exc.value.code == 0 and (tmp_path / "cmp" / "compare.md").is_file()
    with pytest.raises(SystemExit) as exc:
        main(["eval", "bench", "--out", str(out)])
    assert exc.value.code == 2 and "error: give --data-root" in capsys.readouterr().err
