"""Bounded load on the affect API over loopback: vLLM engine vs transformers engine.

For each engine: start `affect-llm serve` on a free port (the real default model unless --model), wait
until /healthz is ready (start-up time recorded), warm up, then send `--requests` explain requests with
at most `--concurrency` in flight. Every request must succeed (exit code 1 otherwise). Reports
throughput (requests/s, generated tokens/s), latency p50/p95/max and the vLLM / transformers ratio,
as JSON + Markdown in bench/results/serve_load.{json,md}.

    python bench/serve_load.py                        # 64 requests at concurrency 16, both engines
    python bench/serve_load.py --engines vllm --requests 32
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, percentile, write_results

from affect_llm.decoding import DECODING

UTTERANCES = [
    "I can't believe you forgot my birthday again.",
    "We won the final! I still can't stop smiling.",
    "My dog died this morning.",
    "Wait, you did what with my car?",
    "Fine. Do whatever you want.",
    "I'm so nervous about the interview tomorrow.",
    "Thank you, this means the world to me.",
    "Ugh, the train is late again.",
    "Is anybody there? Hello?",
    "I finally finished the marathon.",
    "You lied to me for two years.",
    "This soup tastes like old socks.",
    "I miss how things used to be.",
    "Oh wow, a surprise party for me?",
    "Leave me alone, I need some space.",
    "Honestly, I don't care anymore.",
]


def start_server(engine: str, model: str | None, concurrency: int, max_new_tokens: int, log: Path
                 ) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "affect_llm.cli.app", "serve", "--engine", engine, "--port", "0", "--asr", "none",
           "--max-batch", str(concurrency), "--max-new-tokens", str(max_new_tokens), "--timeout", "900",
           "--log-level", "warning"]
    if model:
        cmd += ["--model", model]
    if engine == "vllm":
        cmd += ["--engine-log", str(log.with_suffix(".engine.log"))]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    out = open(log, "w")  # noqa: SIM115 - kept open while the server runs
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        m = re.search(r"listening on (http://\S+)", log.read_text())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{engine}: server did not start; see {log}")


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 1200) -> float:
    import httpx

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with code {proc.returncode} before it was ready")
        try:
            r = httpx.get(url + "/healthz", timeout=5)
            if r.status_code == 200:
                return time.monotonic() - t0
            if r.json().get("status") == "failed":
                raise SystemExit(f"engine failed: {r.json().get('error')}")
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("engine not ready in time")


async def load(url: str, n: int, concurrency: int) -> tuple[list[dict[str, Any]], float]:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    results: list[dict[str, Any]] = []

    async with httpx.AsyncClient(base_url=url, timeout=900,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one(i: int) -> None:
            async with sem:
                t = time.perf_counter()
                r = await client.post("/v1/affect/explain", json={"text": UTTERANCES[i % len(UTTERANCES)]})
                lat = time.perf_counter() - t
                ok = r.status_code == 200
                toks = r.json()["timings"]["completion_tokens"] if ok else 0.0
                results.append({"i": i, "status": r.status_code, "latency_s": lat, "tokens": toks,
                                "error": None if ok else r.text[:300]})

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - t0
    return results, wall


def run_engine(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    log = Path(args.log_dir) / f"serve_load_{engine}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc, url = start_server(engine, args.model, args.concurrency, args.max_new_tokens, log)
    try:
        start_s = wait_ready(url, proc)
        print(f"[{engine}] ready after {start_s:.1f} s at {url}", flush=True)
        for text in UTTERANCES[:2]:  # warm-up (first-request compilation, caches)
            r = httpx.post(url + "/v1/affect/explain", json={"text": text}, timeout=900)
            r.raise_for_status()
        load_avg = os.getloadavg()[0]
        results, wall = asyncio.run(load(url, args.requests, args.concurrency))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    lat = [r["latency_s"] for r in results]
    ok = [r for r in results if r["status"] == 200]
    tokens = sum(r["tokens"] for r in ok)
    row = {
        "engine": engine, "requests": len(results), "ok": len(ok), "concurrency": args.concurrency,
        "wall_s": round(wall, 2), "req_per_s": round(len(ok) / wall, 3), "tok_per_s": round(tokens / wall, 1),
        "mean_tokens": round(tokens / max(1, len(ok)), 1), "p50_s": round(percentile(lat, 50), 2),
        "p95_s": round(percentile(lat, 95), 2), "max_s": round(max(lat), 2), "start_s": round(start_s, 1),
        "load_avg_1m": round(load_avg, 2), "errors": [r["error"] for r in results if r["error"]][:3],
    }
    print(f"[{engine}] {row}", flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--engines", default="vllm,transformers")
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--max-new-tokens", type=int, default=int(DECODING["max_new_tokens"]))
    ap.add_argument("--log-dir", default="/tmp/affect-llm-bench")
    args = ap.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    rows = [run_engine(e, args) for e in engines]
    by = {r["engine"]: r for r in rows}
    ratio = None
    if "vllm" in by and "transformers" in by:
        v, t = by["vllm"], by["transformers"]
        ratio = {"req_per_s": round(v["req_per_s"] / t["req_per_s"], 2), "tok_per_s": round(v["tok_per_s"] / t["tok_per_s"], 2),
                 "p50": round(t["p50_s"] / v["p50_s"], 2)}
    columns = ["engine", "requests", "ok", "concurrency", "wall_s", "req_per_s", "tok_per_s", "mean_tokens",
               "p50_s", "p95_s", "max_s", "start_s", "load_avg_1m"]
    md = (f"# Serving load: {args.requests} explain requests at concurrency {args.concurrency}\n\n"
          f"Loopback, `affect-llm serve --asr none`, model: {args.model or 'smollm2-135m-instruct (bf16)'}, "
          f"max_new_tokens {args.max_new_tokens}, {os.cpu_count()} CPUs. Latency is per request, end to end.\n\n"
          + md_table(rows, columns))
    if ratio:
        md += (f"\nvLLM / transformers: **{ratio['req_per_s']}×** requests/s, **{ratio['tok_per_s']}×** tokens/s, "
               f"**{ratio['p50']}×** lower median latency.\n")
    md += "\nCommand: `python bench/serve_load.py " + " ".join(sys.argv[1:]) + "`\n"
    path = write_results("serve_load", {"args": vars(args), "rows": rows, "ratio_vllm_over_transformers": ratio}, md)
    print(md)
    print(f"wrote {path}")
    return 0 if all(r["ok"] == r["requests"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
