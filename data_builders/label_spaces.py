"""Closed label sets by name.

A sample's `label_space` names one of these; the schema rejects labels outside it, and the closed-set
prompt (`erc.j2`, InstructERC's "select the emotional label ... from <label set>") lists them in this
order. Open-vocabulary data (OV-MERD) uses `label_space = null` instead.
"""

from __future__ import annotations

from affect_llm.errors import lookup

GOEMOTIONS_28: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
    "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
    "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
    "remorse", "sadness", "surprise", "neutral",
)

# Facebook EmpatheticDialogues' 32 situation emotions, in the id order of the HypEmo copy.
ED_32: tuple[str, ...] = (
    "sad", "trusting", "terrified", "caring", "disappointed", "faithful", "joyful", "jealous",
    "disgusted", "surprised", "ashamed", "afraid", "impressed", "sentimental", "devastated", "excited",
    "anticipating", "annoyed", "anxious", "furious", "content", "lonely", "angry", "confident",
    "apprehensive", "guilty", "embarrassed", "grateful", "hopeful", "proud", "prepared", "nostalgic",
)

LABEL_SPACES: dict[str, tuple[str, ...]] = {
    "meld7": ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
    "emorynlp7": ("neutral", "joyful", "peaceful", "powerful", "scared", "mad", "sad"),
    "goemotions28": GOEMOTIONS_28,
    "ekman7": ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"),
    "dailydialog7": ("neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise"),
    "ed32": ED_32,
    "mer6": ("neutral", "angry", "happy", "sad", "worried", "surprise"),
    "emodb7": ("anger", "boredom", "disgust", "fear", "happiness", "sadness", "neutral"),
    "iemocap6": ("neutral", "happy", "sad", "angry", "excited", "frustrated"),
    "iemocap4": ("neutral", "happy", "sad", "angry"),
    # Sentiment bins of the CMU-MOSI / MOSEI / CH-SIMS scores (data_builders/sentiment.py).
    "sentiment2": ("negative", "positive"),
    "sentiment3": ("negative", "neutral", "positive"),
    "sentiment5": ("strongly negative", "weakly negative", "neutral", "weakly positive", "strongly positive"),
    "sentiment7": ("strongly negative", "negative", "weakly negative", "neutral", "weakly positive", "positive",
                   "strongly positive"),
}


def label_space(name: str) -> tuple[str, ...]:
    """The labels of a closed label space; unknown names raise with the valid choices."""
    return lookup(LABEL_SPACES, "label space", name)
