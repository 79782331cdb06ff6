"""The wheel carries the prompts and the mapped subpackages, and its CLI runs from a fresh venv."""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _package_dirs() -> set[str]:
    mapping = {"affect_llm": REPO / "affect_llm", "affect_llm.eval": REPO / "eval",
               "affect_llm.data_builders": REPO / "data_builders", "affect_llm.serve": REPO / "serve",
               "affect_llm.prompts": REPO / "prompts"}
    found = set()
    for dotted, root in mapping.items():
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            found.add(".".join([dotted, *rel.parts]) if rel.parts else dotted)
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    return next(out.glob("affect_llm-*.whl"))


def test_wheel_contents(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for pkg in _package_dirs():
        assert pkg.replace(".", "/") + "/__init__.py" in names, f"{pkg} missing: add it to pyproject packages"
    for tpl in (REPO / "prompts").glob("*.j2"):
        assert f"affect_llm/prompts/{tpl.name}" in names
    for data in ("affect_llm/wheel_data/wheel_mapping.json", "affect_llm/eval/suites/ov-text.yaml",
                 "affect_llm/eval/suites/closed-text.yaml"):
        assert data in names, data
    assert any(n.startswith("affect_llm/wheel_data/") and "LICENSE" in n.upper() for n in names)
    for folder in ("adapters/default", "label_models/default"):  # the tuned default adapter and label model
        for shipped in (REPO / "affect_llm" / folder).rglob("*"):  # the label model's encoder adapters too
            if shipped.is_file():
                rel = shipped.relative_to(REPO / "affect_llm").as_posix()
                assert f"affect_llm/{rel}" in names, rel
    for lex in ("empath_emotions.tsv", "LICENSE-EMPATH.txt", "vader_lexicon.txt"):
        assert f"affect_llm/textualize/lexicon/{lex}" in names, lex
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]


def test_cli_from_fresh_venv(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Reuse the dependencies already installed here (a path line, so the checkout's editable finder is not loaded).
    (site / "reuse_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    proc = subprocess.run([str(venv / "bin" / "affect-llm"), "--help"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "explain" in proc.stdout
    where = subprocess.run([str(py), "-c", "import affect_llm.prompts, affect_llm.eval; print(affect_llm.prompts.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert str(venv) in where, where  # imported from the installed wheel, not the checkout
