"""``stdnews digest``: what updates added, grouped by standard/committee and by story (near-duplicates
merged, every source listed), each with its lead sentence and citation; text, Markdown and JSON; the
filters, the windows (--since, --last-poll after a second update) and the error lines; and the same
filters in the chat window's What's new panel (through the app's handlers and in a real browser)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import small_corpus

pytestmark = pytest.mark.timeout(900)

ENV_KEYS = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}

# One story, told by two publishers in their own words (a near-duplicate pair), naming a standard.
STORY_A = ("ISO/IEC 30145-3 published: a reference architecture for smart city ICT\n\n"
           "ISO and IEC have published ISO/IEC 30145-3, the third part of the smart city ICT reference framework,\n"
           "which sets out the engineering framework that city planners and suppliers can use to connect sensors,\n"
           "data platforms and city services. The standard was developed by JTC 1/WG 11 under the convenorship of\n"
           "Heng Qian and is now available from national standards bodies. Cities in Europe and Asia took part in\n"
           "the drafting, and the working group expects the first conformity pilots to begin later this year.\n")
STORY_B = ("# Smart city ICT reference framework part 3 is out\n\n"
           "Posted by the editors\n\n"
           "ISO and IEC have published ISO/IEC 30145-3, the third part of the smart city ICT reference framework, "
           "which sets out the engineering framework that city planners and suppliers can use to connect sensors, "
           "data platforms and city services. The standard was developed by JTC 1/WG 11 under the convenorship of "
           "Heng Qian and is now available from national standards bodies. Cities in Europe and Asia took part in "
           "the drafting, and the group expects the first conformity pilots to begin later this year.\n")
KPI = ("ITU-T Y.4903 approved for smart sustainable city indicators\n\n"
       "ITU-T Study Group 20 approved Recommendation ITU-T Y.4903 on 5 March 2026. The Recommendation defines key "
       "performance indicators for smart sustainable cities, and the work was led by Jane Doe.\n")
WORKSHOP = ("Standards workshop on accessible city services\n\n"
            "ANSI will host a one-day workshop on accessible public services in cities on 20 April 2026. Speakers "
            "from city governments and consumer groups will discuss what standards could help.\n")
BRIEF = ("ISO/IEC 30145-3 in brief\n\n"  # a third report of the same story, trimmed, in a later update
         "ISO and IEC have published ISO/IEC 30145-3, the third part of the smart city ICT reference framework, "
         "which sets out the engineering framework that city planners and suppliers can use to connect sensors, "
         "data platforms and city services. The standard was developed by JTC 1/WG 11 under the convenorship of "
         "Heng Qian.\n")
LATER = ("JTC 1/WG 11 plans its autumn plenary\n\n"
         "JTC 1/WG 11 will hold its autumn plenary in Geneva in October 2026, where experts will review new work "
         "items on smart city digital twins.\n")
CATALOG = """
["iso-30145-3-published"]
title = "ISO/IEC 30145-3 published: a reference architecture for smart city ICT"
publisher = "ISO"
date = "2026-02-10"
url = "https://example.org/iso/30145-3"

["cesi-weekly-30145"]
title = "Smart city ICT reference framework part 3 is out"
publisher = "CESI"
date = "2026-02-12"

["itu-y4903"]
publisher = "ITU"
date = "2026-03-05"
url = "https://example.org/itu/y4903"

["ansi-workshop"]
publisher = "ANSI"
date = "2026-03-20"

["sesec-brief"]
publisher = "SESEC"
date = "2026-09-02"

["jtc1-wg11-autumn"]
publisher = "ISO"
date = "2026-09-01"
url = "https://example.org/jtc1/autumn"
"""


def stdnews(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "assistant", "--home", str(home), *args], capture_output=True,
                          text=True, env={**os.environ, **ENV_KEYS}, timeout=600)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder) -> Any:  # noqa: ANN001
    """A small real index updated twice: the seed pair and four new bulletins, then one more."""
    from index.indexer import Index
    from index.settings import load_settings

    root = tmp_path_factory.mktemp("digest")
    corpus = small_corpus(root)
    for name, text in (("iso-30145-3-published", STORY_A), ("cesi-weekly-30145", STORY_B), ("itu-y4903", KPI),
                       ("ansi-workshop", WORKSHOP)):
        (corpus / f"{name}.txt").write_text(text)
    with open(corpus / "catalog.toml", "a") as fh:
        fh.write(CATALOG)
    index = Index(load_settings(home=root / "home", corpus=corpus), embedder=embedder)
    assert index.update(progress=False).ok
    before = stdnews(index.settings.home, "digest", "--format", "json")  # the first update, before the second
    (corpus / "jtc1-wg11-autumn.txt").write_text(LATER)
    (corpus / "sesec-brief.txt").write_text(BRIEF)
    assert index.update(progress=False).ok
    index.before_second = json.loads(before.stdout)
    return index


def test_groups_by_standard_and_merges_one_story_from_two_publishers(indexed) -> None:  # noqa: ANN001
    from assistant.digest import build

    d = build(indexed, since="2000-01-01")
    labels = [g.label for g in d.groups]
    assert labels[-1] == "Other news" and "ISO/IEC 30145-3" in labels and "ITU-T Y.4903" in labels
    (story,) = next(g for g in d.groups if g.label == "ISO/IEC 30145-3").stories
    assert [(s.doc_id, s.publisher) for s in story.sources] == [("iso-30145-3-published", "ISO"),
                                                                 ("cesi-weekly-30145", "CESI"),
                                                                 ("sesec-brief", "SESEC")], "first report first"
    assert story.title == "ISO/IEC 30145-3 published: a reference architecture for smart city ICT"
    assert story.lead.startswith("ISO and IEC have published ISO/IEC 30145-3, the third part")
    assert story.lead.endswith("city services.")  # one sentence, its wrapped lines joined
    assert "JTC 1/WG 11" in story.standards and story.standards[0] == "ISO/IEC 30145-3"
    docs = [s.doc_id for g in d.groups for st in g.stories for s in st.sources]
    assert docs.count("iso-30145-3-published") == docs.count("cesi-weekly-30145") == docs.count("sesec-brief") == 1
    other = d.groups[-1].stories
    assert any(s.title == "Standards workshop on accessible city services" for s in other)
    workshop = next(s for s in other if s.title.startswith("Standards workshop"))
    assert workshop.lead.startswith("ANSI will host a one-day workshop")


def test_the_newest_articles_only_and_how_many_more(indexed) -> None:  # noqa: ANN001
    """What the chat window's panel builds on every page load: the newest articles' stories and a count
    of the rest (after a 100k-chunk build, all 28,989 articles' stories took 19 s at each page load)."""
    from assistant import ui_render as ui
    from assistant.digest import build, panel_items

    every = build(indexed, since="2000-01-01")
    added = indexed.whats_new("2000-01-01")  # newest first
    two = build(indexed, since="2000-01-01", newest=2)
    assert two.left_out == len(added) - 2 > 0 and every.left_out == 0
    assert {s.doc_id for st in two.stories for s in st.sources if s.new} == {a["doc_id"] for a in added[:2]}
    html = ui.whats_new_html(panel_items(two), "2000-01-01", left_out=two.left_out)
    assert f"and {len(added) - 2} older articles not shown here" in html
    assert "older article" not in ui.whats_new_html(panel_items(every), "2000-01-01")


def test_lead_sentence_skips_headings_bylines_and_labels() -> None:
    from assistant.digest import lead_sentence

    assert lead_sentence(STORY_B, "Smart city ICT reference framework part 3 is out").startswith("ISO and IEC have")
    text = ("Title Line Here\n\nBy Jane Roe on 3 March\n\nDate: 2026-03-03\n\n"
            "The committee met twice in Geneva. Then it left.")
    assert lead_sentence(text, "Title Line Here") == "The committee met twice in Geneva."
    assert lead_sentence("Only A Heading Here\n\nAnother Heading Of Words", "Only A Heading Here") == ""


def test_text_markdown_and_json_carry_every_citation(indexed) -> None:  # noqa: ANN001
    home = indexed.settings.home
    text = stdnews(home, "digest", "--since", "2000-01-01")
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert out.startswith("Digest: ") and "== ISO/IEC 30145-3 ==" in out and "== Other news ==" in out
    assert ('ISO, 2026-02-10, "ISO/IEC 30145-3 published: a reference architecture for smart city ICT"'
            " [iso-30145-3-published] https://example.org/iso/30145-3") in out
    assert 'CESI, 2026-02-12, "Smart city ICT reference framework part 3 is out" [cesi-weekly-30145]' in out

    md = stdnews(home, "digest", "--since", "2000-01-01", "--format", "md")
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("# Digest: ") and "## ISO/IEC 30145-3" in md.stdout
    assert ("- [ISO/IEC 30145-3 published: a reference architecture for smart city ICT]"
            "(https://example.org/iso/30145-3): ISO, 2026-02-10, `iso-30145-3-published`") in md.stdout
    assert "> ISO and IEC have published ISO/IEC 30145-3" in md.stdout

    js = stdnews(home, "digest", "--since", "2000-01-01", "--format", "json")
    assert js.returncode == 0, js.stderr
    obj = json.loads(js.stdout)
    group = next(g for g in obj["groups"] if g["label"] == "ISO/IEC 30145-3")
    assert group["kind"] == "standard" and len(group["stories"]) == 1
    sources = group["stories"][0]["sources"]
    assert {s["doc_id"] for s in sources} == {"iso-30145-3-published", "cesi-weekly-30145", "sesec-brief"}
    assert set(sources[0]) >= {"doc_id", "title", "publisher", "date", "url"}
    assert next(s for s in sources if s["doc_id"] == "iso-30145-3-published")["url"] == "https://example.org/iso/30145-3"
    assert obj["stories"] == sum(len(g["stories"]) for g in obj["groups"])


def test_filters_by_standard_any_spelling_and_by_organisation(indexed) -> None:  # noqa: ANN001
    home = indexed.settings.home
    out = json.loads(stdnews(home, "digest", "--since", "2000-01-01", "--standard", "ISO IEC 30145",
                             "--format", "json").stdout)
    assert [g["label"] for g in out["groups"]] == ["ISO/IEC 30145-3"], "a part falls under its standard"
    out = json.loads(stdnews(home, "digest", "--since", "2000-01-01", "--standard", "Y.4903", "--standard",
                             "JTC1/WG11", "--format", "json").stdout)
    labels = [g["label"] for g in out["groups"]]
    assert labels == ["ITU-T Y.4903", "JTC 1/WG 11"], labels  # in the order watched; each story once
    assert {s["title"] for s in out["groups"][1]["stories"]} >= {"JTC 1/WG 11 plans its autumn plenary"}
    out = json.loads(stdnews(home, "digest", "--since", "2000-01-01", "--org", "ansi", "--format", "json").stdout)
    titles = [s["title"] for g in out["groups"] for s in g["stories"]]
    assert "Standards workshop on accessible city services" in titles and not any("Y.4903" in t for t in titles)
    out = json.loads(stdnews(home, "digest", "--since", "2000-01-01", "--org", "ITU", "--standard", "ISO/IEC 30145",
                             "--format", "json").stdout)
    assert out["groups"] == [], "both filters must hold"
    empty = stdnews(home, "digest", "--since", "2000-01-01", "--standard", "ISO 37120")
    assert empty.returncode == 0
    assert empty.stdout.strip().splitlines() == [
        "nothing new about ISO 37120 since 2000-01-01 (no indexed bulletin names ISO 37120 yet)"]


def test_since_and_last_poll_after_a_second_update(indexed) -> None:  # noqa: ANN001
    home = indexed.settings.home
    first = indexed.before_second
    titles = {s["title"] for g in first["groups"] for s in g["stories"]}
    assert "ITU-T Y.4903 approved for smart sustainable city indicators" in titles
    last = json.loads(stdnews(home, "digest", "--last-poll", "--format", "json").stdout)
    assert [(g["label"], [s["title"] for s in g["stories"]]) for g in last["groups"]] == [
        ("ISO/IEC 30145-3", ["ISO/IEC 30145-3 in brief"]), ("JTC 1/WG 11", ["JTC 1/WG 11 plans its autumn plenary"])]
    assert last["last_update_at"] and last["articles"] == 2
    brief = last["groups"][0]["stories"][0]
    assert [(s["doc_id"], s["new"]) for s in brief["sources"]] == [  # the earlier reports listed too
        ("sesec-brief", True), ("cesi-weekly-30145", False), ("iso-30145-3-published", False)]
    assert json.loads(stdnews(home, "digest", "--format", "json").stdout)["groups"] == last["groups"], "the default"
    text = stdnews(home, "digest", "--last-poll").stdout
    assert "in the last update that added anything" in text and "autumn plenary" in text and "Y.4903" not in text
    assert '"ISO/IEC 30145-3 published: a reference architecture for smart city ICT" [iso-30145-3-published]' \
           " https://example.org/iso/30145-3 (reported earlier)" in text
    today = datetime.now().strftime("%Y-%m-%d")
    since = json.loads(stdnews(home, "digest", "--since", today, "--format", "json").stdout)
    assert len({s["title"] for g in since["groups"] for s in g["stories"]}) > 1
    assert stdnews(home, "digest", "--since", "2999-01-01").stdout.strip() == "nothing new since 2999-01-01"


@pytest.mark.parametrize(("args", "says"), [
    (["--since", "last week"], "error: --since 'last week' is not a date; use YYYY-MM-DD"),
    (["--since", "2026-02-30"], "error: --since '2026-02-30' is not a date; use YYYY-MM-DD"),
    (["--standard", "smart things"], "error: --standard 'smart things' is not a standard or committee I recognise"),
    (["--org", "Acme Standards Club"], "error: organisation 'Acme Standards Club' is not one I recognise"),
])
def test_bad_input_is_one_line_and_exit_2(indexed, args: list[str], says: str) -> None:  # noqa: ANN001
    out = stdnews(indexed.settings.home, "digest", *args)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith(says), out.stderr


def test_an_index_nothing_was_added_to_says_so(tmp_path: Path) -> None:
    for fmt in ("text", "md"):
        out = stdnews(tmp_path / "empty-home", "digest", "--format", fmt)
        assert out.returncode == 0, out.stderr
        assert out.stdout == "nothing new: no update has added articles yet (or they have been removed since)\n"
    out = stdnews(tmp_path / "empty-home", "digest", "--format", "json")
    assert json.loads(out.stdout)["groups"] == []


def test_since_and_last_poll_exclude_each_other(indexed) -> None:  # noqa: ANN001
    out = stdnews(indexed.settings.home, "digest", "--since", "2026-01-01", "--last-poll")
    assert out.returncode == 2 and "not allowed with argument" in out.stderr and "Traceback" not in out.stderr


# The chat window's What's new panel: the same filters ------------------------------------------
@pytest.fixture(scope="module")
def served(indexed) -> Iterator[Any]:  # noqa: ANN001
    """The chat window over the digest index, on loopback."""
    from assistant.app import build_app, launch
    from assistant.pipeline import Assistant
    from tests.servers import free_port

    bot = Assistant(indexed.settings, index=indexed)
    demo = build_app(bot)
    url = launch(demo, "127.0.0.1", free_port())
    try:
        yield url
    finally:
        demo.close()


def test_whats_new_panel_filters_through_the_app(served: str) -> None:
    from gradio_client import Client

    client = Client(served, verbose=False)
    last = client.predict("", [], [], api_name="/whats_new")  # the last update: two stories
    assert "Added by the last update" in last and "JTC 1/WG 11 plans its autumn plenary" in last
    assert "ISO/IEC 30145-3 in brief" in last
    assert "also reported by CESI · 2026-02-12 (<code>cesi-weekly-30145</code>, earlier)" in last
    everything = client.predict("2000-01-01", [], [], api_name="/whats_new")
    assert everything.count("<code>cesi-weekly-30145</code>") == 1, "one story, once"
    assert "ISO/IEC 30145-3 published" in everything and "also reported by CESI · 2026-02-12" in everything
    about = client.predict("2000-01-01", ["ISO IEC 30145"], [], api_name="/whats_new")
    assert "Added since 2000-01-01 about ISO IEC 30145" in about and "1 story" in about
    assert "ISO/IEC 30145-3 published" in about and "Y.4903" not in about and "workshop" not in about
    by_org = client.predict("2000-01-01", [], ["ANSI"], api_name="/whats_new")
    assert "Standards workshop on accessible city services" in by_org and "Y.4903" not in by_org
    none = client.predict("", ["ITU-T Y.4903"], [], api_name="/whats_new")
    assert "The last update added nothing about ITU-T Y.4903." in none
    bad = client.predict("", ["smart things"], [], api_name="/whats_new")
    assert "sn-bad" in bad and "Standards &amp; committees: &#x27;smart things&#x27; is not a standard" in bad
    assert "is not one I recognise" in client.predict("", [], ["Acme Club"], api_name="/whats_new")
    assert "Added since &#x27;soon&#x27; is not a date; use YYYY-MM-DD" in client.predict("soon", [], [],
                                                                                          api_name="/whats_new")
    library = client.predict(api_name="/library")  # the load event fills the panel's own filter lists
    assert "ISO/IEC 30145-3" in [value for _, value in library[11]["choices"]]
    assert "ANSI" in [value for _, value in library[12]["choices"]]


@pytest.mark.slow
def test_whats_new_panel_filters_in_the_browser(served: str) -> None:
    from playwright.sync_api import sync_playwright

    from tests.conftest import ARGS, CHROMIUM
    from tests.test_browser import WAIT

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(served)
            page.get_by_role("tab", name="Library").click()
            panel = "#sn-whats-new"
            page.wait_for_function(f"document.querySelector('{panel}')?.innerText.includes('autumn plenary')",
                                   timeout=WAIT)
            assert "ISO/IEC 30145-3 in brief" in page.inner_text(panel)
            page.fill("#sn-added-since input", "2000-01-01")
            page.click("#sn-show-new")
            page.wait_for_function(f"document.querySelector('{panel}')?.innerText.includes('Added since 2000-01-01')",
                                   timeout=WAIT)
            assert "Standards workshop on accessible city services" in page.inner_text(panel)
            page.click("#sn-new-standards input")
            page.keyboard.type("ISO/IEC 30145-3")
            page.keyboard.press("Enter")
            page.wait_for_function(f"document.querySelector('{panel}')?.innerText.includes('about ISO/IEC 30145-3')",
                                   timeout=WAIT)
            text = page.inner_text(panel)
            assert "ISO/IEC 30145-3 published" in text and "workshop" not in text and "Y.4903" not in text
            assert "also reported by CESI" in text
        finally:
            browser.close()
