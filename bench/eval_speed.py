"""Evaluation-run speed: `eval run --suite closed-text` on the first N MELD dev turns, per backend and batch size.

Each configuration runs in its own process (thread count is process-wide): the explainer loads (timed as
start-up), then the runner explains and scores every sample into a fresh run folder (timed as the run).
The figure the issue asks for is the run time after the engine has started. Usage:

    python bench/eval_speed.py [--n 100] [--configs llamacpp:8:1,llamacpp:8:2,transformers:16:1]

A configuration is backend:batch[:threads] (threads default to --threads).

Writes bench/results/eval_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, sys, time
from affect_llm.eval.runner import EvalRunner
from affect_llm.eval.suite import load_suite
backend, batch, data, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
suite = load_suite("closed-text").with_overrides(data=data, backend=backend, limit=n)
t0 = time.perf_counter()
runner = EvalRunner.from_pipeline(suite, out, adapter="default", batch_size=batch, plots=False)
load_s = time.perf_counter() - t0
t0 = time.perf_counter()
result = runner.run()
run_s = time.perf_counter() - t0
print("EVAL_SPEED " + json.dumps({"load_s": load_s, "run_s": run_s, "n": result.n, "headline": result.headline()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--data", default=str(ROOT / "data" / "meld_dev.jsonl"))
    ap.add_argument("--configs", default="llamacpp:8:1,llamacpp:8:2,transformers:16:1")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    rows = []
    for cfg in args.configs.split(","):
        backend, batch, *rest = cfg.split(":")
        threads = int(rest[0]) if rest else args.threads
        env = {**os.environ, "AFFECT_LLM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([sys.executable, "-c", WORKER, backend, batch, args.data, str(args.n), tmp],
                                  capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            rows.append({"backend": backend, "batch": int(batch), "threads": threads,
                         "error": proc.stderr.strip().splitlines()[-1]})
            continue
        # vLLM's engine logs to stdout as well: the result is the line we tagged.
        tagged = [ln for ln in proc.stdout.splitlines() if ln.startswith("EVAL_SPEED ")]
        if not tagged:
            rows.append({"backend": backend, "batch": int(batch), "threads": threads, "error": "no result line"})
            continue
        res = json.loads(tagged[-1].removeprefix("EVAL_SPEED "))
        rows.append({"backend": backend, "batch": int(batch), "threads": threads, "n": res["n"], "startup_s": res["load_s"],
                     "run_s": res["run_s"], "s_per_sample": res["run_s"] / max(1, res["n"]),
                     **{k: v for k, v in res["headline"].items() if isinstance(v, (int, float))}})
        print(json.dumps(rows[-1]), flush=True)
    cols = sorted({k for r in rows for k in r}, key=lambda k: (k not in ("backend", "batch", "threads", "n"), k))
    md = f"# eval run speed: closed-text suite, first {args.n} MELD dev turns\n\n"
    md += md_table(rows, cols)
    print(md)
    write_results("eval_speed", {"rows": rows, "args": vars(args)}, md)


if __name__ == "__main__":
    main()
