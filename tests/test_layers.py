"""One-way layers and one way of doing each thing: checks that read the source, import nothing heavy."""

from __future__ import annotations

import ast
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from affect_llm import extras
from affect_llm.backends import BACKENDS, backend_class, backend_names, make_backend
from affect_llm.errors import AffectError, UnknownNameError
from affect_llm.hashing import sha256_file

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = [ROOT / d for d in ("affect_llm", "eval", "data_builders", "serve")]


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def _sources() -> list[Path]:
    return [p for d in PACKAGE_DIRS for p in d.rglob("*.py")]


def test_projector_never_imports_train():
    bad = {p.name: sorted(m for m in _imports(p) if m.startswith("affect_llm.train"))
           for p in (ROOT / "affect_llm" / "projector").glob("*.py")}
    assert not {k: v for k, v in bad.items() if v}


def test_import_affect_llm_loads_nothing_heavy():
    code = ("import sys, affect_llm, affect_llm.backends, affect_llm.extras, affect_llm.train.model, "
            "affect_llm.hashing; print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_backend_table_is_lazy_and_complete():
    assert backend_names() == sorted(BACKENDS)
    for name, target in BACKENDS.items():
        module, _, cls = target.partition(":")
        path = ROOT / Path(*module.split(".")).with_suffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        assert cls in classes, target
        named = [s for s in classes[cls].body if isinstance(s, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "name" for t in s.targets)]
        assert named and ast.literal_eval(named[0].value) == name  # the class reports the name it is listed under
    assert backend_class("openai").__name__ == "OpenAIBackend"


def test_unknown_backend_lists_the_choices():
    with pytest.raises(UnknownNameError, match="choose one of: llamacpp, openai, transformers, vllm"):
        make_backend("gpt5")


def test_extras_table_matches_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras.EXTRAS) == set(declared) - {"dev"}


def test_require_names_feature_missing_module_and_fix(monkeypatch):
    monkeypatch.setattr(extras, "is_available", lambda module: module != "faiss")
    with pytest.raises(AffectError, match=r"^index search needs faiss: pip install 'affect-llm\[retrieval\]'$"):
        extras.require("retrieval", "index search", ("faiss", "sentence_transformers"))
    extras.require("retrieval", "index search", "sentence_transformers")  # present: no error
    with pytest.raises(UnknownNameError):
        extras.install_hint("gpu")


def test_sha256_file(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"a" * (3 << 20))  # several read blocks
    full = hashlib.sha256(f.read_bytes()).hexdigest()
    assert sha256_file(f) == full and sha256_file(str(f), 16) == full[:16]


def _lines_with(needle: str) -> list[str]:
    return [f"{p.relative_to(ROOT)}:{i}" for p in _sources()
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if needle in line]


def test_one_place_for_hashes_hints_and_vllm_settings():
    assert _lines_with("iter(lambda: fh.read") == ["affect_llm/hashing.py:16"]
    assert [x for x in _lines_with('setdefault("VLLM_') if not x.startswith("affect_llm/backends/vllm_backend.py")] == []
    hints = [x for x in _lines_with("pip install 'affect-llm[") if not x.startswith("affect_llm/extras.py")]
    # eval/runner.py keeps its own wording ("or pass --no-plots") for the one optional plot dependency.
    assert all(x.startswith("eval/runner.py") for x in hints), hints
