"""Time in a question: the date it is asked on (``as_of``) and the window its words
point to ("this week", "last month", "in March", "in 2019"), or a wish for the newest
articles ("latest"). Retrieval ranks articles inside the window first; nothing here
drops an article, except that articles dated after ``as_of`` are never evidence."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from index.errors import UserError

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTH_RX = "|".join(_MONTHS)
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Longest phrases first: "last week" must not read as "week".
_RELATIVE = re.compile(
    r"\b(?P<rel>today|yesterday|this week|last week|past week|this month|last month|past month|"
    r"this year|last year|past year|(?<!most )recently|lately|in recent (?:days|weeks))\b"
    rf"|\b(?P<since>since )?(?:(?<=since )|in |during |of |on )(?P<month>{_MONTH_RX})(?:,? (?P<myear>(?:19|20)\d\d))?\b"
    r"|\b(?:in|during|of) (?P<year>(?:19|20)\d\d)\b",
    re.I,
)
_LATEST = re.compile(r"\b(?:latest|newest|most recent|most recently)\b", re.I)
RECENT_DAYS = 14  # "recently": the last two weeks before the question's date


@dataclass(frozen=True)
class Frame:
    """The window a question's words point to (inclusive ISO dates), and whether it asks for the newest."""

    start: str | None = None
    end: str | None = None
    phrase: str = ""
    latest: bool = False

    @property
    def window(self) -> bool:
        return self.start is not None

    def describe(self) -> str:
        """For the answer's "as of" line: which articles were ranked first."""
        if self.window:
            span = self.start if self.start == self.end else f"{self.start}..{self.end}"
            return f'"{self.phrase}" read as {span}'
        return "newest articles first" if self.latest else ""


def parse_as_of(value: str | date | None) -> date:
    """The question's reference date: a YYYY-MM-DD string or a date; today when not given."""
    if value is None or value == "":
        return date.today()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if not _ISO.match(text):
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of {text!r} is not a date; use YYYY-MM-DD (e.g. 2025-06-30)") from None


def _month_span(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _span(rel: str, today: date) -> tuple[date, date]:
    week = timedelta(days=7)
    if rel == "today":
        return today, today
    if rel == "yesterday":
        return today - timedelta(days=1), today - timedelta(days=1)
    if rel in ("this week", "past week"):  # the seven days ending on the question's date
        return today - timedelta(days=6), today
    if rel == "last week":
        return today - week - timedelta(days=6), today - week
    if rel == "this month":
        return today.replace(day=1), today
    if rel == "past month":
        return today - timedelta(days=30), today
    if rel == "last month":
        last = today.replace(day=1) - timedelta(days=1)
        return _month_span(last.year, last.month)
    if rel == "this year":
        return date(today.year, 1, 1), today
    if rel == "past year":
        return today - timedelta(days=365), today
    if rel == "last year":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    return today - timedelta(days=RECENT_DAYS - 1), today  # recently, lately, in recent days/weeks


def resolve(question: str, as_of: str | date | None = None) -> Frame:
    """The first time expression of ``question`` as a window ending no later than ``as_of``."""
    today = parse_as_of(as_of)
    latest = bool(_LATEST.search(question))
    m = _RELATIVE.search(question)
    if not m:
        return Frame(latest=latest)
    if m["rel"]:
        start, end = _span(m["rel"].lower(), today)
    elif m["month"]:
        month = _MONTHS[m["month"].lower()]
        year = int(m["myear"]) if m["myear"] else (today.year if month <= today.month else today.year - 1)
        start, end = _month_span(year, month)
        if m["since"]:  # "since March": from its first day up to the question's date
            end = today
    else:
        year = int(m["year"])
        start, end = date(year, 1, 1), date(year, 12, 31)
    end = min(end, today)
    if start > end:  # a window wholly after the question's date ("in 2030"): no window
        return Frame(latest=latest)
    return Frame(start.isoformat(), end.isoformat(), m.group().strip(), latest)
