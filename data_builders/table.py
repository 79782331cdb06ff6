"""The generic importer: any CSV / TSV / JSONL / Parquet table, or a Hugging Face dataset, → canonical samples.

`affect-llm data build table --source FILE --text-col C --label-col C [...]` maps the user's column names
onto the canonical fields. With `--dialogue-col` (and `--turn-col` for the order inside a dialogue) rows
become dialogues and every sample carries the same speaker-aware context window as the named ERC
builders (`common.context_window`), so MELD's CSV imported here equals the `meld` builder's output.

Labels: one per cell, or several with `--label-sep`; renamed by a `--label-map` file (JSON / YAML
`{raw: canonical}`, a null or "" target drops the label); checked against a named label space
(`--label-space meld7`) or, when none is named, collected into the card as the inferred set (the
samples then carry `label_space: null`).

Every problem names the row: `FILE:LINE` for text formats, `FILE: row N` for Parquet / datasets.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affect_llm.data_builders.common import (
    DEFAULT_WINDOW,
    WINDOW_OPTION,
    Builder,
    BuildResult,
    Option,
    Utt,
    check_window,
    context_window,
)
from affect_llm.data_builders.label_spaces import label_space as named_label_space
from affect_llm.data_builders.schema import Sample

from affect_llm.errors import AffectError
from affect_llm.extras import require

LICENCE = "the source table's own licence (the importer does not know it; record it with --opt licence=...)"
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev", "development": "dev", "testing": "test",
                 "training": "train"}
HF_PROBE_TIMEOUT_S = 5.0
COLUMN_OPTIONS = ("text_col", "label_col", "speaker_col", "dialogue_col", "turn_col", "audio_col", "video_col",
                  "image_col", "split_col")


@dataclass(frozen=True)
class Row:
    """One input row: where it came from (for messages) and its values by column."""

    where: str
    values: dict[str, Any]


# ------------------------------------------------------------------------------------------ reading


def table_format(path: Path, fmt: str = "") -> str:
    if fmt:
        return fmt
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise AffectError(f"--source {path}: cannot tell the format from the suffix {path.suffix!r}; "
                          f"use one of {', '.join(sorted(FORMATS))} or --opt format=csv|tsv|jsonl|parquet")
    return kind


def read_rows(source: Path, fmt: str = "") -> list[Row]:
    """All rows of a local table, each with its location (`FILE:LINE` or `FILE: row N`)."""
    if not source.exists():
        raise AffectError(f"--source {source}: no such file")
    if source.is_dir():
        raise AffectError(f"--source {source}: is a folder; the table importer reads one csv/tsv/jsonl/parquet file")
    kind = table_format(source, fmt)
    if kind in ("csv", "tsv"):
        return _read_delimited(source, "\t" if kind == "tsv" else ",")
    if kind == "jsonl":
        return _read_jsonl(source)
    return _read_parquet(source)


def _read_delimited(path: Path, delimiter: str) -> list[Row]:
    rows: list[Row] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            start = 2  # a record's first line; the header is line 1 (quoted fields may span lines)
            for rec in reader:
                rows.append(Row(f"{path}:{start}", {k: ("" if v is None else v) for k, v in rec.items() if k is not None}))
                start = reader.line_num + 1
    except UnicodeDecodeError as e:
        raise AffectError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise AffectError(f"{path}: not a valid {'TSV' if delimiter == chr(9) else 'CSV'} file ({e})") from None
    return rows


def _read_jsonl(path: Path) -> list[Row]:
    from affect_llm.fileio import iter_jsonl

    return [Row(f"{path}:{lineno}", obj) for lineno, obj in iter_jsonl(path, "table")]


def _read_parquet(path: Path) -> list[Row]:
    require("train", "reading Parquet", "pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise AffectError(f"{path}: not a readable Parquet file ({e})") from None
    return [Row(f"{path}: row {i}", rec) for i, rec in enumerate(table.to_pylist(), start=1)]


def read_hf(spec: str, split: str) -> tuple[list[Row], dict[str, list[str]]]:
    """`hf:NAME[:CONFIG]` → rows of the requested split, plus class names of ClassLabel columns.

    The hub is probed first with a short timeout; when it cannot be reached the load runs in offline
    mode, so only the local cache is used and nothing waits on the network.
    """
    name, _, config = spec[len("hf:"):].partition(":")
    if not name:
        raise AffectError("--source hf:NAME[:CONFIG] needs a dataset name, e.g. hf:dair-ai/emotion")
    require("train", "--source hf:...", "datasets")
    import datasets

    offline_reason = hub_offline_reason()
    hf_split = {"dev": "validation"}.get(split, split)
    try:
        with _offline(bool(offline_reason)):
            ds = datasets.load_dataset(name, config or None, split=None if split == "all" else hf_split)
    except Exception as e:  # noqa: BLE001 -- datasets raises many types (connection, config, split, script)
        msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        if offline_reason:
            raise AffectError(f"--source {spec}: the Hugging Face hub is unreachable ({offline_reason}) and the "
                              f"dataset is not in the local cache ({msg})") from None
        raise AffectError(f"--source {spec}: cannot load split {hf_split!r} ({msg})") from None
    parts = ds.items() if split == "all" else [(hf_split, ds)]
    rows: list[Row] = []
    names: dict[str, list[str]] = {}
    for part, d in parts:
        names.update(_class_names(d.features))
        for i, rec in enumerate(d, start=1):
            rows.append(Row(f"{spec} [{part}]: row {i}", {**rec, "__split__": part}))
    return rows, names


@contextmanager
def _offline(on: bool) -> Iterator[None]:
    """Cache-only loading: the hub libraries read their offline flags at import, so set the constants too."""
    if not on:
        yield
        return
    import datasets.config
    import huggingface_hub.constants

    saved = (datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = huggingface_hub.constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE = saved


def hub_offline_reason() -> str:
    """Why the hub cannot be used now ("" when it answers): offline flags, or a failed short probe."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var} is set"
    import httpx

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        httpx.head(f"{endpoint}/api/datasets", timeout=HF_PROBE_TIMEOUT_S)
    except httpx.HTTPError as e:
        return f"{endpoint} did not answer within {HF_PROBE_TIMEOUT_S:.0f} s: {type(e).__name__}"
    return ""


def _class_names(features: Any) -> dict[str, list[str]]:
    """ClassLabel names of each column (also inside a list feature, as in multi-label sets)."""
    out: dict[str, list[str]] = {}
    for col, feat in (features or {}).items():
        inner = getattr(feat, "feature", feat)
        if isinstance(feat, list) and feat:
            inner = feat[0]
        names = getattr(inner, "names", None)
        if names:
            out[col] = list(names)
    return out


# ------------------------------------------------------------------------------------------ mapping


def read_label_map(path_str: str) -> dict[str, str | None]:
    """`{raw: canonical}` from JSON or YAML (keys compared lower-case); null or "" drops the label."""
    if not path_str:
        return {}
    path = Path(path_str).expanduser()
    if not path.is_file():
        raise AffectError(f"--label-map {path}: no such file")
    import yaml

    text = path.read_text(encoding="utf-8")
    is_yaml = path.suffix.lower() in (".yaml", ".yml")
    try:
        data = yaml.safe_load(text) if is_yaml else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as e:
        raise AffectError(f"--label-map {path}: not valid {'YAML' if is_yaml else 'JSON'} ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) or v is None for v in data.values()):
        raise AffectError(f"--label-map {path}: expected a mapping of label → new label (or null to drop it)")
    return {str(k).strip().lower(): (v.strip().lower() or None) if isinstance(v, str) else None for k, v in data.items()}


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def raw_labels(value: Any, sep: str, class_names: list[str] | None) -> list[str]:
    """A label cell → label strings: a list (JSON / datasets), `sep`-separated text, or class ids."""
    items = value if isinstance(value, (list, tuple)) else ([] if value is None else [value])
    out: list[str] = []
    for item in items:
        if class_names is not None and isinstance(item, int) and not isinstance(item, bool):
            out.append(class_names[item] if 0 <= item < len(class_names) else str(item))
            continue
        text = cell_text(item)
        out += text.split(sep) if sep and not isinstance(value, (list, tuple)) else [text]
    return [x.strip().lower() for x in out if x.strip()]


def check_columns(rows: list[Row], columns: dict[str, str], source: str) -> None:
    """Every mapped column must exist; the message names the flag and the columns that do exist."""
    for opt, col in columns.items():
        for row in rows:
            if col not in row.values:
                present = [k for k in row.values if k != "__split__"]
                flag = "--" + opt.replace("_", "-")
                where = source if row is rows[0] else row.where
                raise AffectError(f"{where}: no column {col!r} ({flag}); columns: {', '.join(map(str, present))}")


def normalise_split(value: str) -> str:
    v = value.strip().lower()
    return SPLIT_ALIASES.get(v, v)


# ------------------------------------------------------------------------------------------ build


def build(source: Path, split: str, window: int = DEFAULT_WINDOW, text_col: str = "text", label_col: str = "",
          label_sep: str = "", label_space: str = "", label_map: str = "", speaker_col: str = "",
          dialogue_col: str = "", turn_col: str = "", audio_col: str = "", video_col: str = "", image_col: str = "",
          split_col: str = "", name: str = "table", empty: str = "error", format: str = "",
          licence: str = "") -> BuildResult:
    check_window(window)
    spec = str(source)
    class_names: dict[str, list[str]] = {}
    if spec.startswith("hf:"):
        rows, class_names = read_hf(spec, split)
        files: list[Path] = []
        if not split_col:
            split_col = "__split__"
    else:
        rows = read_rows(source, format)
        files = [source]
    if not rows:
        raise AffectError(f"--source {spec}: no rows")
    columns = {k: v for k, v in {"text_col": text_col, "label_col": label_col, "speaker_col": speaker_col,
                                 "dialogue_col": dialogue_col, "turn_col": turn_col, "audio_col": audio_col,
                                 "video_col": video_col, "image_col": image_col, "split_col": split_col}.items() if v}
    if turn_col and not dialogue_col:
        raise AffectError("--turn-col orders turns inside a dialogue: give --dialogue-col too")
    check_columns(rows, columns, spec)
    space = named_label_space(label_space) if label_space else None
    mapping = read_label_map(label_map)
    media_base = source.parent if files else Path.cwd()

    skipped: Counter = Counter()
    # keep the rows of the requested split (all rows when there is no split column or split is "all")
    if split_col and split != "all":
        rows = [r for r in rows if normalise_split(cell_text(r.values[split_col])) == split]
        if not rows:
            raise AffectError(f"--source {spec}: no row has split {split!r} in column {split_col!r}")

    utts: list[tuple[Row, Utt, str | None]] = []  # row, utterance, image path
    unknown: dict[str, list[str]] = defaultdict(list)  # label → locations
    for row in rows:
        v = row.values
        text = cell_text(v[text_col])
        media = {k: _media(v[c], media_base) for k, c in (("audio", audio_col), ("video", video_col),
                                                           ("image", image_col)) if c}
        if not text and not any(media.values()):
            if empty == "skip":
                skipped["empty text"] += 1
                continue
            raise AffectError(f"{row.where}: empty text in column {text_col!r} (and no media path); "
                              "fix the row or pass --opt empty=skip")
        labels: list[str] = []
        if label_col:
            raw = raw_labels(v[label_col], label_sep, class_names.get(label_col))
            for lab in raw:
                new = mapping.get(lab, lab)
                if new is None:
                    continue
                if space is not None and new not in space:
                    unknown[new].append(row.where)
                elif new not in labels:
                    labels.append(new)
            if not raw:
                skipped["no label"] += 1
            elif not labels and all(mapping.get(lab, lab) is None for lab in raw):
                skipped["label mapped to null"] += 1
        meta: dict[str, Any] = {"row": row.where.rsplit("/", 1)[-1]}
        if split_col:
            meta["split"] = normalise_split(cell_text(v[split_col]))
        speaker = cell_text(v[speaker_col]) if speaker_col else ""
        utt = Utt(speaker=speaker, text=text, labels=labels, meta=meta, audio=media.get("audio"),
                  video=media.get("video"))
        utts.append((row, utt, media.get("image")))
    if unknown:
        _raise_unknown(unknown, label_space, space or ())

    records = _samples(utts, name=name, split=split, space=label_space or None, dialogue_col=dialogue_col,
                       turn_col=turn_col, window=window, licence=licence or LICENCE, labelled=bool(label_col))
    shown = ", ".join(f"{k[:-4]}={c}" for k, c in columns.items() if c != "__split__")
    notes = [f"columns: {shown}"]
    if mapping:
        notes.append(f"labels renamed by {label_map} ({len(mapping)} entries)")
    seen = Counter(lab for r in records for lab in r.labels)
    if space is None and label_col:
        notes.append(f"inferred label set ({len(seen)}): {', '.join(sorted(seen))}; samples carry label_space null — "
                     "name a label space (--label-space) or list it in a suite to score as a closed set")
    return BuildResult(records=records, label_space=label_space or None, skipped=skipped, files=files, notes=notes,
                       extra_counts={"rows": len(rows)})


def _media(value: Any, base: Path) -> str | None:
    text = cell_text(value)
    if not text:
        return None
    p = Path(text).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _raise_unknown(unknown: dict[str, list[str]], name: str, space: tuple[str, ...]) -> None:
    ranked = sorted(unknown.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    first_label, first_locs = ranked[0]
    listing = ", ".join(f"{lab!r} {len(locs)}" for lab, locs in ranked[:12]) + (", ..." if len(ranked) > 12 else "")
    raise AffectError(
        f"{first_locs[0]}: label {first_label!r} is not in label space {name!r} ({', '.join(space)}); "
        f"unknown labels with counts: {listing}; rename them with --label-map FILE, or leave out --label-space "
        "to infer the set"
    )


def _turn_key(values: list[str]) -> Any:
    """Sort turns numerically when every turn value is a number, else as text."""
    try:
        nums = [float(v) for v in values]
    except ValueError:
        return lambda i: values[i]
    return lambda i: nums[i]


def _samples(utts: list[tuple[Row, Utt, str | None]], *, name: str, split: str, space: str | None,
             dialogue_col: str, turn_col: str, window: int, licence: str, labelled: bool) -> list[Sample]:
    """Group rows into dialogues (file order of first appearance, turns sorted by the turn column) and
    emit one sample per labelled row with the speaker-aware window; without a dialogue column each row
    stands alone."""
    if not dialogue_col:
        return [_sample(name, split, f"{i}", u, img, [], space, licence, {})
                for i, (_, u, img) in enumerate(utts, start=1) if u.labels or not labelled]
    groups: dict[str, list[tuple[Row, Utt, str | None]]] = {}
    for item in utts:
        groups.setdefault(cell_text(item[0].values[dialogue_col]), []).append(item)
    records: list[Sample] = []
    for did, items in groups.items():
        if turn_col:
            turns = [cell_text(r.values[turn_col]) for r, _, _ in items]
            seen: dict[str, str] = {}
            for (r, _, _), t in zip(items, turns):
                if t in seen:
                    raise AffectError(f"{r.where}: dialogue {did!r} has turn {t!r} twice (also at {seen[t]})")
                seen[t] = r.where
            order = sorted(range(len(items)), key=_turn_key(turns))
            items = [items[i] for i in order]
            ids = [turns[i] for i in order]
        else:
            ids = [str(i) for i in range(len(items))]
        dlg = [u for _, u, _ in items]
        for i, (_, u, img) in enumerate(items):
            if (labelled and not u.labels) or not (u.text.strip() or u.audio or u.video or img):
                continue
            ctx = context_window(dlg, i, window)
            records.append(_sample(name, split, f"{did}/{ids[i]}", u, img, ctx, space, licence,
                                   {"dialogue_id": did, "turn": i}))
    return records


def _sample(name: str, split: str, key: str, u: Utt, image: str | None, ctx: list, space: str | None,
            licence: str, extra: dict[str, Any]) -> Sample:
    row_split = u.meta.get("split") if split == "all" else None
    return Sample(
        id=f"{name}/{row_split or split}/{key}",
        dataset=name,
        split=row_split or split,
        text=u.text,
        context=ctx,
        speaker=u.speaker or None,
        audio=u.audio,
        video=u.video,
        image=image,
        labels=u.labels,
        label_space=space,
        meta={**extra, "licence": licence, **u.meta},
    )


class TableBuilder(Builder):
    """The table importer's split is a filter on `--split-col` (or a name for every row): default `all`."""

    @property
    def default_split(self) -> str:
        return "all"


BUILDER = TableBuilder(
    name="table",
    title="Table import",
    origin="a user table: CSV / TSV / JSONL / Parquet file, or hf:NAME[:CONFIG] (Hugging Face datasets)",
    licence=LICENCE,
    splits=("all", "train", "dev", "test"),
    build=build,
    options={
        "window": WINDOW_OPTION,
        "text_col": Option("text", "column of the target text"),
        "label_col": Option("", "column of the label(s); empty: unlabelled data"),
        "label_sep": Option("", "separator of several labels in one cell (multi-label), e.g. ','"),
        "label_space": Option("", "named label space the labels must belong to (empty: inferred, null)"),
        "label_map": Option("", "JSON / YAML file {raw label: new label or null} applied before the check"),
        "speaker_col": Option("", "column of the speaker"),
        "dialogue_col": Option("", "column of the dialogue id (enables context windows)"),
        "turn_col": Option("", "column of the turn order inside a dialogue (default: file order)"),
        "audio_col": Option("", "column of audio paths (relative to the table's folder)"),
        "video_col": Option("", "column of video paths"),
        "image_col": Option("", "column of image paths"),
        "split_col": Option("", "column of the split (train/dev/test; validation → dev); --split filters it"),
        "name": Option("table", "dataset name written into ids and the `dataset` field"),
        "empty": Option("error", "a row with empty text and no media: error or skip", ("error", "skip")),
        "format": Option("", "csv | tsv | jsonl | parquet (default: from the suffix)"),
        "licence": Option("", "the data's licence, recorded in every sample and the card"),
    },
)
