"""The digest (``assistant.digest``) as plain text, Markdown or JSON, for ``stdnews digest``."""

from __future__ import annotations

import json
import re

from assistant.digest import Digest, Story


def render(d: Digest, fmt: str = "text") -> str:
    """The digest as plain text, Markdown or JSON; an empty one says so in one line (JSON: the object)."""
    if fmt == "json":
        return json.dumps(d.to_json(), ensure_ascii=False, indent=2)
    about = d.about()
    if not d.groups and not d.since and d.last_update_at is None:
        return "nothing new: no update has added articles yet (or they have been removed since)"
    if not d.groups:
        unseen = f" (no indexed bulletin names {' or '.join(d.unseen)} yet)" if d.unseen else ""
        return f"nothing new{' ' + about if about else ''} {d.window()}{unseen}"
    md = fmt == "md"
    stories = d.stories
    n_new = sum(sum(s.new for s in st.sources) for st in stories)
    head = (f"{len(stories)} stor{'y' if len(stories) == 1 else 'ies'} ({n_new} article{'s' * (n_new != 1)})"
            f"{' ' + about if about else ''} {d.window()}")
    lines = [f"# Digest: {head}" if md else f"Digest: {head}"]
    for g in d.groups:
        lines += ["", f"## {g.label}" if md else f"== {g.label} =="]
        for st in g.stories:
            lines += _story_md(st) if md else _story_text(st)
    return "\n".join(lines)


def _story_text(st: Story) -> list[str]:
    out = ["", f"* {st.date or '????-??-??'}  {st.title}"]
    if st.lead:
        out.append(f"  {st.lead}")
    if len(st.standards) > 1:
        out.append(f"  also names: {', '.join(st.standards[1:])}")
    for s in st.sources:
        cite = f"{s.publisher or 'publisher unknown'}, {s.date or 'date unknown'}, \"{s.title}\" [{s.doc_id}]"
        out.append(f"  - {cite}{' ' + s.url if s.url else ''}{'' if s.new else ' (reported earlier)'}")
    return out


def _story_md(st: Story) -> list[str]:
    out = ["", f"### {_md(st.title)}", ""]
    if st.lead:
        out += [f"> {_md(st.lead)}", ""]
    if len(st.standards) > 1:
        out += [f"Also names: {', '.join(_md(s) for s in st.standards[1:])}", ""]
    for s in st.sources:
        title = f"[{_md(s.title)}]({s.url})" if s.url else f"“{_md(s.title)}”"
        out.append(f"- {title}: {_md(s.publisher or 'publisher unknown')}, {s.date or 'date unknown'},"
                   f" `{s.doc_id}`{'' if s.new else ' (reported earlier)'}")
    return out


def _md(text: str) -> str:
    """Bulletin text in Markdown as text: its markup characters escaped."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", text)
