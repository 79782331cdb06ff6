"""Quality of the embedded default before and after tuning (issue 6's table).

1. `text`: the default model bare vs with the bundled LoRA adapter (or any adapter folder) on a seeded
   sample of MELD dev and GoEmotions dev: weighted F1 of the first predicted label against the first gold
   label (the ERC convention; GoEmotions' multi-label golds use their first label) and label-set F1 (mean
   per-sample F1 of predicted vs gold label sets, exact words after the vocabulary aliases).
2. `ovmerd`: OV-MERD split 80/20 by sample (seed 0); EW-L1 F (official emotion-wheel score, level 1)
   on the 20 % for: the bare model, LoRA SFT on the 80 %, and GRPO (emotion-wheel rewards) after that SFT.
   Those adapters are *not* shipped: OV-MERD is CC BY-NC.

    python bench/default_quality.py text --adapter none|default|DIR [--n 100] [--tag NAME]
    python bench/default_quality.py ovmerd-split
    python bench/default_quality.py ovmerd --adapter none|DIR --tag NAME
    python bench/default_quality.py report

Data: canonical JSONL built with `affect-llm data build` (see README); results in bench/results/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "results" / "default_quality"
WORK = OUT / "data"


def _adapter(arg: str) -> str | None:
    return None if arg == "none" else arg


def _label_set_f1(gold: list[list[str]], pred: list[list[str]]) -> float:
    from affect_llm.eval.ov import sample_prf

    scores = [sample_prf(set(g), set(p)) for g, p in zip(gold, pred)]
    return sum(s[2] if s else 0.0 for s in scores) / len(scores)


def text_quality(adapter: str, n: int, tag: str, meld: Path, goemotions: Path, batch_size: int) -> None:
    from affect_llm.data_builders.schema import read_samples
    from affect_llm.eval.classification import Counts, first_label, weighted_f1
    from affect_llm.pipeline import Explainer, ExplainRequest
    from affect_llm.runtime import configure_threads
    from affect_llm.train.data import _vocab_labels
    from affect_llm.vocabulary import EMOTION_WORDS

    configure_threads(1)
    ex = Explainer(adapter=_adapter(adapter))
    result = {"adapter": adapter, "model": ex.backend.model_id, "n": n, "sets": {}}
    for name, path in (("meld_dev", meld), ("goemotions_dev", goemotions)):
        samples = read_samples(path)
        random.Random(0).shuffle(samples)
        samples = samples[:n]
        reqs = [ExplainRequest(text=s.text, speaker=s.speaker, context=s.context[-2:]) for s in samples]
        start = time.perf_counter()
        reports = ex.explain_many(reqs, batch_size=batch_size, progress=True)
        seconds = time.perf_counter() - start
        # Gold in the served vocabulary (e.g. GoEmotions 'nervousness' stays, EmoryNLP 'mad' -> 'anger').
        gold = [_vocab_labels(s.labels, list(EMOTION_WORDS)) or [s.labels[0]] for s in samples]
        pred = [[lab.lower() for lab in r.labels] for r in reports]
        counts = Counts.from_pairs([(g[0], first_label(p)) for g, p in zip(gold, pred)])
        result["sets"][name] = {
            "weighted_f1": round(weighted_f1(counts), 4), "label_set_f1": round(_label_set_f1(gold, pred), 4),
            "seconds": round(seconds, 1),
            "top_predictions": _top([p[0] if p else "" for p in pred]),
            "examples": [{"text": s.text[:80], "gold": g, "pred": p} for s, g, p in list(zip(samples, gold, pred))[:5]],
        }
        print(tag, name, {k: v for k, v in result["sets"][name].items() if k != "examples"}, flush=True)
    _write(f"text_{tag}.json", result)


def _top(values: list[str], k: int = 4) -> dict[str, int]:
    from collections import Counter

    return dict(Counter(values).most_common(k))


def _write(name: str, obj) -> None:
    from affect_llm.fileio import write_json

    write_json(OUT / name, obj)


def ovmerd_split(source: Path) -> None:
    from affect_llm.data_builders.schema import read_samples, write_samples

    samples = read_samples(source)
    random.Random(0).shuffle(samples)
    cut = int(len(samples) * 0.8)
    WORK.mkdir(parents=True, exist_ok=True)
    write_samples(WORK / "ovmerd_train.jsonl", [s.model_dump(mode="json") for s in samples[:cut]])
    write_samples(WORK / "ovmerd_test.jsonl", [s.model_dump(mode="json") for s in samples[cut:]])
    print(f"ovmerd: {cut} train, {len(samples) - cut} test -> {WORK}")


def ovmerd_quality(adapter: str, tag: str, batch_size: int) -> None:
    from affect_llm.data_builders.schema import read_samples
    from affect_llm.eval.ov import evaluate_ov
    from affect_llm.pipeline import Explainer, ExplainRequest
    from affect_llm.runtime import configure_threads

    configure_threads(1)
    samples = read_samples(WORK / "ovmerd_test.jsonl")
    ex = Explainer(adapter=_adapter(adapter))
    start = time.perf_counter()
    reports = ex.explain_many([ExplainRequest(text=s.text) for s in samples], batch_size=batch_size, progress=True)
    seconds = time.perf_counter() - start
    gold = [s.labels for s in samples]
    pred = [r.labels for r in reports]
    _write(f"ovmerd_{tag}.pred.json", {"ids": [s.id for s in samples], "pred": pred})  # scores can be redone
    doc = evaluate_ov(gold, pred)
    res = {"adapter": adapter, "model": ex.backend.model_id, "n": len(samples), "seconds": round(seconds, 1),
           "ew_l1_f1": round(doc["ew_level1"]["f1"], 4), "ew_l2_f1": round(doc["ew_level2"]["f1"], 4),
           "top_predictions": _top([p[0] if p else "" for p in pred])}
    print(tag, res, flush=True)
    _write(f"ovmerd_{tag}.json", res)


def report() -> None:
    lines = ["| model | MELD dev wF1 | MELD dev label-set F1 | GoEmotions dev wF1 | GoEmotions dev label-set F1 |",
             "|---|---|---|---|---|"]
    for f in sorted(OUT.glob("text_*.json")):
        d = json.loads(f.read_text())
        m, g = d["sets"]["meld_dev"], d["sets"]["goemotions_dev"]
        lines.append(f"| {f.stem.removeprefix('text_')} (n={d['n']} each) | {m['weighted_f1']:.3f} | "
                     f"{m['label_set_f1']:.3f} | {g['weighted_f1']:.3f} | {g['label_set_f1']:.3f} |")
    lines += ["", "| OV-MERD 20 % test | EW-L1 F | EW-L2 F | n |", "|---|---|---|---|"]
    for f in sorted(p for p in OUT.glob("ovmerd_*.json") if not p.name.endswith(".pred.json")):
        d = json.loads(f.read_text())
        lines.append(f"| {f.stem.removeprefix('ovmerd_')} | {d['ew_l1_f1']:.3f} | {d['ew_l2_f1']:.3f} | {d['n']} |")
    (ROOT / "bench/results/default_quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["text", "ovmerd-split", "ovmerd", "report"])
    ap.add_argument("--adapter", default="default", help="none | default | adapter folder")
    ap.add_argument("--tag", default=None)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--meld", type=Path, default=WORK / "meld_dev.jsonl")
    ap.add_argument("--goemotions", type=Path, default=WORK / "goemotions_dev.jsonl")
    ap.add_argument("--ovmerd", type=Path, default=WORK / "ovmerd_all.jsonl")
    args = ap.parse_args()
    tag = args.tag or Path(args.adapter).name
    if args.step == "text":
        text_quality(args.adapter, args.n, tag, args.meld, args.goemotions, args.batch_size)
    elif args.step == "ovmerd-split":
        ovmerd_split(args.ovmerd)
    elif args.step == "ovmerd":
        ovmerd_quality(args.adapter, tag, args.batch_size)
    else:
        report()


if __name__ == "__main__":
    main()
