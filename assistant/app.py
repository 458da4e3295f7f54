"""The chat window (``stdnews chat``): a Gradio app with streamed, cited answers, a
sources panel, filters, feedback and a library tab. ``serve`` loads the assistant once."""

from __future__ import annotations

import os
import sys
import threading

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: nothing leaves the machine

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from assistant import ui_render as ui
from assistant.facets import facets, normalise_orgs
from assistant.feedback import FeedbackStore, feedback_path
from assistant.library import add_bulletins, remove_bulletin
from assistant.pipeline import AskResult, Assistant
from assistant.retrieve import Filters
from index.errors import UserError
from index.settings import Settings
from index.watch import report_printer, watch_in_background

EXAMPLES = [
    "Who convenes JTC 1/WG 11?",
    "What is ISO/IEC 30145?",
    "When is World Standards Day?",
    "What does the IEC do for smart cities?",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
MAX_HISTORY = 6  # earlier turns handed to the assistant for follow-ups
REPLACE_HINT = ("tick 'Replace existing bulletins with the same name' and add it again to replace it"
                " (the old file is kept as a backup)")


class ChatApp:
    """The event handlers, bound to one assistant and one feedback store."""

    def __init__(self, assistant: Assistant, feedback: FeedbackStore) -> None:
        self.bot = assistant
        self.index = assistant.index
        self.feedback = feedback
        self.org_names: list[str] = []  # what the index names, refreshed with the filter lists

    def filters(self, since: str = "", until: str = "", publisher: str = "", bulletins: list[str] | None = None,
                standards: list[str] | None = None, orgs: list[str] | None = None, as_of: str = "") -> Filters:
        """The filters as the user gave them; a bad date, standard or organisation is a ``UserError``.
        ``as_of``: the date the question is asked on (empty: today)."""
        return Filters.parse((since or "").strip() or None, (until or "").strip() or None, publisher or None,
                             bulletins or [], [s for s in standards or [] if s.strip()],
                             normalise_orgs(orgs, self.org_names), (as_of or "").strip() or None)

    def facet_choices(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Choices of the "Standards & committees" and "Organisations" lists, from what the index holds."""
        standards, orgs = facets(self.index)
        self.org_names = [o.value for o in orgs]
        return [f.choice for f in standards], [o.choice for o in orgs]

    # answering -------------------------------------------------------------
    def ask(self, question: str, since: str = "", until: str = "", publisher: str = "",
            bulletins: list[str] | None = None, history: list[list[str]] | None = None, k: int = 0,
            standards: list[str] | None = None, orgs: list[str] | None = None, as_of: str = "") -> dict:
        """Answer one question; returns the ``stdnews ask --json`` object (for API clients).
        ``standards``: any spelling of standard numbers or committees; ``orgs``: ISO, IEC, ITU, SAC...;
        ``as_of``: the date the question is asked on, YYYY-MM-DD (empty: today): later articles are not
        evidence, and "this week", "recently" resolve against it."""
        try:
            filters = self.filters(since, until, publisher, bulletins, standards, orgs, as_of)
        except UserError as exc:  # the client gets the one-line message; the server log gets no traceback
            raise gr.Error(str(exc), print_exception=False) from None
        pairs = [(str(u), str(a)) for u, a in (history or [])]
        result = self.bot.ask(question, history=pairs, k=int(k) or None, filters=filters)
        return {**result.to_json(), "query": result.query, "notes": result.notes,
                "index_version": self.index.fingerprint()}

    def respond(self, question: str, messages: list[dict], turns: list[dict], since: str, until: str,
                publisher: str, bulletins: list[str], k: float, standards: list[str] | None = None,
                orgs: list[str] | None = None, as_of: str = "") -> Iterator[tuple[Any, ...]]:
        """Stream one answer into the chat; yields (chat, sources, turns, textbox, feedback box)."""
        question = (question or "").strip()
        messages, turns = list(messages or []), list(turns or [])
        unchanged = (gr.skip(),) * 5
        if not question:
            yield unchanged
            return
        try:
            filters = self.filters(since, until, publisher, bulletins, standards, orgs, as_of)
        except UserError as exc:
            gr.Warning(str(exc).replace("--since", "From date").replace("--until", "To date")
                       .replace("--as-of", "As of").replace("--standard ", "Standards & committees: "))
            yield unchanged
            return
        turn = len(turns)
        messages += [{"role": "user", "content": ui.user_html(question)},
                     {"role": "assistant", "content": ui.pending_html()}]
        yield messages, gr.skip(), turns, "", gr.update(visible=False)
        history = [(t["question"], t["answer"]) for t in turns][-MAX_HISTORY:]
        text, result = "", None
        try:
            for item in self.bot.stream(question, history=history, k=int(k) or None, filters=filters):
                if isinstance(item, AskResult):
                    result = item
                else:
                    text += item
                    messages[-1] = {"role": "assistant", "content": ui.streaming_html(text)}
                    yield messages, gr.skip(), turns, gr.skip(), gr.skip()
        except Exception as exc:  # an LLM server gone away, a broken index: say so in the chat
            messages[-1] = {"role": "assistant", "content": ui.error_html(f"{type(exc).__name__}: {exc}")}
            yield messages, gr.skip(), turns, gr.skip(), gr.skip()
            return
        assert result is not None
        version = self.index.fingerprint()
        sources = ui.sources_html(result, turn, self.index.db.bulletin, version)
        messages[-1] = {"role": "assistant", "content": ui.answer_html(result, turn)}
        turns.append({"question": question, "answer": result.answer, "refused": result.refused,
                      "citations": result.to_json()["citations"], "answerer": result.answerer,
                      "index_version": version, "sources": sources, "feedback_id": None,
                      "filters": {"since": filters.since, "until": filters.until, "publisher": filters.publisher,
                                  "bulletins": list(filters.bulletins), "standards": list(filters.standards),
                                  "orgs": list(filters.orgs), "as_of": filters.as_of}})
        yield messages, sources, turns, gr.skip(), gr.skip()

    @staticmethod
    def show_turn(turns: list[dict], evt: gr.SelectData) -> Any:
        """Clicking an earlier message shows that answer's sources."""
        i = evt.index if isinstance(evt.index, int) else evt.index[0]
        turn = i // 2
        return turns[turn]["sources"] if 0 <= turn < len(turns) else gr.skip()

    # feedback --------------------------------------------------------------
    def rate(self, turns: list[dict], evt: gr.LikeData) -> tuple[Any, ...]:
        """Thumbs up/down: stored at once; the comment box opens for an optional comment."""
        i = evt.index if isinstance(evt.index, int) else evt.index[0]
        turn = i // 2
        if not 0 <= turn < len(turns):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        liked = evt.liked
        rating = 1 if liked in (True, "Like") else -1 if liked in (False, "Dislike") else 0
        t = dict(turns[turn])
        if t["feedback_id"] is None:
            history = [[u["question"], u["answer"]] for u in turns[:turn]][-MAX_HISTORY:]
            t["feedback_id"] = self.feedback.record(
                rating, t["question"], t["answer"], t["refused"], t["citations"], t["index_version"],
                answerer=t["answerer"], filters=t["filters"], history=history)
        else:
            self.feedback.update(t["feedback_id"], rating=rating)
        turns = [*turns[:turn], t, *turns[turn + 1:]]
        label = {1: "Thanks! What was good about it?", -1: "Thanks. What was wrong or missing?",
                 0: "Rating removed."}[rating]
        return turns, t["feedback_id"], gr.update(visible=rating != 0), gr.update(label=label, value="")

    def comment(self, feedback_id: int | None, text: str) -> tuple[Any, ...]:
        if feedback_id is not None and text.strip():
            self.feedback.update(int(feedback_id), comment=text.strip())
            gr.Info("Feedback saved, thank you.", duration=3)
        return gr.update(visible=False), gr.update(value="")

    # library ---------------------------------------------------------------
    def refresh(self) -> tuple[Any, ...]:
        """Everything that shows what the index holds: header, filters, table, last update,
        facet lists, what's new (back to the last update's), same-story groups."""
        st = self.index.status()
        docs = st["documents"]
        publishers = sorted({d["publisher"] for d in docs if d.get("publisher")})
        bulletin_choices = [(d["title"], d["doc_id"]) for d in docs]
        standard_choices, org_choices = self.facet_choices()
        return (ui.status_html(st),
                gr.update(choices=[("Any publisher", ""), *[(p, p) for p in publishers]]),
                gr.update(choices=bulletin_choices),
                ui.library_html(docs),
                ui.last_update_html(st["last_update"]),
                gr.update(choices=bulletin_choices, value=None),
                gr.update(choices=standard_choices),
                gr.update(choices=org_choices),
                self.whats_new(None),
                gr.update(value=None),
                ui.duplicates_html(st["duplicates"]))

    def whats_new(self, since: str | None = None) -> str:
        """What the last update added, or everything added since a date (YYYY-MM-DD)."""
        since = (since or "").strip() or None
        try:
            items = self.index.whats_new(since)
        except UserError as exc:
            return _message(str(exc).replace("--since", "Added since"), ok=False)
        return ui.whats_new_html(items, since)

    def add(self, files: list[str] | None, publisher: str, date: str, title: str, replace: bool = False,
            progress: Any = None) -> tuple[Any, ...]:
        """Upload handler: copy into the corpus, update the index, report what was added. A file named
        like a bulletin in the library is refused unless ``replace`` (the Library's confirm box)."""
        if progress is not None:
            progress(0, desc="Reading the files")
        try:
            report, notes = add_bulletins(self.index, [Path(f) for f in files or []], publisher, date, title,
                                          replace=bool(replace), replace_hint=REPLACE_HINT)
        except UserError as exc:
            return (_message(str(exc), ok=False), gr.skip(), gr.skip(), gr.skip(), gr.skip(), *self.refresh(),
                    gr.skip())
        lines = [report.summary(), *notes, *(f"{Path(p).name}: {why}" for p, why in report.failed)]
        ok = not report.failed
        done = report.added_docs + report.changed_docs
        if done:
            head = f"Added {', '.join(done)}; you can ask about {'it' if len(done) == 1 else 'them'} now."
            if report.failed:
                head += f" Could not add {', '.join(Path(p).name for p, _ in report.failed)}."
        elif report.failed:
            head = f"Could not add {', '.join(Path(p).name for p, _ in report.failed)}."
        else:
            head = "Nothing new: the index already holds these files as they are."
        cleared = (gr.update(value=None), "", "", "") if done else (gr.skip(),) * 4  # the form, ready for the next
        return (_message(head, ok=ok, details=lines), *cleared, *self.refresh(), False if done else gr.skip())

    def remove(self, doc_id: str | None) -> tuple[Any, ...]:
        try:
            report = remove_bulletin(self.index, doc_id or "")
        except UserError as exc:
            return (_message(str(exc), ok=False), gr.update(visible=False), *self.refresh())
        return (_message(f"Removed {doc_id}.", ok=not report.failed, details=[report.summary()]),
                gr.update(visible=False), *self.refresh())


def _message(head: str, ok: bool, details: list[str] | None = None) -> str:
    items = "".join(f"<li>{ui.esc(d)}</li>" for d in details or [])
    return (f'<div class="{"sn-ok" if ok else "sn-bad"}"><b>{ui.esc(head)}</b></div>'
            + (f'<ul class="sn-hint">{items}</ul>' if items else ""))


def build_app(assistant: Assistant, feedback: FeedbackStore | None = None) -> Any:
    """The Gradio Blocks of the chat window; launch it with ``launch``."""
    from assistant.ui_layout import layout

    app = ChatApp(assistant, feedback or FeedbackStore(feedback_path(assistant.settings)))
    return layout(app, EXAMPLES)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise UserError("--auth / STDNEWS_AUTH must be USER:PASS")
    return user, password


def launch(demo: Any, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None) -> str:
    """Start the server in the background (``demo.close()`` stops it); returns its local URL."""
    from assistant.ui_theme import CSS, JS, theme

    demo.queue(default_concurrency_limit=4)
    try:
        _, url, _ = demo.launch(server_name=host, server_port=port, auth=auth, prevent_thread_lock=True,
                                share=False, inbrowser=False, quiet=True, show_error=True, theme=theme(),
                                css=CSS, js=JS, footer_links=["api", "settings"], ssr_mode=False,
                                auth_message="stdnews: sign in to ask about standards news")
    except OSError:
        raise UserError(f"cannot listen on {host}:{port} (in use, or not allowed); pass another --port") from None
    return str(url)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, watch: bool = True) -> int:
    """``stdnews chat``: load the index and model once, then serve until interrupted; with ``watch``,
    also keep the index current with the corpus folder (``index.watch``)."""
    auth = parse_auth(settings.auth)
    if host not in LOOPBACK and auth is None:
        print(f"warning: serving on {host} without --auth: anyone who can reach this machine can ask, "
              "upload and remove bulletins; pass --auth USER:PASS or set STDNEWS_AUTH", file=sys.stderr)
    assistant = Assistant(settings)
    st = assistant.index.status()
    if not st["bulletins"]:
        print("note: no bulletins are indexed yet; run 'stdnews index update' or add them in the Library tab",
              file=sys.stderr)
    assistant.index.warm()  # the first question should not wait for the model
    demo = build_app(assistant)
    launch(demo, host, port, auth)
    if watch:
        watch_in_background(assistant.index, report_printer(sys.stderr, "index: "))  # warms uploads' path too
    else:
        threading.Thread(target=assistant.index.warm, kwargs={"update": True}, daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    print(f"stdnews chat: http://{shown}:{port}  ({st['bulletins']} bulletins; Ctrl+C to stop)", file=sys.stderr)
    demo.block_thread()  # returns on Ctrl+C, after closing the server
    return 0
