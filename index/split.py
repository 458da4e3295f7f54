"""Split a bulletin into its articles: newsletters hold several news items, each
with a headline and a closing "By <author> on <date>" byline that may cover
several items; everything else is one article."""

from __future__ import annotations

import re
from datetime import date

from index.model import Article

_MONTH_NAMES = "january february march april may june july august september october november december"
MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES.split(), 1)}
_MONTH_RE = "|".join(m.capitalize() for m in MONTHS)
BYLINE = re.compile(rf"^By [^\n]{{1,80}}? on (\d{{1,2}}) ({_MONTH_RE})(?: (\d{{4}}))?[ \t]*$", re.M)
_HEADLINE_END = re.compile(r"[.,;:!?…]$")


def split_articles(text: str, title: str, bulletin_date: str | None) -> list[Article]:
    """Articles of ``text`` in order; a bulletin without bylines is one article."""
    bylines = list(BYLINE.finditer(text))
    if not bylines:
        return [Article(0, title, bulletin_date, 0, len(text))]
    year = int(bulletin_date[:4]) if bulletin_date and bulletin_date[:4].isdigit() else None
    starts = _headline_starts(text, {m.start() for m in bylines})
    if starts and not text[: starts[0]].strip():
        starts[0] = 0  # only blank space before the first headline: it belongs to that article
    else:
        starts = [0, *starts]
    articles = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        body = text[start:end]
        first = body.strip().split("\n", 1)[0].strip().lstrip("#").strip()
        byline = next((m for m in bylines if m.start() >= start), None)
        articles.append(Article(i, first[:200], _byline_date(byline, year) if byline else None, start, end))
    return articles


def _headline_starts(text: str, byline_starts: set[int]) -> list[int]:
    """Offsets of headline lines: short, unpunctuated, standing alone between blank lines."""
    starts = []
    pos = 0
    lines = text.split("\n")
    for i, line in enumerate(lines):
        here, pos = pos, pos + len(line) + 1
        stripped = line.strip()
        if not stripped or here in byline_starts:
            continue
        before = lines[i - 1].strip() if i else ""
        after = lines[i + 1].strip() if i + 1 < len(lines) else "x"
        prev_is_byline = bool(before) and bool(BYLINE.match(before))
        if (before and not prev_is_byline) or after:
            continue
        words = stripped.split()
        if 3 <= len(words) <= 30 and len(stripped) <= 200 and not _HEADLINE_END.search(stripped) \
                and stripped[0].isalnum() and _looks_like_title(words):
            starts.append(here)
    return starts


def _looks_like_title(words: list[str]) -> bool:
    # Headlines capitalise most content words; body lines that lost their full stop rarely do.
    content = [w for w in words if len(w) > 3]
    return bool(content) and sum(w[0].isupper() or w[0].isdigit() for w in content) >= 0.5 * len(content)


def _byline_date(match: re.Match[str], year: int | None) -> str | None:
    day, month, y = int(match.group(1)), MONTHS[match.group(2).lower()], match.group(3)
    the_year = int(y) if y else year
    if the_year is None:
        return None
    try:
        return date(the_year, month, day).isoformat()
    except ValueError:
        return None
