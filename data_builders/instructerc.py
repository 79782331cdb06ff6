"""InstructERC auxiliary tasks built from any dialogue corpus (Lei et al. 2023).

- `speaker-id`: given the dialogue window and an utterance, name its speaker (the target speaker is
  hidden; `meta["candidates"]` lists the dialogue's speakers, `meta["speaker_name"]` the exact name).
- `emotion-impact`: given the dialogue so far, predict the emotion of the *next* turn of a known speaker
  (`text` is empty, `speaker` is the next speaker, `context` ends with the latest turn).

Both reuse a base builder's dialogue loader (`--opt base=meld`), so their splits and source folders
are the base corpus's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

from affect_llm.data_builders.common import (
    DEFAULT_WINDOW,
    WINDOW_OPTION,
    Builder,
    BuildResult,
    Dialogue,
    Option,
    check_split,
    check_window,
    context_window,
)
from affect_llm.data_builders.schema import Sample

from affect_llm.errors import AffectError

NAMED_BASES = ("meld", "emorynlp", "ecf")
ALL_BASES = ("meld", "emorynlp", "ecf", "dailydialog", "reccon")


def speaker_id_samples(dialogues: Iterable[Dialogue], *, dataset: str, split: str, base: str,
                       window: int, skipped: Counter) -> Iterator[Sample]:
    check_window(window)
    for dlg in dialogues:
        speakers = sorted({u.speaker for u in dlg.utts if u.speaker})
        if len(speakers) < 2:
            skipped["dialogue with fewer than 2 speakers"] += 1
            continue
        for i, u in enumerate(dlg.utts):
            if not u.text.strip() or not u.speaker:
                continue
            uid = u.meta.get("utterance_id", i)
            yield Sample(
                id=f"{dataset}/{split}/{dlg.id}/{uid}",
                dataset=dataset, split=split, text=u.text,
                context=context_window(dlg.utts, i, window),
                labels=[u.speaker], label_space=None,
                meta={"dialogue_id": dlg.id, "turn": i, "task": "speaker_id", "base": base,
                      "candidates": speakers, "speaker_name": u.speaker},
            )


def emotion_impact_samples(dialogues: Iterable[Dialogue], *, dataset: str, split: str, base: str,
                           label_space: str | None, window: int) -> Iterator[Sample]:
    check_window(window)
    for dlg in dialogues:
        for i in range(len(dlg.utts) - 1):
            nxt = dlg.utts[i + 1]
            if not nxt.labels:
                continue
            context = context_window(dlg.utts, i + 1, max(window, 1))
            if not context:
                continue
            uid = nxt.meta.get("utterance_id", i + 1)
            yield Sample(
                id=f"{dataset}/{split}/{dlg.id}/{uid}",
                dataset=dataset, split=split, text="", context=context,
                speaker=nxt.speaker or None, labels=nxt.labels, label_space=label_space,
                meta={"dialogue_id": dlg.id, "turn": i + 1, "task": "emotion_impact", "base": base},
            )


def _base_dialogues(base: str, source: Path, split: str):
    from affect_llm.data_builders.registry import BUILDERS

    b = BUILDERS[base]
    check_split(b, split)
    return b.dialogues(source, split)


def build_speaker_id(source: Path, split: str, base: str = "meld", window: int = DEFAULT_WINDOW) -> BuildResult:
    ds = _base_dialogues(base, source, split)
    skipped: Counter = Counter()
    records = list(speaker_id_samples(ds.dialogues, dataset="speaker-id", split=split, base=base,
                                      window=window, skipped=skipped))
    return BuildResult(records=records, label_space=None, files=ds.files, skipped=skipped,
                       notes=[f"base corpus: {base}; labels are lower-cased speaker names"])


def build_emotion_impact(source: Path, split: str, base: str = "meld",
                         window: int = DEFAULT_WINDOW) -> BuildResult:
    ds = _base_dialogues(base, source, split)
    records = list(emotion_impact_samples(ds.dialogues, dataset="emotion-impact", split=split, base=base,
                                          label_space=ds.label_space, window=window))
    return BuildResult(records=records, label_space=ds.label_space, files=ds.files,
                       notes=[f"base corpus: {base}; target = emotion of the next turn"])


SPEAKER_ID = Builder(
    name="speaker-id",
    title="InstructERC speaker identification",
    origin="derived from a dialogue corpus (--opt base=...)",
    licence="that of the base corpus",
    build=build_speaker_id,
    options={"base": Option("meld", "dialogue corpus with named speakers", NAMED_BASES),
             "window": WINDOW_OPTION},
)

EMOTION_IMPACT = Builder(
    name="emotion-impact",
    title="InstructERC emotion impact prediction",
    origin="derived from a dialogue corpus (--opt base=...)",
    licence="that of the base corpus",
    build=build_emotion_impact,
    options={"base": Option("meld", "dialogue corpus", ALL_BASES), "window": WINDOW_OPTION},
)

__all__ = ["EMOTION_IMPACT", "SPEAKER_ID", "AffectError", "emotion_impact_samples", "speaker_id_samples"]
