"""The ``stdnews`` command line. Builds the settings once and hands them down;
every error a user can cause ends in one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from index.errors import UserError

Handler = Callable[[argparse.Namespace], int]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--home", type=Path, default=argparse.SUPPRESS, help="data directory (default ./.stdnews)")
    p.add_argument("--chroma-url", default=argparse.SUPPRESS, help="Chroma server URL instead of the embedded store")
    p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="TOML settings file")
    p.add_argument("--corpus", type=Path, default=argparse.SUPPRESS, help="corpus folder (default ./corpus)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stdnews", description="Answers about standards news, with citations.")
    _common(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    idx = sub.add_parser("index", help="build and inspect the index")
    isub = idx.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_ in (("update", "index new and changed bulletins, drop removed ones"),
                        ("rebuild", "drop the index and build it again")):
        p = isub.add_parser(name, help=help_)
        _common(p)
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(handler=cmd_index_update if name == "update" else cmd_index_rebuild)
    p = isub.add_parser("add", help="copy files into the corpus and index them")
    _common(p)
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--replace", action="store_true",
                   help="replace bulletins of the same name (any extension); the old file goes to <home>/backups"
                        " and its catalog entry is dropped")
    p.set_defaults(handler=cmd_index_add)
    p = isub.add_parser("watch", help="keep the index current as files arrive in the corpus folder")
    _common(p)
    p.add_argument("--interval", type=float, default=5.0,
                   help="seconds between checks for files edited in place (default 5); new, renamed and"
                        " removed files are seen at once")
    p.set_defaults(handler=cmd_index_watch)
    p = isub.add_parser("status", help="what the index holds")
    _common(p)
    p.add_argument("--verify", action="store_true", help="check record manager, Chroma and BM25 agree")
    p.add_argument("--json", action="store_true", help="everything, every bulletin and duplicate group, as JSON")
    p.add_argument("--all", action="store_true",
                   help="list every bulletin and duplicate group (without it: the last indexed and the largest)")
    p.set_defaults(handler=cmd_index_status)

    p = sub.add_parser("ask", help="answer one question")
    _common(p)
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer object as JSON")
    p.add_argument("--k", type=int, default=None, help="passages to retrieve")
    p.add_argument("--since", default=None, help="only articles on or after YYYY-MM-DD")
    p.add_argument("--until", default=None, help="only articles on or before YYYY-MM-DD")
    p.add_argument("--as-of", default=None, metavar="YYYY-MM-DD",
                   help="the date the question is asked on (default today): later articles are not evidence;"
                        " 'this week', 'recently' resolve against it")
    p.add_argument("--publisher", default=None)
    p.add_argument("--bulletin", action="append", default=None, help="doc_id (repeatable)")
    p.add_argument("--standard", action="append", default=None,
                   help="only passages naming this standard or committee, any spelling (repeatable)")
    p.add_argument("--org", action="append", default=None, help="only passages naming this organisation")
    p.add_argument("--history", type=Path, default=None, help="JSON file of earlier [user, assistant] turns")
    _llm_flags(p)
    p.set_defaults(handler=cmd_ask)

    p = sub.add_parser("chat", help="serve the chat window")
    _common(p)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network, use --auth)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    p.add_argument("--auth", default=argparse.SUPPRESS, help="USER:PASS (or STDNEWS_AUTH)")
    p.add_argument("--no-watch", action="store_true",
                   help="do not index files that arrive in the corpus folder while serving")
    _llm_flags(p)
    p.set_defaults(handler=cmd_chat)

    p = sub.add_parser("whats-new", help="articles that updates added, from the index's own log")
    _common(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--since", default=None, help="everything added on or after YYYY-MM-DD")
    g.add_argument("--last-update", action="store_true", help="what the last update added (default)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_whats_new)

    p = sub.add_parser("digest", help="what arrived, by standard/committee and story, with lead sentences and"
                                      " citations")
    _common(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--since", default=None, help="everything added on or after YYYY-MM-DD")
    g.add_argument("--last-poll", action="store_true",
                   help="what the last update that added anything added (default)")
    p.add_argument("--standard", action="append", default=[], help="only stories naming this standard or"
                   " committee, any spelling; a standard includes its parts (repeatable)")
    p.add_argument("--org", action="append", default=[], help="only stories naming this organisation, in the"
                   " text or as publisher (repeatable)")
    p.add_argument("--format", choices=["text", "md", "json"], default="text")
    p.set_defaults(handler=cmd_digest)

    from assistant.feeds_cli import add_parser as add_feeds_parser

    add_feeds_parser(sub, _common)

    fb = sub.add_parser("feedback", help="answers users rated in the chat window")
    fsub = fb.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = fsub.add_parser("export", help="write the feedback as JSON Lines")
    _common(p)
    p.add_argument("--out", type=Path, default=None, help="file to write (default: stdout)")
    p.set_defaults(handler=cmd_feedback_export)

    ev = sub.add_parser("eval", help="run and compare evaluation sets")
    esub = ev.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = esub.add_parser("run", help="run an evaluation set")
    _common(p)
    p.add_argument("--set", dest="set_path", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--min", dest="minimums", action="append", default=[], metavar="METRIC=VALUE")
    p.add_argument("--every", type=int, default=1, metavar="K",
                   help="ask only every K-th question of the set (1st, K+1th, ...): a slow answerer's sample")
    _llm_flags(p)
    p.set_defaults(handler=cmd_eval)
    p = esub.add_parser("fit", help="fit the shipped weights on several sets, with cross-validation")
    _common(p)
    p.add_argument("--set", dest="fit_sets", action="append", required=True, metavar="FILE[=CORPUS]",
                   help="a set and its corpus (default: the folder 'corpus' beside the set, else '<set>-corpus' "
                        "beside it, else --corpus); repeat for each set")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--max-false-refusals", type=float, default=0.08,
                   help="the refusal threshold keeps out-of-fold false refusals within this on every set")
    p.add_argument("--out", type=Path, default=None, help="weights file to write (default: the shipped one)")
    p.add_argument("--dump", type=Path, default=None, help="also write each held-out answer with its features (JSONL)")
    p.set_defaults(handler=cmd_eval)
    p = esub.add_parser("compare", help="compare two runs")
    _common(p)
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.set_defaults(handler=cmd_eval)
    return parser


def _llm_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm", choices=["none", "local", "openai", "ollama", "llamacpp"], default=argparse.SUPPRESS,
                   help="who writes the answer: none (quotes, the default), local (the packaged model, offline)...")
    p.add_argument("--llm-size", choices=["1.5b", "0.5b"], default=argparse.SUPPRESS,
                   help="the packaged model --llm local runs (default 1.5b)")
    p.add_argument("--llm-base-url", default=argparse.SUPPRESS)
    p.add_argument("--llm-model", default=argparse.SUPPRESS)
    p.add_argument("--llm-model-path", type=Path, default=argparse.SUPPRESS)


_SETTING_FLAGS = ("home", "chroma_url", "config", "corpus", "auth", "llm", "llm_size", "llm_base_url", "llm_model",
                  "llm_model_path")


def settings_from(args: argparse.Namespace) -> Any:
    from index.settings import load_settings

    try:
        return load_settings(**{k: getattr(args, k) for k in _SETTING_FLAGS if hasattr(args, k)})
    except Exception as exc:  # pydantic ValidationError: a bad value in env or TOML
        raise UserError(f"bad setting: {str(exc).splitlines()[0:3]}") from None


# index -----------------------------------------------------------------------
def _print_report(report: Any) -> int:
    for path, why in report.failed:
        print(f"error: {path}: {why}", file=sys.stderr)
    for path, why in report.notes:  # indexed, with a caveat (an e-mail's charset guessed)
        print(f"note: {path}: {why}", file=sys.stderr)
    print(report.summary())
    if report.embedded == 0 and not report.failed and not report.removed_docs:
        print("nothing to embed: the index is up to date")
    if report.failed:
        print(f"{len(report.failed)} file(s) could not be indexed; everything else was", file=sys.stderr)
        return 1
    return 0


def _index(args: argparse.Namespace) -> Any:
    from index.indexer import Index

    return Index(settings_from(args))


def cmd_index_update(args: argparse.Namespace) -> int:
    return _print_report(_index(args).update(progress=not args.quiet))


def cmd_index_rebuild(args: argparse.Namespace) -> int:
    return _print_report(_index(args).rebuild(progress=not args.quiet))


def cmd_index_add(args: argparse.Namespace) -> int:
    from index.indexer import ASK_TO_REPLACE
    from index.watch import hand_over, running_watcher

    index = _index(args)
    watcher = None if args.replace else running_watcher(index)  # replacing also edits the catalog: done here
    if watcher and not args.quiet:
        print(f"handing over to the running watcher (pid {watcher['pid']})", file=sys.stderr, flush=True)
    if watcher:
        report = hand_over(index, args.files)
    else:
        report = index.add(args.files, progress=not args.quiet, replace=args.replace,
                           before_copy=lambda plan: _drop_replaced_entries(index, plan))
    hint = f"pass --replace to replace it (the old file would be kept in {index.settings.home / 'backups'})"
    report.failed = [(path, why.replace(ASK_TO_REPLACE, hint)) for path, why in report.failed]
    return _print_report(report)


def _drop_replaced_entries(index: Any, plan: Sequence[Any]) -> None:
    """``index add --replace``: the catalog entries of replaced bulletins described the old text."""
    from index.catalog import replace_entries

    replaced = [p.doc_id for p in plan if p.replacing]
    if replaced:
        replace_entries(index.settings.corpus, {d: None for d in replaced}, index.settings.home / "backups")


def cmd_index_watch(args: argparse.Namespace) -> int:
    import signal

    from index import memory
    from index.watch import Watcher, feed_printer, report_printer

    memory.for_long_run()
    index = _index(args)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    with Watcher(index, args.interval, on_feed=feed_printer()) as watcher:
        try:
            index.warm(update=True)  # a new bulletin then waits only for its own work
            watcher.run(report_printer(), on_ready=lambda: print(  # once the folder is indexed
                f"watching {index.settings.corpus} (new files at once, changes every {args.interval:g} s)"
                " and polling the feeds that are due; Ctrl-C to stop", flush=True))
        except KeyboardInterrupt:
            print("stopped watching", flush=True)
    return 0


def cmd_whats_new(args: argparse.Namespace) -> int:
    from index.indexer import Index

    articles = Index(settings_from(args)).whats_new(since=args.since)
    if args.json:
        print(json.dumps(articles, ensure_ascii=False, indent=2))
        return 0
    if not articles:
        print("nothing new" + (f" since {args.since}" if args.since else " in the last update"))
    for a in articles:
        print(f"{a['date'] or '????-??-??'}  {a['title']}  [{a['publisher'] or '?'}; {a['doc_id']}]")
        if a.get("lead"):
            print(f"    {a['lead']}")
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from assistant.digest import build
    from assistant.digest_format import render
    from index.indexer import Index

    print(render(build(Index(settings_from(args)), args.since, args.standard, args.org), args.format))
    return 0


def cmd_index_status(args: argparse.Namespace) -> int:
    index = _index(args)
    st = index.status() if args.json or args.all else index.summary()
    problems: list[str] = []
    refused: list[str] = []
    if args.verify:  # the stores against each other, then the index against the corpus it was built from
        check = index.verify_corpus(args.corpus if hasattr(args, "corpus") else None)
        problems, refused = [*index.verify(), *check.mismatches], check.refused
    if args.json:
        print(json.dumps({**st, "problems": problems, "refused": refused}, indent=2, default=str))
    else:
        print(f"data directory: {st['home']}   store: {st['store']}   fingerprint: {st['fingerprint']}")
        more = st.get("more", {})
        print(f"{st['bulletins']} bulletins, {st['articles']} articles, {st['chunks']} chunks,"
              f" {st.get('duplicate_groups', len(st['duplicates']))} duplicate group(s)")
        if more.get("documents"):
            print(f"  the {len(st['documents'])} indexed last ('--all' lists all {st['bulletins']}):")
        for d in st["documents"]:
            print(f"  {d['doc_id']}: {len(d['articles'])} article(s), {d['chunks']} chunks"
                  f" - {d['publisher'] or '?'} {d['date'] or ''}")
        if more.get("duplicates"):
            print(f"  the {len(st['duplicates'])} largest duplicate groups ('--all' lists all"
                  f" {st['duplicate_groups']}):")
        sizes = st.get("group_sizes") or [len(g) for g in st["duplicates"]]
        for grp, size in zip(st["duplicates"], sizes, strict=True):
            print("  same story: " + "  =  ".join(f"{d['doc_id']} \"{d['title'][:60]}\"" for d in grp)
                  + (f"  (and {size - len(grp)} more)" if size > len(grp) else ""))
        last = st["last_update"]
        if last:
            from datetime import datetime

            when = datetime.fromtimestamp(last["at"]).isoformat(timespec="seconds")
            print(f"last {last['kind']}: {when}: embedded {last['embedded']} chunks, deleted {last['deleted']};"
                  f" new {', '.join(last['added_docs']) or '-'}; changed {', '.join(last['changed_docs']) or '-'};"
                  f" removed {', '.join(last['removed_docs']) or '-'}")
            for art in last.get("new_articles", [])[:10]:
                print(f"    + {art['date'] or '????-??-??'}  {art['title']}")
    if args.verify:
        for p in problems:
            print(f"mismatch: {p}", file=sys.stderr)
        for r in refused:  # the index is as updates left it; they reported these files, and would again
            print(f"refused: {r}", file=sys.stderr)
        print("verify: record manager, Chroma, BM25 and the chunk table agree, and the index holds the corpus"
              + (f" except {len(refused)} refused file(s): fix or remove them" if refused else "")
              if not problems
              else f"verify: {len(problems)} mismatch(es); run 'stdnews index update' or 'stdnews index rebuild'")
        return 1 if problems else 0
    return 0


# ask / chat / eval -------------------------------------------------------------
def cmd_ask(args: argparse.Namespace) -> int:
    from assistant.answer import Quote  # the terminal shows the written answer as it comes, not the quote first
    from assistant.pipeline import Assistant, Filters

    settings = settings_from(args)
    history: list[tuple[str, str]] = []
    if args.history:
        try:
            history = [tuple(t) for t in json.loads(args.history.read_text())]  # type: ignore[misc]
        except (OSError, ValueError, TypeError) as exc:
            raise UserError(f"--history {args.history}: not a JSON list of [user, assistant] pairs ({exc})") from None
    filters = Filters.parse(since=args.since, until=args.until, publisher=args.publisher, bulletins=args.bulletin,
                            standards=args.standard, orgs=args.org, as_of=args.as_of)
    bot = Assistant(settings)
    if args.json:
        result = bot.ask(args.question, history=history, k=args.k, filters=filters)
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return 0
    live = bot.answerer.name != "extractive"  # only an LLM streams in pieces worth watching
    result = bot.ask(args.question, history=history, k=args.k, filters=filters,
                     on_delta=(lambda d: isinstance(d, Quote) or print(d, end="", flush=True)) if live else None)
    if live:
        print("\n")  # the checked answer below renumbers citations to the sources list
    print(result.answer)
    print(result.render_sources())
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.app import serve

    return serve(settings_from(args), host=args.host, port=args.port, watch=not args.no_watch)


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from assistant.feedback import export_jsonl

    count = export_jsonl(settings_from(args), args.out)
    print(f"exported {count} feedback record(s)" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    # The entry point composes every stage; only here does the assistant reach the evals package.
    from evals.cli import run_command

    return run_command(args, settings_from(args), argv=args.argv)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # eval fit records the command that wrote the weights
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `stdnews index status | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
