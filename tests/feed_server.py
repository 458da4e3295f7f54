"""A real HTTP server (stdlib ``http.server``) on 127.0.0.1 for the feed tests and the feed bench: it
serves feeds and article pages the test changes while it runs, answers conditional requests with
304 as a well-behaved publisher does, and records every request it saw."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

RSS = "application/rss+xml; charset=utf-8"
ATOM = "application/atom+xml; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclass
class Page:
    """What one path answers. ``conditional``: an ETag and Last-Modified go with it, and a request
    that names them while the body is unchanged gets 304."""

    body: bytes = b""
    type: str = RSS
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    conditional: bool = True
    delay: float = 0.0  # seconds before answering
    modified: float = field(default_factory=time.time)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


Handler = Callable[[BaseHTTPRequestHandler], None]


class FeedServer:
    """Routes by path (a ``Page`` or a function writing the whole answer); ``log``: one dict per request."""

    def __init__(self) -> None:
        self.routes: dict[str, Page | Handler] = {}
        self.log: list[dict[str, Any]] = []
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                route = server.routes.get(self.path)
                entry = {"path": self.path, "headers": dict(self.headers), "status": None}
                server.log.append(entry)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if route is None:
                        entry["status"] = 404
                        self.send_error(404)
                    elif callable(route):
                        entry["status"] = "custom"
                        route(self)
                    else:
                        entry["status"] = _answer(self, route)

            def log_message(self, *_: Any) -> None:  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def requests(self, path: str) -> list[dict[str, Any]]:
        return [e for e in self.log if e["path"] == path]

    def start(self) -> FeedServer:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    try:
        yield server
    finally:
        server.stop()


def _answer(h: BaseHTTPRequestHandler, page: Page) -> int:
    if page.delay:
        time.sleep(page.delay)
    modified = formatdate(page.modified, usegmt=True)
    if page.conditional and page.status == 200 and (
            h.headers.get("If-None-Match") == page.etag
            or (not h.headers.get("If-None-Match") and h.headers.get("If-Modified-Since") == modified)):
        h.send_response(304)
        h.send_header("ETag", page.etag)
        h.end_headers()
        return 304
    h.send_response(page.status)
    h.send_header("Content-Type", page.type)
    h.send_header("Content-Length", str(len(page.body)))
    if page.conditional:
        h.send_header("ETag", page.etag)
        h.send_header("Last-Modified", modified)
    for k, v in page.headers.items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(page.body)
    return page.status


def endless(total: int, chunk: int = 1 << 16) -> Handler:
    """A body of ``total`` bytes streamed without a Content-Length (the client must count)."""
    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", RSS)
        h.end_headers()
        h.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>big</title>')
        block = b"<item><title>x</title></item>" * (chunk // 29)
        sent = 0
        while sent < total:
            h.wfile.write(block)
            sent += len(block)

    return handle


def rss(title: str, items: list[dict[str, str]], encoding: str = "utf-8") -> str:
    """An RSS 2.0 feed; each item: title, link, guid, date (RFC 822), description, content (HTML)."""
    out = [f'<?xml version="1.0" encoding="{encoding}"?>',
           '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>',
           f"<title>{escape(title)}</title><link>http://example.invalid/</link><description>news</description>"]
    for it in items:
        out.append("<item>" + "".join(
            f"<{tag}>{escape(it[key])}</{tag}>" for key, tag in (("title", "title"), ("link", "link"),
                                                                 ("guid", "guid"), ("date", "pubDate"),
                                                                 ("description", "description"),
                                                                 ("content", "content:encoded")) if key in it)
                   + "</item>")
    out.append("</channel></rss>")
    return "\n".join(out)


def atom(title: str, entries: list[dict[str, str]]) -> str:
    """An Atom feed; each entry: title, link, id, updated (RFC 3339), summary, content (HTML)."""
    out = ['<?xml version="1.0" encoding="utf-8"?>', '<feed xmlns="http://www.w3.org/2005/Atom">',
           f"<title>{escape(title)}</title><id>urn:feed:{escape(title)}</id><updated>2026-01-01T00:00:00Z</updated>"]
    for e in entries:
        parts = [f"<title>{escape(e['title'])}</title>" if "title" in e else "",
                 f'<link href="{escape(e["link"])}"/>' if "link" in e else "",
                 f"<id>{escape(e['id'])}</id>" if "id" in e else "",
                 f"<updated>{e['updated']}</updated>" if "updated" in e else "",
                 f'<summary type="html">{escape(e["summary"])}</summary>' if "summary" in e else "",
                 f'<content type="html">{escape(e["content"])}</content>' if "content" in e else ""]
        out.append("<entry>" + "".join(parts) + "</entry>")
    out.append("</feed>")
    return "\n".join(out)


def rdf(title: str, items: list[dict[str, str]]) -> str:
    """An RSS 1.0 (RDF) feed; each item: title, link, description, date (W3CDTF, dc:date)."""
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"'
           ' xmlns:dc="http://purl.org/dc/elements/1.1/">',
           f'<channel rdf:about="http://example.invalid/"><title>{escape(title)}</title>'
           "<link>http://example.invalid/</link><description>news</description></channel>"]
    for it in items:
        out.append(f'<item rdf:about="{escape(it["link"])}"><title>{escape(it["title"])}</title>'
                   f"<link>{escape(it['link'])}</link><description>{escape(it['description'])}</description>"
                   f"<dc:date>{it['date']}</dc:date></item>")
    out.append("</rdf:RDF>")
    return "\n".join(out)


def article_page(title: str, paragraphs: list[str]) -> bytes:
    """An article page with the navigation, scripts and footer a real site wraps around its text."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (f"<!doctype html><html><head><title>{escape(title)}</title><script>var tracker = 'TRACKER-SCRIPT';"
            "</script></head><body><nav><ul><li><a href='/'>Home</a></li><li><a href='/news'>All news</a></li>"
            "<li><a href='/about'>About the site menu</a></li></ul></nav>"
            f"<main><article><h1>{escape(title)}</h1>{body}</article></main>"
            "<aside>Subscribe to our newsletter sidebar</aside>"
            "<footer>Copyright footer boilerplate. Privacy policy. Cookie settings.</footer></body></html>"
            ).encode()
