"""Near-duplicate grouping kept in SQLite: adding a bulletin links only its own articles,
and the groups are what grouping everything from scratch would give."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from index import dedupe
from index.chunkdb import ChunkDB

VOCAB = [f"word{i}" for i in range(20_000)]


def _story(rng: random.Random, n: int = 80) -> list[str]:
    return rng.sample(VOCAB, n)


def _retold(rng: random.Random, story: list[str], keep: float = 0.9) -> list[str]:
    """The same story reworded: most words kept, a few new ones."""
    kept = [w for w in story if rng.random() < keep]
    return kept + rng.sample(VOCAB, len(story) - len(kept))


def _art(doc_id: str, i: int, ws: list[str]) -> dedupe.Article:
    return dedupe.Article(doc_id, i, frozenset(ws), dedupe.signature(ws))


def _groups(db: ChunkDB) -> set[frozenset[tuple[str, int]]]:
    by: dict[int, set[tuple[str, int]]] = {}
    for key, grp in db.dup_groups().items():
        by.setdefault(grp, set()).add(key)
    return {frozenset(g) for g in by.values()}


def _brute_force(bulletins: dict[str, list[dedupe.Article]]) -> set[frozenset[tuple[str, int]]]:
    """Every pair compared exactly (no LSH), then connected components."""
    arts = [a for arts in bulletins.values() for a in arts if len(a.words) >= dedupe.MIN_WORDS]
    parent = {(a.doc_id, a.article): (a.doc_id, a.article) for a in arts}

    def find(k: tuple[str, int]) -> tuple[str, int]:
        while parent[k] != k:
            k = parent[k]
        return k

    for a, b in itertools.combinations(arts, 2):
        if a.doc_id != b.doc_id and dedupe.same_story(a.words, b.words):
            parent[find((a.doc_id, a.article))] = find((b.doc_id, b.article))
    comps: dict[tuple[str, int], set[tuple[str, int]]] = {}
    for k in parent:
        comps.setdefault(find(k), set()).add(k)
    return {frozenset(c) for c in comps.values() if len(c) > 1}


@pytest.fixture()
def db(tmp_path: Path) -> ChunkDB:
    return ChunkDB(tmp_path / "index.sqlite")


def test_incremental_links_equal_grouping_from_scratch(db: ChunkDB) -> None:
    rng = random.Random(3)
    stories = [_story(rng) for _ in range(30)]
    bulletins: dict[str, list[dedupe.Article]] = {}
    for b in range(40):
        picks = rng.sample(range(len(stories)), 4) if b % 3 == 0 else []
        texts = [_retold(rng, stories[s]) for s in picks] + [_story(rng) for _ in range(4 - len(picks))]
        texts.append(_story(rng, 10))  # a stub: never grouped
        bulletins[f"b{b:02d}"] = [_art(f"b{b:02d}", i, ws) for i, ws in enumerate(texts)]
    for doc_id, arts in bulletins.items():
        dedupe.link(db, doc_id, arts)
    dedupe.regroup(db)
    expected = _brute_force(bulletins)
    assert len(expected) >= 5
    assert _groups(db) == expected


def test_changing_and_removing_a_bulletin_updates_only_its_links(db: ChunkDB) -> None:
    rng = random.Random(5)
    story = _story(rng)
    a, b, c = story, _retold(rng, story, 0.85), _retold(rng, story, 0.85)
    for doc_id, ws in (("a", a), ("b", b), ("c", c)):
        dedupe.link(db, doc_id, [_art(doc_id, 0, ws)])
    dedupe.regroup(db)
    assert _groups(db) == {frozenset({("a", 0), ("b", 0), ("c", 0)})}

    dedupe.link(db, "b", [_art("b", 0, _story(rng))])  # b now tells another story
    dedupe.regroup(db)
    assert _groups(db) == _brute_force({"a": [_art("a", 0, a)], "c": [_art("c", 0, c)]})

    db.delete_articles("c")
    dedupe.regroup(db)
    assert _groups(db) == set()
    assert {r["doc_id"] for r in db.signatures()} == {"a", "b"}


def test_a_chain_splits_when_its_middle_leaves(db: ChunkDB) -> None:
    rng = random.Random(11)
    base = _story(rng, 150)
    left, right = base[:80], base[70:]  # each lies inside the middle; they share 10 words
    assert not dedupe.same_story(frozenset(left), frozenset(right))
    for doc_id, ws in (("left", left), ("middle", base), ("right", right)):
        dedupe.link(db, doc_id, [_art(doc_id, 0, ws)])
    dedupe.regroup(db)
    assert _groups(db) == {frozenset({("left", 0), ("middle", 0), ("right", 0)})}
    # retrieval hides a passage only behind a confirmed pair, never along the chain
    assert db.dup_neighbours([("left", 0), ("right", 0)]) == {("left", 0): {("middle", 0)},
                                                              ("right", 0): {("middle", 0)}}
    db.delete_articles("middle")
    dedupe.regroup(db)
    assert _groups(db) == set()


def test_signatures_of_another_scheme_are_recomputed_once(db: ChunkDB) -> None:
    rng = random.Random(13)
    story = _story(rng)
    retold = _retold(rng, story)
    # as a data directory from before the LSH moved into SQLite holds them: signatures, no bands
    db.put_articles("x", [(0, b"old", " ".join(sorted(story)), [])], [])
    db.put_articles("y", [(0, b"old", " ".join(sorted(retold)), [])], [])
    assert dedupe.migrate(db) is True
    assert dedupe.migrate(db) is False
    dedupe.regroup(db)
    assert _groups(db) == {frozenset({("x", 0), ("y", 0)})}
    assert all(np.frombuffer(r["sig"], dtype=np.uint64).size == dedupe.NUM_PERM for r in db.signatures())


@pytest.mark.parametrize("jaccard", [0.2, 0.5, 0.8])
def test_minhash_estimates_jaccard(jaccard: float) -> None:
    rng = random.Random(int(jaccard * 100))
    errors = []
    for _ in range(50):
        shared = int(400 * jaccard / (1 + jaccard))
        common = rng.sample(VOCAB, shared + 2 * (200 - shared))
        a = set(common[:200])
        b = set(common[:shared]) | set(common[200:200 + 200 - shared])
        true = len(a & b) / len(a | b)
        est = float((dedupe.signature(a) == dedupe.signature(b)).mean())
        errors.append(est - true)
    assert abs(np.mean(errors)) < 0.02 and np.std(errors) < 0.07
