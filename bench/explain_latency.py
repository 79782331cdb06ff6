"""Explain latency of the embedded default, side by side with a plain transformers `generate` of the same weights.

In one process per thread count, for each text: our whole answer (evidence + label model + constrained,
id-cited JSON + parsing), then `model.generate` of 64 greedy tokens on the same prompt and the same merged
weights (no constraint, `min_new_tokens=64`). The configurations alternate text by text, so machine noise
hits both alike. Start-up is measured in fresh processes: `import affect_llm.cli.app`, and a cold
`affect-llm explain --text ... --json` (start-up + load + answer). Usage:

    python bench/explain_latency.py [--n 20] [--threads 1,2] [--backends transformers,llamacpp]

Writes bench/results/explain_latency.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, percentile, write_results  # noqa: E402

TEXTS = [
    "I can't believe you forgot my birthday again.",
    "We won the championship!!!",
    "My dog died this morning.",
    "Could you pass me the salt?",
    "I've been waiting for over an hour and nobody has called me back.",
    "Oh wow, you actually remembered! Thank you so much.",
    "I don't know if I can do this anymore.",
    "Get out of my room right now!",
    "Is that a spider on my shoulder?",
    "That smell in the fridge is disgusting.",
    "I finally passed my driving test!",
    "Whatever, do what you want.",
    "I miss the way things used to be.",
    "Are you serious? They cancelled the concert?",
    "Thanks for nothing.",
    "I'm so nervous about the interview tomorrow.",
    "You always know how to make me laugh.",
    "He lied to me for years.",
    "The meeting is at three in the conference room.",
    "I can't stop smiling today.",
]

WORKER = r"""
import json, sys, time
import torch
from affect_llm.pipeline import Explainer, request_from
texts, backends = json.loads(sys.argv[1]), json.loads(sys.argv[2])
exps, load_s = {}, {}
for name in backends:
    t0 = time.perf_counter()
    exps[name] = Explainer(backend=name)
    load_s[name] = time.perf_counter() - t0
    exps[name].explain(text="warm-up")  # builds the schema tables once; not timed
ref = exps.get("transformers") or Explainer(backend="transformers")
be = ref.backend
rows = []
for t in texts:
    row = {}
    for name, ex in exps.items():
        start = time.perf_counter()
        r = ex.explain(text=t)
        row[name] = {"s": time.perf_counter() - start, "tokens": r.timings["completion_tokens"],
                     "answer": r.to_json_dict()}
    prompt = be.prompt_text(ref.messages(request_from(text=t)))
    enc = be.tokenizer([prompt], return_tensors="pt", add_special_tokens=False)
    start = time.perf_counter()
    with torch.inference_mode():
        out = be.model.generate(**enc, max_new_tokens=64, min_new_tokens=64, do_sample=False,
                                pad_token_id=be.tokenizer.pad_token_id)
    row["plain_s"] = time.perf_counter() - start
    row["plain_tokens"] = int(out.shape[1] - enc["input_ids"].shape[1])
    row["prompt_tokens"] = int(enc["input_ids"].shape[1])
    rows.append(row)
print(json.dumps({"load_s": load_s, "dtype": be.dtype, "rows": rows}))
"""


def run_worker(threads: int, texts: list[str], backends: list[str]) -> dict:
    env = {**os.environ, "AFFECT_LLM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(texts), json.dumps(backends)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def startup(threads: int, repeats: int, backend: str) -> dict:
    env = {**os.environ, "AFFECT_LLM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
    cli = str(Path(sys.executable).with_name("affect-llm"))
    imp, cold = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import affect_llm.cli.app"], check=True, env=env)
        imp.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([cli, "explain", "--text", TEXTS[0], "--json", "--backend", backend], check=True, env=env,
                       capture_output=True)
        cold.append(time.perf_counter() - start)
    return {"import_s": statistics.median(imp), "cold_explain_s": statistics.median(cold)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--startup-repeats", type=int, default=3)
    ap.add_argument("--backends", default="transformers,llamacpp", help="our answer through these backends")
    args = ap.parse_args()
    backends = args.backends.split(",")
    rows, answers = [], {}
    for threads in [int(x) for x in args.threads.split(",")]:
        res = run_worker(threads, TEXTS[: args.n], backends)
        plain = [r["plain_s"] for r in res["rows"]]
        plain_tok = sum(r["plain_tokens"] for r in res["rows"])
        for name in backends:
            ours = [r[name]["s"] for r in res["rows"]]
            ours_tok = sum(r[name]["tokens"] for r in res["rows"])
            st = startup(threads, args.startup_repeats, name)
            rows.append({
                "backend": name, "threads": threads, "texts": len(ours),
                "ours_p50_s": percentile(ours, 50), "ours_p95_s": percentile(ours, 95),
                "ours_tokens_mean": ours_tok / len(ours), "ours_tokens_per_s": ours_tok / sum(ours),
                "plain64_p50_s": percentile(plain, 50), "plain64_p95_s": percentile(plain, 95),
                "plain_tokens_per_s": plain_tok / sum(plain),
                "ratio_p50_ours_vs_plain": percentile(ours, 50) / percentile(plain, 50),
                "load_s": res["load_s"][name], **st,
            })
            answers[f"{name}@{threads}"] = [{"text": t, **r[name]["answer"]} for t, r in zip(TEXTS, res["rows"])]
            print(json.dumps(rows[-1]), flush=True)
    cols = list(rows[0])
    md = ("# explain latency: ours (whole answer) vs plain transformers generate (64 greedy tokens), same weights\n\n"
          + md_table(rows, cols))
    for key, rows_ in answers.items():
        if not key.endswith(f"@{args.threads.split(',')[0]}"):
            continue
        md += f"\n\n## Answers ({key} threads)\n\n"
        for a in rows_:
            cues = "; ".join(f"{c['cue']}: {c['evidence']}" for c in a["cues"])
            md += f"- **{a['text']}** → {', '.join(a['labels'])} ({a['confidence']:.2f}) — {a['explanation']} [{cues}]\n"
    print(md)
    write_results("explain_latency", {"rows": rows, "answers": answers, "args": vars(args)}, md)


if __name__ == "__main__":
    main()
