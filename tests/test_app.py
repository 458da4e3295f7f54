"""The chat window as a real server on loopback, asked through ``gradio_client``;
plus its HTML rendering, feedback store and the ``serve`` entry point."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.app_server import Server, chat_server

pytestmark = pytest.mark.timeout(600)

Y4903 = ("ITU-T approves Y.4903 on smart city key performance indicators\n\n"
         "ITU-T Study Group 20 approved Recommendation ITU-T Y.4903 on 5 March 2026. The Recommendation defines key "
         "performance indicators for smart sustainable cities. The work was led by Jane Doe, who chairs the working "
         "party on smart city evaluation.\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Server]:  # noqa: ANN001
    with chat_server(tmp_path_factory.mktemp("app"), embedder) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: Server):  # noqa: ANN201
    from gradio_client import Client

    return Client(server.url, verbose=False)


def test_ask_endpoint_answers_with_citations(client, server: Server) -> None:  # noqa: ANN001
    r = client.predict("Who convenes JTC 1/WG 11?", api_name="/ask")
    assert not r["refused"]
    assert "Heng Qian" in r["answer"]
    assert "[1]" in r["answer"]
    assert r["citations"] and r["citations"][0]["doc_id"] == "jtc1-smart-cities-webconference"
    assert r["citations"][0]["publisher"] == "ANSI"
    assert r["index_version"] == server.app.index.fingerprint()


def test_chat_endpoint_streams_then_links_markers_to_sources(client) -> None:  # noqa: ANN001
    job = client.submit("Who convenes JTC 1/WG 11?", api_name="/chat")
    updates = list(job)
    assert len(updates) >= 2, "a pending message first, then the answer"
    first_chat = updates[0][0]
    assert "Searching the bulletins" in _text(first_chat[-1])
    assert updates[0][2] == "", "the question box is cleared at once"
    chat, sources, _ = job.outputs()[-1]
    answer = _text(chat[-1])
    assert "Heng Qian" in answer
    assert 'class="sn-cite" href="#sn-src-0-1"' in answer
    assert 'id="sn-src-0-1"' in sources
    assert '<mark class="sn-support">JTC 1/WG 11 convenor Heng Qian' in sources
    assert "ANSI" in sources and "Open the whole article" in sources


def test_refusal_looks_different_and_keeps_nearest_passages(client) -> None:  # noqa: ANN001
    r = client.predict("Who won the 2024 World Cup?", api_name="/ask")
    assert r["refused"] and not r["citations"] and r["passages"]
    job = client.submit("Who won the 2024 World Cup?", api_name="/chat")
    chat, sources, _ = job.result()
    assert 'class="sn-refusal"' in _text(chat[-1])
    assert "sn-cite" not in _text(chat[-1])
    assert "Nearest passages" in sources and "sn-source-near" in sources


def test_filters_narrow_retrieval_and_bad_dates_are_refused(client) -> None:  # noqa: ANN001
    from gradio_client.exceptions import AppError

    r = client.predict("What did SAC publish?", publisher="SESEC", api_name="/ask")
    assert r["passages"] and {p["doc_id"] for p in r["passages"]} == {"china-standardisation-news-2020"}
    r = client.predict("smart cities", bulletins=["iec-smart-cities"], api_name="/ask")
    assert {p["doc_id"] for p in r["passages"]} == {"iec-smart-cities"}
    with pytest.raises(AppError):
        client.predict("smart cities", since="last week", api_name="/ask")


def test_as_of_leaves_later_bulletins_out_and_a_bad_one_is_one_message(client, server: Server) -> None:  # noqa: ANN001
    import gradio as gr
    from gradio_client.exceptions import AppError

    from assistant.app import ChatApp
    from assistant.feedback import FeedbackStore, feedback_path

    question = "When was ISO/IEC 30145-3 published?"
    later = "china-standardisation-news-2020"  # dated 2020-10-19; the one bulletin that gives the date
    r = client.predict(question, as_of="2020-12-31", api_name="/ask")
    assert r["citations"] and r["citations"][0]["doc_id"] == later, r["citations"]
    assert "7 August 2020" in r["answer"]
    r = client.predict(question, as_of="2020-01-01", api_name="/ask")
    assert all(c["doc_id"] != later for c in r["citations"]), r["citations"]
    assert all(p["doc_id"] != later for p in r["passages"]), "a bulletin dated after as_of is not evidence"
    assert "7 August 2020" not in r["answer"]
    chat, sources, _ = client.submit(question, as_of="2020-01-01", api_name="/chat").result()
    assert "7 August 2020" not in _text(chat[-1]) and later not in sources

    with pytest.raises(AppError, match=r"^As of '2021-02-30' is not a date; use YYYY-MM-DD") as raised:
        client.predict(question, as_of="2021-02-30", api_name="/ask")
    assert "Traceback" not in str(raised.value) and "UserError" not in str(raised.value)
    app = ChatApp(server.app, FeedbackStore(feedback_path(server.settings)))
    with pytest.warns(UserWarning, match=r"^As of 'yesterday' is not a date; use YYYY-MM-DD"):
        out = list(app.respond(question, [], [], "", "", "", [], 5, None, None, "yesterday"))
    assert out == [(gr.skip(),) * 5], "the chat is left as it was"


def _carry(server: Server, chunk_ids: list[str], column: str, value: str) -> bool:
    rows = server.app.index.db.get_chunks(chunk_ids)
    return len(rows) == len(chunk_ids) and all(f"|{value}|" in rows[c].get(column, "") for c in chunk_ids)


def test_standards_and_org_facets_restrict_cited_passages(client, server: Server) -> None:  # noqa: ANN001
    from gradio_client.exceptions import AppError

    question = "What are the smart city frameworks?"
    unfiltered = client.predict(question, api_name="/ask")
    assert not _carry(server, [p["chunk_id"] for p in unfiltered["passages"]], "std_keys", "30145-3")
    for spelling in ("ISO/IEC 30145-3", "ISO IEC 30145 part 3"):
        r = client.predict(question, standards=[spelling], api_name="/ask")
        assert not r["refused"] and r["citations"], r
        assert _carry(server, [c["chunk_id"] for c in r["citations"]], "std_keys", "30145-3"), r["citations"]
        assert _carry(server, [p["chunk_id"] for p in r["passages"]], "std_keys", "30145-3")
        assert "Smart City Engineering Framework" in r["answer"]
    r = client.predict("smart cities", orgs=["cesi"], api_name="/ask")  # any case: stored as CESI
    assert r["passages"] and _carry(server, [p["chunk_id"] for p in r["passages"]], "orgs", "CESI")
    with pytest.raises(AppError):
        client.predict("smart cities", standards=["not a standard"], api_name="/ask")
    with pytest.raises(AppError):
        client.predict("smart cities", orgs=["Acme Standards Club"], api_name="/ask")

    chat, sources, _ = client.submit(question, standards=["ISO/IEC 30145-3"], api_name="/chat").result()
    assert "Smart City Engineering Framework" in _text(chat[-1])
    assert sources.count('class="sn-source"') == 1  # the one passage that names it


def test_facet_lists_come_from_the_index(client) -> None:  # noqa: ANN001
    library = client.predict(api_name="/library")
    standards = [value for _, value in library[6]["choices"]]
    orgs = {value: label for label, value in library[7]["choices"]}
    assert {"ISO/IEC 30145-3", "JTC 1/WG 11", "GB/T 35273", "SAC/TC 28"} <= set(standards)
    assert "30145-3" not in standards, "one entry per standard, in its labelled spelling"
    assert "TC 28" not in standards, "a plain TC that always comes as SAC/TC 28 is left out"
    assert {"ISO", "IEC", "ITU", "SAC", "CESI", "ANSI", "CEN-CENELEC"} <= set(orgs)
    assert orgs["CESI"] == "CESI (5)", "the label counts the passages"


def test_history_feeds_follow_up_questions(client) -> None:  # noqa: ANN001
    first = client.predict("Who convenes JTC 1/WG 11?", api_name="/ask")
    r = client.predict("How many experts does it have?", history=[["Who convenes JTC 1/WG 11?", first["answer"]]],
                       api_name="/ask")
    assert "WG 11" in r["query"], r["query"]  # the follow-up was resolved against the earlier turn
    assert any(p["doc_id"] == "jtc1-smart-cities-webconference" for p in r["passages"]), r


def _app_error(client, capfd: pytest.CaptureFixture[str], *args: object, **kwargs: object) -> str:  # noqa: ANN001
    """The one-line message of an ``/ask`` call that must fail; the server (this process) logs no traceback."""
    from gradio_client.exceptions import AppError

    capfd.readouterr()
    with pytest.raises(AppError) as raised:
        client.predict(*args, api_name="/ask", **kwargs)
    message = str(raised.value)
    logged = capfd.readouterr()
    assert "Traceback" not in logged.err + logged.out, logged.err[-2000:]
    assert "\n" not in message and "Traceback" not in message and "Error:" not in message, message
    return message


def test_api_bounds_question_k_and_history(client, capfd: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    long = "What is ISO/IEC 30145? " * 100  # 2,300 characters
    assert _app_error(client, capfd, long) == (
        "The question is 2,300 characters long; the limit is 2,000: ask a shorter one.")
    assert client.predict(long[:1999] + "?", api_name="/ask")["answer"], "2,000 characters are asked"
    assert _app_error(client, capfd, None) == "The question must be text."
    assert _app_error(client, capfd, "Who convenes JTC 1/WG 11?", k=-5) == (
        "The number of passages must be a whole number from 1 to 50 (got -5).")
    assert "from 1 to 50 (got 51)" in _app_error(client, capfd, "Who convenes JTC 1/WG 11?", k=51)
    assert len(client.predict("smart cities", k=50, api_name="/ask")["passages"]) <= 50
    pair = ["Who convenes JTC 1/WG 11?", "Heng Qian [1]."]
    assert _app_error(client, capfd, "How many experts?", history=[["a"]]) == (
        "The history must be a list of [question, answer] pairs of text.")
    assert _app_error(client, capfd, "How many experts?", history="not a list") == (
        "The history must be a list of [question, answer] pairs of text.")
    assert _app_error(client, capfd, "How many experts?", history=[pair] * 21) == (
        "The history holds 21 turns; the limit is 20: start a new conversation.")
    assert _app_error(client, capfd, "How many experts?", history=[[pair[0], "x" * 2001]]) == (
        "An earlier turn is 2,001 characters long; the limit is 2,000: start a new conversation.")
    r = client.predict("How many experts does it have?", history=[pair] * 20, api_name="/ask")
    assert "WG 11" in r["query"]


def test_api_errors_name_the_window_fields_not_cli_flags(client, capfd: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    assert _app_error(client, capfd, "smart cities", since="last week") == (
        "From date 'last week' is not a date; use YYYY-MM-DD")
    assert _app_error(client, capfd, "smart cities", since="2021-13-45") == (
        "From date '2021-13-45' is not a date; use YYYY-MM-DD")
    assert _app_error(client, capfd, "smart cities", until="2021-02-30") == (
        "To date '2021-02-30' is not a date; use YYYY-MM-DD")
    assert _app_error(client, capfd, "smart cities", as_of="2021-02-30").startswith(
        "As of '2021-02-30' is not a date")
    assert _app_error(client, capfd, "smart cities", standards=["not a standard"]).startswith(
        "Standards & committees: 'not a standard' is not a standard")
    for message in (_app_error(client, capfd, "smart cities", since="2021-13"),
                    _app_error(client, capfd, "smart cities", until="2021-00")):
        assert "--" not in message and "is not a date" in message
    r = client.predict("smart cities", since="2020", until="2020-02", api_name="/ask")
    assert all(p["doc_id"] for p in r["passages"])  # real partial dates still filter


def test_chat_warnings_are_text_and_bounds_hold_in_the_chat(server: Server) -> None:
    import gradio as gr

    from assistant.app import ChatApp
    from assistant.feedback import FeedbackStore, feedback_path

    app = ChatApp(server.app, FeedbackStore(feedback_path(server.settings)))
    with pytest.warns(UserWarning) as warned:
        out = list(app.respond("smart cities", [], [], "<b>x</b>", "", "", [], 5))
    assert out == [(gr.skip(),) * 5]
    (message,) = [str(w.message) for w in warned]
    assert message == "From date '&lt;b&gt;x&lt;/b&gt;' is not a date; use YYYY-MM-DD", "rendered as text"
    with pytest.warns(UserWarning, match=r"^The question is 2,001 characters long; the limit is 2,000"):
        out = list(app.respond("x" * 2001, [], [], "", "", "", [], 5))
    assert out == [(gr.skip(),) * 5], "the chat is left as it was"
    long_answer = {"question": "Who convenes JTC 1/WG 11?", "answer": "Heng Qian. " * 400}  # an LLM's long answer
    *_, last = app.respond("How many experts does it have?", [], [long_answer], "", "", "", [], 5)
    assert "Something went wrong" not in _text(last[0][-1]), "the chat's own long answers stay usable history"


def test_uploads_are_bounded_and_kept_in_the_data_directory(tmp_path: Path) -> None:
    import httpx

    from index.load import MAX_BYTES
    from tests.app_server import chat_process, seed_home

    home, corpus = seed_home(tmp_path)
    stale = home / "uploads" / "999999999"  # left by a server that was killed: no such process
    stale.mkdir(parents=True)
    (stale / "old.txt").write_text("left behind")
    with chat_process(tmp_path, home, corpus) as srv:  # a real `stdnews chat`
        assert not stale.exists(), "cleaned on start"
        ok = httpx.post(f"{srv.url}/gradio_api/upload", files={"files": ("a.txt", b"hello")}, timeout=60)
        assert ok.status_code == 200, ok.text
        (path,) = ok.json()
        assert Path(path).resolve().is_relative_to((home / "uploads" / str(srv.pid)).resolve()), path
        big = httpx.post(f"{srv.url}/gradio_api/upload", files={"files": ("big.txt", b"x" * (MAX_BYTES + 1))},
                         timeout=60)
        assert big.status_code == 413, (big.status_code, big.text[:200])
    assert not Path(path).exists() and not any((home / "uploads").iterdir()), "cleaned on stop"


def test_library_add_answer_remove(client, server: Server, tmp_path: Path) -> None:  # noqa: ANN001
    from gradio_client import handle_file

    src = tmp_path / "itu-y4903-smart-city-kpis.txt"
    src.write_text(Y4903)
    out = client.predict([handle_file(str(src))], "ITU", "2026-03-05", "", api_name="/add_bulletins")
    assert "Added itu-y4903-smart-city-kpis" in out[0]
    assert (server.settings.corpus / src.name).is_file()
    library = client.predict(api_name="/library")
    assert "<code>itu-y4903-smart-city-kpis</code>" in library[3]
    assert "Last add" in library[4] and "itu-y4903-smart-city-kpis" in library[4]
    assert "ITU-T Y.4903" in [value for _, value in library[6]["choices"]], "the new standard is a filter choice"
    assert "ITU-T approves Y.4903" in library[8]  # what's new: the last update's articles
    new = client.predict("", api_name="/whats_new")
    assert "Added by the last update" in new and "ITU-T approves Y.4903" in new
    assert "2026-03-05 · ITU · <code>itu-y4903-smart-city-kpis</code>" in new  # date, publisher, lead sentence
    assert "ITU-T Study Group 20 approved Recommendation ITU-T Y.4903 on 5 March 2026." in new
    today = datetime.now().strftime("%Y-%m-%d")
    since = client.predict(today, api_name="/whats_new")
    assert f"Added since {today}" in since and "ITU-T approves Y.4903" in since
    assert "Nothing was added" in client.predict("2999-01-01", api_name="/whats_new")
    assert "not a date" in client.predict("last week", api_name="/whats_new")

    r = client.predict("Who led the work on Y.4903?", api_name="/ask")
    assert not r["refused"], r
    cited = r["citations"][0]
    assert (cited["doc_id"], cited["publisher"], cited["date"]) == ("itu-y4903-smart-city-kpis", "ITU", "2026-03-05")
    assert "Jane Doe" in cited["text"]

    out = client.predict("itu-y4903-smart-city-kpis", api_name="/remove_bulletin")
    assert "Removed itu-y4903-smart-city-kpis" in out[0]
    assert not (server.settings.corpus / src.name).exists()
    r = client.predict("Who led the work on Y.4903?", api_name="/ask")
    assert all(p["doc_id"] != "itu-y4903-smart-city-kpis" for p in r["passages"])
    assert "Jane Doe" not in r["answer"]
    library = out[1:]  # the message, then the refreshed outputs (the confirm row is layout, not data)
    assert "ITU-T Y.4903" not in [value for _, value in library[6]["choices"]]
    assert "ITU-T approves Y.4903" not in library[8] and "ITU-T approves Y.4903" not in client.predict(
        today, api_name="/whats_new")


def test_same_story_in_two_bulletins_is_grouped(client, server: Server, tmp_path: Path) -> None:  # noqa: ANN001
    from gradio_client import handle_file

    original = (server.settings.corpus / "smart-cities-joint-task-force.txt").read_text()
    copy = tmp_path / "task-force-reprint.txt"  # reprinted by another publisher, a sentence trimmed
    copy.write_text("Joint Smart Cities Task Force launched by ITU, ISO and IEC\n\n"
                    + original.split("\n", 1)[1].replace("COVID-19", "pandemic"))
    out = client.predict([handle_file(str(copy))], "Example Weekly", "2020-10-20", "", api_name="/add_bulletins")
    try:
        assert "Added task-force-reprint" in out[0], out[0]
        dups = out[5 + 10]  # message, four form fields, then the refreshed outputs
        assert "same story reported by" in dups
        assert "<code>smart-cities-joint-task-force</code>" in dups and "<code>task-force-reprint</code>" in dups
        assert "Example Weekly · 2020-10-20" in dups
    finally:
        out = client.predict("task-force-reprint", api_name="/remove_bulletin")
    assert "No story appears in more than one bulletin" in out[1 + 10]


def test_library_refuses_bad_uploads_and_keeps_the_index(client, server: Server, tmp_path: Path) -> None:  # noqa: ANN001
    from gradio_client import handle_file

    before = server.app.index.fingerprint()
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n")
    out = client.predict([handle_file(str(empty))], "", "", "", api_name="/add_bulletins")
    assert "Could not add empty.txt" in out[0] and "sn-bad" in out[0]
    out = client.predict([handle_file(str(empty))], "", "yesterday", "", api_name="/add_bulletins")
    assert "not a date" in out[0]
    out = client.predict("no-such-bulletin", api_name="/remove_bulletin")  # checked against the index
    assert "no bulletin &#x27;no-such-bulletin&#x27;" in out[0] and "sn-bad" in out[0]
    assert server.app.index.fingerprint() == before


def test_feedback_is_stored_and_exported(server: Server, tmp_path: Path) -> None:
    import gradio as gr

    from assistant.app import ChatApp
    from assistant.feedback import FeedbackStore, export_jsonl, feedback_path

    app = ChatApp(server.app, FeedbackStore(feedback_path(server.settings)))
    *_, last = app.respond("Who convenes JTC 1/WG 11?", [], [], "", "", "", [], 5)
    turns = last[2]
    turns, fid, _box, _comment = app.rate(turns, gr.LikeData(None, {"index": 1, "value": "", "liked": True}))
    app.comment(fid, "exactly what I needed")
    turns, fid2, *_ = app.rate(turns, gr.LikeData(None, {"index": 1, "value": "", "liked": False}))
    assert fid2 == fid, "changing the rating updates the same record"

    out = tmp_path / "feedback.jsonl"
    assert export_jsonl(server.settings, out) >= 1
    rec = [json.loads(line) for line in out.read_text().splitlines()][-1]
    assert rec["rating"] == -1 and rec["comment"] == "exactly what I needed"
    assert rec["question"] == "Who convenes JTC 1/WG 11?" and "Heng Qian" in rec["answer"]
    assert rec["citations"][0]["doc_id"] == "jtc1-smart-cities-webconference"
    assert rec["index_version"] == server.app.index.fingerprint()
    with sqlite3.connect(server.settings.home / "feedback.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] >= 1


def test_feedback_export_cli(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    assert main(["feedback", "export", "--home", str(server.settings.home)]) == 0
    out, err = capsys.readouterr()
    assert "exported" in err
    assert all(json.loads(line)["index_version"] for line in out.splitlines())


def test_serve_warns_beyond_loopback_without_auth(monkeypatch: pytest.MonkeyPatch, seed_assistant,  # noqa: ANN001
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import assistant.app as app_mod
    from index.errors import UserError

    launched: list[tuple] = []
    monkeypatch.setattr(app_mod, "Assistant", lambda settings: seed_assistant)
    demo = type("Demo", (), {"block_thread": lambda self: None, "close": lambda self, verbose=True: None})()
    monkeypatch.setattr(app_mod, "build_app", lambda bot: demo)  # nothing written to the shared seed home
    monkeypatch.setattr(app_mod, "launch", lambda demo, host, port, auth: launched.append((host, port, auth)))
    settings = seed_assistant.settings
    assert app_mod.serve(settings, host="0.0.0.0", port=7999, watch=False) == 0  # no watcher on the shared home
    assert "warning" in capsys.readouterr().err
    assert app_mod.serve(settings.model_copy(update={"auth": "ann:pw"}), host="0.0.0.0", port=7999, watch=False) == 0
    assert "warning" not in capsys.readouterr().err
    assert app_mod.serve(settings, host="127.0.0.1", port=7999, watch=False) == 0
    assert "warning" not in capsys.readouterr().err
    assert launched == [("0.0.0.0", 7999, None), ("0.0.0.0", 7999, ("ann", "pw")), ("127.0.0.1", 7999, None)]
    with pytest.raises(UserError):
        app_mod.serve(settings.model_copy(update={"auth": "no-colon"}))


def test_rendering_escapes_bulletin_text() -> None:
    from assistant import ui_render as ui
    from assistant.pipeline import AskResult
    from assistant.retrieve import Passage

    evil = "<script>alert(1)</script> and <img src=x onerror=alert(1)>"
    p = Passage(rank=1, chunk_id="c", doc_id="d<b>", title=evil, bulletin_title=evil, publisher=evil, date="2026",
                text=f"Intro. {evil} was said. End.", start=0, end=10, score=1.0)
    r = AskResult(question=evil, answer=f"{evil} [1].", refused=False, citations=[p], quotes=[[f"{evil} was said."]],
                  passages=[p], timings_ms={"retrieval": 1.0, "answer": 2.0}, notes=[evil])
    bulletin = {"text": evil * 3, "articles": [{"title": evil, "start": 0, "end": 30}]}
    html = ui.answer_html(r, 0) + ui.sources_html(r, 0, lambda _: bulletin, "v") + ui.user_html(evil)
    html += ui.last_update_html({"at": 0, "kind": "add", "added_docs": [evil], "failed": [(evil, evil)],
                                 "new_articles": [{"title": evil, "lead": evil, "date": evil}]})
    new = [{"doc_id": evil, "title": evil, "date": evil, "publisher": evil, "lead": evil, "added_at": 0}]
    html += ui.whats_new_html(new * 10) + ui.whats_new_html(new, since=evil) + ui.whats_new_html([], since=evil)
    html += ui.duplicates_html([[{"doc_id": evil, "article": 0, "title": evil, "date": evil, "publisher": evil},
                                 {"doc_id": "x", "article": 1, "title": "other", "date": None, "publisher": None}]])
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and '<mark class="sn-support">&lt;script&gt;' in html
    refused = AskResult(question="q", answer=evil, refused=True, citations=[], quotes=[], passages=[p],
                        timings_ms={})
    assert "<script" not in ui.answer_html(refused, 1) + ui.sources_html(refused, 1, lambda _: None)


def _text(message: dict) -> str:
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def test_org_names_as_users_type_them() -> None:
    from assistant.facets import normalise_orgs
    from index.errors import UserError

    assert normalise_orgs(["iso", " IEC ", "International Telecommunication Union", "cen-cenelec", ""]) == [
        "ISO", "IEC", "ITU", "CEN-CENELEC"]
    assert normalise_orgs(["un-habitat"], known=["UN-Habitat"]) == ["UN-Habitat"]
    with pytest.raises(UserError, match="not one I recognise"):
        normalise_orgs(["Acme Standards Club"])


def test_catalog_entries_for_uploads(tmp_path: Path) -> None:
    import tomllib

    from assistant.library import catalog_entries

    (tmp_path / "catalog.toml").write_text('# kept\n["old"]\ntitle = "Old"\n')
    notes = catalog_entries(tmp_path, ["new one", "old"], {"title": 'A "quoted" \\ title\x07', "publisher": "ITU",
                                                           "date": ""})
    assert notes and "old" in notes[0]
    text = (tmp_path / "catalog.toml").read_text()
    assert text.startswith("# kept\n")
    data = tomllib.loads(text)
    assert data["old"] == {"title": "Old"}
    assert data["new one"] == {"title": 'A "quoted" \\ title', "publisher": "ITU"}
    assert catalog_entries(tmp_path, ["x"], {"title": "", "publisher": " ", "date": ""}) == []


KPI_NEWS = ("ITU-T consents Y.4904 on city data maturity\n\n"
            "ITU-T Study Group 20 consented Recommendation ITU-T Y.4904 on city data maturity. "
            "The editor is Ola Berg.\n")


def test_upload_with_a_taken_name_is_refused_until_replace_is_ticked(client, server: Server,  # noqa: ANN001
                                                                     tmp_path: Path) -> None:
    from gradio_client import handle_file

    first = tmp_path / "one" / "kpi-news.txt"
    first.parent.mkdir()
    first.write_text(Y4903)
    out = client.predict([handle_file(str(first))], "ITU", "2026-03-05", "", False, api_name="/add_bulletins")
    assert "Added kpi-news" in out[0], out[0]
    try:
        second = tmp_path / "two" / "kpi-news.md"  # the same doc_id under another extension
        second.parent.mkdir()
        second.write_text(KPI_NEWS)
        out = client.predict([handle_file(str(second))], "Example Weekly", "2026-04-01", "", False,
                             api_name="/add_bulletins")
        assert "Could not add kpi-news.md" in out[0] and "sn-bad" in out[0], out[0]
        assert "Added" not in out[0]
        assert "Replace existing bulletins with the same name" in out[0], "the message says how to replace"
        assert sorted(p.name for p in server.settings.corpus.glob("kpi-news*")) == ["kpi-news.txt"]
        r = client.predict("Who led the work on Y.4903?", api_name="/ask")
        assert r["citations"] and r["citations"][0]["doc_id"] == "kpi-news", r["citations"]

        out = client.predict([handle_file(str(second))], "Example Weekly", "2026-04-01", "", True,
                             api_name="/add_bulletins")
        assert "kpi-news" in out[0] and "sn-ok" in out[0] and "failed" not in out[0], out[0]
        assert sorted(p.name for p in server.settings.corpus.glob("kpi-news*")) == ["kpi-news.md"]
        (backup,) = (server.settings.home / "backups").glob("kpi-news-*.txt")
        assert backup.read_text() == Y4903
        r = client.predict("Who is the editor of Y.4904?", api_name="/ask")
        cited = r["citations"][0]
        assert (cited["doc_id"], cited["publisher"], cited["date"]) == ("kpi-news", "Example Weekly", "2026-04-01")
    finally:
        client.predict("kpi-news", api_name="/remove_bulletin")


def test_bulletins_added_after_start_can_be_filtered_and_removed(server: Server, tmp_path: Path) -> None:
    from gradio_client import Client

    src = tmp_path / "late-arrival.txt"  # as a watcher or 'stdnews index add' would add it
    src.write_text(KPI_NEWS)
    assert server.app.index.add([src], progress=False).added_docs == ["late-arrival"]
    fresh = Client(server.url, verbose=False)  # a session that never asked for /library
    chat, sources, _ = fresh.submit("Who is the editor of Y.4904?", bulletins=["late-arrival"],
                                    api_name="/chat").result()
    assert "Ola Berg" in _text(chat[-1]) and "late-arrival" in sources
    out = fresh.predict("late-arrival", api_name="/remove_bulletin")
    assert "Removed late-arrival" in out[0], out[0]
    assert not (server.settings.corpus / "late-arrival.txt").exists()
    assert server.app.index.db.bulletin("late-arrival") is None
    out = fresh.predict("no-such-bulletin", api_name="/remove_bulletin")
    assert "no bulletin &#x27;no-such-bulletin&#x27;" in out[0] and "sn-bad" in out[0]
