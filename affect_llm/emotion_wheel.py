"""The emotion wheel behind the official OV-MER ("EW") metrics: map free-form emotion words onto wheels.

The MER challenges / AffectGPT score open-vocabulary labels by mapping every word in three steps,
using the tables in `wheel_data/wheel_mapping.json` (see `wheel_data/NOTICE.md`, CC BY-NC 4.0):

- **M1** (official `case1`): word form → base label, `sorted(format_mapping[l])[0]`;
- **M2** (`case2`): base label → wheel word, `sorted(raw_mapping[M1(l)])[0]`;
- **M3** (`case3_wheelK_levelL`): the first wheel word `c`, in sorted order, of all the words that the
  base labels of `l` map to, that wheel K knows at level L; the answer is its cluster there.

A word outside `format_mapping`, or without any word on that wheel, maps to nothing (and the metrics
drop it). Labels are normalised like the official code: lower-cased, then stripped.

The official scripts redo this mapping for every word of every sample of every metric. Here each
distinct word is mapped once, to one small integer per metric (`codes`), so a corpus is scored with
array operations (`affect_llm.eval.ov`) and a GRPO reward is a few dict look-ups.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from affect_llm.errors import AffectError, UnknownNameError

WHEELS: tuple[str, ...] = ("wheel1", "wheel2", "wheel3", "wheel4", "wheel5")
LEVELS: tuple[str, ...] = ("level1", "level2")
#: Every mapping the metrics use, in a fixed order: the index of a name here is its column in `codes`.
OV_METRICS: tuple[str, ...] = ("m1", "m2") + tuple(f"{w}_{lv}" for w in WHEELS for lv in LEVELS)
_METRIC_INDEX = {name: i for i, name in enumerate(OV_METRICS)}

_DATA_FILE = "wheel_mapping.json"


def metric_key(name: str) -> str:
    """Canonical mapping name for `name`: accepts ours (`m1`, `wheel3_level2`) and the official
    (`case1`, `case2`, `case3_wheel3_level2`), any case. Unknown names list the valid choices."""
    key = name.strip().lower()
    if key in _METRIC_INDEX:
        return key
    official = {"case1": "m1", "case2": "m2"}
    if key in official:
        return official[key]
    if key.startswith("case3_") and key[len("case3_"):] in _METRIC_INDEX:
        return key[len("case3_"):]
    raise UnknownNameError("OV metric", name, OV_METRICS)


def normalize(label: str) -> str:
    """The official label normalisation: lower-case, then strip surrounding whitespace."""
    return label.lower().strip()


@dataclass(frozen=True)
class Relatedness:
    """How close two labels sit on the five wheels: per wheel, whether both map there and whether they
    share the level-1 (coarse) or level-2 (fine) cluster. `score` turns it into partial credit."""

    both_mapped: tuple[bool, ...]
    same_level1: tuple[bool, ...]
    same_level2: tuple[bool, ...]

    def score(self, level1_credit: float = 0.5, level2_credit: float = 1.0) -> float:
        """Mean over the wheels where both labels map of: `level2_credit` for the same fine cluster,
        else `level1_credit` for the same coarse cluster, else 0. 0 when no wheel maps both."""
        n = sum(self.both_mapped)
        if n == 0:
            return 0.0
        total = 0.0
        for mapped, l1, l2 in zip(self.both_mapped, self.same_level1, self.same_level2):
            if mapped:
                total += level2_credit if l2 else (level1_credit if l1 else 0.0)
        return total / n


class EmotionWheel:
    """The three official mapping tables with every label → cluster answer computed once and cached.

    Build it with `EmotionWheel.default()` (the bundled MER2026 mapping, loaded once per process) or
    `EmotionWheel.from_json(path)` for another mapping with the same three keys.
    """

    def __init__(
        self,
        format_mapping: Mapping[str, list[str]],
        raw_mapping: Mapping[str, list[str]],
        wheel_map_whole: Mapping[str, Mapping[str, Mapping[str, str]]],
        source: str = "<memory>",
    ) -> None:
        self.source = source
        self._format = {k: list(v) for k, v in format_mapping.items()}
        self._raw = {k: list(v) for k, v in raw_mapping.items()}
        missing = [w for w in WHEELS for lv in LEVELS if lv not in wheel_map_whole.get(w, {})]
        if missing:
            raise AffectError(f"{source}: wheel_map_whole lacks {', '.join(missing[:3])} (needs {WHEELS} × {LEVELS})")
        self._wheel_maps = [dict(wheel_map_whole[w][lv]) for w in WHEELS for lv in LEVELS]
        # Clusters each mapping can answer, sorted so codes are stable across runs and machines.
        m1_out = sorted({b for bases in self._format.values() for b in bases})
        m2_out = sorted({min(v) for v in self._raw.values() if v})
        self._clusters: list[tuple[str, ...]] = [tuple(m1_out), tuple(m2_out)] + [
            tuple(sorted(set(wm.values()))) for wm in self._wheel_maps
        ]
        self._cluster_index = [{c: i for i, c in enumerate(cl)} for cl in self._clusters]
        self._unmapped: tuple[int, ...] = (-1,) * len(OV_METRICS)
        self._codes: dict[str, tuple[int, ...]] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> EmotionWheel:
        """Load a mapping file with keys `format_mapping`, `raw_mapping`, `wheel_map_whole` (JSON only)."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AffectError(f"{p}: no such emotion-wheel mapping file") from None
        except json.JSONDecodeError as e:
            raise AffectError(f"{p}: not valid JSON ({e.msg} at line {e.lineno})") from None
        return cls._from_dict(data, str(p))

    @classmethod
    def default(cls) -> EmotionWheel:
        """The bundled MER2026 mapping (`affect_llm/wheel_data/`), loaded once per process."""
        return _default_wheel()

    @classmethod
    def _from_dict(cls, data: Any, source: str) -> EmotionWheel:
        keys = ("format_mapping", "raw_mapping", "wheel_map_whole")
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise AffectError(f"{source}: an emotion-wheel mapping needs the keys {', '.join(keys)}")
        return cls(data["format_mapping"], data["raw_mapping"], data["wheel_map_whole"], source=source)

    # ------------------------------------------------------------------ vocabulary
    normalize = staticmethod(normalize)

    def __contains__(self, label: object) -> bool:
        return isinstance(label, str) and normalize(label) in self._format

    @property
    def vocabulary(self) -> frozenset[str]:
        """Every word form the mapping knows (the keys of `format_mapping`)."""
        return frozenset(self._format)

    def clusters(self, metric: str) -> tuple[str, ...]:
        """All values mapping `metric` can produce, sorted; `codes` index into this tuple."""
        return self._clusters[_METRIC_INDEX[metric_key(metric)]]

    # ------------------------------------------------------------------ mapping
    def codes(self, label: str) -> tuple[int, ...]:
        """One integer per mapping in `OV_METRICS` order: the index of `label`'s cluster in
        `clusters(metric)`, or -1 where it maps to nothing. Cached per raw and normalised label."""
        hit = self._codes.get(label)
        if hit is not None:
            return hit
        norm = normalize(label)
        codes = self._codes.get(norm)
        if codes is None:
            codes = self._compute_codes(norm)
            self._codes[norm] = codes
        self._codes[label] = codes
        return codes

    def _compute_codes(self, norm: str) -> tuple[int, ...]:
        bases = self._format.get(norm)
        if not bases:
            return self._unmapped
        m1 = min(bases)  # == sorted(bases)[0]
        words = self._raw.get(m1)
        m2 = min(words) if words else None
        # Candidate wheel words of every base label, in sorted order: the first one a wheel knows wins.
        candidates = sorted({w for b in bases for w in self._raw.get(b, ())})
        out = [self._cluster_index[0][m1], -1 if m2 is None else self._cluster_index[1][m2]]
        for j, wheel_map in enumerate(self._wheel_maps, start=2):
            code = -1
            for c in candidates:
                cluster = wheel_map.get(c)
                if cluster is not None:
                    code = self._cluster_index[j][cluster]
                    break
            out.append(code)
        return tuple(out)

    def map(self, label: str, metric: str) -> str | None:
        """`label` under mapping `metric` (`m1`, `m2`, `wheelK_levelL`), or None if it maps to nothing."""
        j = _METRIC_INDEX[metric_key(metric)]
        code = self.codes(label)[j]
        return None if code < 0 else self._clusters[j][code]

    def m1(self, label: str) -> str | None:
        return self.map(label, "m1")

    def m2(self, label: str) -> str | None:
        return self.map(label, "m2")

    def m3(self, label: str, wheel: str | int, level: str | int) -> str | None:
        """Cluster of `label` on `wheel` (`"wheel3"` or 3) at `level` (`"level1"` or 1)."""
        w = f"wheel{wheel}" if isinstance(wheel, int) else wheel
        lv = f"level{level}" if isinstance(level, int) else level
        return self.map(label, f"{w}_{lv}")

    def map_set(self, labels: Iterable[str], metric: str) -> frozenset[str]:
        """The mapped set of a label list under `metric`, unmappable labels dropped (the official rule)."""
        j = _METRIC_INDEX[metric_key(metric)]
        names = self._clusters[j]
        return frozenset(names[c] for c in (self.codes(lab)[j] for lab in labels) if c >= 0)

    def relatedness(self, a: str, b: str) -> Relatedness:
        """Where `a` and `b` meet on the five wheels (same coarse / fine cluster), for partial credit."""
        ca, cb = self.codes(a), self.codes(b)
        both, same1, same2 = [], [], []
        for w in range(len(WHEELS)):
            j1, j2 = 2 + 2 * w, 3 + 2 * w
            mapped = ca[j1] >= 0 and cb[j1] >= 0
            both.append(mapped)
            same1.append(mapped and ca[j1] == cb[j1])
            same2.append(ca[j2] >= 0 and ca[j2] == cb[j2])
        return Relatedness(tuple(both), tuple(same1), tuple(same2))

    def __repr__(self) -> str:
        return f"EmotionWheel({len(self._format)} forms, {len(self._raw)} base labels, source={self.source!r})"


@lru_cache(maxsize=1)
def _default_wheel() -> EmotionWheel:
    ref = resources.files("affect_llm").joinpath("wheel_data", _DATA_FILE)
    try:
        text = ref.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AffectError(f"bundled emotion-wheel mapping {_DATA_FILE} is missing; reinstall affect-llm") from None
    return EmotionWheel._from_dict(json.loads(text), f"affect_llm/wheel_data/{_DATA_FILE}")
