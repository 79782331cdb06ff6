"""Published figures that `affect-llm eval bench` prints beside a model's own, one per (cell, metric).

Each anchor names its source (paper, venue, table), the model and its size, and the value as a fraction.
They are the papers' test-set numbers under the protocol the bench cell runs (same label set, split and
metric), transcribed by hand from the papers' main results tables: check them against the source before
citing them. A cell without an anchor simply shows none; add rows here rather than in the report code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Anchor:
    cell: str  # bench cell key (eval/bench.py CELLS)
    metric: str  # the cell's reported metric path, e.g. "weighted_f1"
    value: float  # fraction, 0..1
    model: str
    size: str  # parameters of the model (backbone for fine-tuned encoders)
    source: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COSMIC = "Ghosal et al. 2020, COSMIC, Findings of EMNLP, Table 2"
_DAGERC = "Shen et al. 2021, DAG-ERC, ACL, Table 3"
_INSTRUCTERC = "Lei et al. 2023, InstructERC, arXiv:2309.11911, Table 2"
_SELFMM = "Yu et al. 2021, Self-MM, AAAI, Table 2 (negative / positive, score 0 left out)"

ANCHORS: tuple[Anchor, ...] = (
    Anchor("meld-7", "weighted_f1", 0.6521, "COSMIC", "RoBERTa-large 355M + COMET", _COSMIC),
    Anchor("meld-7", "weighted_f1", 0.6365, "DAG-ERC", "RoBERTa-large 355M", _DAGERC),
    Anchor("meld-7", "weighted_f1", 0.6915, "InstructERC (LoRA)", "Llama-2 7B", _INSTRUCTERC),
    Anchor("emorynlp-7", "weighted_f1", 0.3811, "COSMIC", "RoBERTa-large 355M + COMET", _COSMIC),
    Anchor("emorynlp-7", "weighted_f1", 0.3902, "DAG-ERC", "RoBERTa-large 355M", _DAGERC),
    Anchor("emorynlp-7", "weighted_f1", 0.4137, "InstructERC (LoRA)", "Llama-2 7B", _INSTRUCTERC),
    Anchor("iemocap-6", "weighted_f1", 0.6528, "COSMIC", "RoBERTa-large 355M + COMET", _COSMIC),
    Anchor("iemocap-6", "weighted_f1", 0.6803, "DAG-ERC", "RoBERTa-large 355M", _DAGERC),
    Anchor("iemocap-6", "weighted_f1", 0.7139, "InstructERC (LoRA)", "Llama-2 7B", _INSTRUCTERC),
    Anchor("mosi-2", "accuracy", 0.8598, "Self-MM", "BERT-base 110M + audio/visual LSTMs", _SELFMM),
    Anchor("mosi-2", "weighted_f1", 0.8595, "Self-MM", "BERT-base 110M + audio/visual LSTMs", _SELFMM),
    Anchor("mosei-2", "accuracy", 0.8517, "Self-MM", "BERT-base 110M + audio/visual LSTMs", _SELFMM),
    Anchor("mosei-2", "weighted_f1", 0.8530, "Self-MM", "BERT-base 110M + audio/visual LSTMs", _SELFMM),
)


def anchors_for(cell: str, metric: str) -> list[Anchor]:
    return [a for a in ANCHORS if a.cell == cell and a.metric == metric]
