"""Do projected audio tokens carry emotion the words and cue phrases miss? (Berlin EmoDB, speaker-independent)

EmoDB's ten carrier sentences are emotionally neutral by design, so everything an answer gets right above
chance comes from *how* the sentence is said. Four prompt conditions, each fine-tuned the same way (LoRA SFT
of the default model on the explain task with EmoDB's closed 7-label set, same steps, same seed) on six
speakers and tested on the other two (03 male, 08 female):

  (a) text    the sentence only
  (b) cues    the sentence + the textualized prosody cues (each clip against the same speaker's other clips)
  (c) tokens  the sentence + `<audio>` soft tokens (Whisper tiny.en encoder + prosody descriptors -> MLP
              projectors, stage 1 on the cue descriptions, then stage 2 projector + LoRA)
  (d) both    (b) + (c)

plus the untrained default model on (a) and (b) (zero-shot). Reported: 7-class accuracy and unweighted
average recall (UAR) on the held-out speakers' clips.

    python bench/emodb_projector.py prepare            # features, cues, train/test JSONL
    python bench/emodb_projector.py train text|cues|tokens|both [--steps 60]
    python bench/emodb_projector.py eval text|cues|tokens|both|zeroshot-text|zeroshot-cues
    python bench/emodb_projector.py report              # bench/results/emodb_projector.{json,md}

Work files go to bench/results/emodb_projector/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORK = ROOT / "bench" / "results" / "emodb_projector"
LABELS = ["anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"]  # emodb7, training order
TEST_SPEAKERS = ("03", "08")
# The ten EmoDB carrier sentences (Burkhardt et al. 2005), by text code.
SENTENCES = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
ENCODERS = ["whisper", "prosody"]
CONDITIONS = {  # name -> (cues in the prompt, soft audio tokens)
    "text": (False, False), "cues": (True, False), "tokens": (False, True), "both": (True, True),
}


def prepare(emodb: Path) -> None:
    """Samples with the carrier sentence as text and speaker-referenced prosody cues; frames cached."""
    from affect_llm.data_builders import emodb as builder
    from affect_llm.data_builders.schema import write_samples
    from affect_llm.projector.encoders import build_encoder, encode_cached
    from affect_llm.threads import configure_threads
    from affect_llm.textualize.audio import load_audio
    from affect_llm.textualize.prosody import extract_prosody, prosody_cues, speaker_reference
    from tqdm import tqdm

    configure_threads(1)
    samples = builder.build(emodb, "all").records
    feats = {}
    for s in tqdm(samples, desc="prosody features"):
        feats[s.id] = extract_prosody(load_audio(s.audio))
    encoders = [build_encoder(n) for n in ENCODERS]
    for s in tqdm(samples, desc="frame features"):
        for enc in encoders:
            encode_cached(enc, s.audio)
    rows = {"train": [], "test": []}
    for s in samples:
        spk = s.meta["speaker_id"]
        others = [feats[o.id] for o in samples if o.meta["speaker_id"] == spk and o.id != s.id]
        cues, _ = prosody_cues(feats[s.id], speaker_reference(others))
        row = s.model_dump(mode="json")
        row.update(text=SENTENCES[s.meta["text_code"]], speaker=None,
                   cues=[c.model_dump(mode="json") for c in cues[:3]],
                   description=f"How the neutral sentence is said points to {s.labels[0]}.")
        rows["test" if spk in TEST_SPEAKERS else "train"].append(row)
    WORK.mkdir(parents=True, exist_ok=True)
    for split, rs in rows.items():
        write_samples(WORK / f"{split}.jsonl", rs)
        print(split, len(rs), dict(Counter(r["labels"][0] for r in rs)))


def _variant(split: str, cond: str) -> Path:
    """The split's JSONL as a condition sees it (cues dropped where the condition has none)."""
    cues, _ = CONDITIONS[cond.removeprefix("zeroshot-")]
    path = WORK / f"{split}_{'cues' if cues else 'nocues'}.jsonl"
    if not path.is_file():
        rows = [json.loads(line) for line in (WORK / f"{split}.jsonl").read_text().splitlines()]
        for r in rows:
            if not cues:
                r["cues"] = []
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def _sft(cond: str, out: Path, steps: int, extra: list[str]) -> float:
    cmd = [str(Path(sys.executable).parent / "affect-llm"), "train", "sft", "--config",
           str(ROOT / "affect_llm/train/configs/sft_default_cpu.yaml"), "--train_file", str(_variant("train", cond)),
           "--output_dir", str(out), "--max_steps", str(steps), "--closed_label_space", "true", "--torch_dtype",
           "bfloat16", "--threads", "1", "--logging_steps", "10", "--warmup_steps", "3", "--max_length", "640",
           *extra]
    print(" ".join(cmd[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def train(cond: str, steps: int) -> None:
    out = WORK / f"run_{cond}"
    cues, tokens = CONDITIONS[cond]
    timing = {}
    if tokens:
        enc = ["--projector", "mlp", "--projector_encoders", "[" + ", ".join(ENCODERS) + "]", "--projector_tokens", "8"]
        # Stage 1 (describe the voice) never sees the cues, so the token conditions share one stage-1 run.
        stage1 = WORK / "run_stage1"
        if not (stage1 / "projector_config.json").is_file():
            timing["stage1_s"] = _sft(cond, stage1, max(steps // 2, 1),
                                      enc + ["--projector_stage", "1", "--learning_rate", "1e-3"])
        timing["stage2_s"] = _sft(cond, out, steps, enc + ["--projector_stage", "2", "--projector_init",
                                                           str(stage1),
                                                           "--projector_cues", str(cues).lower()])
    else:
        timing["sft_s"] = _sft(cond, out, steps, [])
    (out / "bench_timing.json").write_text(json.dumps(timing))


def evaluate(cond: str, batch_size: int) -> None:
    from affect_llm.backends.transformers_backend import TransformersBackend
    from affect_llm.data_builders.schema import read_samples
    from affect_llm.parsing import ParseError
    from affect_llm.pipeline import Explainer, request_from

    base = cond.removeprefix("zeroshot-")
    cues, tokens = CONDITIONS[base]
    run = WORK / f"run_{cond}"
    zeroshot = cond.startswith("zeroshot-")
    backend = TransformersBackend(
        None, adapter=None if zeroshot else str(run), projector=str(run) if tokens else None)
    ex = Explainer(backend=backend)  # the decoding defaults; cues are not scored
    samples = read_samples(_variant("test", cond))
    reqs = [request_from(text=s.text, cues=list(s.cues) if cues else [], label_space=LABELS,
                         media={"audio": s.audio} if tokens else {}) for s in samples]
    start = time.perf_counter()
    preds, failed = [], 0
    from tqdm import tqdm

    for i in tqdm(range(0, len(reqs), batch_size), desc=f"eval {cond}", unit="batch"):
        chunk = reqs[i:i + batch_size]
        try:
            reports = ex.explain_many(chunk, batch_size=batch_size)
        except ParseError:  # one answer ran out of tokens before its labels: score the batch one by one
            reports = []
            for r in chunk:
                try:
                    reports += ex.explain_many([r])
                except ParseError:
                    reports.append(None)
                    failed += 1
        preds += [(r.labels[0] if r and r.labels else "") for r in reports]
    seconds = time.perf_counter() - start
    golds = [s.labels[0] for s in samples]
    out = {"condition": cond, "n": len(samples), "seconds": round(seconds, 1), "unparsed": failed, "pred": preds, "gold": golds,
           "ids": [s.id for s in samples]}
    (WORK / f"eval_{cond}.json").write_text(json.dumps(out))
    print(cond, _scores(golds, preds))


def _scores(golds: list[str], preds: list[str]) -> dict[str, float]:
    acc = sum(g == p for g, p in zip(golds, preds)) / len(golds)
    recalls = [sum(g == p == lab for g, p in zip(golds, preds)) / max(1, golds.count(lab)) for lab in LABELS
               if golds.count(lab)]
    return {"accuracy": round(acc, 3), "uar": round(sum(recalls) / len(recalls), 3)}


def report() -> None:
    rows = []
    for cond in ["zeroshot-text", "zeroshot-cues", "text", "cues", "tokens", "both"]:
        f = WORK / f"eval_{cond}.json"
        if not f.is_file():
            continue
        d = json.loads(f.read_text())
        timing = {}
        if (WORK / f"run_{cond}" / "bench_timing.json").is_file():
            timing = json.loads((WORK / f"run_{cond}" / "bench_timing.json").read_text())
        rows.append({"condition": cond, "n": d["n"], "unparsed": d.get("unparsed", 0), **_scores(d["gold"], d["pred"]),
                     "predicted": dict(Counter(d["pred"]).most_common(3)), "train_s": round(sum(timing.values()))})
    from affect_llm.fileio import write_json

    write_json(ROOT / "bench/results/emodb_projector.json", {"test_speakers": TEST_SPEAKERS, "rows": rows})
    lines = ["| condition | n | accuracy | UAR | unparsed | most predicted | train s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['condition']} | {r['n']} | {r['accuracy']:.3f} | {r['uar']:.3f} | {r['unparsed']} | {r['predicted']} "
              f"| {r['train_s']} |" for r in rows]
    (ROOT / "bench/results/emodb_projector.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["prepare", "train", "eval", "report"])
    ap.add_argument("condition", nargs="?")
    ap.add_argument("--emodb", type=Path, default=ROOT.parent / "shared" / "data" / "EmoDB")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=8)
    args = ap.parse_args()
    if args.step == "prepare":
        prepare(args.emodb)
    elif args.step == "train":
        train(args.condition, args.steps)
    elif args.step == "eval":
        evaluate(args.condition, args.batch_size)
    else:
        report()


if __name__ == "__main__":
    main()
