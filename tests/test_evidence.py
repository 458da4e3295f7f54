"""Evidence features that tell a near-miss from an answer: the passages name what the question
names, but does one of the best sentences say what it asks about, with a value of the kind asked?"""

from __future__ import annotations

from assistant.evidence import evidence_features, question_kind, sentence_candidates
from assistant.question import analyse
from assistant.retrieve import Passage


def _passage(rank: int, text: str) -> Passage:
    return Passage(rank=rank, chunk_id=f"d{rank}:0", doc_id=f"d{rank}", title=f"Bulletin {rank}",
                   bulletin_title=f"Bulletin {rank}", publisher="P", date="2025-03-01", text=text, start=0,
                   end=len(text), score=1.0 / rank, dense=0.5)


def _features(question: str, *texts: str) -> dict[str, float]:
    q = analyse(question)
    kind = question_kind(question)
    passages = [_passage(i, t) for i, t in enumerate(texts, 1)]
    cands = sentence_candidates(q, q, kind, passages, lambda _q, ts: [0.0] * len(ts))
    for c in cands:  # no fitted model here: the lexical match ranks the sentences
        c.score = c.features["lex"]
    return evidence_features(question, q, kind, passages, cands)[0]


QUESTION = "How many jobs will Northwind Mining cut?"


def test_a_sentence_stating_the_predicate_in_a_passage_with_the_names_scores_high() -> None:
    answer = _features(QUESTION, "Northwind Mining said on Monday that it will cut 4,700 jobs by December. "
                                 "The company employs miners in three countries.")
    assert answer["predicate_names"] > 0.9


def test_the_names_without_the_predicate_is_a_near_miss() -> None:
    near_miss = _features(QUESTION, "Northwind Mining opened a new smelter in the north on Monday. "
                                    "The smelter will process copper from two mines.")
    assert near_miss["predicate_names"] < 0.2


def test_the_predicate_without_the_names_is_a_near_miss_too() -> None:
    other_story = _features(QUESTION, "A rival copper producer said it will cut 4,700 jobs this year. "
                                      "Its shares rose by a tenth.")
    assert other_story["predicate_names"] < 0.2


def test_the_closest_sentence_must_hold_the_kind_asked_for() -> None:
    question = "How many people attended the harbour forum in Lisbon?"
    counted = _features(question, "More than 300 people attended the harbour forum in Lisbon on Tuesday.")
    uncounted = _features(question, "The harbour forum in Lisbon was attended by people from industry. "
                                    "Elsewhere, 12 ships docked.")
    assert counted["kind_at_best"] == 1.0 and uncounted["kind_at_best"] == 0.0


def test_agreement_counts_the_top_passages_that_hold_the_question_s_words() -> None:
    question = "Which port opened a floating terminal for ferries?"
    on_topic = "The port opened a floating terminal for ferries on Friday, its operator said."
    both = _features(question, on_topic, "A second floating terminal for ferries opened at the port last year.")
    one = _features(question, on_topic, "Rain fell across the region on Sunday and roads were closed.")
    assert both["agree"] == 2 / 5 and one["agree"] == 1 / 5
