"""Retrieval speed: index build throughput (sentences/s) and query latency (p50/p95, k=8) on a ~50k pool.

The pool is GoEmotions train (43,410 Reddit comments) topped up with MELD train utterances to --n
samples, built with the project's own builders from ../shared/data; queries are MELD dev utterances.
Both index kinds are timed on the same vectors: exact FlatIP (the default below 100k samples) and
HNSW (M=32). Query latency is reported end to end (`DemoIndex.select`: embed the query, search,
leakage filter) and search-only (query vector precomputed).

    python bench/retrieval_speed.py                 # full run (~8 min on one CPU thread)
    python bench/retrieval_speed.py --n 5000        # quick check

Writes bench/results/retrieval_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT.parent / "shared" / "data"


class CachingEmbedder:
    """Wraps the real embedder and remembers vectors, so a second index reuses the same embeddings."""

    def __init__(self, real) -> None:
        self.real, self.cache = real, {}
        self.model_id, self.fingerprint, self.dim = real.model_id, real.fingerprint, real.dim
        self.calls = 0

    def encode(self, texts, *, batch_size: int = 32, progress: bool = False):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.calls += 1
            vecs = self.real.encode(missing, batch_size=batch_size, progress=progress)
            self.cache.update(zip(missing, vecs))
        return np.stack([self.cache[t] for t in texts]).astype(np.float32)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def time_queries(idx, queries, k: int, **kw) -> list[float]:
    for q in queries[:5]:  # warm-up
        idx.select(q, k, **kw)
    out = []
    for q in queries:
        t0 = time.perf_counter()
        idx.select(q, k, **kw)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared data folder")
    ap.add_argument("--n", type=int, default=50_000, help="pool size")
    ap.add_argument("--queries", type=int, default=300, help="MELD dev queries to time")
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from affect_llm.data_builders.registry import run_builder

    from affect_llm.retrieval import DemoIndex, SentenceEmbedder, key_text
    from affect_llm.threads import configure_threads

    if not args.shared.is_dir():
        print(f"error: shared data folder {args.shared} not found (--shared)", file=sys.stderr)
        return 2
    threads = configure_threads()
    go, _ = run_builder("goemotions", args.shared / "GoEmotions", "train")
    meld, _ = run_builder("meld", args.shared / "MELD", "train")
    pool = (go.records + meld.records)[: args.n]
    dev, _ = run_builder("meld", args.shared / "MELD", "dev")
    queries = dev.records[: args.queries]
    print(f"pool {len(pool)} samples ({min(len(go.records), args.n)} GoEmotions + rest MELD), "
          f"{len(queries)} queries, torch threads {threads}", flush=True)

    t0 = time.perf_counter()
    real = SentenceEmbedder()
    load_s = time.perf_counter() - t0
    emb = CachingEmbedder(real)
    res: dict = {"pool": len(pool), "queries": len(queries), "k": args.k, "embedding_model": real.model_id,
                 "batch_size": args.batch_size, "model_load_s": round(load_s, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        flat = DemoIndex.build(pool, Path(tmp) / "flat", embedder=emb, batch_size=args.batch_size, progress=True)
        build_s = time.perf_counter() - t0
        embed_s = flat.manifest["timings_s"]["embed"]
        unique = len(emb.cache)  # duplicate texts are embedded once
        res["build"] = {
            "total_s": round(build_s, 2),
            "embed_s": round(embed_s, 2),
            "unique_texts_embedded": unique,
            "embed_sentences_per_s": round(unique / embed_s, 1),
            "end_to_end_sentences_per_s": round(len(pool) / build_s, 1),
            "flat_add_s": flat.manifest["timings_s"]["add"],
        }
        t0 = time.perf_counter()
        hnsw = DemoIndex.build(pool, Path(tmp) / "hnsw", embedder=emb, hnsw_threshold=1)
        res["build"]["hnsw_add_s"] = hnsw.manifest["timings_s"]["add"]
        res["build"]["hnsw_index_type"] = hnsw.manifest["index_type"]
        print(f"built: {res['build']}", flush=True)

        lat: dict = {}
        # end to end: the query is embedded by the real model each time
        flat_e2e = DemoIndex.load(Path(tmp) / "flat", embedder=real)
        lat["flat_end_to_end_ms"] = time_queries(flat_e2e, queries, args.k)
        # search only: query vectors precomputed (cache), then search + leakage filter
        emb.encode([key_text(q, 0) for q in queries])
        for name, idx in (("flat", flat), ("hnsw", hnsw)):
            lat[f"{name}_search_ms"] = time_queries(idx, queries, args.k)
        lat["flat_balanced_search_ms"] = time_queries(flat, queries, args.k, balanced=True)
        res["latency_ms"] = {name: {"p50": round(pct(v, 50), 3), "p95": round(pct(v, 95), 3)}
                             for name, v in lat.items()}
        overlap = [len({x.id for x in flat.select(q, args.k)} & {x.id for x in hnsw.select(q, args.k)}) / args.k
                   for q in queries]
        res["hnsw_recall_at_k_vs_flat"] = round(statistics.mean(overlap), 4)

    import faiss
    import sentence_transformers
    import torch

    res["environment"] = {
        "python": platform.python_version(), "torch": torch.__version__, "faiss": faiss.__version__,
        "sentence_transformers": sentence_transformers.__version__, "torch_threads": threads,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "machine": platform.machine(), "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "retrieval_speed.json").write_text(json.dumps(res, indent=2) + "\n")
    b, L = res["build"], res["latency_ms"]
    md = [
        f"# Retrieval speed — {res['pool']:,}-sample pool, k = {res['k']}",
        "",
        (f"Embedding model `{res['embedding_model']}` on CPU ({res['environment']['torch_threads']} torch "
         f"thread(s), {res['environment']['cpus']} CPUs, load average at end "
         f"{res['environment']['load_avg_at_end']}); batch size {res['batch_size']}. "
         f"Command: `python bench/retrieval_speed.py --n {args.n}`."),
        "",
        "| build | value |",
        "|---|---|",
        (f"| embedding throughput | {b['embed_sentences_per_s']:.0f} sentences/s "
         f"({b['unique_texts_embedded']:,} unique texts) |"),
        (f"| end-to-end build (embed + index + write) | {b['end_to_end_sentences_per_s']:.0f} sentences/s "
         f"({b['total_s']:.0f} s) |"),
        f"| FlatIP add | {b['flat_add_s']:.2f} s |",
        f"| {b['hnsw_index_type']} add | {b['hnsw_add_s']:.2f} s |",
        "",
        f"| query latency ({res['queries']} MELD dev queries) | p50 ms | p95 ms |",
        "|---|---|---|",
    ]
    names = {
        "flat_end_to_end_ms": "FlatIP, end to end (embed query + search + filter)",
        "flat_search_ms": "FlatIP, search + leakage filter",
        "hnsw_search_ms": "HNSW, search + leakage filter",
        "flat_balanced_search_ms": "FlatIP, label-balanced selection",
    }
    md += [f"| {names[n]} | {v['p50']:.2f} | {v['p95']:.2f} |" for n, v in L.items()]
    md += ["", f"HNSW top-{res['k']} overlap with exact search: {res['hnsw_recall_at_k_vs_flat']:.1%}.", ""]
    (args.out / "retrieval_speed.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
