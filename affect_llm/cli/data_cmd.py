"""`affect-llm data list|build|mix|check`: turn public emotion corpora into canonical JSONL + a dataset card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Dataset builders: public emotion corpora → canonical JSONL samples (+ a dataset card).",
    no_args_is_help=True,
)


def _parse_opts(pairs: list[str]) -> dict[str, str]:
    from affect_llm.errors import AffectError

    out: dict[str, str] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key.strip():
            raise AffectError(f"--opt expects KEY=VALUE, got {p!r}")
        out[key.strip()] = value.strip()
    return out


@app.command("list")
def list_cmd() -> None:
    """The registered builders with their splits, options and licences."""
    from rich.console import Console
    from rich.table import Table

    from affect_llm.data_builders.registry import BUILDERS

    table = Table(title="dataset builders (affect-llm data build NAME --source DIR --out FILE.jsonl)")
    for col in ("name", "dataset", "splits", "options", "licence"):
        table.add_column(col, overflow="fold")
    for b in BUILDERS.values():
        opts = ", ".join(f"{k}={o.default!r}" for k, o in b.options.items())
        table.add_row(b.name, b.title + (" [pairs]" if b.kind == "pairs" else ""), " ".join(b.splits),
                      opts or "-", b.licence)
    Console(width=160).print(table)


@app.command("build")
def build_cmd(
    name: Annotated[str, typer.Argument(help="builder name (see `affect-llm data list`)")],
    source: Annotated[Path, typer.Option("--source", help="the corpus folder, e.g. ../shared/data/MELD")],
    out: Annotated[Path, typer.Option("--out", help="output JSONL; the card goes next to it (NAME.card.json/.md)")],
    split: str | None = typer.Option(None, "--split", help="split to build (default: train, else all)"),
    window: int | None = typer.Option(None, "--window", help="dialogue turns of context (ERC builders)"),
    opt: Annotated[list[str] | None, typer.Option("--opt", help="builder option KEY=VALUE (repeatable)")] = None,
    limit: int | None = typer.Option(None, "--limit", help="keep only the first N records"),
    text_col: str | None = typer.Option(None, "--text-col", help="table: column of the text (default: text)"),
    label_col: str | None = typer.Option(None, "--label-col", help="table: column of the label(s)"),
    label_sep: str | None = typer.Option(None, "--label-sep", help="table: separator of several labels in a cell"),
    label_space: str | None = typer.Option(None, "--label-space", help="table: named label space (default: inferred)"),
    label_map: str | None = typer.Option(None, "--label-map", help="table: JSON/YAML {raw label: new label or null}"),
    speaker_col: str | None = typer.Option(None, "--speaker-col", help="table: column of the speaker"),
    dialogue_col: str | None = typer.Option(None, "--dialogue-col", help="table: column of the dialogue id"),
    turn_col: str | None = typer.Option(None, "--turn-col", help="table: column of the turn order in a dialogue"),
    audio_col: str | None = typer.Option(None, "--audio-col", help="table: column of audio paths"),
    video_col: str | None = typer.Option(None, "--video-col", help="table: column of video paths"),
    image_col: str | None = typer.Option(None, "--image-col", help="table: column of image paths"),
    split_col: str | None = typer.Option(None, "--split-col", help="table: column of the split (--split filters it)"),
) -> None:
    """Build one split of a corpus into canonical JSONL and write its dataset card.

    `table` imports your own CSV / TSV / JSONL / Parquet file (or `--source hf:NAME[:CONFIG]`) with the
    column flags (`--text-col`, `--label-col`, ...).
    """
    from affect_llm.data_builders.registry import build_dataset, get_builder
    from affect_llm.errors import AffectError

    options = _parse_opts(opt or [])
    if window is not None:
        if "window" not in get_builder(name).options:
            raise AffectError(f"builder {name!r} has no dialogue window (--window)")
        options["window"] = str(window)
    table_flags = {"text_col": text_col, "label_col": label_col, "label_sep": label_sep, "label_space": label_space,
                   "label_map": label_map, "speaker_col": speaker_col, "dialogue_col": dialogue_col,
                   "turn_col": turn_col, "audio_col": audio_col, "video_col": video_col, "image_col": image_col,
                   "split_col": split_col}
    for key, value in table_flags.items():
        if value is not None:
            if key not in get_builder(name).options:
                raise AffectError(f"--{key.replace('_', '-')} applies to `data build table` only")
            options[key] = value
    from affect_llm.fileio import check_output_file

    check_output_file(out, inputs=[] if str(source).startswith("hf:") else [source])
    card = build_dataset(name, source, out, split=split, options=options, limit=limit)
    counts = card["counts"]
    extra = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "records" and not isinstance(v, dict))
    skipped = sum(counts.get("skipped", {}).values())
    typer.echo(
        f"wrote {counts['records']} {card['kind']} to {out}"
        + (f" ({extra})" if extra else "")
        + (f"; skipped {skipped}" if skipped else "")
    )
    typer.echo(f"card: {out.with_name(card['output'].removesuffix('.jsonl') + '.card.md')}")


@app.command("mix")
def mix_cmd(
    parts: Annotated[list[str], typer.Argument(help="FILE.jsonl:N (N samples drawn at random) or FILE.jsonl (all)")],
    out: Annotated[Path, typer.Option("--out", help="output JSONL")],
    seed: int = typer.Option(0, "--seed", help="random seed of the draws and the final shuffle"),
    ids: Path | None = typer.Option(None, "--ids-out", help="also write the drawn sample ids, one per line"),
) -> None:
    """Draw samples from several canonical files into one shuffled training mix (e.g. the default adapter's)."""
    import random

    from affect_llm.data_builders.schema import read_samples, write_samples
    from affect_llm.errors import AffectError
    from affect_llm.fileio import atomic_write, check_input_file, check_output_file

    rng = random.Random(seed)
    picked = []
    sources = []
    for part in parts:
        path, sep, n = part.rpartition(":") if part.rpartition(":")[2].isdigit() else (part, "", "")
        sources.append((path, sep, n))
        check_input_file(path, "mix input")
    inputs = [p for p, _, _ in sources]
    check_output_file(out, inputs=inputs)
    if ids:
        check_output_file(ids, inputs=[*inputs, out], what="--ids-out file")
    for path, sep, n in sources:
        samples = read_samples(path)
        count = int(n) if sep else len(samples)
        if count > len(samples):
            raise AffectError(f"{path}: asked for {count} samples, it has {len(samples)}")
        picked += rng.sample(samples, count)
    seen = set()
    for s in picked:
        if s.id in seen:
            raise AffectError(f"sample id {s.id!r} is drawn twice (the same file given twice?)")
        seen.add(s.id)
    rng.shuffle(picked)
    write_samples(out, picked)
    if ids:
        atomic_write(ids, "".join(s.id + "\n" for s in picked))
    typer.echo(f"wrote {len(picked)} samples to {out}")


@app.command("check")
def check_cmd(
    path: Annotated[Path, typer.Argument(help="a canonical JSONL file")],
    pairs: bool = typer.Option(False, "--pairs", help="the file holds DPO preference pairs"),
) -> None:
    """Validate a JSONL file against the canonical format (errors name the line and field)."""
    from collections import Counter

    from affect_llm.data_builders.schema import read_pairs, read_samples

    if pairs:
        found = read_pairs(path)
        if not found:
            from affect_llm.errors import AffectError

            raise AffectError(f"{path} holds no preference pairs (an empty file is not a dataset)")
        typer.echo(f"{path}: {len(found)} valid preference pairs")
        return
    from affect_llm.errors import AffectError

    samples = read_samples(path)
    if not samples:
        raise AffectError(f"{path} holds no samples (an empty file is not a dataset)")
    labels = Counter(label for s in samples for label in s.labels)
    top = ", ".join(f"{k} {v}" for k, v in labels.most_common(8))
    typer.echo(f"{path}: {len(samples)} valid samples; labels: {top or 'none'}")
