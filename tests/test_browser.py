"""The chat window in a real headless Chromium (Debian's /usr/bin/chromium driven by
Playwright): ask, watch the answer stream in with its sources, rate it, upload a
bulletin and get an answer cited from it; bulletin markup is shown as text."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.app_server import Server, chat_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

WAIT = 120_000  # ms; two shared cores are slow when a model runs
ANSWERS = "#sn-chat .sn-answer:not(.sn-streaming), #sn-chat .sn-refusal"
# Records every class the chat shows, so the test can see the pending/streaming states go by.
WATCH = """() => { window.__snSeen = new Set();
  new MutationObserver(() => document.querySelectorAll('#sn-chat [class*="sn-"]').forEach(
    e => e.classList.forEach(c => window.__snSeen.add(c)))).observe(document.body, {subtree: true, childList: true});
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Server]:  # noqa: ANN001
    with chat_server(tmp_path_factory.mktemp("browser"), embedder) as srv:
        yield srv


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots go to $STDNEWS_SCREENSHOTS when set (to pick one for the README), else a temp folder."""
    out = Path(os.environ.get("STDNEWS_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture()
def page(browser, server: Server) -> Iterator[Any]:  # noqa: ANN001
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    pg.goto(server.url)
    pg.wait_for_selector("#sn-chat", timeout=WAIT)
    yield pg
    context.close()


def ask(page: Any, question: str) -> Any:
    """Type a question, send it, wait for the final answer; returns that message's element."""
    before = page.locator(ANSWERS).count()
    page.fill("#sn-question textarea", question)
    page.click("#sn-send")
    page.wait_for_function(f"document.querySelectorAll('{ANSWERS}').length > {before}", timeout=WAIT)
    page.wait_for_selector("#sn-sources .sn-sources-head", timeout=WAIT)
    return page.locator(ANSWERS).last


def upload(page: Any, path: Path, publisher: str = "", date: str = "") -> str:
    page.get_by_role("tab", name="Library").click()
    page.set_input_files("#sn-upload input[type=file]", str(path))
    page.get_by_label("Publisher (optional)").fill(publisher)
    page.get_by_label("Date (optional)").fill(date)
    page.wait_for_selector(f"#sn-upload :text('{path.stem}')", timeout=WAIT)
    page.click("#sn-add")
    page.wait_for_selector("#sn-add-msg .sn-ok, #sn-add-msg .sn-bad", timeout=WAIT)
    return str(page.inner_text("#sn-add-msg"))


def test_ask_rate_upload_and_cite(page, server: Server, shots: Path, tmp_path: Path) -> None:  # noqa: ANN001
    for q in ("Who convenes JTC 1/WG 11?", "What does the IEC do for smart cities?"):
        assert page.get_by_text(q, exact=True).first.is_visible(), f"example question {q!r} shown on first load"
    page.screenshot(path=str(shots / "01-first-load.png"))

    page.evaluate(WATCH)
    page.get_by_text("What is ISO/IEC 30145?", exact=True).click()  # an example question asks itself
    page.wait_for_selector(ANSWERS, timeout=WAIT)
    assert "30145" in page.locator(ANSWERS).last.inner_text()
    seen = set(page.evaluate("[...window.__snSeen]"))
    assert seen & {"sn-pending", "sn-streaming"}, f"the answer streamed in: {seen}"
    follow_up = ask(page, "Who developed it?")  # the conversation so far resolves "it"
    assert "JTC 1/WG 11" in follow_up.inner_text()
    assert page.get_attribute("#sn-sources .sn-sources", "data-turn") == "1"
    page.screenshot(path=str(shots / "02-follow-up.png"))

    answer = ask(page, "Who convenes JTC 1/WG 11?")
    assert "Heng Qian" in answer.inner_text()
    card = page.locator("#sn-sources .sn-source").first
    assert "ANSI" in card.inner_text()
    assert "Heng Qian" in " ".join(card.locator("mark.sn-support").all_inner_texts())
    page.screenshot(path=str(shots / "03-answer.png"))

    page.locator("#sn-chat a.sn-cite").first.click()  # an earlier answer's [1]: its sources come back
    page.wait_for_function("document.querySelector('#sn-sources .sn-sources')?.dataset.turn === '0'", timeout=WAIT)
    answer.locator("a.sn-cite").first.click()  # [1] leads to its source card
    page.wait_for_function("document.querySelector('#sn-sources .sn-sources')?.dataset.turn === '2'", timeout=WAIT)
    page.wait_for_selector("#sn-src-2-1.sn-flash", timeout=WAIT)
    card.locator("details.sn-article summary").click()
    assert "Phil Wennblom" in card.locator(".sn-article-text").inner_text()

    page.locator("#sn-chat button[aria-label='Like']").last.click()  # thumbs up, then an optional comment
    page.wait_for_selector("#sn-feedback textarea", timeout=WAIT)
    page.fill("#sn-feedback textarea", "clear and cited")
    page.locator("#sn-feedback button").click()
    page.wait_for_selector("#sn-feedback", state="hidden", timeout=WAIT)
    with sqlite3.connect(server.settings.home / "feedback.sqlite") as conn:
        rows = conn.execute("SELECT rating, comment, question FROM feedback").fetchall()
    assert (1, "clear and cited", "Who convenes JTC 1/WG 11?") in rows

    refusal = ask(page, "Who won the 2024 World Cup?")
    assert "sn-refusal" in (refusal.get_attribute("class") or "")
    assert page.locator("#sn-sources .sn-source-near").count() > 0
    page.screenshot(path=str(shots / "04-refusal.png"))

    new = tmp_path / "itu-y4903-smart-city-kpis.txt"
    new.write_text("ITU-T approves Y.4903 on smart city key performance indicators\n\n"
                   "ITU-T approved Recommendation Y.4903 on smart city KPIs on 5 March 2026. "
                   "The work was led by Jane Doe, who chairs the working party on smart city evaluation.\n")
    msg = upload(page, new, publisher="ITU", date="2026-03-05")
    assert "Added itu-y4903-smart-city-kpis" in msg, msg
    assert "itu-y4903-smart-city-kpis" in page.inner_text("#sn-table")
    assert "itu-y4903-smart-city-kpis" in page.inner_text("#sn-last-update")
    page.wait_for_function("document.querySelector('#sn-whats-new')?.innerText.includes('ITU-T approves Y.4903')",
                           timeout=WAIT)  # what's new: the uploaded bulletin's headline, date and publisher
    assert "2026-03-05 · ITU" in page.inner_text("#sn-whats-new")
    page.screenshot(path=str(shots / "05-library.png"), full_page=True)

    page.get_by_role("tab", name="Ask").click()
    answer = ask(page, "Who led the work on Y.4903?")
    assert "Jane Doe" in answer.inner_text()
    sources = page.inner_text("#sn-sources")
    assert "ITU-T approves Y.4903" in sources and "ITU · 2026-03-05" in sources
    page.screenshot(path=str(shots / "06-cited-upload.png"))
    assert page.dialogs == []


def test_bulletin_markup_is_shown_as_text(page, shots: Path, tmp_path: Path) -> None:  # noqa: ANN001
    evil = tmp_path / "quantum-toasters.txt"
    evil.write_text("Quantum toaster standard <img src=x onerror=alert(1)>\n\n"
                    "The Quantum Toaster Consortium <script>alert(1)</script> approved a standard for quantum "
                    "toasters on 2 February 2026. Its chair is <img src=x onerror=alert(2)> Mallory Example.\n")
    msg = upload(page, evil)
    assert "Added quantum-toasters" in msg, msg
    assert "<img src=x onerror=alert(1)>" in page.inner_text("#sn-table")
    page.get_by_role("tab", name="Ask").click()
    answer = ask(page, "What did the Quantum Toaster Consortium approve?")
    assert "<script>alert(1)</script>" in answer.inner_text()
    assert "<script>alert(1)</script>" in page.inner_text("#sn-sources")
    page.wait_for_timeout(500)  # give an injected handler the chance to fire
    page.screenshot(path=str(shots / "07-markup-as-text.png"))
    assert page.dialogs == []
    assert page.locator("img[src='x']").count() == 0
    injected = page.evaluate(
        "[...document.querySelectorAll('script')].filter(s => s.textContent.includes('alert(')).length")
    assert injected == 0
