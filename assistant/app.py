"""The chat window (``stdnews chat``): a Gradio app with streamed, cited answers, a
sources panel, filters, feedback and a library tab. ``serve`` loads the assistant once."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: nothing leaves the machine

from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from assistant import ui_feeds
from assistant import ui_render as ui
from assistant.answer import Quote
from assistant.facets import facets, normalise_orgs
from assistant.feedback import FeedbackStore, feedback_path
from assistant.library import add_bulletins, add_feed, poll_feeds, remove_bulletin, remove_feed
from assistant.login import LoginLimiter, LoginThrottle, credentials_check
from assistant.pipeline import AskResult, Assistant
from assistant.retrieve import Filters
from index import memory
from index.errors import UserError
from index.feeds import FeedBook
from index.load import MAX_BYTES
from index.settings import Settings
from index.watch import feed_printer, report_printer, watch_in_background

PANEL_NEWEST = 200  # articles the unfiltered What's new panel tells as stories (``stdnews digest`` lists all)
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
QUEUE_SIZE = 64  # requests waiting beyond this are refused at once ("queue is full"), not piled up
# The window's names for what the CLI calls flags: a message the UI or API shows names what the user sees.
FIELD_NAMES = (("--since", "From date"), ("--until", "To date"), ("--as-of", "As of"),
               ("--standard ", "Standards & committees: "))


def plain(exc: UserError) -> str:
    """A user error as the window (and its API) says it: field names, not CLI flags."""
    text = str(exc)
    for flag, field in FIELD_NAMES:
        text = text.replace(flag, field)
    return text


def _passages(k: object) -> object:
    """The number of passages as given (the slider sends floats); None: the default. ``Assistant.check``
    refuses anything that is not a whole number in range."""
    if k is None or k == "":
        return None
    return int(k) if isinstance(k, float) and k.is_integer() else k


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
            bulletins: list[str] | None = None, history: list[list[str]] | None = None, k: int | None = None,
            standards: list[str] | None = None, orgs: list[str] | None = None, as_of: str = "") -> dict:
        """Answer one question; returns the ``stdnews ask --json`` object (for API clients).
        ``history``: earlier [question, answer] pairs (at most 20); ``k``: passages, 1 to 50 (empty: the default);
        ``standards``: any spelling of standard numbers or committees; ``orgs``: ISO, IEC, ITU, SAC...;
        ``as_of``: the date the question is asked on, YYYY-MM-DD (empty: today): later articles are not
        evidence, and "this week", "recently" resolve against it. A question is at most 2,000 characters."""
        try:
            self.bot.check(question, [] if history is None else history, _passages(k))
            filters = self.filters(since, until, publisher, bulletins, standards, orgs, as_of)
            result = self.bot.ask(question, history=history or [], k=_passages(k),  # type: ignore[arg-type]
                                  filters=filters)
        except UserError as exc:  # the client gets the one-line message; the server log gets no traceback
            raise gr.Error(plain(exc), print_exception=False) from None
        return {**result.to_json(), "query": result.query, "notes": result.notes,
                "index_version": self.index.fingerprint()}

    def respond(self, question: str, messages: list[dict], turns: list[dict], since: str, until: str,
                publisher: str, bulletins: list[str], k: float, standards: list[str] | None = None,
                orgs: list[str] | None = None, as_of: str = "") -> Iterator[tuple[Any, ...]]:
        """Stream one answer into the chat; yields (chat, sources, turns, textbox, feedback box)."""
        question = question.strip() if isinstance(question, str) else question
        messages, turns = list(messages or []), list(turns or [])
        unchanged = (gr.skip(),) * 5
        if not question:
            yield unchanged
            return
        cap = self.bot.settings.max_question_chars  # the chat's own earlier answers may be longer: clipped
        history = [(t["question"][:cap], t["answer"][:cap]) for t in turns][-MAX_HISTORY:]
        try:
            self.bot.check(question, history, _passages(k))
            filters = self.filters(since, until, publisher, bulletins, standards, orgs, as_of)
        except UserError as exc:  # a toast renders HTML: what the user typed is shown as text
            gr.Warning(escape(plain(exc), quote=False))
            yield unchanged
            return
        turn = len(turns)
        messages += [{"role": "user", "content": ui.user_html(question)},
                     {"role": "assistant", "content": ui.pending_html()}]
        yield messages, gr.skip(), turns, "", gr.update(visible=False)
        text, quote, result = "", None, None
        try:
            for item in self.bot.stream(question, history=history, k=_passages(k),  # type: ignore[arg-type]
                                        filters=filters):
                if isinstance(item, AskResult):
                    result = item
                    continue
                if isinstance(item, Quote):  # shown at once; the written answer streams in below it
                    quote = str(item)
                else:
                    text += item
                shown = ui.streaming_html(text) if quote is None else ui.quote_html(quote, text)
                messages[-1] = {"role": "assistant", "content": shown}
                yield messages, gr.skip(), turns, gr.skip(), gr.skip()
        except Exception as exc:  # an LLM server gone away, a broken index: say so in the chat
            said = plain(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            messages[-1] = {"role": "assistant", "content": ui.error_html(said)}
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
        facet lists, what's new (back to the last update's, unfiltered), same-story groups."""
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
                ui.duplicates_html(st["duplicates"]),
                gr.update(choices=standard_choices, value=[]),  # What's new's own filters, reset with its date
                gr.update(choices=org_choices, value=[]))

    def whats_new(self, since: str | None = None, standards: list[str] | None = None,
                  orgs: list[str] | None = None) -> str:
        """What the last update added, or everything added since a date (YYYY-MM-DD): one entry per story
        (``stdnews digest``), only stories naming any of ``standards`` (any spelling) and of ``orgs``."""
        from assistant.digest import build, panel_items

        since = (since or "").strip() or None
        wanted = [s for s in standards or [] if s.strip()]
        try:  # unfiltered, as every page load shows it, the newest articles only (after a 100k-chunk build
            # the last update added 28,989: 19 s to build their stories, at every page load)
            d = build(self.index, since, wanted, orgs or [], newest=None if wanted or orgs else PANEL_NEWEST)
        except UserError as exc:
            return _message(plain(UserError(str(exc).replace("--since", "Added since"))), ok=False)
        return ui.whats_new_html(panel_items(d), since, about=d.about(), left_out=d.left_out)

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
        gone = sorted(report.removed_docs) if "#" in (doc_id or "") else []  # a part takes its whole file
        head = f"Removed {doc_id}" + (f" with its file: {', '.join(gone)}." if len(gone) > 1 else ".")
        return (_message(head, ok=not report.failed, details=[report.summary()]),
                gr.update(visible=False), *self.refresh())

    # news feeds --------------------------------------------------------------
    def feeds(self) -> tuple[Any, ...]:
        """The feeds table and the remove list."""
        feeds = FeedBook(self.index.settings).feeds()
        return ui_feeds.feeds_html(feeds), gr.update(choices=sorted(feeds))

    def add_feed(self, url: str, name: str = "", publisher: str = "") -> tuple[Any, ...]:
        """Subscribe to a feed (refused in one line when its address gives no feed) and index its entries."""
        try:
            result, report = add_feed(self.index, url or "", name or "", publisher or "")
        except UserError as exc:
            return (_message(str(exc), ok=False), gr.skip(), *self.feeds(), *self.refresh())
        head = f"Added feed '{result.name}': {len(result.added)} bulletin(s); you can ask about them now."
        return (_message(head, ok=report.ok, details=[*result.notes, report.summary(),
                                                      *(f"{p}: {why}" for p, why in report.failed)]),
                "", *self.feeds(), *self.refresh())

    def remove_feed(self, name: str | None, delete_bulletins: bool = False) -> tuple[Any, ...]:
        try:
            doc_ids, report = remove_feed(self.index, name or "", bool(delete_bulletins))
        except UserError as exc:
            return (_message(str(exc), ok=False), *self.feeds(), *self.refresh())
        kept = "and its bulletins" if delete_bulletins else f"; its {len(doc_ids)} bulletin(s) stay in the library"
        return (_message(f"Removed feed '{name}' {kept}.".replace(" ;", ";"), ok=report is None or report.ok,
                         details=[report.summary()] if report else None), *self.feeds(), *self.refresh())

    def poll_feeds(self) -> tuple[Any, ...]:
        results, report = poll_feeds(self.index)
        lines = [r.line() for r in results] + ([report.summary()] if report else [])
        failed = [r for r in results if r.error]
        head = (f"Polled {len(results)} feed(s): {sum(len(r.added) for r in results)} new bulletin(s)"
                + (f"; {len(failed)} could not be read" if failed else "") + ".")
        return (_message(head, ok=not failed, details=lines), *self.feeds(), *self.refresh())


def _message(head: str, ok: bool, details: list[str] | None = None) -> str:
    items = "".join(f"<li>{ui.esc(d)}</li>" for d in details or [])
    return (f'<div class="{"sn-ok" if ok else "sn-bad"}"><b>{ui.esc(head)}</b></div>'
            + (f'<ul class="sn-hint">{items}</ul>' if items else ""))


_uploads_lock = threading.Lock()
_uploads: dict[str, Any] = {"folder": None, "apps": 0}  # this process's upload folder and the apps using it


def upload_folder(settings: Settings) -> Path:
    """Where Gradio keeps this server's uploads: in the data directory, one folder per process (two servers
    on one data directory never clean each other's), not the ``/tmp/gradio`` every Gradio app shares."""
    return settings.home / "uploads" / str(os.getpid())


def _use_upload_folder(settings: Settings) -> None:
    """Point Gradio at this app's upload folder, emptied, and remove folders of servers no longer running.
    Gradio reads ``GRADIO_TEMP_DIR`` per process (when a component or server is made, and on each upload):
    a second app in the same process, while the first runs, shares the first's folder."""
    with _uploads_lock:
        _uploads["apps"] += 1
        if _uploads["apps"] > 1 and _uploads["folder"] is not None:
            return
        folder = upload_folder(settings)
        for old in folder.parent.glob("*") if folder.parent.is_dir() else ():
            if old.name.isdigit() and (old == folder or not _running(int(old.name))):
                shutil.rmtree(old, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        _uploads["folder"] = folder
        os.environ["GRADIO_TEMP_DIR"] = str(folder)


def _release_upload_folder() -> None:
    """The last app of the process stopped: its uploads go."""
    with _uploads_lock:
        _uploads["apps"] = max(0, _uploads["apps"] - 1)
        if _uploads["apps"] == 0 and _uploads["folder"] is not None:
            shutil.rmtree(_uploads["folder"], ignore_errors=True)
            _uploads["folder"] = None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:  # someone else's process
        return True
    except (ProcessLookupError, OverflowError):
        return False
    return True


def build_app(assistant: Assistant, feedback: FeedbackStore | None = None) -> Any:
    """The Gradio Blocks of the chat window; launch it with ``launch``, stop it with ``close()`` (which also
    removes its uploads)."""
    from assistant.ui_layout import layout

    app = ChatApp(assistant, feedback or FeedbackStore(feedback_path(assistant.settings)))
    _use_upload_folder(assistant.settings)  # before any component is made: each remembers the folder
    demo = layout(app, EXAMPLES)
    close = demo.close
    closed = threading.Event()

    def close_and_clean(verbose: bool = True) -> None:
        close(verbose)
        if not closed.is_set():
            closed.set()
            _release_upload_folder()

    demo.close = close_and_clean
    return demo


def parse_auth(value: str | None) -> tuple[str, str] | None:
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise UserError("--auth / STDNEWS_AUTH must be USER:PASS")
    return user, password


def launch(demo: Any, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
           login_limiter: LoginLimiter | None = None) -> str:
    """Start the server in the background (``demo.close()`` stops it); returns its local URL. With ``auth``,
    the password is checked in constant time and failed logins are slowed per client address
    (``login_limiter``, default: five free failures a minute, then a wait that doubles with each failure)."""
    from starlette.middleware import Middleware

    from assistant.ui_theme import CSS, JS, theme

    demo.queue(default_concurrency_limit=4, max_size=QUEUE_SIZE)
    app_kwargs: dict[str, Any] = {}
    if auth is not None:
        app_kwargs["middleware"] = [Middleware(LoginThrottle, limiter=login_limiter or LoginLimiter())]
    try:
        _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, app_kwargs=app_kwargs,
                                auth=credentials_check(auth) if auth is not None else None,
                                max_file_size=MAX_BYTES,  # the indexer refuses any larger file anyway
                                share=False, inbrowser=False, quiet=True, show_error=True, theme=theme(),
                                css=CSS, js=JS, footer_links=["api", "settings"], ssr_mode=False,
                                auth_message="stdnews: sign in to ask about standards news")
    except OSError:
        raise UserError(f"cannot listen on {host}:{port} (in use, or not allowed); pass another --port") from None
    return str(url)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, watch: bool = True) -> int:
    """``stdnews chat``: load the index and model once, then serve until interrupted; with ``watch``,
    also keep the index current with the corpus folder (``index.watch``)."""
    memory.for_long_run()  # before the server's threads start
    auth = parse_auth(settings.auth)
    if host not in LOOPBACK and auth is None:
        print(f"warning: serving on {host} without --auth: anyone who can reach this machine can ask, "
              "upload and remove bulletins; pass --auth USER:PASS or set STDNEWS_AUTH", file=sys.stderr)
    assistant = Assistant(settings)
    repair(assistant.index)
    st = assistant.index.headline()
    if not st["bulletins"]:
        print("note: no bulletins are indexed yet; run 'stdnews index update' or add them in the Library tab",
              file=sys.stderr)
    assistant.index.warm()  # the first question should not wait for the model
    demo = build_app(assistant)
    launch(demo, host, port, auth)
    if watch:
        watch_in_background(assistant.index, report_printer(sys.stderr, "index: "),  # warms uploads' path too
                            on_feed=feed_printer(sys.stderr, "index: "))  # and polls the feeds that are due
    else:
        threading.Thread(target=assistant.index.warm, kwargs={"update": True}, daemon=True).start()
    shown = f"[{host}]" if ":" in host else host
    print(f"stdnews chat: http://{shown}:{port}  ({st['bulletins']} bulletins; Ctrl+C to stop)", file=sys.stderr)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None  # `kill` stops it as Ctrl+C does
    try:
        demo.block_thread()  # returns on Ctrl+C, after closing the server
    finally:
        demo.close(verbose=False)  # and the uploads folder goes
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def repair(index: Any) -> None:
    """Before serving: an index half written by an update killed mid-way (its passages would answer
    while the Library does not list it) is repaired as ``stdnews index update`` repairs it, with or
    without the watcher; when that fails, the server does not start (one line: how to repair)."""
    why = index.interrupted()
    if why is None:
        return
    print(f"note: {why.split(';')[0]}; repairing it before serving", file=sys.stderr, flush=True)
    try:
        report = index.repair()
    except UserError as exc:
        raise UserError(f"the index is half written by an interrupted update and could not be repaired ({exc});"
                        " run 'stdnews index update', then start the chat again") from None
    if report is not None:
        for path, error in report.failed:
            print(f"index: error: {path}: {error}", file=sys.stderr, flush=True)
        print(f"index: repaired: {report.summary()}", file=sys.stderr, flush=True)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
