"""The extractive answerer: fitted sentence choice and refusal from the shipped weights,
list questions answered with the list's items, and the query classes fusion weighs."""

from __future__ import annotations

import json

import pytest

from assistant import weights
from assistant.compose import ExtractiveAnswerer, _lists
from assistant.evidence import EVIDENCE_FEATURES, SENTENCE_FEATURES, coverage
from assistant.question import keyword_class
from assistant.retrieve import Passage
from index.tokenize import tokens


def _passage(rank: int, text: str, doc: str = "d", dense: float = 0.6) -> Passage:
    return Passage(rank=rank, chunk_id=f"{doc}:{rank}", doc_id=doc, title=doc, bulletin_title=doc, publisher="P",
                   date="2024-05-01", text=text, start=0, end=len(text), score=1.0 / rank, dense=dense)


def test_shipped_weights_load_and_name_the_features_the_answerer_computes() -> None:
    w = weights.load()
    assert w.sentence.features == SENTENCE_FEATURES and w.refusal.features == EVIDENCE_FEATURES
    assert 0.0 < w.refusal.threshold < 1.0 and w.command.startswith("stdnews ")
    doc = json.loads(weights.WEIGHTS_FILE.read_text())
    assert doc["held_out"]["answers"]["pooled"] and doc["held_out"]["fusion"]["pooled"]  # the figures it was judged by
    assert set(w.fusion.bm25) == {"id", "number", "name", "plain"}


def test_a_list_question_is_answered_with_the_items_each_cited(embedder) -> None:  # noqa: ANN001
    ps = [
        _passage(1, "Why standards matter:\n\n- They spread good practice\n- They cut costs\n\nMore text follows."),
        _passage(2, "The harbour council met on Monday.\n\nThe challenges ahead of ports are:\n\n- Silting of berths\n"
                    "- Storm surges\n- Energy supply\n\nThe council will report in June.", doc="e"),
    ]
    a = ExtractiveAnswerer(embed=embedder.embed_documents)
    draft = a.draft("Which challenges ahead of ports are listed?", ps)
    assert not draft.refused, draft.notes
    lines = draft.text.splitlines()
    assert lines[0].startswith("The challenges ahead of ports are [2]")
    assert lines[1:] == ["- Silting of berths [2].", "- Storm surges [2].", "- Energy supply [2]."]


def test_a_question_whose_best_sentence_leads_a_list_is_answered_with_the_list(embedder) -> None:  # noqa: ANN001
    ps = [
        _passage(1, "The harbour council met on Monday to review the year.\n\nSo, why do ports need regular dredging?"
                    "\n\n- Ships keep growing in draught\n- Silt narrows the channels"
                    "\n\nThe council will report in June."),
        _passage(2, "Port fees rose by four percent this year after a long consultation.", doc="e"),
    ]
    a = ExtractiveAnswerer(embed=embedder.embed_documents)
    draft = a.draft("Why do ports need regular dredging?", ps)  # no list wording in the question
    assert not draft.refused, draft.notes
    assert "answered with the items of a list" in draft.notes
    assert draft.text.splitlines()[1:] == ["- Ships keep growing in draught [1].", "- Silt narrows the channels [1]."]


def test_list_runs_keep_their_lead_in() -> None:
    text = "Intro line.\nThe goals are:\n\n- one\n- two\n* three\nAfter.\n1. alpha\n2) beta"
    assert _lists(text) == [("The goals are:", ["one", "two", "three"]), ("After.", ["alpha", "beta"])]


def test_off_topic_questions_are_refused_by_the_fitted_model(seed_assistant) -> None:  # noqa: ANN001
    for question in ("What is the recipe for a Margherita pizza?", "Who won the 2022 FIFA World Cup?"):
        r = seed_assistant.ask(question)
        assert r.refused and not r.citations, (question, r.answer)
        assert any(n.startswith("evidence ") for n in r.notes)


def test_a_partly_written_term_counts_partly() -> None:
    """'East Coast' against a passage naming only the east; '6.0-magnitude' against 'magnitude 6.0'."""
    text = "A storm hit the east of the country. A magnitude 6.0 quake followed."
    toks = set(tokens(text))
    assert coverage("6.0-magnitude", text.lower(), toks) == 1.0
    assert coverage("East Coast", text.lower(), toks) == 0.5
    assert coverage("Tokyo", text.lower(), toks) == 0.0


@pytest.mark.parametrize(("question", "cls"), [
    ("When was ISO/IEC 30145-3 published?", "id"),
    ("What did the 6.0-magnitude quake destroy?", "number"),
    ("Which city did Albanese visit?", "name"),
    ("Which beach behaviour caused a national row this week?", "plain"),
])
def test_keyword_class(question: str, cls: str) -> None:
    assert keyword_class(question) == cls
