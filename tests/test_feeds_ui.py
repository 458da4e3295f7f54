"""News feeds in the chat window: the Library tab adds, lists and removes feeds through the real
Gradio server (gradio_client), and a running ``stdnews chat`` picks up a new feed entry by itself
(its watcher polls the feed), shown in What's new in a real headless Chromium."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app_server import Server, chat_process, chat_server
from tests.feed_server import FeedServer, Page, feed_server, rss

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

WAIT = 120_000  # ms


def _entry(n: int, title: str, text: str) -> dict[str, str]:
    return {"title": title, "guid": f"urn:kerb:{n}", "link": f"http://example.invalid/kerb/{n}",
            "date": f"Wed, 0{n} Apr 2026 08:00:00 GMT", "content": f"<p>{text}</p>"}


FIRST = _entry(1, "Kerbside charging committee holds its kick-off",
               "The kerbside charging committee held its kick-off meeting and set up three task forces.")
SECOND = _entry(2, "Kerbside charging profile goes to ballot",
                "The kerbside charging profile goes to ballot after Ingrid Vasquez-Moreau, the project editor,"
                " resolved 212 comments from national bodies.")


@pytest.fixture()
def srv() -> Iterator[FeedServer]:
    with feed_server() as server:
        yield server


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Server]:  # noqa: ANN401
    with chat_server(tmp_path_factory.mktemp("feeds-app"), embedder) as s:
        yield s


def test_library_tab_adds_lists_and_removes_feeds(srv: FeedServer, app_server: Server) -> None:
    from gradio_client import Client

    client = Client(app_server.url, verbose=False)
    srv.routes["/kerb"] = Page(rss("Kerbside Desk", [FIRST]).encode())
    srv.routes["/site"] = Page(b"<html><body><p>a site</p></body></html>", type="text/html")

    refused = client.predict(srv.url("/site"), "", "", api_name="/add_feed")
    assert f"{srv.url('/site')} sent an HTML page, not a feed; nothing was added" in refused[0]
    assert "sn-bad" in refused[0]

    out = client.predict(srv.url("/kerb"), "kerb", "Kerbside Standards Desk", api_name="/add_feed")
    assert "Added feed &#x27;kerb&#x27;: 1 bulletin(s)" in out[0] or "Added feed 'kerb': 1 bulletin(s)" in out[0]
    table = out[2]
    assert 'data-feed="kerb"' in table and srv.url("/kerb") in table and "Kerbside Standards Desk" in table
    assert app_server.app.index.db.bulletin("feeds/kerb/2026-04-01-kerbside-charging-committee-holds-its-kick-off")

    again = client.predict(srv.url("/kerb"), "", "", api_name="/add_feed")
    assert "is already a feed, as" in again[0] and "kerb" in again[0]

    del srv.routes["/kerb"]  # the feed fails: its error shows in the Library tab
    polled = client.predict(api_name="/poll_feeds")
    assert "1 could not be read" in polled[0] and "answered HTTP 404 Not Found" in polled[0]
    table = client.predict(api_name="/feeds")[0]
    assert re.search(r'sn-feed-failing" data-feed="kerb".*FAILING \(1 time in a row; next in 30 min\): '
                     + re.escape(srv.url("/kerb")) + " answered HTTP 404 Not Found", table, flags=re.S)

    removed = client.predict("kerb", True, api_name="/remove_feed")
    assert "Removed feed &#x27;kerb&#x27; and its bulletins." in removed[0] or \
        "Removed feed 'kerb' and its bulletins." in removed[0]
    assert "No news feeds yet" in removed[1]
    assert app_server.app.index.db.bulletin("feeds/kerb/2026-04-01-kerbside-charging-committee-holds-its-kick-off") \
        is None


def test_running_chat_picks_up_a_new_feed_entry_by_itself(srv: FeedServer, browser: Any, tmp_path: Path,  # noqa: ANN401
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STDNEWS_FEED_MIN_INTERVAL", "1")  # this test's server is ours: poll it every 2 s
    monkeypatch.setenv("STDNEWS_FEED_INTERVAL", "2")
    srv.routes["/kerb"] = Page(rss("Kerbside Desk", [FIRST]).encode())
    with chat_process(tmp_path) as chat:
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        page.goto(chat.url)
        page.wait_for_selector("#sn-chat", timeout=WAIT)
        page.get_by_role("tab", name="Library").click()
        # the page's load event has filled the feeds list (it starts empty): a field filled before then once
        # reached the server empty (one full `make test`; not reproduced alone)
        page.wait_for_selector("#sn-feeds .sn-sources-empty", timeout=WAIT)
        page.fill("#sn-feed-url input", srv.url("/kerb"))
        page.click("#sn-feed-add")
        page.wait_for_selector("#sn-feed-msg .sn-ok, #sn-feed-msg .sn-bad", timeout=WAIT)
        assert "Added feed 'kerbside-desk': 1 bulletin(s)" in page.inner_text("#sn-feed-msg")
        assert "kerbside-desk" in page.inner_text("#sn-feeds")

        deadline = time.monotonic() + 120
        while 304 not in [e["status"] for e in srv.requests("/kerb")]:  # the watcher polls it, conditionally
            if time.monotonic() > deadline:
                pytest.fail("the running chat did not poll the feed again; log:\n" + chat.log.read_text())
            time.sleep(0.5)
        srv.routes["/kerb"] = Page(rss("Kerbside Desk", [FIRST, SECOND]).encode())  # no command follows
        deadline = time.monotonic() + 180
        while "Kerbside charging profile goes to ballot" not in page.inner_text("#sn-whats-new"):
            if time.monotonic() > deadline:
                pytest.fail("the running chat did not index the new feed entry; log:\n" + chat.log.read_text())
            page.wait_for_timeout(2000)
            page.reload()  # what a person does: look again
            page.get_by_role("tab", name="Library").click()
            page.wait_for_selector("#sn-whats-new", timeout=WAIT)
        assert "2026-04-02 · Kerbside Desk" in page.inner_text("#sn-whats-new")
        page.screenshot(path=str(tmp_path / "library-feeds.png"), full_page=True)
        assert [e["headers"].get("If-None-Match") is not None for e in srv.requests("/kerb")][:2] == [False, True]

        page.get_by_role("tab", name="Ask").click()
        page.fill("#sn-question textarea", "Who resolved the comments on the kerbside charging profile?")
        page.click("#sn-send")
        page.wait_for_selector("#sn-chat .sn-answer:not(.sn-streaming)", timeout=WAIT)
        assert "Vasquez-Moreau" in page.locator("#sn-chat .sn-answer").last.inner_text()
        assert "Kerbside charging profile goes to ballot" in page.inner_text("#sn-sources")
        context.close()
    log = chat.log.read_text()
    assert "index: feed kerbside-desk: 1 new, 0 changed, 1 unchanged entries" in log
    assert "+ 2026-04-02  Kerbside charging profile goes to ballot" in log
