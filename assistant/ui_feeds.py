"""The Library tab's news feeds as HTML: each feed with its address, publisher, entries, last poll
and, when it is failing, its error (all bulletin and feed text escaped)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from assistant.feeds_cli import status_line
from assistant.ui_render import esc


def feeds_html(feeds: Mapping[str, Mapping[str, Any]], now: float | None = None) -> str:
    if not feeds:
        return ('<div class="sn-sources-empty">No news feeds yet: add an RSS or Atom address below; its entries'
                " become bulletins, and new ones arrive by themselves.</div>")
    now = time.time() if now is None else now
    rows = []
    for f in sorted(feeds.values(), key=lambda f: f["name"]):
        failing = bool(f.get("last_error"))
        rows.append(
            f'<tr class="{"sn-feed-failing" if failing else "sn-feed-ok"}" data-feed="{esc(f["name"])}">'
            f'<td><div class="sn-lib-title">{esc(f["name"])}</div><code>{esc(f["url"])}</code></td>'
            f'<td>{esc(f.get("publisher") or "")}</td><td class="sn-num">{len(f.get("entries", {}))}</td>'
            f'<td class="sn-feed-status">{esc(status_line(dict(f), now))}</td></tr>')
    return ('<table class="sn-library sn-feeds"><thead><tr><th>Feed</th><th>Publisher</th>'
            '<th class="sn-num">Entries</th><th>Last poll</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')
