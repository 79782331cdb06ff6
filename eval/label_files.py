"""Read the label files of `affect-llm eval ov`: JSONL, one `{"id": str, "labels": [str]}` per line.

`"openset": "[a, b]"` (a string, as the official CSV/NPZ files store label sets) is accepted in place of
`labels` and parsed like the official `string_to_list`. Every problem names the file and line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from itertools import chain, repeat
from pathlib import Path

from affect_llm.eval.ov import gc_paused, string_to_list

from affect_llm.errors import AffectError


def read_label_file(path: str | os.PathLike[str], role: str = "gold") -> dict[str, list[str]]:
    """id → label list, in file order. Blank lines are skipped; duplicate ids are an error."""
    from affect_llm.fileio import read_text

    p = Path(path)
    text = read_text(p, f"{role} file")
    with gc_paused():
        return _read(p, text.splitlines())


def _read(p: Path, raw: list[str]) -> dict[str, list[str]]:
    objs = _parse_all(p, raw)
    # Whole-file checks in C-level passes; any failure reruns record by record for the exact message.
    if set(map(type, objs)) <= {dict}:
        ids = list(map(dict.get, objs, repeat("id")))
        labels = list(map(dict.get, objs, repeat("labels")))
        rest = [k for k, lab in enumerate(labels) if type(lab) is not list]  # "openset" rows, or errors
        opensets = [objs[k].get("openset") if labels[k] is None else None for k in rest]
        if set(map(type, opensets)) <= {str}:
            for k, value in zip(rest, map(string_to_list, opensets)):
                labels[k] = value
        else:
            for k in rest:
                labels[k] = _labels(objs[k], lambda k=k: _where(p, raw, k))
        if (
            set(map(type, ids)) <= {str}
            and all(ids)
            and len(set(ids)) == len(ids)
            and set(map(type, chain.from_iterable(labels))) <= {str}
        ):
            return dict(zip(ids, labels))
    _check_records(p, raw, objs)
    raise AssertionError("unreachable: _check_records raises for the record that failed the fast checks")


def _check_records(p: Path, raw: list[str], objs: list) -> None:
    """Record-by-record validation; raises on the first bad record."""
    seen: dict[str, int] = {}
    for k, obj in enumerate(objs):
        if type(obj) is not dict:
            raise AffectError(f"{_where(p, raw, k)}: expected a JSON object, got {type(obj).__name__}")
        sid = obj.get("id")
        if type(sid) is not str or not sid:
            raise AffectError(f"{_where(p, raw, k)}: field 'id' must be a non-empty string, got {sid!r}")
        if sid in seen:
            raise AffectError(f"{_where(p, raw, k)}: duplicate id {sid!r} (first on {_where(p, raw, seen[sid])})")
        seen[sid] = k
        _labels(obj, lambda k=k: _where(p, raw, k))


def _where(p: Path, raw: list[str], k: int) -> str:
    """FILE:LINE of the k-th non-blank line (computed only when an error is reported)."""
    seen = -1
    for lineno, line in enumerate(raw, start=1):
        if line.strip():
            seen += 1
            if seen == k:
                return f"{p}:{lineno}"
    return str(p)


def _parse_all(p: Path, raw: list[str]) -> list:
    """Parse every non-blank line. Fast path: one `json.loads` over all lines joined as an array (one C
    call instead of one per line — most of the reading time on large files); taken only when every
    line is one `{...}` and the counts agree. Otherwise each line is parsed alone, which also finds
    the line number of a syntax error."""
    lines = list(filter(None, map(str.strip, raw)))
    if all(map(str.startswith, lines, repeat("{"))) and all(map(str.endswith, lines, repeat("}"))):
        try:
            objs = json.loads("[" + ",".join(lines) + "]")
        except json.JSONDecodeError:
            objs = None
        if objs is not None and len(objs) == len(lines):
            return objs
    out = []
    for k, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AffectError(f"{_where(p, raw, k)}: not valid JSON ({e.msg} at column {e.pos + 1})") from None
    return out


def _labels(obj: dict, where: Callable[[], str]) -> list[str]:
    if "labels" in obj:
        labels = obj["labels"]
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise AffectError(f"{where()}: field 'labels' must be a list of strings, got {labels!r}")
        return labels
    if "openset" in obj:
        value = obj["openset"]
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(x, str) for x in value)):
            return string_to_list(value)
        raise AffectError(f"{where()}: field 'openset' must be a string like \"[a, b]\", got {value!r}")
    raise AffectError(f"{where()}: needs 'labels' (a list of strings) or 'openset' (a string like \"[a, b]\")")


def align(gold: dict[str, list[str]], pred: dict[str, list[str]]) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """Gold-ordered (ids, gold labels, predicted labels). A gold id without prediction counts as an
    empty prediction; a predicted id that is not in gold is an error naming a few of them."""
    extra = [i for i in pred if i not in gold]
    if extra:
        shown = ", ".join(repr(i) for i in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise AffectError(f"{len(extra)} prediction id(s) are not in the gold file: {shown}")
    ids = list(gold)
    return ids, [gold[i] for i in ids], [pred.get(i, []) for i in ids]


def score_label_files(gold_path: str | os.PathLike[str], pred_path: str | os.PathLike[str]) -> dict:
    """The OV-MER document (`evaluate_ov`) of a prediction file against a gold file.

    Runs with the garbage collector paused, and returns only the small result: the label lists are
    freed before the collector resumes, so it never has to scan them."""
    from affect_llm.eval.ov import evaluate_ov

    with gc_paused():
        gold = read_label_file(gold_path, "gold")
        if not gold:
            raise AffectError(f"gold file {gold_path} has no samples")
        _, golds, preds = align(gold, read_label_file(pred_path, "prediction"))
        del gold
        doc = evaluate_ov(golds, preds)
        del golds, preds
    return doc

