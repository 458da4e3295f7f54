"""Where everything sits in the chat window, and which handler each event calls.
Named API endpoints (``/ask``, ``/chat``, ``/library``, ``/whats_new``, ``/add_bulletins``,
``/remove_bulletin``, ``/feeds``, ``/add_feed``, ``/remove_feed``, ``/poll_feeds``) make the same
window scriptable with ``gradio_client``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from assistant import ui_render as ui
from index.load import SUPPORTED

if TYPE_CHECKING:
    from assistant.app import ChatApp

TAGLINE = ("Answers about standards news (ISO/IEC JTC 1, IEC, ITU, SAC…) from your bulletins, "
           "citing the passages it used.")
# Every way of asking (the chat's button, Enter, an example, the /ask API) shares these slots; a question
# is bounded (Assistant.check), so a slot frees within a second or so and the queue moves for everyone.
ANSWER_SLOTS = 4
PLACEHOLDER = ("<div style='text-align:center'><h3>Ask about standards news</h3>"
               "<p>Every answer cites its passages; when the bulletins do not say, the assistant says so.</p>"
               "</div>")


def layout(app: ChatApp, examples: list[str]) -> gr.Blocks:
    st = app.index.status()
    docs = st["documents"]
    app.facet_choices()  # the organisation names the filters normalise against, before any page has loaded
    # The lists start empty: the page config (and the API description Gradio embeds in the login page, even
    # unauthenticated) lists a dropdown's choices. The load event (``app.refresh``, run only for a signed-in
    # session) fills them, as it does after every upload or removal.
    publisher_choices: list[tuple[str, str]] = [("Any publisher", "")]
    bulletin_choices: list[tuple[str, str]] = []
    standard_choices: list[tuple[str, str]] = []
    org_choices: list[tuple[str, str]] = []

    with gr.Blocks(title="stdnews · standards news assistant", analytics_enabled=False) as demo:
        turns = gr.State([])
        feedback_id = gr.State(None)
        with gr.Row(elem_id="sn-header"):
            gr.HTML(f'<div><h1><span class="sn-logo">◆</span> stdnews</h1>'
                    f'<div class="sn-tagline">{ui.esc(TAGLINE)}</div></div>')
            status = gr.HTML(ui.status_html(st), elem_id="sn-status-line")
        with gr.Tabs():
            with gr.Tab("Ask", id="ask"), gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=210, elem_id="sn-filters"):
                    gr.Markdown("**Filters**")
                    since = gr.Textbox("", label="From date", placeholder="YYYY-MM-DD", max_lines=1)
                    until = gr.Textbox("", label="To date", placeholder="YYYY-MM-DD", max_lines=1)
                    as_of = gr.Textbox("", label="As of", placeholder="YYYY-MM-DD", max_lines=1, elem_id="sn-as-of",
                                       info="the day the question is asked on; empty: today")
                    publisher = gr.Dropdown(label="Publisher", value="", choices=publisher_choices,
                                            allow_custom_value=True)  # checked by the filter, not the start list
                    bulletins = gr.Dropdown(label="Bulletins", choices=bulletin_choices, multiselect=True,
                                            info="none chosen: all", allow_custom_value=True)  # added since start
                    standards = gr.Dropdown(label="Standards & committees", choices=standard_choices,
                                            multiselect=True, allow_custom_value=True, elem_id="sn-standards",
                                            info="type any spelling; (n): passages naming it")
                    orgs = gr.Dropdown(label="Organisations", choices=org_choices, multiselect=True,
                                       allow_custom_value=True, elem_id="sn-orgs",
                                       info="(n): passages naming it")
                    k = gr.Slider(1, 10, value=app.bot.settings.k, step=1, label="Passages")
                    gr.Markdown("A date filter leaves out articles whose date is unknown.",
                                elem_classes="sn-hint")
                    new_chat = gr.Button("New conversation", size="sm")
                with gr.Column(scale=4, min_width=380):
                    chatbot = gr.Chatbot(
                        elem_id="sn-chat", show_label=False, height="64vh", layout="bubble",
                        render_markdown=False, sanitize_html=True, allow_tags=False, latex_delimiters=[],
                        buttons=[], feedback_options=("Like", "Dislike"), placeholder=PLACEHOLDER,
                        examples=[{"text": q, "display_text": q} for q in examples])
                    with gr.Row(equal_height=True):
                        question = gr.Textbox(show_label=False, scale=8, max_lines=4, autofocus=True,
                                              max_length=app.bot.settings.max_question_chars,
                                              placeholder="Ask a question, e.g. Who convenes JTC 1/WG 11?",
                                              elem_id="sn-question")
                        send = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="sn-send")
                    with gr.Group(visible=False, elem_id="sn-feedback") as feedback_box:
                        comment = gr.Textbox(label="Comment (optional)", max_lines=4)
                        comment_send = gr.Button("Send comment", size="sm")
                with gr.Column(scale=3, min_width=320):
                    sources = gr.HTML(ui.sources_placeholder(st["bulletins"]), elem_id="sn-sources")
            with gr.Tab("Library", id="library"), gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    gr.Markdown("**What's new** · the last update's stories (one that several bulletins told, once),"
                                " or all added since a date; narrow them to standards or organisations")
                    with gr.Row(equal_height=False, elem_id="sn-new-row"):
                        added_since = gr.DateTime(None, include_time=False, type="string", label="Added since",
                                                  scale=2, elem_id="sn-added-since")
                        show_new = gr.Button("Show", size="sm", scale=1, min_width=80, elem_id="sn-show-new")
                        last_new = gr.Button("Last update", size="sm", scale=1, min_width=80)
                    with gr.Row(equal_height=False, elem_id="sn-new-filters"):  # as `stdnews digest` filters
                        new_standards = gr.Dropdown(label="Standards & committees", choices=standard_choices,
                                                    multiselect=True, allow_custom_value=True, scale=1,
                                                    elem_id="sn-new-standards", info="any spelling; none: all")
                        new_orgs = gr.Dropdown(label="Organisations", choices=org_choices, multiselect=True,
                                               allow_custom_value=True, scale=1, elem_id="sn-new-orgs",
                                               info="named, or publishing; none: all")
                    whats_new = gr.HTML(app.whats_new(None), elem_id="sn-whats-new")
                    gr.Markdown("**Library**")
                    table = gr.HTML(ui.library_html(docs), elem_id="sn-table")
                    gr.Markdown("**Same story, several bulletins**")
                    dups = gr.HTML(ui.duplicates_html(st["duplicates"]), elem_id="sn-dups")
                    gr.Markdown("**What the last update did**")
                    last = gr.HTML(ui.last_update_html(st["last_update"]), elem_id="sn-last-update")
                with gr.Column(scale=2, min_width=300):
                    gr.Markdown(f"**Add a bulletin** · {' '.join(SUPPORTED)}; saved into the corpus and indexed")
                    files = gr.File(file_count="multiple", file_types=list(SUPPORTED),
                                    type="filepath", label="Bulletin files", elem_id="sn-upload")
                    with gr.Row():
                        up_publisher = gr.Textbox("", label="Publisher (optional)", max_lines=1)
                        up_date = gr.Textbox("", label="Date (optional)", placeholder="YYYY-MM-DD", max_lines=1)
                    up_title = gr.Textbox("", label="Title (optional; else its first line)", max_lines=1)
                    up_replace = gr.Checkbox(False, label="Replace existing bulletins with the same name",
                                             info="the old file is kept as a backup; its catalog details give way"
                                                  " to these", elem_id="sn-replace")
                    add_btn = gr.Button("Add to library", variant="primary", elem_id="sn-add")
                    add_msg = gr.HTML(elem_id="sn-add-msg", min_height=40)
                    gr.Markdown("**Remove a bulletin** · deletes its file from the corpus")
                    to_remove = gr.Dropdown(label="Bulletin", choices=bulletin_choices, value=None,
                                            allow_custom_value=True)  # one added since: checked against the index
                    remove_btn = gr.Button("Remove…", elem_id="sn-remove")
                    with gr.Row(visible=False) as confirm_row:
                        remove_yes = gr.Button("Yes, remove it", variant="stop", size="sm")
                        remove_no = gr.Button("Cancel", size="sm")
                    remove_msg = gr.HTML(elem_id="sn-remove-msg", min_height=40)
                    gr.Markdown("**News feeds** · RSS or Atom; each entry becomes a bulletin, new ones arrive by"
                                " themselves (polled every 30 min, failing feeds less often)")
                    feeds_table = gr.HTML(elem_id="sn-feeds")
                    feed_url = gr.Textbox("", label="Feed address", placeholder="https://…/feed.xml", max_lines=1,
                                          elem_id="sn-feed-url")
                    with gr.Row():
                        feed_name = gr.Textbox("", label="Name (optional)", max_lines=1)
                        feed_publisher = gr.Textbox("", label="Publisher (optional; else the feed's title)",
                                                    max_lines=1)
                    with gr.Row():
                        feed_add = gr.Button("Add feed", variant="primary", elem_id="sn-feed-add")
                        feed_poll = gr.Button("Poll feeds now", elem_id="sn-feed-poll")
                    with gr.Row(equal_height=True):
                        feed_choice = gr.Dropdown(label="Feed", choices=[], value=None, scale=2,
                                                  allow_custom_value=True, elem_id="sn-feed-choice")
                        feed_purge = gr.Checkbox(False, label="also remove its bulletins", scale=1)
                    feed_remove = gr.Button("Remove feed", elem_id="sn-feed-remove")
                    feed_msg = gr.HTML(elem_id="sn-feed-msg", min_height=40)

        refreshed = [status, publisher, bulletins, table, last, to_remove, standards, orgs, whats_new, added_since,
                     dups, new_standards, new_orgs]
        chat_in = [question, chatbot, turns, since, until, publisher, bulletins, k, standards, orgs, as_of]
        chat_out = [chatbot, sources, turns, question, feedback_box]
        chat_opts: dict[str, Any] = {"show_progress": "hidden",  # the chat shows its own "Searching…"
                                     "concurrency_limit": ANSWER_SLOTS, "concurrency_id": "answer"}
        send.click(app.respond, chat_in, chat_out, api_name="chat", **chat_opts)
        question.submit(app.respond, chat_in, chat_out, api_visibility="private", **chat_opts)
        chatbot.example_select(_example_text, None, question, api_visibility="private").then(
            app.respond, chat_in, chat_out, api_visibility="private", **chat_opts)
        chatbot.select(app.show_turn, turns, sources, api_visibility="private")
        chatbot.like(app.rate, turns, [turns, feedback_id, feedback_box, comment], api_visibility="private")
        comment_send.click(app.comment, [feedback_id, comment], [feedback_box, comment], api_visibility="private")

        def reset() -> tuple[Any, ...]:
            return [], [], ui.sources_placeholder(app.index.headline()["bulletins"]), None, gr.update(visible=False)

        new_chat.click(reset, None, [chatbot, turns, sources, feedback_id, feedback_box], api_visibility="private")
        chatbot.clear(reset, None, [chatbot, turns, sources, feedback_id, feedback_box], api_visibility="private")

        def add(files: list[str] | None, publisher: str, date: str, title: str, replace: bool = False,
                progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[Any, ...]:  # noqa: B008
            return app.add(files, publisher, date, title, replace, progress)

        form = [files, up_publisher, up_date, up_title]
        add_btn.click(add, [*form, up_replace], [add_msg, *form, *refreshed, up_replace],
                      api_name="add_bulletins", concurrency_limit=1, concurrency_id="library", show_progress_on=add_msg)
        remove_btn.click(lambda d: gr.update(visible=bool(d)), to_remove, confirm_row, api_visibility="private")
        remove_no.click(lambda: gr.update(visible=False), None, confirm_row, api_visibility="private")
        remove_yes.click(app.remove, to_remove, [remove_msg, confirm_row, *refreshed], api_name="remove_bulletin",
                         concurrency_limit=1, concurrency_id="library", show_progress_on=remove_msg)
        new_in = [added_since, new_standards, new_orgs]
        show_new.click(app.whats_new, new_in, whats_new, api_name="whats_new", show_progress="hidden")
        for part in new_in:
            part.change(app.whats_new, new_in, whats_new, api_visibility="private", show_progress="hidden")
        last_new.click(lambda s, o: (None, app.whats_new(None, s, o)), new_in[1:], [added_since, whats_new],
                       api_visibility="private", show_progress="hidden")
        demo.load(app.refresh, None, refreshed, api_name="library", show_progress="hidden")
        feed_view = [feeds_table, feed_choice]
        demo.load(app.feeds, None, feed_view, api_name="feeds", show_progress="hidden")
        gr.Timer(15).tick(lambda: app.feeds()[0], None, feeds_table, api_visibility="private",  # last polls, errors
                          show_progress="hidden")
        feed_opts: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "library", "show_progress_on": feed_msg}
        feed_add.click(app.add_feed, [feed_url, feed_name, feed_publisher],
                       [feed_msg, feed_url, *feed_view, *refreshed], api_name="add_feed", **feed_opts)
        feed_remove.click(app.remove_feed, [feed_choice, feed_purge], [feed_msg, *feed_view, *refreshed],
                          api_name="remove_feed", **feed_opts)
        feed_poll.click(app.poll_feeds, None, [feed_msg, *feed_view, *refreshed], api_name="poll_feeds", **feed_opts)
        gr.api(app.ask, api_name="ask", concurrency_limit=ANSWER_SLOTS, concurrency_id="answer")
    return demo


def _example_text(evt: gr.SelectData) -> str:
    value = evt.value
    return value.get("text", "") if isinstance(value, dict) else str(value)
