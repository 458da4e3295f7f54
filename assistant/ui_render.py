"""HTML for the chat window. Everything that comes from a bulletin (or a user) goes
through ``html.escape`` here: a bulletin is data, never markup."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any

from assistant.pipeline import AskResult
from assistant.retrieve import Passage

BulletinLookup = Callable[[str], dict[str, Any] | None]

_CITE = re.compile(r"\[(\d{1,3})\]")
_PARA = re.compile(r"\n\s*\n+")


def esc(text: object) -> str:
    return escape("" if text is None else str(text), quote=True)


def text_html(text: str) -> str:
    """Plain text as HTML: escaped, paragraphs kept, single newlines as line breaks."""
    paras = [p.strip() for p in _PARA.split(text) if p.strip()]
    return "".join(f"<p>{esc(p).replace(chr(10), '<br>')}</p>" for p in paras)


# chat messages ---------------------------------------------------------------
def user_html(question: str) -> str:
    return f'<div class="sn-user">{esc(question)}</div>'


def pending_html() -> str:
    return '<div class="sn-pending"><span class="sn-dot"></span>Searching the bulletins…</div>'


def streaming_html(text: str) -> str:
    """A partial answer; ``[n]`` markers are left out until the citation check has numbered them."""
    shown = re.sub(r"\s*\[\d{1,3}\]", "", text)
    return f'<div class="sn-answer sn-streaming">{esc(shown)}<span class="sn-caret"></span></div>'


def quote_html(quote: str, written: str = "") -> str:
    """The extractive answer shown at once, marked as a quote, with the written answer streaming below it."""
    strip = re.compile(r"\s*\[\d{1,3}\]")
    head = "Quoted from the bulletins; a written answer is on its way"
    out = (f'<div class="sn-answer sn-quote"><div class="sn-quote-head">{head}</div>'
           f'{esc(strip.sub("", quote))}</div>')
    if written:
        out += f'<div class="sn-answer sn-streaming">{esc(strip.sub("", written))}<span class="sn-caret"></span></div>'
    return out


def _answerer_line(result: AskResult) -> str:
    """Who wrote the answer, where a written answer was asked for: the model, or why the quote stands."""
    held = next((n for n in result.notes if n.startswith("written answer not shown")), None)
    if held:
        return f'<div class="sn-answerer">Quoted from the bulletins: {esc(held)}</div>'
    if result.answerer != "extractive":
        return f'<div class="sn-answerer">Written by {esc(result.answerer)} from the cited passages</div>'
    return ""


def answer_html(result: AskResult, turn: int) -> str:
    """The final answer: ``[n]`` as links to the source cards, or a refusal styled as one."""
    if result.refused:
        return ('<div class="sn-refusal"><div class="sn-refusal-head">Not found in the bulletins</div>'
                f'<div class="sn-refusal-body">{esc(result.answer)}</div>'
                '<div class="sn-refusal-hint">The nearest passages are listed under Sources; '
                'try other words, or widen the filters.</div></div>')

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if not 1 <= n <= len(result.citations):
            return m.group(0)
        p = result.citations[n - 1]
        return (f'<a class="sn-cite" href="#sn-src-{turn}-{n}" data-turn="{turn}" data-n="{n}"'
                f' title="{esc(p.bulletin_title)}">[{n}]</a>')

    return f'<div class="sn-answer">{_CITE.sub(link, esc(result.answer))}</div>{_answerer_line(result)}'


def error_html(message: str) -> str:
    return f'<div class="sn-refusal sn-error"><div class="sn-refusal-head">Something went wrong</div>' \
           f'<div class="sn-refusal-body">{esc(message)}</div></div>'


# sources panel ------------------------------------------------------------------
def sources_placeholder(bulletins: int) -> str:
    if not bulletins:
        return ('<div class="sn-sources-empty">No bulletins are indexed yet. Add one in the <b>Library</b> tab,'
                ' or run <code>stdnews index update</code>.</div>')
    return ('<div class="sn-sources-empty">Ask a question: the passages behind each answer appear here, '
            'with the sentence that supports it highlighted.</div>')


def sources_html(result: AskResult, turn: int, lookup: BulletinLookup, index_version: str = "") -> str:
    """Source cards for one answer (cited passages, or the nearest ones after a refusal)."""
    cache: dict[str, dict[str, Any] | None] = {}

    def bulletin(doc_id: str) -> dict[str, Any] | None:
        if doc_id not in cache:
            cache[doc_id] = lookup(doc_id)
        return cache[doc_id]

    if result.refused:
        head = ('<div class="sn-sources-head sn-near">Nearest passages'
                '<span class="sn-sub">not enough to answer, shown so you can judge</span></div>')
        cards = [_card(p, p.rank, [], turn, bulletin(p.doc_id), near=True) for p in result.passages[:3]]
        if not cards:
            cards = ['<div class="sn-sources-empty">Nothing matched the question and filters.</div>']
    else:
        head = (f'<div class="sn-sources-head">Sources<span class="sn-sub">{len(result.citations)} passage'
                f'{"s" if len(result.citations) != 1 else ""} cited</span></div>')
        quotes = result.quotes or [[] for _ in result.citations]
        cards = [_card(p, n, q, turn, bulletin(p.doc_id))
                 for n, (p, q) in enumerate(zip(result.citations, quotes, strict=False), 1)]
    return f'<div class="sn-sources" data-turn="{turn}">{head}{"".join(cards)}{_footer(result, index_version)}</div>'


def _card(p: Passage, n: int, quotes: Sequence[str], turn: int, bulletin: dict[str, Any] | None,
          near: bool = False) -> str:
    meta = [esc(p.publisher) if p.publisher else '<span class="sn-unknown">publisher unknown</span>',
            esc(p.date) if p.date else '<span class="sn-unknown">date unknown</span>']
    bulletin_line = (f'<div class="sn-bulletin">{esc(p.bulletin_title)}</div>'
                     if p.bulletin_title and p.bulletin_title != p.title else "")
    article = _article_html(p, bulletin)
    return (f'<div class="sn-source{" sn-source-near" if near else ""}" id="sn-src-{turn}-{n}">'
            f'<div class="sn-source-head"><span class="sn-n">{n}</span>'
            f'<span class="sn-title">{esc(p.title)}</span></div>{bulletin_line}'
            f'<div class="sn-meta">{" · ".join(meta)}</div>'
            f'<blockquote class="sn-passage">{highlight(p.text, quotes)}</blockquote>{article}</div>')


def _article_html(p: Passage, bulletin: dict[str, Any] | None) -> str:
    """The whole article around a passage, folded; the passage itself is marked in it."""
    if not bulletin or p.start < 0:
        return ""
    text = bulletin.get("text") or ""
    art = next((a for a in bulletin.get("articles", []) if a["start"] <= p.start < a["end"]), None)
    lo, hi = (art["start"], art["end"]) if art else (0, len(text))
    body = (f'{text_html(text[lo:p.start])}<div class="sn-in-article">{text_html(text[p.start:p.end])}</div>'
            f'{text_html(text[p.end:hi])}')
    label = "Open the whole article" if art else "Open the whole bulletin"
    return (f'<details class="sn-article"><summary>{label}'
            f'<span class="sn-sub">{esc(p.doc_id)}</span></summary><div class="sn-article-text">{body}</div>'
            '</details>')


def highlight(text: str, quotes: Sequence[str]) -> str:
    """Escaped ``text`` with each supporting sentence in ``<mark>``."""
    spans: list[tuple[int, int]] = []
    for q in quotes:
        words = q.split()
        if not words:
            continue
        m = re.search(r"\s+".join(re.escape(w) for w in words), text)
        if m is None and len(words) > 3:  # cleaned sentence (bullet, trailing mark): match its core
            m = re.search(r"\s+".join(re.escape(w) for w in words[1:-1]), text)
        if m:
            spans.append(m.span())
    out, pos = [], 0
    for s, e in sorted(spans):
        if s < pos:
            s = pos
        if e <= s:
            continue
        out.append(esc(text[pos:s]))
        out.append(f'<mark class="sn-support">{esc(text[s:e])}</mark>')
        pos = e
    out.append(esc(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def _footer(result: AskResult, index_version: str) -> str:
    t = result.timings_ms
    parts = [f"{label} {t[key]:.0f} ms" for key, label in (("retrieval", "retrieval"), ("answer", "answer"))
             if key in t]
    parts.append(esc(result.answerer))
    if index_version:
        parts.append(f"index {esc(index_version)}")
    notes = "".join(f"<li>{esc(n)}</li>" for n in result.notes)
    query = f"<li>search query: {esc(result.query)}</li>" if result.query and result.query != result.question else ""
    details = f'<details class="sn-notes"><summary>details</summary><ul>{query}{notes}</ul></details>' \
        if notes or query else ""
    return f'<div class="sn-timings">{" · ".join(parts)}{details}</div>'


# library ------------------------------------------------------------------------
def library_html(bulletins: Sequence[dict[str, Any]]) -> str:
    """Every bulletin, newest first: title and id, publisher, date, articles, passages, when it was added."""
    if not bulletins:
        return '<div class="sn-sources-empty">The library is empty: add a bulletin on the right.</div>'
    rows = []
    for b in sorted(bulletins, key=lambda b: (b.get("date") or "", b["doc_id"]), reverse=True):
        added = datetime.fromtimestamp(b["indexed_at"]).strftime("%Y-%m-%d") if b.get("indexed_at") else ""
        rows.append(
            f'<tr><td><div class="sn-lib-title">{esc(b["title"])}</div><code>{esc(b["doc_id"])}</code></td>'
            f'<td>{esc(b.get("publisher") or "")}</td><td class="sn-nowrap">{esc(b.get("date") or "")}</td>'
            f'<td class="sn-num">{len(b.get("articles", []))}</td><td class="sn-num">{b.get("chunks", 0)}</td>'
            f'<td class="sn-nowrap">{added}</td></tr>')
    return ('<table class="sn-library"><thead><tr><th>Bulletin</th><th>Publisher</th><th>Date</th>'
            '<th class="sn-num">Articles</th><th class="sn-num">Passages</th><th>Added</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def status_html(status: dict[str, Any]) -> str:
    n = status["bulletins"]
    if not n:
        return '<span class="sn-status">no bulletins indexed yet</span>'
    return (f'<span class="sn-status">{n} bulletin{"s" if n != 1 else ""} · {status["articles"]} articles · '
            f'{status["chunks"]} passages · index {esc(status["fingerprint"])}</span>')


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def last_update_html(last: dict[str, Any] | None) -> str:
    """What the last update (or add) changed, and the articles it brought in."""
    if not last:
        return '<div class="sn-update">No update has run yet.</div>'
    when = datetime.fromtimestamp(last["at"]).strftime("%Y-%m-%d %H:%M")
    items = []
    for label, key in (("added", "added_docs"), ("changed", "changed_docs"), ("removed", "removed_docs")):
        if last.get(key):
            items.append(f"{label}: {', '.join(f'<code>{esc(d)}</code>' for d in last[key])}")
    failed = last.get("failed") or []
    if failed:
        items.append("could not index: " + "; ".join(f"<code>{esc(p)}</code> ({esc(w)})" for p, w in failed))
    summary = " · ".join(items) or "nothing changed"
    arts = last.get("new_articles") or []
    new = (f'<div class="sn-sub">{_n(len(arts), "new article")}: listed under What\'s new</div>' if arts else "")
    return (f'<div class="sn-update"><div><b>Last {esc(last["kind"])}</b> <span class="sn-sub">{when} · '
            f'embedded {_n(last.get("embedded", 0), "passage")}</span></div><div>{summary}</div>{new}</div>')


def whats_new_html(items: Sequence[dict[str, Any]], since: str | None = None, shown: int = 8, about: str = "",
                   left_out: int = 0) -> str:
    """Stories that updates added (``assistant.digest.panel_items``): headline, date, publisher, lead sentence,
    and the story's other reports; ``about``: the filters in words ("about ISO/IEC 30145, naming ITU");
    ``left_out``: older articles not among the items (said at the end)."""
    topic = f" {esc(about)}" if about else ""
    if since:
        head = f"Added since {esc(since)}{topic}"
        sub = f"{len(items)} {'story' if len(items) == 1 else 'stories'}"
    else:
        head = f"Added by the last update{topic}"
        sub = _when(items[0]["added_at"]) if items else ""
    if not items:
        empty = (f"Nothing{topic} was added on or after {esc(since)}." if since
                 else f"The last update added nothing{topic}." if about
                 else "No update has added articles yet (or they have been removed since).")
        return (f'<div class="sn-whats-new"><div class="sn-whats-new-head">{head}</div>'
                f'<div class="sn-sources-empty">{empty}</div></div>')
    lis = []
    for a in items:
        meta = [esc(a.get("date")) if a.get("date") else '<span class="sn-unknown">date unknown</span>',
                esc(a.get("publisher")) if a.get("publisher") else '<span class="sn-unknown">publisher unknown</span>',
                f'<code>{esc(a["doc_id"])}</code>']
        if since:
            meta.append(f"added {_when(a['added_at'])}")
        also = "; ".join(f'{esc(o.get("publisher") or "publisher unknown")}'
                         f'{" · " + esc(o["date"]) if o.get("date") else ""} (<code>{esc(o["doc_id"])}</code>'
                         f'{"" if o.get("new", True) else ", earlier"})' for o in a.get("also") or ())
        lis.append(f'<li><div class="sn-new-title">{esc(a["title"])}</div><div class="sn-meta">{" · ".join(meta)}'
                   f'</div><div class="sn-lead">{esc(a.get("lead") or "")}</div>'
                   + (f'<div class="sn-meta sn-also">also reported by {also}</div>' if also else "") + '</li>')
    more = (f'<details><summary class="sn-sub">and {len(lis) - shown} more</summary><ul class="sn-new">'
            f'{"".join(lis[shown:])}</ul></details>') if len(lis) > shown else ""
    if left_out:
        more += (f'<div class="sn-sub">and {left_out} older article{"" if left_out == 1 else "s"} not shown here:'
                 ' <code>stdnews digest</code> lists every one</div>')
    return (f'<div class="sn-whats-new"><div class="sn-whats-new-head">{head}<span class="sn-sub">{sub}</span></div>'
            f'<ul class="sn-new">{"".join(lis[:shown])}</ul>{more}</div>')


def duplicates_html(groups: Sequence[Sequence[dict[str, Any]]]) -> str:
    """Stories that several bulletins tell (``Index.duplicate_groups``): headline, then who reported it."""
    if not groups:
        return '<div class="sn-hint">No story appears in more than one bulletin.</div>'
    lis = []
    for g in groups:
        lead = max(g, key=lambda a: (bool(a.get("publisher")), bool(a.get("date")), -len(a.get("title") or "")))
        by = "; ".join(
            f'{esc(a.get("publisher") or "publisher unknown")}'
            f'{" · " + esc(a["date"]) if a.get("date") else ""} (<code>{esc(a["doc_id"])}</code>'
            f'{", as " + chr(8220) + esc(a["title"]) + chr(8221) if a.get("title") != lead.get("title") else ""})'
            for a in g)
        lis.append(f'<li><div class="sn-new-title">{esc(lead.get("title"))}</div>'
                   f'<div class="sn-meta">same story reported by {by}</div></li>')
    return f'<ul class="sn-new sn-dups">{"".join(lis)}</ul>'


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
