"""`affect-llm index build|query|info`: the demonstration retrieval index (sentence-transformers + FAISS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Demonstration retrieval index (sentence-transformers + FAISS).", no_args_is_help=True)


@app.command("build")
def build_cmd(
    data: Annotated[Path, typer.Option("--data", help="canonical JSONL pool, e.g. data/meld_train.jsonl")],
    out: Annotated[Path, typer.Option("--out", help="index folder to write (replaced atomically if it is one)")],
    model: str | None = typer.Option(None, "--model", help="embedding model: asset name, folder or hub id "
                                        "(default: the bundled MiniLM)"),
    context_turns: int = typer.Option(0, "--context-turns", min=0,
                                      help="embed the last N context turns with speaker roles (speaker-aware)"),
    hnsw_threshold: int = typer.Option(100_000, "--hnsw-threshold", min=1,
                                       help="use HNSW instead of exact search above this many samples"),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="embedding batch (16-32 is fastest on CPU)"),
) -> None:
    """Embed a labelled pool and write a FAISS index + manifest (model id, normalisation, data hash)."""
    from affect_llm.data_builders.schema import read_samples
    from affect_llm.errors import AffectError
    from affect_llm.fileio import check_output_dir
    from affect_llm.retrieval import DemoIndex

    samples = read_samples(data)
    if not samples:
        raise AffectError(f"{data} holds no samples to index")
    check_output_dir(out, inputs=[data])  # before the embedding, not after
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise AffectError(f"{out} is a folder with other files, not a demonstration index; it would be replaced, "
                          "so give a new or an index folder")
    idx = DemoIndex.build(samples, out, model=model, context_turns=context_turns,
                          hnsw_threshold=hnsw_threshold, batch_size=batch_size, progress=True,
                          data_path=str(data.resolve()))
    m = idx.manifest
    rate = m["count"] / max(m["timings_s"]["embed"], 1e-9)
    typer.echo(f"indexed {m['count']} samples ({m['index_type']}, {m['embedding_model']}, "
               f"{rate:.0f} sentences/s) → {out}")


@app.command("info")
def info_cmd(index: Annotated[Path, typer.Argument(help="index folder")]) -> None:
    """Print an index's manifest."""
    from affect_llm.errors import AffectError

    mpath = index / "manifest.json"
    if not mpath.is_file():
        raise AffectError(f"{index} is not a demonstration index (no manifest.json)")
    from affect_llm.fileio import read_text

    typer.echo(read_text(mpath, "index manifest").rstrip())


@app.command("query")
def query_cmd(
    index: Annotated[Path, typer.Argument(help="index folder")],
    text: str | None = typer.Option(None, "--text", help="query utterance"),
    speaker: str | None = typer.Option(None, "--speaker", help="speaker of --text"),
    data: Annotated[Path | None, typer.Option("--data", help="or: take query samples from this JSONL")] = None,
    sample_id: str | None = typer.Option(None, "--id", help="with --data: the sample id to query"),
    k: int = typer.Option(8, "--k", min=1, help="demonstrations to return"),
    balanced: bool = typer.Option(False, "--balanced", help="label-balanced selection"),
    speaker_boost: float = typer.Option(0.0, "--speaker-boost", help="similarity bonus for the same speaker"),
    model: str | None = typer.Option(None, "--model", help="embedding model (must match the index)"),
    json_out: bool = typer.Option(False, "--json", help="print JSON lines (score + sample)"),
) -> None:
    """Show the k demonstrations the index returns for a text or a sample of a JSONL file."""
    from affect_llm.data_builders.schema import Sample, read_samples
    from affect_llm.errors import AffectError
    from affect_llm.retrieval import DemoIndex

    if (text is None) == (data is None):
        raise AffectError("give either --text or --data (with --id)")
    if text is not None and not text.strip():
        raise AffectError("--text is empty; give the utterance to find demonstrations for")
    if data is not None:
        samples = read_samples(data)
        if sample_id is None:
            raise AffectError("--data needs --id SAMPLE_ID")
        query = next((s for s in samples if s.id == sample_id), None)
        if query is None:
            raise AffectError(f"{data}: no sample with id {sample_id!r}")
    else:
        query = Sample(id="query", dataset="query", split="query", text=text or "", speaker=speaker)
    idx = DemoIndex.load(index, model=model)
    hits = idx.search(query, k, balanced=balanced, speaker_boost=speaker_boost)
    if json_out:
        for h in hits:
            typer.echo(json.dumps({"score": round(h.score, 4), **h.sample.model_dump(mode="json")},
                                  ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(hits)} demonstrations for: {query.text[:80]!r}")
    for col in ("score", "labels", "speaker", "text", "id"):
        table.add_column(col, overflow="fold")
    for h in hits:
        table.add_row(f"{h.score:.3f}", ", ".join(h.sample.labels), h.sample.speaker or "", h.sample.text,
                      h.sample.id)
    Console(width=160).print(table)
