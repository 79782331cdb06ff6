"""LLM steps of the explanation metrics: label extraction and the EMER clue/label-overlap judge.

EMER's clue-overlap and label-overlap scores came from GPT-3.5 (since retired), so published numbers can
no longer be reproduced. Here the judge is any backend (`affect_llm.backends`): the embedded local
model by default, any transformers checkpoint, or an OpenAI-compatible endpoint (a vLLM server with a
larger model). What makes the numbers reproducible:

- prompts are versioned templates (`extract_labels`, `judge_clue_overlap`, `judge_label_overlap`), and
  the model id and template versions go into every report (`Judge.info()`);
- decoding is greedy (temperature 0) with a fixed seed by default;
- the judge's score is *enforced* with a JSON schema (`{"score": integer 1..10}`) where the backend
  can constrain (transformers via lm-format-enforcer, vLLM via structured outputs); free text from
  endpoints that cannot is read by `parse_score`;
- every generation is cached on disk under `cache_dir()/judge`, keyed by the sha256 of (model, template
  version, rendered messages, decoding settings): a rerun costs nothing and returns the same answers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from affect_llm.errors import AffectError

SCORE_MIN, SCORE_MAX = 1, 10
MAX_EXTRACTED_LABELS = 16

__all__ = [
    "Judge",
    "judge_cache_dir",
    "make_judge_backend",
    "parse_label_list",
    "parse_score",
    "score_schema",
]


def score_schema(lo: int = SCORE_MIN, hi: int = SCORE_MAX) -> dict[str, Any]:
    """`{"score": integer in lo..hi}`. The enum is what lm-format-enforcer enforces (it ignores
    minimum/maximum); minimum/maximum are there for servers that read them."""
    return {
        "type": "object",
        "properties": {"score": {"type": "integer", "enum": list(range(lo, hi + 1)), "minimum": lo, "maximum": hi}},
        "required": ["score"],
        "additionalProperties": False,
    }


# --------------------------------------------------------------------------- parsing
_NUMBER = r"(\d+(?:\.\d+)?)"
_KEYED = re.compile(r"(?:score|rating|预测分数|分数|得分)\W{0,4}?[\"'：:=\s]*" + _NUMBER, re.IGNORECASE)
_OUT_OF = re.compile(_NUMBER + r"\s*(?:/|out of)\s*10\b", re.IGNORECASE)
_ANY = re.compile(r"(?<![\d.])" + _NUMBER + r"(?!\d|\.\d)")


def parse_score(text: str, lo: int = SCORE_MIN, hi: int = SCORE_MAX) -> float | None:
    """The judge's score in [lo, hi] from its answer, or None when there is none.

    In order: a JSON object with "score"; a keyed number ("score: 7", "Score = 8", "'预测分数'：6");
    "7/10" or "7 out of 10"; the first number in range anywhere (the official EMER scripts take the
    first number). Numbers outside [lo, hi] are never clipped into range: they are skipped.
    """
    if not text:
        return None
    for m in re.finditer(r"\{[^{}]*\}", text):
        try:
            obj = json.loads(m.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "score" in obj:
            val = obj["score"]
            if isinstance(val, str):
                val = val.strip()
                try:
                    val = float(val)
                except ValueError:
                    continue
            if isinstance(val, (int, float)) and not isinstance(val, bool) and lo <= val <= hi:
                return float(val)
    for pattern in (_KEYED, _OUT_OF, _ANY):
        for m in pattern.finditer(text):
            val = float(m.group(1))
            if lo <= val <= hi:
                return val
    return None


_PREFIXES = ("output", "input", "answer", "labels", "emotions")


def parse_label_list(text: str) -> list[str]:
    """Labels from a label-extraction answer: "[happy, sad]", '["happy", "sad"]', '{"labels": [...]}' or
    a plain "happy, sad" line. Lower-cased, stripped, de-duplicated, at most MAX_EXTRACTED_LABELS;
    an empty list when the answer holds none (the official "If none are identified" answer is "[]")."""
    from affect_llm.eval.ov import string_to_list

    s = (text or "").strip()
    # The official post-processing drops "Output:"/"Input:" prefixes the model sometimes repeats.
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if s.lower().startswith(p):
                s = s[len(p):].lstrip(" :：").strip()
                changed = True
    items: list[Any] | None = None
    m = re.search(r"\[[^\[\]]*\]", s)
    if m:
        try:
            val = json.loads(m.group(0))
            items = val if isinstance(val, list) else None
        except json.JSONDecodeError:
            items = string_to_list(m.group(0))
    else:
        obj = re.search(r"\{.*\}", s, re.DOTALL)
        if obj:
            try:
                val = json.loads(obj.group(0))
                if isinstance(val, dict) and isinstance(val.get("labels"), list):
                    items = val["labels"]
            except json.JSONDecodeError:
                items = None
        if items is None:
            first = s.splitlines()[0] if s else ""
            items = re.split(r"[,;，、]", first)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            continue
        label = item.strip().strip(".\"'`[]").strip().lower()
        if label.startswith("and "):
            label = label[4:].strip()
        # A label is a word or a short phrase; a sentence is the model talking, not a label.
        if label and len(label.split()) <= 4 and label not in out:
            out.append(label)
    return out[:MAX_EXTRACTED_LABELS]


# --------------------------------------------------------------------------- backend + cache
def make_judge_backend(spec: str | None = None, *, model: str | None = None, api_key: str | None = None,
                       **kwargs: Any):
    """The backend behind `--judge SPEC`: an http(s) URL → the openai backend at that URL (`model` picks
    the served model, default its first); anything else (None/"default", an asset name, a folder, a
    hub id) → the transformers backend on that model."""
    from affect_llm.backends import make_backend

    spec = (spec or "default").strip()
    if re.match(r"^https?://", spec, re.IGNORECASE):
        return make_backend("openai", model=model, base_url=spec, api_key=api_key)
    if model:
        raise AffectError("--judge-model applies only when --judge is a server URL; pass the model as --judge")
    return make_backend("transformers", model=spec, **kwargs)


def judge_cache_dir() -> Path:
    from affect_llm.assets import cache_dir

    return cache_dir() / "judge"


class _DiskCache:
    """One JSON file per generation, sharded by the first two hex digits of its key; atomic writes."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        if self.root is None:
            return None
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))["text"]
        except (json.JSONDecodeError, KeyError, OSError):
            return None  # a damaged entry is regenerated and overwritten

    def put(self, key: str, record: dict[str, Any]) -> None:
        if self.root is None:
            return
        from affect_llm.eval.report import atomic_write

        atomic_write(self._path(key), json.dumps(record, ensure_ascii=False))


# --------------------------------------------------------------------------- the judge
class Judge:
    """Label extraction and the two EMER judge scores on one backend, cached and reproducible."""

    def __init__(
        self,
        backend: Any,
        *,
        seed: int = 0,
        temperature: float = 0.0,
        constrained: bool = True,
        batch_size: int = 4,
        cache: Path | None | bool = True,
        progress: bool = False,
    ) -> None:
        if temperature < 0:
            raise AffectError(f"judge temperature must be >= 0, got {temperature}")
        if batch_size < 1:
            raise AffectError(f"judge batch size must be >= 1, got {batch_size}")
        self.backend = backend
        self.seed, self.temperature, self.constrained = seed, temperature, constrained
        self.batch_size, self.progress = batch_size, progress
        root = judge_cache_dir() if cache is True else (None if cache is False else cache)
        self.cache = _DiskCache(Path(root) if root is not None else None)
        self.cache_hits = 0
        self.generated = 0

    @property
    def model_id(self) -> str:
        return str(getattr(self.backend, "model_id", "unknown"))

    def info(self) -> dict[str, Any]:
        """What a report records about the judge."""
        from affect_llm.prompting import get_template

        return {
            "model": self.model_id,
            "backend": getattr(self.backend, "name", type(self.backend).__name__),
            "templates": {n: get_template(n).tag for n in ("extract_labels", "judge_clue_overlap", "judge_label_overlap")},
            "temperature": self.temperature,
            "seed": self.seed,
            "constrained": self.constrained,
        }

    # ------------------------------------------------------------------ generation
    def _generate(self, template: str, variables: list[dict[str, Any]], *, max_new_tokens: int,
                  schema: dict[str, Any] | None) -> list[str]:
        from affect_llm.prompting import get_template

        t = get_template(template)
        messages = [[{"role": "user", "content": t.render(**v)}] for v in variables]
        keys = [self._key(t.tag, m, max_new_tokens, schema) for m in messages]
        out: list[str | None] = [self.cache.get(k) for k in keys]
        todo = [i for i, o in enumerate(out) if o is None]
        self.cache_hits += len(keys) - len(todo)
        bar = None
        if self.progress and todo:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc=f"judge {template}", unit="prompt")
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            gens = self.backend.generate(
                [messages[i] for i in chunk], max_new_tokens=max_new_tokens, temperature=self.temperature,
                seed=self.seed, json_schema=schema,
            )
            for i, g in zip(chunk, gens):
                out[i] = g.text
                self.cache.put(keys[i], {"model": self.model_id, "template": t.tag, "text": g.text})
            self.generated += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return [o or "" for o in out]

    def _key(self, tag: str, messages: list[dict[str, str]], max_new_tokens: int, schema: dict[str, Any] | None) -> str:
        blob = json.dumps(
            {"model": self.model_id, "template": tag, "messages": messages, "max_new_tokens": max_new_tokens,
             "temperature": self.temperature, "seed": self.seed, "schema": schema},
            sort_keys=True, ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    # ------------------------------------------------------------------ the three steps
    def extract_labels(self, descriptions: Sequence[str], *, max_new_tokens: int = 64) -> list[list[str]]:
        """Open-vocabulary labels of each description with the official MER prompt (free text, parsed).
        An empty description gives [] without a model call."""
        idx = [i for i, d in enumerate(descriptions) if d and d.strip()]
        raw = self._generate("extract_labels", [{"text": " ".join(descriptions[i].split())} for i in idx],
                             max_new_tokens=max_new_tokens, schema=None)
        out: list[list[str]] = [[] for _ in descriptions]
        for i, text in zip(idx, raw):
            out[i] = parse_label_list(text)
        return out

    def _scores(self, template: str, refs: Sequence[str], texts: Sequence[str]) -> list[float | None]:
        if len(refs) != len(texts):
            raise ValueError("references and predictions differ in length")
        schema = score_schema() if self.constrained else None
        # Constrained: '{"score": 10}' is about 6 tokens. Free text: room for "Score: 7. Reason: ...".
        budget = 12 if self.constrained else 64
        out: list[float | None] = [None] * len(refs)
        idx = [i for i, r in enumerate(refs) if r.strip()]
        # An empty prediction overlaps nothing: the lowest score, no model call.
        ask = [i for i in idx if texts[i].strip()]
        for i in idx:
            if not texts[i].strip():
                out[i] = float(SCORE_MIN)
        raw = self._generate(template, [{"reference": " ".join(refs[i].split()), "text": " ".join(texts[i].split())}
                                        for i in ask], max_new_tokens=budget, schema=schema)
        for i, text in zip(ask, raw):
            out[i] = parse_score(text)
        return out

    def clue_overlap(self, gold: Sequence[str], pred: Sequence[str]) -> list[float | None]:
        """EMER clue overlap (1–10) of each predicted description with its gold description; None where
        the gold is empty (not scored) or the answer held no score (counted as failed)."""
        return self._scores("judge_clue_overlap", gold, pred)

    def label_overlap(self, gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> list[float | None]:
        """EMER label overlap (1–10) of each predicted label set with its gold label set."""
        return self._scores("judge_label_overlap", [", ".join(g) for g in gold], [", ".join(p) for p in pred])
