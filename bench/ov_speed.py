"""OV-MER scoring speed: `affect-llm eval ov --json` vs a transcription of the official scripts.

Both run as whole processes (interpreter start, imports, reading the files, scoring, printing) on the
same synthetic corpus, so the ratio is what a user waiting for a score sees. The corpus: N samples,
gold and prediction each 0–6 labels drawn from the mapping's vocabulary, with case/whitespace
variants, out-of-vocabulary words and empty predictions; gold is written in the official string
form (`"openset": "['a', 'b']"`, as in OV-MERD's CSV), predictions half in that form and half as
`"labels"` lists. The two JSON outputs must be identical, or the run fails.

    python bench/ov_speed.py [--n 60000] [--repeats 3]

writes bench/results/ov_speed.{json,md} and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, percentile, write_results

ROOT = Path(__file__).resolve().parents[1]
OOV = ["humorous", "self-deprecating", "pessimism", "complaining", "meh", "hangry", "", "  "]


def make_corpus(n: int, seed: int, folder: Path) -> tuple[Path, Path]:
    from affect_llm.emotion_wheel import EmotionWheel

    vocab = sorted(EmotionWheel.default().vocabulary)
    rng = random.Random(seed)

    def label() -> str:
        x = rng.random()
        if x < 0.12:
            return rng.choice(OOV)
        word = rng.choice(vocab)
        if x < 0.25:
            word = f" {word.capitalize()} " if x < 0.18 else word.upper()
        return word

    gold, pred = folder / "gold.jsonl", folder / "pred.jsonl"
    with gold.open("w") as g, pred.open("w") as p:
        for i in range(n):
            sid = f"s{i:06d}"
            gold_labels = [label() for _ in range(rng.randint(0, 6))]
            g.write(json.dumps({"id": sid, "openset": "[" + ", ".join(map(repr, gold_labels)) + "]"}) + "\n")
            labels = [] if rng.random() < 0.05 else [label() for _ in range(rng.randint(1, 6))]
            if i % 2:
                p.write(json.dumps({"id": sid, "openset": "[" + ", ".join(labels) + "]"}) + "\n")
            else:
                p.write(json.dumps({"id": sid, "labels": labels}) + "\n")
    return gold, pred


def timed(cmd: list[str]) -> tuple[float, float, dict]:
    """Wall-clock and CPU (user + system) seconds of one process, and its JSON output. CPU time is
    the steadier figure on a shared machine: waiting for a core does not count."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="OV-MER scoring speed: ours vs the official algorithm")
    ap.add_argument("--n", type=int, default=60_000, help="synthetic samples")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each command (best and median reported)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        gold, pred = make_corpus(args.n, args.seed, Path(tmp))
        ours_cmd = [sys.executable, "-m", "affect_llm.cli.app", "eval", "ov", "--pred", str(pred), "--gold", str(gold), "--json"]
        official_cmd = [sys.executable, str(ROOT / "bench" / "ov_official.py"), "--pred", str(pred), "--gold", str(gold)]
        times: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in ("ours", "official")}
        docs = {}
        for _ in range(args.repeats):  # interleaved, so load on the shared machine hits both alike
            for key, cmd in (("ours", ours_cmd), ("official", official_cmd)):
                wall, cpu, docs[key] = timed(cmd)
                times[key]["wall"].append(wall)
                times[key]["cpu"].append(cpu)
    identical = docs["ours"] == docs["official"]
    med = {k: {m: percentile(v, 50) for m, v in t.items()} for k, t in times.items()}
    ratio = {m: med["official"][m] / med["ours"][m] for m in ("wall", "cpu")}
    payload = {
        "samples": args.n,
        "repeats": args.repeats,
        "seconds": times,
        "ratio_median_wall": ratio["wall"],
        "ratio_median_cpu": ratio["cpu"],
        "identical_output": identical,
        "m_avg": docs["ours"]["m_avg"],
        "commands": {"ours": "affect-llm eval ov --pred P --gold G --json", "official": "python bench/ov_official.py"},
        "python": platform.python_version(),
    }
    names = {"official": "official algorithm (bench/ov_official.py)", "ours": "affect-llm eval ov --json"}
    rows = [
        {"scorer": names[k], "wall s (median)": med[k]["wall"], "CPU s (median)": med[k]["cpu"],
         "wall s (best)": min(times[k]["wall"])}
        for k in ("official", "ours")
    ]
    md = (
        "# OV-MER scoring speed\n\n"
        f"{args.n:,} synthetic samples, whole processes, {args.repeats} interleaved runs each.\n\n"
        + md_table(rows, ["scorer", "wall s (median)", "CPU s (median)", "wall s (best)"])
        + f"\nSpeed-up (median): **{ratio['cpu']:.1f}× in CPU time**, {ratio['wall']:.1f}× wall-clock. "
        f"Outputs identical: {'yes' if identical else 'NO'}.\n"
    )
    write_results("ov_speed", payload, md)
    print(md)
    print(f"ratio (median) cpu {ratio['cpu']:.1f}x wall {ratio['wall']:.1f}x")
    if not identical:
        raise SystemExit("outputs differ: the fast scorer does not reproduce the official numbers")


if __name__ == "__main__":
    main()
