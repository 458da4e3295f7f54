"""``stdnews chat --auth``: a real server on 127.0.0.1 asked through raw HTTP and ``gradio_client``. Without a
login nothing of the library shows (no doc_id, title, publisher, standard or organisation in any response); after
one, the filter lists fill; failed logins from one address are slowed; the password check is constant-time."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port

pytestmark = pytest.mark.timeout(600)

USER, PASSWORD = "ann", "s3cret"
# Organisations the window names in its own fixed text (the tagline, the /ask description), library or not.
APP_TEXT = {"ISO", "IEC", "ITU", "SAC"}
# What Gradio 6 serves without a login (routes.py: the routes not behind login_check), and what it refuses.
OPEN_PATHS = ["/", "/?all_endpoints=true", "/?page=&deep_link=x", "/gradio_api/login_check", "/gradio_api/user",
              "/gradio_api/token", "/gradio_api/app_id", "/manifest.json", "/theme.css", "/robots.txt"]
CLOSED_PATHS = ["/config", "/gradio_api/info", "/gradio_api/info?all_endpoints=true", "/gradio_api/openapi.json"]


@pytest.fixture()
def auth_server(tmp_path: Path, seed_assistant) -> Iterator[str]:  # noqa: ANN001
    from assistant.app import build_app, launch
    from assistant.feedback import FeedbackStore

    demo = build_app(seed_assistant, FeedbackStore(tmp_path / "feedback.sqlite"))
    url = launch(demo, "127.0.0.1", free_port(), auth=(USER, PASSWORD))
    try:
        yield url.rstrip("/")
    finally:
        demo.close()


def _get(url: str, opener: urllib.request.OpenerDirector | None = None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=30) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _login(url: str, password: str, opener: urllib.request.OpenerDirector | None = None) -> tuple[int, Any]:
    data = urllib.parse.urlencode({"username": USER, "password": password}).encode()
    req = urllib.request.Request(f"{url}/login", data=data, method="POST")
    try:
        with (opener or urllib.request.build_opener()).open(req, timeout=30) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


def _library_names(index: Any) -> set[str]:
    """Every doc_id, title, publisher, standard/committee and organisation (value and label) the index holds."""
    from assistant.facets import facets

    names: set[str] = set()
    for d in index.status()["documents"]:
        names |= {d["doc_id"], d.get("title") or "", d.get("publisher") or ""}
    standards, orgs = facets(index)
    names |= {f.value for f in standards} | {f.choice[0] for f in standards}
    names |= {o.value for o in orgs} | {o.choice[0] for o in orgs}
    return {n for n in names if len(n) >= 3} - APP_TEXT


def _found(names: set[str], text: str) -> set[str]:
    """The names that occur in ``text`` as words (JSON-escaped or not): 'ANSI' in 'TRANSITION' does not count."""
    found = set()
    for name in names:
        for form in {name, json.dumps(name)[1:-1]}:
            if re.search(rf"(?<![\w-]){re.escape(form)}(?![\w-])", text):
                found.add(name)
    return found


def test_auth_is_required_when_set(auth_server: str) -> None:
    from gradio_client import Client

    with pytest.raises(Exception):  # noqa: B017 - the client's error type differs between versions
        Client(auth_server, verbose=False).predict("Who convenes JTC 1/WG 11?", api_name="/ask")
    r = Client(auth_server, auth=(USER, PASSWORD), verbose=False).predict("Who convenes JTC 1/WG 11?",
                                                                           api_name="/ask")
    assert "Heng Qian" in r["answer"]


def test_login_page_shows_nothing_of_the_library(auth_server: str, seed_assistant) -> None:  # noqa: ANN001
    names = _library_names(seed_assistant.index)
    assert {"jtc1-smart-cities-webconference", "ANSI", "CESI", "JTC 1/WG 11"} <= names  # the check checks something
    for path in OPEN_PATHS:
        status, body = _get(auth_server + path)
        assert status < 500, (path, status)
        assert not _found(names, body), f"{path} ({status}) shows {sorted(_found(names, body))[:8]}"
    for path in CLOSED_PATHS:
        status, body = _get(auth_server + path)
        assert status == 401, (path, status)
        assert not _found(names, body), path
    status, page = _get(auth_server + "/")
    assert status == 200 and '"auth_required":true' in page.replace(" ", "")

    # signed in (the cookie kept), the page config still starts without the lists: the load event fills them
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    assert _login(auth_server, PASSWORD, opener)[0] == 200
    status, config = _get(auth_server + "/config", opener)
    assert status == 200
    dropdowns = [c["props"] for c in json.loads(config)["components"] if c.get("type") == "dropdown"]
    assert dropdowns and all(p["choices"] in ([], [["Any publisher", ""]]) for p in dropdowns), dropdowns


def test_lists_fill_after_login(auth_server: str) -> None:
    from gradio_client import Client

    library = Client(auth_server, auth=(USER, PASSWORD), verbose=False).predict(api_name="/library")
    publishers = [value for _, value in library[1]["choices"]]
    bulletins = [value for _, value in library[2]["choices"]]
    standards = [value for _, value in library[6]["choices"]]
    orgs = [value for _, value in library[7]["choices"]]
    assert {"", "ANSI", "SESEC"} <= set(publishers)
    assert "jtc1-smart-cities-webconference" in bulletins
    assert [value for _, value in library[5]["choices"]] == bulletins  # the Library's "Remove" list
    assert "JTC 1/WG 11" in standards and {"ANSI", "CESI"} <= set(orgs)
    r = Client(auth_server, auth=(USER, PASSWORD), verbose=False).predict(
        "What did SAC publish?", publisher="SESEC", api_name="/ask")
    assert r["citations"] and {c["publisher"] for c in r["citations"]} == {"SESEC"}


def test_failed_logins_are_slowed_per_address(auth_server: str) -> None:
    for _ in range(5):
        assert _login(auth_server, "wrong")[0] == 400
    status, headers = _login(auth_server, PASSWORD)  # even the right password waits
    assert status == 429, status
    wait = int(headers["Retry-After"])
    assert 1 <= wait <= 2
    time.sleep(wait + 0.2)
    assert _login(auth_server, "wrong again")[0] == 400
    status, headers = _login(auth_server, PASSWORD)
    assert status == 429 and int(headers["Retry-After"]) > wait, "each failure beyond five doubles the wait"
    time.sleep(int(headers["Retry-After"]) + 0.2)
    assert _login(auth_server, PASSWORD)[0] == 200  # once the delay passed, the right password works
    for _ in range(5):  # and a success starts the count afresh
        assert _login(auth_server, "wrong")[0] == 400


def test_login_limiter_counts_each_address_on_its_own() -> None:
    from assistant.login import LoginLimiter

    now = [1000.0]
    limiter = LoginLimiter(free=5, window=60.0, base_delay=1.0, max_delay=8.0, clock=lambda: now[0])
    for _ in range(5):
        assert limiter.wait("10.0.0.1") == 0
        limiter.failed("10.0.0.1")
    assert limiter.wait("10.0.0.1") == pytest.approx(1.0)
    assert limiter.wait("10.0.0.2") == 0  # another address is not slowed
    for expected in (2.0, 4.0, 8.0, 8.0):  # growing, up to the cap
        now[0] += 10
        limiter.failed("10.0.0.1")
        assert limiter.wait("10.0.0.1") == pytest.approx(expected)
    limiter.succeeded("10.0.0.1")
    assert limiter.wait("10.0.0.1") == 0
    for _ in range(4):  # four failures, then a quiet minute: forgotten
        limiter.failed("10.0.0.3")
    now[0] += 61
    limiter.failed("10.0.0.3")
    assert limiter.wait("10.0.0.3") == 0


def test_password_check_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from assistant import login

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest
    monkeypatch.setattr(login.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    check = login.credentials_check((USER, PASSWORD))
    assert check(USER, PASSWORD) and not check(USER, "s3cre") and not check("bob", PASSWORD)
    assert not check("", "") and not check(USER, PASSWORD + "x")
    assert calls, "the comparison goes through hmac.compare_digest"
