"""The default emotion vocabulary that constrains the labels of open-vocabulary answers.

A 135M model under a bare JSON schema puts anything in the label list (copied words, whole phrases).
Restricting the label strings to emotion words keeps answers open-vocabulary in spirit (about a
hundred fine-grained terms, not a fixed 7-class set) while guaranteeing every label is an emotion.
Larger models can lift the restriction (`label_vocabulary=None`, CLI `--free-labels`).
Written for this project from common emotion terms (GoEmotions' 28 categories, Ekman's six,
Plutchik's eight and their everyday synonyms); no third-party list is copied.
"""

from __future__ import annotations

EMOTION_WORDS: tuple[str, ...] = tuple(
    sorted(
        set(
            """
admiration amusement anger annoyance approval caring confusion curiosity desire disappointment
disapproval disgust embarrassment excitement fear gratitude grief joy love nervousness optimism pride
realization relief remorse sadness surprise neutral
happiness contempt trust anticipation
anxiety worry frustration irritation rage resentment jealousy envy shame guilt loneliness hurt
despair hopelessness helplessness boredom calm contentment satisfaction delight elation cheerfulness
enthusiasm eagerness hope confidence determination affection tenderness compassion sympathy empathy
nostalgia longing regret sorrow melancholy betrayal indignation hostility bitterness defensiveness
shock astonishment amazement awe wonder disbelief doubt suspicion skepticism uncertainty
panic terror dread unease stress tension impatience exasperation
humiliation insecurity vulnerability pity playfulness sarcasm smugness triumph interest
""".split()
        )
    )
)

# Closed-set labels that are not in the served vocabulary, mapped to the nearest vocabulary word.
VOCAB_ALIASES = {
    "joyful": "joy", "peaceful": "calm", "powerful": "confidence", "scared": "fear", "mad": "anger",
    "sad": "sadness", "happy": "happiness", "angry": "anger", "worried": "worry", "excited": "excitement",
    "frustrated": "frustration", "afraid": "fear", "terrified": "terror", "surprised": "surprise",
    "disgusted": "disgust", "ashamed": "shame", "anxious": "anxiety", "grateful": "gratitude",
    "proud": "pride", "lonely": "loneliness", "guilty": "guilt", "embarrassed": "embarrassment",
    "jealous": "jealousy", "hopeful": "hope", "annoyed": "annoyance", "furious": "rage",
    "disappointed": "disappointment", "confident": "confidence", "content": "contentment",
    "nostalgic": "nostalgia", "trusting": "trust", "devastated": "despair", "apprehensive": "unease",
    "impressed": "admiration", "sentimental": "nostalgia", "anticipating": "anticipation",
}
