"""Pieces shared by the builders: the dialogue intermediate form, the ERC window, source checks, cards.

Dialogue datasets (MELD, EmoryNLP, DailyDialog, ECF, RECCON) are first read into `Dialogue`s; the ERC
samples and the InstructERC auxiliary tasks (speaker identification, emotion impact) are then pure
functions of those dialogues, so every dialogue corpus gets all three tasks for free.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from affect_llm.data_builders.schema import Cue, PreferencePair, Sample, Turn

from affect_llm.errors import AffectError
from affect_llm.fileio import atomic_write
from affect_llm.hashing import sha256_file

DEFAULT_WINDOW = 8
STANDARD_SPLITS = ("train", "dev", "test")  # what most corpora ship, and the default of every builder
"""Turns of dialogue history an ERC sample carries by default (InstructERC uses a fixed window too)."""


@dataclass
class Utt:
    """One utterance of a dialogue with its annotations."""

    speaker: str
    text: str
    labels: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    cues: list[Cue] = field(default_factory=list)
    description: str | None = None
    video: str | None = None
    audio: str | None = None


@dataclass
class Dialogue:
    id: str
    utts: list[Utt]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildResult:
    """What a builder returns: the records plus bookkeeping for the dataset card."""

    records: list[Sample] | list[PreferencePair]
    label_space: str | None = None
    skipped: Counter = field(default_factory=Counter)
    extra_counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def check_window(window: int) -> int:
    if window < 0:
        raise AffectError(f"window must be >= 0 turns, got {window}")
    return window


def context_window(utts: list[Utt], i: int, window: int) -> list[Turn]:
    """The `window` turns before utterance `i`, oldest first, each with its speaker."""
    start = max(0, i - window)
    return [Turn(speaker=u.speaker, text=u.text) for u in utts[start:i] if u.text.strip()]


def erc_samples(
    dialogues: Iterable[Dialogue],
    *,
    dataset: str,
    split: str,
    label_space: str | None,
    licence: str,
    window: int = DEFAULT_WINDOW,
) -> Iterator[Sample]:
    """One sample per labelled utterance: the utterance, its speaker and the speaker-aware window."""
    check_window(window)
    for dlg in dialogues:
        for i, u in enumerate(dlg.utts):
            if not u.labels or not u.text.strip():
                continue
            uid = u.meta.get("utterance_id", i)
            yield Sample(
                id=f"{dataset}/{split}/{dlg.id}/{uid}",
                dataset=dataset,
                split=split,
                text=u.text,
                context=context_window(dlg.utts, i, window),
                speaker=u.speaker or None,
                audio=u.audio,
                video=u.video,
                labels=u.labels,
                label_space=label_space,
                description=u.description,
                cues=u.cues,
                meta={"dialogue_id": dlg.id, "turn": i, "licence": licence, **dlg.meta, **u.meta},
            )


def utterance_text_ok(text: str) -> bool:
    return bool(text and text.strip())


# ----------------------------------------------------------------------------------------- sources


def require_files(source: Path, title: str, names: list[str]) -> list[Path]:
    """Refuse a wrong `--source` folder with a message that names what is missing and what is there."""
    if not source.exists():
        raise AffectError(f"--source {source}: no such folder")
    if not source.is_dir():
        raise AffectError(f"--source {source}: not a folder (give the {title} data folder)")
    missing = [n for n in names if not (source / n).exists()]
    if missing:
        present = sorted(p.name for p in source.iterdir())[:8]
        shown = ", ".join(present) + (", ..." if len(present) == 8 else "") if present else "nothing"
        raise AffectError(
            f"--source {source} does not look like a {title} folder: missing {', '.join(missing)} "
            f"(it has: {shown})"
        )
    return [source / n for n in names]


def read_csv(path: Path, **kw: Any) -> list[dict[str, str]]:
    with path.open(encoding=kw.pop("encoding", "utf-8"), newline="") as fh:
        return list(csv.DictReader(fh, **kw))


def require_columns(rows: list[dict[str, str]], path: Path, columns: list[str]) -> None:
    if not rows:
        raise AffectError(f"{path}: no rows")
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise AffectError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(rows[0])})")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise AffectError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None


def resolve_optional_path(value: str, base: Path) -> Path | None:
    if not value:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


# ------------------------------------------------------------------------------------------- cards


def label_distribution(records: list[Any]) -> dict[str, int]:
    c: Counter = Counter()
    for r in records:
        for label in getattr(r, "labels", []) or []:
            c[label] += 1
    return dict(c.most_common())


def card_paths(out: Path) -> tuple[Path, Path]:
    """`data/meld_train.jsonl` → `data/meld_train.card.json`, `data/meld_train.card.md`."""
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.stem
    return out.with_name(stem + ".card.json"), out.with_name(stem + ".card.md")


def make_card(
    *,
    builder: Any,
    result: BuildResult,
    source: Path,
    split: str,
    options: dict[str, Any],
    out: Path,
) -> dict[str, Any]:
    from affect_llm import __version__

    records = result.records
    dialogues = {r.meta.get("dialogue_id") for r in records if isinstance(r, Sample)} - {None}
    counts: dict[str, Any] = {"records": len(records)}
    if dialogues:
        counts["dialogues"] = len(dialogues)
    counts.update(result.extra_counts)
    if result.skipped:
        counts["skipped"] = dict(result.skipped)
    return {
        "dataset": builder.name,
        "title": builder.title,
        "kind": builder.kind,
        "split": split,
        "output": out.name,
        # a table import reads one file (named by itself) or a Hugging Face dataset ("hf:NAME", no path)
        "source": str(source) if str(source).startswith("hf:") else str(source.resolve()),
        "source_files": {p.name if p == source else str(p.relative_to(source)) if p.is_relative_to(source)
                         else str(p): sha256_file(p, 16) for p in result.files},
        "origin": builder.origin,
        "licence": builder.licence,
        "label_space": result.label_space,
        "options": options,
        "counts": counts,
        "label_distribution": label_distribution(records),
        "notes": result.notes,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "affect_llm_version": __version__,
    }


def card_markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# {card['title']} — {card['split']} ({card['kind']})",
        "",
        f"- **builder**: `{card['dataset']}` (affect-llm {card['affect_llm_version']})",
        f"- **output**: `{card['output']}`",
        f"- **source**: `{card['source']}`",
        f"- **origin**: {card['origin']}",
        f"- **licence**: {card['licence']}",
        f"- **label space**: {card['label_space'] or 'open vocabulary'}",
        f"- **options**: {', '.join(f'{k}={v!r}' for k, v in card['options'].items()) or 'none'}",
        f"- **created**: {card['created']}",
        "",
        "## Counts",
        "",
        "| count | value |",
        "|---|---|",
    ]
    for k, v in card["counts"].items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                lines.append(f"| {k}: {k2} | {v2} |")
        else:
            lines.append(f"| {k} | {v} |")
    if card["label_distribution"]:
        total = sum(card["label_distribution"].values())
        lines += ["", "## Label distribution", "", "| label | n | share |", "|---|---|---|"]
        for label, n in card["label_distribution"].items():
            lines.append(f"| {label} | {n} | {n / total:.1%} |")
    if card["source_files"]:
        lines += ["", "## Source files", "", "| file | sha256 (first 16) |", "|---|---|"]
        lines += [f"| {name} | {h} |" for name, h in card["source_files"].items()]
    if card["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in card["notes"]]
    return "\n".join(lines) + "\n"


def write_card(card: dict[str, Any], out: Path) -> tuple[Path, Path]:
    jpath, mpath = card_paths(out)
    atomic_write(jpath, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    atomic_write(mpath, card_markdown(card))
    return jpath, mpath


# ---------------------------------------------------------------------------------------- builders


@dataclass(frozen=True)
class Option:
    """A builder option (`--opt name=value` on the CLI); the default's type is the option's type."""

    default: Any
    help: str
    choices: tuple[Any, ...] | None = None


@dataclass
class DialogueSet:
    """What a dialogue loader returns: dialogues plus card bookkeeping."""

    dialogues: list[Dialogue]
    label_space: str | None
    files: list[Path] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Builder:
    """A registered builder: metadata for `data list` and the card, plus the pure build function.

    `build(source, split, **options) -> BuildResult`. Dialogue corpora also set `dialogues(source,
    split, **options) -> DialogueSet`, which the InstructERC auxiliary builders reuse.
    """

    name: str
    title: str
    origin: str
    licence: str
    build: Any
    splits: tuple[str, ...] = STANDARD_SPLITS
    options: dict[str, Option] = field(default_factory=dict)
    kind: str = "samples"  # or "pairs" (DPO prompt/chosen/rejected)
    dialogues: Any = None
    named_speakers: bool = False

    @property
    def default_split(self) -> str:
        return "train" if "train" in self.splits else self.splits[0]


WINDOW_OPTION = Option(DEFAULT_WINDOW, "dialogue turns of context before the target utterance")


def erc_builder(
    *,
    name: str,
    title: str,
    origin: str,
    licence: str,
    dialogues: Any,
    splits: tuple[str, ...] = STANDARD_SPLITS,
    options: dict[str, Option] | None = None,
    named_speakers: bool = False,
) -> Builder:
    """A builder that turns a dialogue loader into ERC samples with the speaker-aware window."""

    def build(source: Path, split: str, window: int = DEFAULT_WINDOW, **opts: Any) -> BuildResult:
        ds = dialogues(source, split, **opts)
        records = list(
            erc_samples(ds.dialogues, dataset=name, split=split, label_space=ds.label_space,
                        licence=licence, window=window)
        )
        return BuildResult(records=records, label_space=ds.label_space, skipped=ds.skipped,
                           files=ds.files, notes=ds.notes)

    return Builder(
        name=name, title=title, origin=origin, licence=licence, splits=splits, build=build,
        options={"window": WINDOW_OPTION, **(options or {})}, dialogues=dialogues,
        named_speakers=named_speakers,
    )


def parse_options(builder: Builder, raw: dict[str, str]) -> dict[str, Any]:
    """Coerce `--opt key=value` strings to each option's type; unknown keys list the valid ones."""
    out: dict[str, Any] = {k: o.default for k, o in builder.options.items()}
    for key, value in raw.items():
        if key not in builder.options:
            valid = ", ".join(sorted(builder.options)) or "none"
            raise AffectError(f"builder {builder.name!r} has no option {key!r} (options: {valid})")
        opt = builder.options[key]
        out[key] = coerce_option(key, value, opt)
    return out


def coerce_option(key: str, value: Any, opt: Option) -> Any:
    default = opt.default
    if isinstance(default, bool):
        if isinstance(value, bool):
            v: Any = value
        else:
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                v = True
            elif s in ("0", "false", "no", "off"):
                v = False
            else:
                raise AffectError(f"option {key} expects true or false, got {value!r}")
    elif isinstance(default, int):
        try:
            v = int(value)
        except (TypeError, ValueError):
            raise AffectError(f"option {key} expects an integer, got {value!r}") from None
    else:
        v = str(value)
    if opt.choices is not None and v not in opt.choices:
        raise AffectError(f"option {key} must be one of {', '.join(map(str, opt.choices))}, got {value!r}")
    return v


def check_split(builder: Builder, split: str) -> str:
    if split not in builder.splits:
        raise AffectError(
            f"builder {builder.name!r} has no split {split!r}; choose one of: {', '.join(builder.splits)}"
        )
    return split
