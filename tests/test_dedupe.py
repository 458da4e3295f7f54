"""Near-duplicates kept in SQLite: adding a bulletin links only its own articles, the stored
pairs are what comparing everything from scratch would give, and the groups shown to people
never chain different stories."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import numpy as np
import pytest

from index import bandindex, dedupe
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


def _pairs(db: ChunkDB) -> set[frozenset[tuple[str, int]]]:
    return {frozenset({(d1, a1), (d2, a2)}) for d1, a1, d2, a2 in db.dup_pairs()}


def _groups(db: ChunkDB) -> set[frozenset[tuple[str, int]]]:
    return {frozenset(g) for g in dedupe.groups(db.dup_pairs())}


def _brute_force(bulletins: dict[str, list[dedupe.Article]]) -> set[frozenset[tuple[str, int]]]:
    """Every pair of articles of different bulletins compared exactly (no LSH)."""
    arts = [a for arts in bulletins.values() for a in arts if len(a.words) >= dedupe.MIN_WORDS]
    return {frozenset({(a.doc_id, a.article), (b.doc_id, b.article)}) for a, b in itertools.combinations(arts, 2)
            if a.doc_id != b.doc_id and dedupe.same_story(a.words, b.words)}


@pytest.fixture(params=["sqlite", "memory", "memory, merged"])
def db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ChunkDB:
    """A chunk table whose band lookups stay in SQLite (a lone update) or are held in memory (a build),
    there also with the band rows added merged into its sorted arrays each time they grow by half."""
    db = ChunkDB(tmp_path / "index.sqlite")
    if request.param.startswith("memory"):
        monkeypatch.setattr(bandindex, "MERGE_ROWS", 8 if "merged" in request.param else bandindex.MERGE_ROWS)
        bandindex.hold(db)
    else:
        monkeypatch.setattr(bandindex, "MEMORY_AFTER", 10**9)
    yield db
    assert (db.lsh is not None) == request.param.startswith("memory")  # the copy was kept in step, never dropped
    db.close()


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
    expected = _brute_force(bulletins)
    assert len(expected) >= 20
    assert _pairs(db) == expected


def test_changing_and_removing_a_bulletin_updates_only_its_links(db: ChunkDB) -> None:
    rng = random.Random(5)
    story = _story(rng)
    a, b, c = story, _retold(rng, story, 0.85), _retold(rng, story, 0.85)
    for doc_id, ws in (("a", a), ("b", b), ("c", c)):
        dedupe.link(db, doc_id, [_art(doc_id, 0, ws)])
    assert _groups(db) == {frozenset({("a", 0), ("b", 0), ("c", 0)})}

    dedupe.link(db, "b", [_art("b", 0, _story(rng))])  # b now tells another story
    assert _pairs(db) == _brute_force({"a": [_art("a", 0, a)], "c": [_art("c", 0, c)]}) == {
        frozenset({("a", 0), ("c", 0)})}

    db.delete_articles("c")
    assert _pairs(db) == set() and _groups(db) == set()
    assert {r["doc_id"] for r in db.signatures()} == {"a", "b"}


def test_a_chain_splits_when_its_middle_leaves(db: ChunkDB) -> None:
    rng = random.Random(11)
    base = _story(rng, 150)
    left, right = base[:80], base[70:]  # each lies inside the middle; they share 10 words
    assert not dedupe.same_story(frozenset(left), frozenset(right))
    for doc_id, ws in (("left", left), ("middle", base), ("right", right)):
        dedupe.link(db, doc_id, [_art(doc_id, 0, ws)])
    assert dedupe.groups(db.dup_pairs()) == [[("middle", 0), ("left", 0), ("right", 0)]]  # both confirmed with it
    # retrieval hides a passage only behind a confirmed pair, never along the chain
    assert db.dup_neighbours([("left", 0), ("right", 0)]) == {("left", 0): {("middle", 0)},
                                                              ("right", 0): {("middle", 0)}}
    db.delete_articles("middle")
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


def test_groups_do_not_chain_stories() -> None:
    """Two stories, each told by three bulletins, and one article that resembles both (a roundup):
    connected components would make one group of seven; the groups keep the stories apart and
    every member is a confirmed duplicate of its group's first article."""
    x = [("x1", 0), ("x2", 0), ("x3", 0)]
    y = [("y1", 0), ("y2", 0), ("y3", 0)]
    roundup = ("roundup", 0)
    pairs = [(*a, *b) for story in (x, y) for a, b in itertools.combinations(story, 2)]
    pairs += [(*roundup, *x[0]), (*roundup, *y[0])]
    groups = dedupe.groups(pairs)
    confirmed = {frozenset({(p[0], p[1]), (p[2], p[3])}) for p in pairs}
    assert all(frozenset({g[0], m}) in confirmed for g in groups for m in g[1:])
    assert not any({*x, *y} & set(g) == {*x, *y} for g in groups)
    assert set(x) <= set(groups[0]) and set(y) <= set(groups[1])  # x1 and y1 have the most pairs
    assert sorted(m for g in groups for m in g) == sorted({*x, *y, roundup})  # nobody in two groups


def test_a_story_syndicated_past_the_band_cap_comes_out_whole(db: ChunkDB) -> None:
    """One wire story carried by 150 bulletins (its bands hold more articles than an article is
    compared with) among unrelated ones: every copy is linked with every other, as comparing all
    pairs gives, and the copies make one group."""
    rng = random.Random(17)
    wire = _story(rng, 120)
    bulletins: dict[str, list[dedupe.Article]] = {}
    for b in range(200):
        texts = [_story(rng)] + ([_retold(rng, wire, 0.97)] if b % 4 else [])
        bulletins[f"b{b:03d}"] = [_art(f"b{b:03d}", i, ws) for i, ws in enumerate(texts)]
    for doc_id, arts in bulletins.items():
        dedupe.link(db, doc_id, arts)
    crowded = db.conn.execute("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM article_bands GROUP BY key)").fetchone()[0]
    assert crowded > dedupe.CAP
    expected = _brute_force(bulletins)
    assert len(expected) == 150 * 149 // 2
    assert _pairs(db) == expected
    assert _groups(db) == {frozenset((d, 1) for d in bulletins if int(d[1:]) % 4)}


def test_memory_and_sqlite_compare_an_article_with_the_same_candidates(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Per band, the ``cap`` newest articles still stored: SQLite's, those of a copy kept in step
    through adds, replacements and removals (merged into its arrays as it goes) and those of a copy
    read afresh are the same, for caps below and above how crowded the bands are."""
    monkeypatch.setattr(bandindex, "MERGE_ROWS", 8)
    rng = random.Random(31)
    story = _story(rng)
    db = ChunkDB(tmp_path / "index.sqlite")
    kept = bandindex.hold(db)
    for b in range(60):
        dedupe.link(db, f"b{b:02d}", [_art(f"b{b:02d}", 0, _retold(rng, story)), _art(f"b{b:02d}", 1, _story(rng))])
        if b % 7 == 3:
            db.delete_articles(f"b{rng.randrange(b):02d}")
        if b % 5 == 2:
            old = f"b{rng.randrange(b):02d}"
            dedupe.link(db, old, [_art(old, 0, _retold(rng, story, 0.95))])
    assert db.lsh is kept and len(kept.keys) and kept.fresh  # arrays and rows added since, both in use
    probe = [_art("probe", 0, _retold(rng, story))]

    def everyone(inter: np.ndarray, size: int, sizes: np.ndarray) -> np.ndarray:
        return np.ones(len(sizes), dtype=bool)

    for cap in (1, 2, 5, 20, 100):
        want = sorted(bandindex.SqlBands(db).first("probe", probe, cap, everyone)[0])
        assert len(want) > 1
        assert sorted(kept.first("probe", probe, cap, everyone)[0]) == want, cap
        assert sorted(bandindex.MemoryBands(db).first("probe", probe, cap, everyone)[0]) == want, cap


def test_another_connections_links_are_seen_by_a_build_holding_bands_in_memory(tmp_path: Path) -> None:
    """A watcher holds the bands in memory; a lone ``index add`` (another connection) links a
    bulletin; the watcher's next link finds it, and both connections store the same pairs."""
    rng = random.Random(19)
    story = _story(rng)
    watcher, lone = ChunkDB(tmp_path / "index.sqlite"), ChunkDB(tmp_path / "index.sqlite")
    dedupe.link(watcher, "first", [_art("first", 0, story)])
    bandindex.hold(watcher)
    dedupe.link(lone, "second", [_art("second", 0, _retold(rng, story))])
    dedupe.link(watcher, "third", [_art("third", 0, _retold(rng, story))])
    assert _groups(watcher) == _groups(lone) == {frozenset({("first", 0), ("second", 0), ("third", 0)})}
    lone.delete_articles("second")
    dedupe.link(watcher, "fourth", [_art("fourth", 0, _story(rng))])
    assert watcher.lsh is None  # its copy was stale: dropped, looked up in SQLite
    assert _pairs(watcher) == {frozenset({("first", 0), ("third", 0)})}


def test_a_long_running_process_keeps_its_bands_in_memory_across_other_processes_writes(tmp_path: Path) -> None:
    """A chat server's watcher holds the bands for its life (``hold(keep=True)``): another process's
    link makes its copy stale, and its next link reads the tables again into memory instead of
    falling back to SQLite, with the same pairs as a lone process finds."""
    rng = random.Random(23)
    story = _story(rng)
    server, lone = ChunkDB(tmp_path / "index.sqlite"), ChunkDB(tmp_path / "index.sqlite")
    dedupe.link(server, "first", [_art("first", 0, story)])
    held = bandindex.hold(server, keep=True)
    dedupe.link(lone, "second", [_art("second", 0, _retold(rng, story))])
    dedupe.link(server, "third", [_art("third", 0, _retold(rng, story))])
    assert server.lsh is not None and server.lsh is not held  # read again, still in memory
    assert isinstance(bandindex.lookups(server), bandindex.MemoryBands)
    assert _groups(server) == _groups(lone) == {frozenset({("first", 0), ("second", 0), ("third", 0)})}


def test_groups_are_kept_until_a_pair_changes(db: ChunkDB) -> None:
    import json
    from types import SimpleNamespace

    from index import read

    rng = random.Random(7)
    story = _story(rng)
    for doc_id in ("a", "b"):
        dedupe.link(db, doc_id, [_art(doc_id, 0, _retold(rng, story))])
    holder = SimpleNamespace(db=db)
    assert {frozenset(g) for g in read.kept_groups(holder)} == _groups(db) == {frozenset({("a", 0), ("b", 0)})}
    read.groups_file(db.path).write_text(json.dumps({"version": db.pairs_version(), "groups": [[["x", 9]]]}))
    assert read.kept_groups(holder) == [[("x", 9)]]  # while no pair changes, the kept groups are what is read
    dedupe.link(db, "c", [_art("c", 0, _retold(rng, story))])
    server = ChunkDB(db.path)  # another connection: a commit would make its band copy stale
    version = server.data_version()
    assert ({frozenset(g) for g in read.kept_groups(holder)} == _groups(db)
            == {frozenset({("a", 0), ("b", 0), ("c", 0)})})
    assert server.data_version() == version  # computed and kept outside the chunk table
    db.delete_articles("c")
    assert {frozenset(g) for g in read.kept_groups(holder)} == {frozenset({("a", 0), ("b", 0)})}


def test_a_serving_process_keeps_the_groups_on_a_thread_of_its_own(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A chat server's or watcher's update returns while its ``Regrouper`` computes the groups; a pair
    changed meanwhile makes one more pass, and the groups kept are those of the pairs stored last."""
    import json
    import threading
    import time

    from index import read

    db = ChunkDB(tmp_path / "index.sqlite")
    rng = random.Random(8)
    story = _story(rng)
    for doc_id in ("a", "b"):
        dedupe.link(db, doc_id, [_art(doc_id, 0, _retold(rng, story))])
    started, release, real = threading.Event(), threading.Event(), dedupe.groups

    def slow(pairs):  # type: ignore[no-untyped-def]
        started.set()
        assert release.wait(30)
        return real(pairs)

    monkeypatch.setattr(dedupe, "groups", slow)
    monkeypatch.setattr(read, "QUIET_S", 0.05)
    regrouper = read.Regrouper(db.path)
    regrouper.request()
    kept = read.groups_file(db.path)
    assert started.wait(30) and not kept.exists()  # computing elsewhere: this thread goes on
    dedupe.link(db, "c", [_art("c", 0, _retold(rng, story))])
    regrouper.request()
    release.set()
    deadline = time.monotonic() + 30
    while not kept.exists() or json.loads(kept.read_text())["version"] != db.pairs_version():
        assert time.monotonic() < deadline, "the groups were not kept"
        time.sleep(0.01)
    assert ({frozenset(map(tuple, g)) for g in json.loads(kept.read_text())["groups"]} == _groups(db)
            == {frozenset({("a", 0), ("b", 0), ("c", 0)})})


def test_a_burst_of_updates_makes_one_pass_of_the_regrouper_after_its_last(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    from types import SimpleNamespace

    from index import read

    db = ChunkDB(tmp_path / "index.sqlite")
    rng = random.Random(9)
    story = _story(rng)
    passes: list[float] = []
    real = dedupe.groups
    monkeypatch.setattr(dedupe, "groups", lambda pairs: passes.append(time.monotonic()) or real(pairs))
    monkeypatch.setattr(read, "QUIET_S", 0.3)
    regrouper = read.Regrouper(db.path)
    for doc_id in "abcde":  # updates 0.1 s apart, each asking
        dedupe.link(db, doc_id, [_art(doc_id, 0, _retold(rng, story))])
        regrouper.request()
        last = time.monotonic()
        time.sleep(0.1)
    deadline = time.monotonic() + 30
    while not read.groups_file(db.path).exists():
        assert time.monotonic() < deadline, "the groups were not kept"
        time.sleep(0.01)
    assert len(passes) == 1 and passes[0] >= last + 0.3
    assert {frozenset(g) for g in read.kept_groups(SimpleNamespace(db=db))} == _groups(db)
