"""Which coarse emotion family a label belongs to, and how labels map onto a closed label space.

The families are Ekman's six plus neutral: GoEmotions' published Ekman grouping (Demszky et al. 2020,
Apache-2.0) for its 28 labels, extended by hand to the rest of the bundled emotion vocabulary and to
the closed label spaces' own words (EmoryNLP's "peaceful", MER's "worried", ...). The label model uses
it to turn a distribution over open labels into one over a task's labels; the parser uses it to flag
an explanation that names only emotions of another family than the labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

FAMILIES: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")

_GROUPS: dict[str, str] = {}
for _family, _words in {
    "anger": "anger annoyance disapproval irritation rage resentment frustration hostility bitterness indignation "
             "exasperation impatience contempt defensiveness jealousy envy mad angry annoyed furious frustrated "
             "betrayal",
    "disgust": "disgust disgusted revulsion loathing",
    "fear": "fear nervousness anxiety worry panic terror dread unease stress tension insecurity vulnerability "
            "scared afraid terrified anxious worried apprehensive nervous fearful",
    "joy": "joy admiration amusement approval caring desire excitement gratitude love optimism pride relief "
           "happiness delight elation cheerfulness enthusiasm eagerness hope confidence determination affection "
           "tenderness compassion sympathy empathy satisfaction contentment triumph playfulness trust smugness "
           "interest joyful happy excited grateful proud hopeful confident content powerful impressed "
           "anticipation anticipating faithful trusting",
    "sadness": "sadness disappointment embarrassment grief remorse hurt despair hopelessness helplessness "
               "loneliness regret sorrow melancholy shame guilt humiliation pity nostalgia longing boredom "
               "sad disappointed devastated lonely guilty ashamed embarrassed sentimental nostalgic",
    "surprise": "surprise confusion curiosity realization shock astonishment amazement awe wonder disbelief doubt "
                "suspicion skepticism uncertainty surprised",
    "neutral": "neutral calm peaceful prepared sarcasm",
}.items():
    for _w in _words.split():
        _GROUPS[_w] = _family


def family(label: str) -> str | None:
    """The Ekman family of an emotion word (None: not an emotion word we know)."""
    return _GROUPS.get(label.strip().lower())


def families(labels: Iterable[str]) -> set[str]:
    return {f for f in (family(x) for x in labels) if f}


def mapping_to_space(model_labels: Sequence[str], space: Sequence[str]) -> list[int | None]:
    """For each model label, the index in `space` it counts for (None: no place in that space).

    Exact names (or their vocabulary alias: "joyful" is "joy") first; then the space label of the same family.
    When a space splits a family into several labels, the one named after the family takes it (EmoryNLP's
    "joyful" rather than "powerful"); where none is (ED-32's many joys), only exact matches count.
    """
    return list(_mapping(tuple(model_labels), tuple(space)))


@lru_cache(maxsize=64)
def _mapping(model_labels: tuple[str, ...], space: tuple[str, ...]) -> tuple[int | None, ...]:
    from affect_llm.vocabulary import VOCAB_ALIASES

    exact = {s.lower(): i for i, s in enumerate(space)}
    for i, s in enumerate(space):  # "joyful" also stands for the vocabulary word "joy"
        exact.setdefault(VOCAB_ALIASES.get(s.lower(), s.lower()), i)
    by_family: dict[str, list[int]] = {}
    for i, s in enumerate(space):
        fam = family(s)
        if fam:
            by_family.setdefault(fam, []).append(i)
    out: list[int | None] = []
    for lab in model_labels:
        if lab.lower() in exact:
            out.append(exact[lab.lower()])
            continue
        fam = family(lab) or ""
        cands = by_family.get(fam, [])
        if len(cands) > 1:  # several labels of one family: the one named after the family stands for it
            cands = [i for i in cands if VOCAB_ALIASES.get(space[i].lower(), space[i].lower()) == fam]
        out.append(cands[0] if len(cands) == 1 else None)
    return tuple(out)
