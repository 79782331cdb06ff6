"""The explain contract: evidence spans, the enum schema, citations, consistency, one prompt everywhere."""

from __future__ import annotations

import json

import jsonschema
import pytest

from affect_llm.backends.base import Generation
from affect_llm.evidence import build_evidence
from affect_llm.explain_task import (
    ExplainTask,
    answer_schema,
    cited_items,
    is_inconsistent,
    request_from,
)
from affect_llm.explanations import explanation_problems
from affect_llm.schema import Cue, Turn
from affect_llm.vocabulary import EMOTION_WORDS

TEXT = "I can't believe you forgot my birthday again!"


def task() -> ExplainTask:
    return ExplainTask(label_vocabulary=list(EMOTION_WORDS))


def test_evidence_items_are_spans_of_the_input():
    ctx = [Turn(speaker="Ross", text="You forgot?"), Turn(speaker="Monica", text="No way.")]
    cues = [Cue(modality="speech", cue="speaks much higher than usual", evidence="+3.1 st", strength=0.8)]
    ev = build_evidence(TEXT, speaker="Monica", context=ctx, cues=cues)
    assert [e.id for e in ev] == [f"E{i}" for i in range(1, len(ev) + 1)]
    words = [e for e in ev if e.modality == "text"]
    assert words and all(e.text in TEXT and e.text != TEXT for e in words)
    assert all(len(e.text.split()) <= 6 for e in words)
    assert any(e.text == "can't believe" and e.kind == "negation" for e in words)
    assert any(e.modality == "context" and e.text == 'Ross: "You forgot?"' for e in ev)
    assert any(e.modality == "speech" and e.text.startswith("speaks much higher") for e in ev)


def test_plain_turn_gets_a_phrase_not_the_whole_turn():
    text = "Well, I guess we could go to the park then, if you want."
    ev = build_evidence(text)
    assert ev and all(e.text in text and e.text != text for e in ev)


def test_schema_enums_labels_and_evidence_ids():
    prep = task().prepare(request_from(text=TEXT, label_space=["anger", "joy", "neutral"]))
    s = prep.schema
    assert s["properties"]["labels"]["items"]["enum"] == ["anger", "joy", "neutral"]
    assert s["properties"]["labels"]["maxItems"] == 1
    assert s["properties"]["cues"]["items"]["enum"] == [e.id for e in prep.evidence]
    assert list(s["properties"]) == ["labels", "cues", "explanation"]
    jsonschema.validate({"labels": ["anger"], "cues": ["E1"], "explanation": "The words \"can't believe\" show anger clearly."}, s)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"labels": ["anger"], "cues": ["E99"], "explanation": "The words show anger."}, s)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"labels": ["rage"], "cues": ["E1"], "explanation": "The words show anger."}, s)


def test_no_evidence_means_no_citations():
    s = answer_schema(None, 2, [])
    assert s["properties"]["cues"] == {"type": "array", "maxItems": 0}


def test_parser_drops_citations_not_in_the_list_and_counts_them():
    prep = task().prepare(request_from(text=TEXT))
    first = prep.evidence[0]
    items, dropped = cited_items(["E1", "E42", "a trembling voice", first.text, "E1"], prep.evidence)
    assert items == [first]  # E1 once
    assert dropped == 2
    gen = Generation(text=json.dumps({"labels": ["anger"], "cues": ["E1", "E9"],
                                      "explanation": "Her \"can't believe\" shows anger at being forgotten."}))
    rep = task().report(prep, gen, model="m", timings={})
    assert rep.dropped_citations == 1 and rep.cues[0].evidence == first.text
    assert not rep.inconsistent


def test_consistency_flag():
    assert is_inconsistent("Monica's words express admiration.", ["anger"])
    assert not is_inconsistent("She sounds annoyed and angry.", ["anger"])
    assert not is_inconsistent("Nothing here names a feeling.", ["joy"])  # no emotion named: nothing to check
    assert not is_inconsistent("She is happy and relieved.", ["joy", "sadness"])


def test_inconsistent_answer_is_flagged_not_dropped():
    prep = task().prepare(request_from(text=TEXT))
    gen = Generation(text=json.dumps({"labels": ["anger"], "cues": [],
                                      "explanation": "Her \"forgot my birthday\" expresses admiration."}))
    rep = task().report(prep, gen, model="m", timings={})
    assert rep.inconsistent and rep.labels == ["anger"] and not rep.explanation_rewritten
    assert rep.explanation == 'Her "forgot my birthday" expresses admiration.'  # kept, flagged


def _ask(text: str, explanation: str, labels=("anger",), speaker=None, context=()):
    prep = task().prepare(request_from(text=text, speaker=speaker, context=list(context)))
    cite = [e.id for e in prep.evidence[:1]]
    gen = Generation(text=json.dumps({"labels": list(labels), "cues": cite, "explanation": explanation}))
    return prep, task().report(prep, gen, model="m", timings={})


def test_untrustworthy_sentences_are_rewritten_from_the_cited_evidence():
    ctx = [{"speaker": "Joey", "text": "Hey, what are you doing here?"}]
    cases = {
        # a quote that is not in the input
        "Chandler says: 'I hate robots', which shows anger.": "a quote not in the input",
        "Chandler says: `I hate robots`, which shows anger.": "a quote not in the input",
        # the target's words given to the context speaker
        "Chandler sounds angry when Joey says, 'Damn those robots'.": "a quote given to the wrong speaker",
        # nothing from the input at all
        "The words matter, so Chandler sounds angry.": "cites no evidence",
        # the prompt's prior copied out
        "Chandler says 'Damn' anger: irest; sadness: urns.": "a list",
    }
    for said, why in cases.items():
        prep, rep = _ask("Damn those robots, they're supposed to be our friends!", said, speaker="Chandler",
                         context=ctx)
        assert why in rep.explanation_rewritten, (said, rep.explanation_rewritten)
        assert rep.explanation != said and ("anger" in rep.explanation or "angry" in rep.explanation)
        cited = rep.cues[0].evidence
        assert cited in rep.explanation or cited.split(": ", 1)[-1] in rep.explanation  # cites what it cites
        assert not explanation_problems(rep.explanation, prep.request.text, prep.request.context)
    # a good sentence stays the model's own: quotes from the right speakers, and curly/straight quotes agree
    for good in ("Chandler says 'Damn those robots', which shows anger.",
                 "After Joey's 'what are you doing here?', Chandler sounds angry.",
                 "Chandler sounds angry at the robots."):  # no quote, but words of the turn
        _, rep = _ask("Damn those robots, they’re supposed to be our friends!", good, speaker="Chandler",
                      context=ctx)
        assert rep.explanation == good and rep.explanation_rewritten == [], (good, rep.explanation_rewritten)


def test_quotes_in_scripts_without_spaces_are_found():
    from affect_llm.explanations import quote_problems

    assert quote_problems("The speaker says '太好了', which shows joy.", "我们赢了，太好了！", None) == []
    assert quote_problems("The speaker says '太糟了', which shows joy.", "我们赢了，太好了！", None) == \
        ["a quote not in the input"]
    # Latin text still needs whole words: "on" is not a quote of "only"
    assert quote_problems("She says 'on', which shows joy.", "Only you!", None) == ["a quote not in the input"]


def test_rewritten_sentence_is_never_broken_itself():
    # '"Fine!" signals anger.' would be three words: another phrasing is taken
    prep, rep = _ask("Fine! You go learn from your qualified instructor!", "E1: Fine! You go learn from", speaker="Phoebe")
    assert rep.explanation_rewritten and "Fine!" in rep.explanation
    assert not explanation_problems(rep.explanation, prep.request.text)


def test_rewrite_keeps_the_inconsistency_finding():
    _, rep = _ask(TEXT, "The words matter: she sounds full of admiration.")
    assert rep.explanation_rewritten == ["cites no evidence", "names emotions outside its labels"]
    assert not rep.inconsistent  # the sentence shown names the label


def test_broken_explanations_are_detected():
    ctx = [Turn(speaker="Ross", text="It tastes like feet!")]
    assert "a copied turn" in explanation_problems("Ross: It tastes like feet!", "Ew.", ctx)
    assert "a list" in explanation_problems("[neutral, surprise, fear, sadness, joy, anger]", "Ew.")
    assert "JSON fragment" in explanation_problems('that"}]} something else here', "Ew.")
    assert "fewer than 4 words" in explanation_problems("Anger.", "Ew.")
    assert "a list" in explanation_problems("Joey says he is right. anger: 83%, sadness: 4%, joy: 4%.", "Ew.")
    assert "a list" in explanation_problems("Joey says: 'the call back.'anger: 83; sadness: 4; joy: 4", "Ew.")
    # "label: …" is checked against the prompt's own labels, whatever the label space.
    copied = "Joey says: 'the call back.' gratitude: thanks a lot"
    assert "a list" in explanation_problems(copied, "Ew.", labels=["gratitude", "relief"])
    assert "a list" not in explanation_problems(copied, "Ew.")
    assert explanation_problems('Her "can\'t believe" shows anger at Ross.', TEXT, ctx) == []
    assert "unfinished sentence" in explanation_problems("The speaker states plainly, with no strong feeling:", "Ew.")
    assert "unfinished sentence" in explanation_problems("The speaker states matter-of-fact things like", "Ew.")
    assert explanation_problems("The speaker sounds sad and states it plainly", "Ew.") == []
    # What vLLM's grammar let through: a quote left open, a sentence the length limit cut off, a line break.
    turn = "What did you say to him? I mean it."
    assert "unfinished sentence" in explanation_problems('Joey says "What did you say to him?', turn)
    assert explanation_problems('Joey says "mean it!”" in a flat voice, so he sounds neutral.', "I mean it!”") == []
    cut = ('Monica says "I\'m sorry" and "I\'m sorry, Phoebe. It\'s just a little shorter than what we had '
           'discussed." Just a little shorter is a matter-b')
    assert len(cut) >= 138 and "unfinished sentence" in explanation_problems(cut, "I'm sorry, Phoebe.")
    assert "a trailing tag" in explanation_problems("Joey says: 'With Carol?'  no matter: neutral.", "With Carol?")
    assert explanation_problems("Monica says, 'What's the charity?'; the tone remains neutral.", "What's the charity?") == []
    assert explanation_problems("Joey says: 'Damn!', which shows anger.", "Damn!") == []
    assert "a line break" in explanation_problems('Rachel says "It’s moving" in\n\n"I don’t know."', "It’s moving")


def test_cli_api_and_training_render_the_same_prompt(monkeypatch):
    """One contract: the CLI's request, the API's request and a training row give one prompt."""
    from affect_llm.data_builders.schema import Sample
    from affect_llm.train import data

    ctx = [{"speaker": "Ross", "text": "You forgot?"}]
    s = Sample(id="a", dataset="t", split="train", text=TEXT, speaker="Monica", context=ctx, labels=["anger"])
    training = data.sft_rows([s])[0]["prompt"]
    cli = task().prepare(request_from(text=TEXT, speaker="Monica", context=ctx)).messages
    from affect_llm.serve.app import ExplainBody

    body = ExplainBody.model_validate({"text": TEXT, "speaker": "Monica", "context": ctx})
    api = task().prepare(request_from(text=body.text, speaker=body.speaker, context=body.context)).messages
    assert training == cli == api


def test_every_cited_cue_is_in_the_input_on_a_constrained_backend(tiny_llama_dir):
    """Grounding by construction: whatever a (random) model writes, cited evidence is text of the input."""
    from affect_llm.pipeline import Explainer

    ex = Explainer(model=str(tiny_llama_dir), dtype="float32", label_model=None)
    ctx = [{"speaker": "Ross", "text": "You forgot?"}]
    reqs = [request_from(text=TEXT, speaker="Monica", context=ctx),
            request_from(text="We won the championship!!!", label_space=["joy", "anger", "neutral"])]
    for req, rep in zip(reqs, ex.explain_many(reqs, batch_size=2)):
        assert rep.dropped_citations == 0
        for cue in rep.cues:
            hay = req.text + " " + " ".join(f'{t.speaker}: "{t.text}"' for t in req.context)
            assert cue.evidence in hay, cue


def test_ids_in_the_explanation_are_rendered_as_evidence_text():
    prep = task().prepare(request_from(text=TEXT))
    first = prep.evidence[0]
    gen = Generation(text=json.dumps({"labels": ["anger"], "cues": ["E1"], "explanation": "Her E1 shows anger, not E77."}))
    rep = task().report(prep, gen, model="m", timings={})
    assert rep.explanation == f'Her "{first.text}" shows anger, not E77.'


def test_ids_render_as_their_text_once():
    from affect_llm.evidence import Evidence
    from affect_llm.explain_task import render_ids

    ev = [Evidence(id="E1", modality="text", kind="phrase", text="say it Kyle!"),
          Evidence(id="E2", modality="text", kind="emotion word", text="scary")]
    assert render_ids("E1: 'say it Kyle!' signals anger.", ev) == '"say it Kyle!" signals anger.'
    assert render_ids("The speaker says E2, 'Scary'.", ev) == 'The speaker says "scary".'
    assert render_ids("E2 and E1 show fear.", ev) == '"scary" and "say it Kyle!" show fear.'
    assert render_ids("The words 'E2' sound afraid.", ev) == 'The words "scary" sound afraid.'
    # a different quote after the id stays; an unknown id stays as written
    assert render_ids("E2: 'boo' and E9.", ev) == '"scary": \'boo\' and E9.'
