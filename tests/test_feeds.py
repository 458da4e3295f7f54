"""News feeds against a real HTTP server on 127.0.0.1 (stdlib http.server, started and stopped by
each test): entries become bulletins that are answered and cited with their url; polls are
conditional and incremental; every fault is one line for its own feed while the others go on."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.feeds import FeedBook
from index.indexer import Index
from index.watch import settle
from tests.conftest import small_corpus
from tests.feed_server import ATOM, HTML, FeedServer, Page, article_page, atom, endless, feed_server, rdf, rss

FACT = ("The new joint working group on smart water metering elected Marisol Okonkwo-Berg as its convenor"
        " at its first meeting in Lisbon.")


def _item(n: int, **kw: str) -> dict[str, str]:
    return {"title": f"Metering news number {n}", "guid": f"urn:metering:{n}",
            "link": f"http://example.invalid/news/{n}", "date": f"Mon, 0{n} Mar 2026 09:00:00 GMT",
            "content": f"<p>Report {n}: the working group on meter data models discussed item {n} of its programme"
                       f" of work, covering interfaces between utilities and city platforms.</p>", **kw}


@pytest.fixture()
def srv() -> Iterator[FeedServer]:
    with feed_server() as server:
        yield server


@pytest.fixture()
def feeds_index(tmp_path: Path, embedder: Any) -> tuple[Index, FeedBook]:  # noqa: ANN401
    from index.settings import load_settings

    settings = load_settings(home=tmp_path / "home", corpus=small_corpus(tmp_path), feed_timeout=1.0)
    index = Index(settings, embedder=embedder)
    assert index.update(progress=False).ok
    return index, FeedBook(settings)


def _poll(index: Index, book: FeedBook, *names: str) -> tuple[list[Any], Any]:
    since = time.time()
    results = book.poll(list(names) or None)
    return results, settle(index, [d for r in results for d in r.written], since)


def test_entries_become_bulletins_answered_and_cited_with_their_url(srv: FeedServer, feeds_index) -> None:  # noqa: ANN001
    from assistant.pipeline import Assistant

    index, book = feeds_index
    link = srv.url("/news/water-metering")
    srv.routes["/news/water-metering"] = Page(article_page("Water metering group elects its convenor", [
        FACT, "Its first work item is a data model for meter readings shared between utilities and cities."]),
        type=HTML)
    srv.routes["/rss"] = Page(rss("Metering Bulletin", [  # a summary only: the page's main text is kept
        {"title": "Water metering group elects its convenor", "link": link, "guid": "urn:wm:1",
         "date": "Tue, 03 Mar 2026 10:00:00 GMT", "description": "A new group met."}]).encode())
    srv.routes["/atom"] = Page(atom("Grid Standards Desk", [
        {"title": "Substation automation profile published", "id": "urn:grid:7", "link": srv.url("/grid/7"),
         "updated": "2026-02-11T08:00:00Z",
         "content": "<p>The substation automation profile was published after a ballot of 41 national bodies.</p>"}
    ]).encode(), type=ATOM)
    srv.routes["/rdf"] = Page(rdf("Lighting Notes", [
        {"title": "Street lighting interface draft", "link": srv.url("/light/3"), "date": "2026-01-20T12:00:00Z",
         "description": "The street lighting interface draft goes to enquiry in the spring."}]).encode(),
        type="application/rdf+xml")

    added = {url: book.add(srv.url(url)) for url in ("/rss", "/atom", "/rdf")}
    assert [r.name for r in added.values()] == ["metering-bulletin", "grid-standards-desk", "lighting-notes"]
    report = settle(index, [d for r in added.values() for d in r.written], 0.0)
    assert report.ok, report.failed
    doc_id = "feeds/metering-bulletin/2026-03-03-water-metering-group-elects-its-convenor"
    assert sorted(report.added_docs) == sorted([
        doc_id, "feeds/grid-standards-desk/2026-02-11-substation-automation-profile-published",
        "feeds/lighting-notes/2026-01-20-street-lighting-interface-draft"])
    bulletin = index.db.bulletin(doc_id)
    assert (bulletin["title"], bulletin["publisher"], bulletin["date"], bulletin["url"]) == (
        "Water metering group elects its convenor", "Metering Bulletin", "2026-03-03", link)
    assert "Okonkwo-Berg" in bulletin["text"]
    for boilerplate in ("TRACKER-SCRIPT", "All news", "site menu", "newsletter sidebar", "Cookie settings"):
        assert boilerplate not in bulletin["text"], boilerplate  # the page's main text only
    assert index.db.bulletin("feeds/grid-standards-desk/2026-02-11-substation-automation-profile-published")[
        "publisher"] == "Grid Standards Desk"

    result = Assistant(index.settings, index=index).ask("Who is the convenor of the smart water metering group?")
    assert not result.refused and "Okonkwo-Berg" in result.answer
    cited = result.to_json()["citations"][0]
    assert (cited["doc_id"], cited["url"]) == (doc_id, link)


def test_polls_are_conditional_and_only_changed_entries_are_indexed(srv: FeedServer, feeds_index) -> None:  # noqa: ANN001
    index, book = feeds_index
    items = [_item(1), _item(2)]
    srv.routes["/feed"] = Page(rss("Metering Bulletin", items).encode())
    first = book.add(srv.url("/feed"), name="metering")
    assert settle(index, first.written, 0.0).embedded > 0
    doc1, doc2 = (f"feeds/metering/2026-03-0{n}-metering-news-number-{n}" for n in (1, 2))
    assert first.added == [doc1, doc2]

    results, report = _poll(index, book)
    asked = srv.requests("/feed")[-1]
    assert asked["headers"]["If-None-Match"] == srv.routes["/feed"].etag and "If-Modified-Since" in asked["headers"]
    assert asked["status"] == 304 and results[0].status == "not modified"
    assert report.embedded == 0 and not report.added_docs and not report.changed_docs
    assert asked["headers"]["User-Agent"].startswith("stdnews/")

    items[0] = _item(1, content="<p>Report 1, revised: the working group moved its meeting on meter data models"
                                " to Tallinn and added a session on leak detection.</p>")
    srv.routes["/feed"] = Page(rss("Metering Bulletin", [*items, _item(3)]).encode())
    results, report = _poll(index, book)
    doc3 = "feeds/metering/2026-03-03-metering-news-number-3"
    assert (results[0].changed, results[0].added, results[0].unchanged) == ([doc1], [doc3], 1)
    assert (report.changed_docs, report.added_docs, report.removed_docs) == ([doc1], [doc3], [])
    assert "Tallinn" in index.db.bulletin(doc1)["text"]  # updated, not duplicated
    assert len([b for b in index.db.bulletins() if b["doc_id"].startswith("feeds/")]) == 3

    srv.routes["/feed"] = Page(rss("Metering Bulletin", [_item(3)]).encode())  # 1 and 2 left the window
    results, report = _poll(index, book)
    assert results[0].unchanged == 1 and not report.removed_docs
    assert index.db.bulletin(doc1) is not None and index.db.bulletin(doc2) is not None


def test_every_fault_is_one_line_for_its_feed_and_the_good_feed_still_updates(srv: FeedServer, feeds_index,  # noqa: ANN001, PLR0915
                                                                            tmp_path: Path) -> None:
    index, book = feeds_index
    paths = ["/good", "/slow", "/gone", "/broken", "/loop", "/malformed", "/html", "/huge", "/huge-declared",
             "/encoding"]
    for path in paths:
        srv.routes[path] = Page(rss(f"Feed {path[1:]}", [_item(1, guid=f"{path}-1", title=f"First of {path[1:]}")
                                                         ]).encode())
    with feed_server() as other:  # a server that goes away: connection refused
        other.routes["/refused"] = Page(rss("Feed refused", [_item(1, title="First of refused")]).encode())
        refused = other.url("/refused")
        added = [book.add(srv.url(p), name=p[1:]) for p in paths] + [book.add(refused, name="refused")]
    assert settle(index, [d for r in added for d in r.written], 0.0).ok
    before = {b["doc_id"] for b in index.db.bulletins()}

    srv.routes["/good"] = Page(rss("Feed good", [_item(1, guid="/good-1", title="First of good"), _item(2)]).encode())
    srv.routes["/slow"].delay = 3.0  # feed_timeout is 1 s
    del srv.routes["/gone"]
    srv.routes["/broken"] = Page(b"oops", status=500, type="text/plain")
    srv.routes["/loop"] = Page(status=302, headers={"Location": "/loop-b"}, conditional=False)
    srv.routes["/loop-b"] = Page(status=302, headers={"Location": "/loop"}, conditional=False)
    srv.routes["/malformed"] = Page(b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>'
                                    b"<item><title>cut</item></channel>")
    srv.routes["/html"] = Page(b'<!doctype html><html><head><title>Site</title><link rel="alternate"'
                               b' type="application/rss+xml" href="/good"></head><body><p>Welcome</p></body></html>',
                               type=HTML)
    srv.routes["/huge"] = endless(50 * 2**20)
    srv.routes["/huge-declared"] = Page(b" " * (50 * 2**20))
    cafe = rss("Feed encoding", [_item(1, guid="/encoding-1", title="First of encoding"),
                                 _item(2, guid="/encoding-2", title="Café crème standards meeting")])
    srv.routes["/encoding"] = Page(cafe.encode("cp1252"))  # declared utf-8 (header and XML), sent as cp1252

    results, report = _poll(index, book)
    by = {r.name: r for r in results}
    u = srv.url
    assert {n: r.error for n, r in by.items() if r.error} == {
        "slow": f"{u('/slow')} did not answer within 1 s (timed out)",
        "refused": f"{refused} cannot connect (connection refused)",
        "gone": f"{u('/gone')} answered HTTP 404 Not Found",
        "broken": f"{u('/broken')} answered HTTP 500 Internal Server Error",
        "loop": f"{u('/loop')} redirects in a loop ({u('/loop')} -> {u('/loop-b')} -> {u('/loop')})",
        "malformed": f"{u('/malformed')} sent malformed XML (line 1, column 100: mismatched tag);"
                     " nothing read from it this time",
        "html": f"{u('/html')} sent an HTML page, not a feed; the page names a feed at {u('/good')}: add that instead",
        "huge": f"{u('/huge')} is too large (sent more than 10 MiB; the limit is 10 MiB); nothing read from it",
        "huge-declared": f"{u('/huge-declared')} is too large (50 MiB declared; the limit is 10 MiB)",
    }
    assert all("\n" not in r.line() for r in results)
    assert by["good"].added == ["feeds/good/2026-03-02-metering-news-number-2"]
    assert report.added_docs == ["feeds/encoding/2026-03-02-cafe-creme-standards-meeting",
                                 "feeds/good/2026-03-02-metering-news-number-2"] and report.ok
    assert index.db.bulletin("feeds/encoding/2026-03-02-cafe-creme-standards-meeting")["title"] == (
        "Café crème standards meeting")  # read in the encoding of its bytes, with a note that says so
    assert by["encoding"].notes == [f"{u('/encoding')}: document declared as utf-8, but parsed as windows-1252;"
                                    " its text was read as windows-1252"]
    assert before <= {b["doc_id"] for b in index.db.bulletins()}  # nothing of the failing feeds was lost

    feeds = book.feeds()
    assert feeds["gone"]["failures"] == 1 and feeds["gone"]["last_error"] == by["gone"].error
    assert feeds["good"]["failures"] == 0 and feeds["good"]["last_error"] is None
    interval = feeds["gone"]["interval_s"]
    for n in (2, 3):  # backed off: the interval doubles with each failure in a row
        book.poll(["gone"])
        gone = book.feeds()["gone"]
        assert gone["failures"] == n and gone["next_poll"] - gone["last_poll"] == pytest.approx(interval * 2 ** (n - 1))
    assert book.due() == []  # every feed waits its interval, the failing ones longer

    srv.routes["/gone"] = Page(rss("Feed gone", [_item(1, guid="/gone-1", title="First of gone")]).encode())
    book.poll(["gone"])
    assert book.feeds()["gone"]["failures"] == 0 and book.feeds()["gone"]["last_error"] is None


def test_odd_entries_are_kept_with_a_note_each(srv: FeedServer, feeds_index) -> None:  # noqa: ANN001
    index, book = feeds_index
    script = ('<p onclick="steal()">The meter <b>interface</b> note.<script>document.write("INJECTED")</script>'
              '<img src="x" onerror="alert(1)"><style>p{color:red}</style> It covers pulse outputs.</p>'
              '<iframe src="http://evil.invalid/"></iframe>')
    srv.routes["/odd"] = Page(rss("Odd Feed", [
        {"guid": "untitled", "link": "http://example.invalid/u", "date": "Mon, 02 Mar 2026 09:00:00 GMT",
         "content": "<p>Meter interface untitled entry body text about pulse outputs and their wiring.</p>"},
        {"title": "Undated metering entry", "guid": "undated", "link": "http://example.invalid/d",
         "content": "<p>Body of the undated entry.</p>"},
        {"title": "Future metering entry", "guid": "future", "link": "http://example.invalid/f",
         "date": "Fri, 01 Jan 2100 00:00:00 GMT",
         "content": "<p>Body of the entry dated in the future.</p>"},
        {"title": "Scripted metering entry", "guid": "scripted", "link": "http://example.invalid/s",
         "date": "Tue, 03 Mar 2026 09:00:00 GMT",
         "content": script},
        {"title": "Linked only", "link": "http://example.invalid/linked", "date": "Tue, 03 Mar 2026 09:00:00 GMT",
         "content": "<p>An entry with a link and a title but no id: known by both.</p>"},
        {"title": "Summary whose page is gone", "guid": "gone-page", "link": srv.url("/no-such-page"),
         "date": "Tue, 03 Mar 2026 09:00:00 GMT", "description": "The summary of a page that answers 404."},
    ]).encode())
    result = book.add(srv.url("/odd"))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert result.notes == [
        "entry 'http://example.invalid/u' has no title; titled by its first line",
        "entry 'Undated metering entry' has no date; catalogued without one",
        f"entry 'Future metering entry' is dated 2100-01-01, in the future; catalogued as {today},"
        " the day it was first seen",
        f"entry 'Summary whose page is gone': its page {srv.url('/no-such-page')} could not be read; kept its summary",
    ]
    report = settle(index, result.written, 0.0)
    assert report.ok, report.failed
    odd = {b["doc_id"]: b for b in index.db.bulletins() if b["doc_id"].startswith("feeds/odd-feed/")}
    assert odd["feeds/odd-feed/2026-03-02-http-example-invalid-u"]["title"].startswith("Meter interface untitled")
    assert odd["feeds/odd-feed/undated-metering-entry"]["date"] is None
    assert odd[f"feeds/odd-feed/{today}-future-metering-entry"]["date"] == today
    assert "feeds/odd-feed/2026-03-03-linked-only" in odd
    assert "answers 404" in index.db.bulletin("feeds/odd-feed/2026-03-03-summary-whose-page-is-gone")["text"]
    scripted = index.db.bulletin("feeds/odd-feed/2026-03-03-scripted-metering-entry")
    assert "It covers pulse outputs." in scripted["text"]
    stored = (index.settings.corpus / "feeds/odd-feed/2026-03-03-scripted-metering-entry.html").read_text()
    for bad in ("INJECTED", "<script", "onclick", "onerror", "<iframe", "<style", "color:red"):
        assert bad not in stored and bad not in scripted["text"], bad
    again = book.poll()  # the same entries again (no ETag match: the server's body is the same, so 304)
    assert again[0].status == "not modified"


def test_a_feed_that_moved_permanently_is_polled_at_its_new_address(srv: FeedServer, feeds_index) -> None:  # noqa: ANN001
    _, book = feeds_index
    srv.routes["/old"] = Page(rss("Metering Bulletin", [_item(1)]).encode())
    book.add(srv.url("/old"))
    srv.routes["/old"] = Page(status=301, headers={"Location": "/new"}, conditional=False)
    srv.routes["/new"] = Page(rss("Metering Bulletin", [_item(1), _item(2)]).encode())
    result = book.poll()[0]
    assert result.added == ["feeds/metering-bulletin/2026-03-02-metering-news-number-2"]
    assert result.notes == [f"moved permanently to {srv.url('/new')}; polling it there from now on"]
    assert book.feeds()["metering-bulletin"]["url"] == srv.url("/new")
    assert book.poll()[0].status == "not modified" and srv.requests("/old")[-1]["status"] == 301
    assert len(srv.requests("/old")) == 2  # the second poll went straight to the new address
    from index.errors import UserError

    with pytest.raises(UserError, match="is already a feed"):  # by its old address too
        book.add(srv.url("/old"))


def test_index_watch_polls_the_feeds_that_are_due(srv: FeedServer, tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    env = {**ENV, "STDNEWS_FEED_MIN_INTERVAL": "1", "STDNEWS_FEED_INTERVAL": "1"}
    cmd = [sys.executable, "-m", "assistant", "--home", str(tmp_path / "home"), "--corpus", str(corpus)]
    srv.routes["/feed"] = Page(rss("Metering Bulletin", [_item(1)]).encode())
    assert subprocess.run([*cmd, "feeds", "add", srv.url("/feed"), "--quiet"], env=env, capture_output=True,
                          timeout=300).returncode == 0
    from index.settings import load_settings

    index = Index(load_settings(home=tmp_path / "home", corpus=corpus))
    proc = subprocess.Popen([*cmd, "index", "watch", "--interval", "60"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        srv.routes["/feed"] = Page(rss("Metering Bulletin", [_item(1), _item(2)]).encode())
        deadline = time.monotonic() + 240
        while index.db.bulletin("feeds/metering-bulletin/2026-03-02-metering-news-number-2") is None:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("index watch did not index the feed's new entry")
            time.sleep(0.3)
        del srv.routes["/feed"]
        while "answered HTTP 404" not in str(book_error(tmp_path)):
            if time.monotonic() > deadline:
                pytest.fail("index watch did not poll the feed again")
            time.sleep(0.3)
    finally:
        proc.terminate()
        log = proc.communicate(timeout=60)[0]
    assert "feed metering-bulletin: 1 new, 0 changed, 1 unchanged entries" in log
    assert "+ 2026-03-02  Metering news number 2" in log
    assert log.count(f"feed metering-bulletin: error: {srv.url('/feed')} answered HTTP 404 Not Found") == 1


def book_error(tmp_path: Path) -> str | None:
    from index.settings import load_settings

    return FeedBook(load_settings(home=tmp_path / "home", corpus=tmp_path / "corpus")).feeds()[
        "metering-bulletin"]["last_error"]


def test_a_body_naming_a_local_file_is_not_read_as_that_file(srv: FeedServer, feeds_index, tmp_path: Path) -> None:  # noqa: ANN001
    _, book = feeds_index
    local = tmp_path / "private-feed.xml"  # feedparser.parse(bytes) opens a path it is given
    local.write_text(rss("Private", [_item(1, title="A private local entry")]))
    srv.routes["/sly"] = Page(str(local).encode(), type="application/rss+xml")
    from index.errors import UserError

    with pytest.raises(UserError, match=r"sent something that is not an RSS or Atom feed .*; nothing was added"):
        book.add(srv.url("/sly"))
    assert book.feeds() == {}


def test_a_feed_is_added_once_however_its_url_is_spelled(srv: FeedServer, feeds_index) -> None:  # noqa: ANN001
    _, book = feeds_index
    srv.routes["/feed"] = Page(rss("Metering Bulletin", [_item(1)]).encode())
    book.add(srv.url("/feed"))
    from index.errors import UserError

    for spelling in (srv.url("/feed"), f"HTTP://127.0.0.1:{srv.port}/feed#top", f" {srv.url('/feed')} "):
        with pytest.raises(UserError) as err:
            book.add(spelling, name="another")
        assert str(err.value) == f"{spelling.strip()} is already a feed, as 'metering-bulletin'; nothing was added"
    with pytest.raises(UserError, match=r"/nothing answered HTTP 404 Not Found; nothing was added$"):
        book.add(srv.url("/nothing"))
    with pytest.raises(UserError, match="a feed named 'metering-bulletin' already exists"):
        srv.routes["/feed2"] = Page(rss("Other", [_item(2)]).encode())
        book.add(srv.url("/feed2"), name="Metering Bulletin")
    assert list(book.feeds()) == ["metering-bulletin"]


ENV = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "STDNEWS_FEED_TIMEOUT": "1"}


def test_cli_add_list_poll_remove(srv: FeedServer, tmp_path: Path) -> None:
    corpus = small_corpus(tmp_path)
    cmd = [sys.executable, "-m", "assistant", "--home", str(tmp_path / "home"), "--corpus", str(corpus)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cmd, *args], capture_output=True, text=True, env=ENV, timeout=300)

    srv.routes["/feed"] = Page(rss("Metering Bulletin", [_item(1)]).encode())
    srv.routes["/page"] = Page(b"<html><body><p>just a page</p></body></html>", type=HTML)
    bad = run("feeds", "add", srv.url("/page"))
    assert (bad.returncode, bad.stdout) == (2, "")
    assert bad.stderr == f"error: {srv.url('/page')} sent an HTML page, not a feed; nothing was added\n"

    added = run("feeds", "add", srv.url("/feed"), "--publisher", "Metering Desk", "--quiet")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith(f"added feed 'metering-bulletin' ({srv.url('/feed')})\n"
                                   "feed metering-bulletin: 1 new, 0 changed, 0 unchanged entries\n"
                                   "3 files: 3 new, 0 changed, 0 removed, 0 unchanged")  # the corpus too: a new home
    short = run("feeds", "add", srv.url("/feed2"), "--interval", "1")
    assert short.returncode == 2 and "shorter than the floor of 5 min" in short.stderr

    polled = run("feeds", "poll", "--quiet")
    assert (polled.returncode, polled.stdout) == (0, "feed metering-bulletin: not modified\n")
    del srv.routes["/feed"]
    failed = run("feeds", "poll", "--quiet")
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"feed metering-bulletin: error: {srv.url('/feed')} answered HTTP 404 Not Found",
        "1 of 1 feed(s) could not be read; the others were, and nothing already indexed was lost"]
    listed = run("feeds", "list")
    assert listed.stdout.startswith(f"metering-bulletin  {srv.url('/feed')}  [Metering Desk]  1 entries; last poll ")
    assert (f"FAILING (1 time in a row; next in 30 min): {srv.url('/feed')} answered HTTP 404 Not Found"
            in listed.stdout)
    assert run("feeds", "poll", "--due").stdout == "no feed is due\n"
    assert run("feeds", "remove", "nope").stderr.startswith("error: no feed named 'nope' (feeds: metering-bulletin)")

    removed = run("feeds", "remove", "metering-bulletin", "--delete-bulletins", "--quiet")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.startswith("removed feed 'metering-bulletin' and its 1 bulletin(s)\n"
                                     "2 files: 0 new, 0 changed, 1 removed")
    assert run("feeds", "list").stdout == "no feeds yet; add one with 'stdnews feeds add URL'\n"
    assert "feeds/" not in (corpus / "catalog.toml").read_text()
