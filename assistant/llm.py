"""LLM answers through LangChain chat models: any OpenAI-compatible server, Ollama,
or a local GGUF file run in-process by llama.cpp. The extractive answerer stays
the evidence gate (it refuses, the LLM is never asked) and the fallback (an
unreachable or failing server gives its answer plus a one-line note)."""

from __future__ import annotations

import atexit
import importlib.util
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from assistant import prompt
from assistant.answer import REFUSAL, Draft, History, OnDelta, Quote
from assistant.compose import ExtractiveAnswerer
from assistant.evidence import sentences
from assistant.question import standalone
from assistant.retrieve import Passage
from index.errors import UserError
from index.settings import Settings
from index.tokenize import tokens

__all__ = ["BACKENDS", "LLMAnswerer", "LlamaCppChat", "make_llm_answerer"]

MAX_TOKENS = 256
SUPPORTED = 0.6
EXCERPT_CHARS = 1000  # what --llm local reads: ~300 tokens, ~5 s of prompt for the 1.5B model on 2 cores
_MULTI = re.compile(r"\[(?:passages?|sources?|refs?\.?)?\s*(\d{1,3}(?:\s*(?:[,;]|and|-|–)\s*\d{1,3})*)\s*\]", re.I)
_CITE = re.compile(r"\[(\d{1,3})\]")
_SENT = re.compile(r"(?<=[.!?])\s+")
_AFTER_STOP = re.compile(r"\s*([.!?])\s*((?:\[\d{1,3}\]\s*)+)[.!?]?(?=\s|$)")
_NOT_FOUND = re.compile(r"not (?:in|found in|covered by|mentioned in) the (?:bulletins|passages)|"
                        r"(?:bulletins|passages) do not (?:say|answer|mention|hold|contain|cover)", re.I)


class LLMAnswerer:
    """Streams an LLM's cited answer; refuses and falls back exactly like the extractive path.

    The extractive answer is the gate (it refuses, the LLM is never asked) and the first thing shown
    (a ``Quote`` through ``on_delta``); the written answer replaces it only when its citations check out.
    With ``excerpt_chars`` the LLM reads the passages' best sentences (the extractive answerer's fitted
    ranking) within that many characters instead of whole passages: a small CPU model's time to the
    first word grows with every token it reads."""

    def __init__(self, chat: BaseChatModel, fallback: ExtractiveAnswerer, name: str = "llm",
                 cooldown_s: float = 30.0, min_overlap: float = 0.5, excerpt_chars: int | None = None,
                 strict: bool = False, condense: bool = True) -> None:
        self.chat = chat
        self.fallback = fallback
        self.name = name
        self.cooldown_s = cooldown_s  # after a failure, skip the LLM this long instead of waiting again
        self.min_overlap = min_overlap
        self.excerpt_chars = excerpt_chars
        self.strict = strict  # a written answer whose citations do not check out is replaced by the quote
        self.rewrites = condense  # follow-ups rewritten by the LLM (else the extractive path's heuristic)
        self._down: tuple[float, str] | None = None  # (monotonic time, reason) of the last failure

    def answer(self, question: str, passages: Sequence[Passage], history: History = (),
               on_delta: OnDelta | None = None, as_of: str | None = None) -> Draft:
        gate = self.fallback.draft(question, passages, history)
        if gate.refused or self._is_down():
            return self._fall_back(gate, on_delta, sent=False)
        if on_delta and self.strict:
            on_delta(Quote(gate.text))
        excerpts = self._excerpts(gate, passages) if self.excerpt_chars else None
        sent = False
        parts: list[str] = []
        try:
            for chunk in self.chat.stream(prompt.answer_messages(question, passages, history, as_of=as_of,
                                                                 excerpts=excerpts)):
                delta = str(chunk.text)
                if delta:
                    parts.append(delta)
                    sent = True
                    if on_delta:
                        on_delta(delta)
        except Exception as exc:
            note = self._failure(exc)
            if note is None:
                raise
            return self._fall_back(gate, on_delta, sent, note)
        text = tidy("".join(parts))
        if not text:
            return self._fall_back(gate, on_delta, sent, "LLM returned no text; extractive answer shown")
        if _NOT_FOUND.search(text) and not _CITE.search(text):
            if self.strict:  # the quote stands: on real news the model says so of answerable questions too
                return self._fall_back(gate, on_delta, sent, "written answer not shown (the model found no "
                                       "answer in the passages); the quote stands")
            return Draft(REFUSAL, refused=True, answerer=self.name,
                         notes=["the written answerer found no answer in the passages"])
        if self.strict:
            text = self._cite_unmarked(text, passages)
        draft = self._draft(text, passages)
        if self.strict and (problem := self._problem(text, passages, draft)):
            return self._fall_back(gate, on_delta, sent, f"written answer not shown ({problem}); the quote stands")
        return draft

    def _excerpts(self, gate: Draft, passages: Sequence[Passage]) -> dict[int, list[str]]:
        """The best sentences (as the gate ranked them) by passage number, in each passage's own order,
        within ``excerpt_chars``."""
        chosen: dict[int, list[str]] = {}
        used = 0
        for n, text in gate.ranked[:24]:
            if used + len(text) > (self.excerpt_chars or 0) and used:
                continue
            chosen.setdefault(n, []).append(text)
            used += len(text)
        order = {n: sentences(p.text) for n, p in enumerate(passages, 1)}
        return {n: sorted(s, key=lambda x: order[n].index(x) if x in order[n] else 0) for n, s in chosen.items()}

    def _cite_unmarked(self, text: str, passages: Sequence[Passage], share: float = 0.8) -> str:
        """Small models often drop the marker of a sentence they took from a passage: such a sentence gets
        the marker of the passage that holds most of its words, if that is ``share`` of them (else it
        stays without, and the citation check decides)."""
        out = []
        for sent in _SENT.split(text):
            words = set(tokens(sent))
            if sent.strip() and not _CITE.search(sent) and len(words) > 2:
                held = [len(words & set(tokens(p.text))) for p in passages]
                best = max(range(len(held)), key=lambda i: held[i], default=None)
                if best is not None and held[best] >= share * len(words):
                    body = sent.rstrip()
                    end = body[-1] if body[-1] in ".!?" else ""
                    sent = f"{body.rstrip('.!?')} [{best + 1}]{end}"
            out.append(sent)
        return " ".join(out)

    def _problem(self, text: str, passages: Sequence[Passage], draft: Draft) -> str | None:
        """Why a written answer's citations do not check out (None when they do)."""
        cited = [int(n) for n in _CITE.findall(text)]
        if not cited:
            return "it cites no passage"
        if not tokens(_CITE.sub("", text)) or any(s.strip() and not tokens(_CITE.sub("", s))
                                                     for s in _SENT.split(text)):
            return "it holds citations without words"
        titles = {" ".join(tokens(p.title)) for p in passages if p.title}
        if any(" ".join(tokens(_CITE.sub("", s))) in titles for s in _SENT.split(text)):
            return "it repeats a passage's title"
        if outside := sorted({n for n in cited if not 1 <= n <= len(passages)}):
            return f"it cites passages not given: {outside}"
        bare = [s for s in _SENT.split(text) if s.strip() and not _CITE.search(s) and len(s.split()) > 2]
        if bare:
            return f"{len(bare)} sentence(s) without a citation"
        if draft.notes:
            return draft.notes[0]
        return None

    def condense(self, question: str, history: History) -> str:
        """The follow-up rewritten by the LLM as a standalone question; the heuristic one when that fails."""
        if not history or not self.rewrites or self._is_down():
            return standalone(question, history)
        try:
            reply = str(self.chat.invoke(prompt.condense_messages(question, history)).text)
        except Exception as exc:
            if self._failure(exc) is None:
                raise
            return standalone(question, history)
        line = next((s.strip() for s in reply.splitlines() if s.strip()), "")
        line = re.sub(r"^(standalone question|question)\s*:\s*", "", line, flags=re.I).strip(" \"'“”")
        if not 3 <= len(line) <= max(300, 3 * len(question)):
            return standalone(question, history)
        return line

    def _draft(self, text: str, passages: Sequence[Passage]) -> Draft:
        """The LLM's text with the passage sentences nearest each cited sentence as quotes, and a note
        for sentences that share few words (under ``min_overlap`` of theirs) with the passages they cite."""
        quotes: dict[int, list[str]] = {}
        weak = 0
        for sent in _SENT.split(text):
            nums = [n for n in map(int, _CITE.findall(sent)) if 1 <= n <= len(passages)]
            words = set(tokens(_CITE.sub("", sent)))
            if not nums or not words:
                continue
            cited = set().union(*(tokens(passages[n - 1].text) for n in nums))
            if len(words & cited) / len(words) < self.min_overlap:
                weak += 1
            for n in nums:
                best = max(sentences(passages[n - 1].text) or [passages[n - 1].text],
                           key=lambda s: len(words & set(tokens(s))))
                if best not in quotes.setdefault(n, []):
                    quotes[n].append(best)
        notes = [f"{weak} sentence(s) share few words with the passages they cite"] if weak else []
        return Draft(text, notes=notes, quotes=quotes)

    def _fall_back(self, gate: Draft, on_delta: OnDelta | None, sent: bool, note: str | None = None) -> Draft:
        if note is None and not gate.refused and self._down:
            wait = self.cooldown_s - (time.monotonic() - self._down[0])
            note = f"LLM unreachable ({self._down[1]}; retrying in {max(wait, 0):.0f} s); extractive answer shown"
        if note:
            gate.notes.insert(0, note)
        gate.answerer = self.fallback.name
        if on_delta:
            on_delta(("\n\n" if sent else "") + gate.text)  # replaces any partial LLM text shown
        return gate

    def _is_down(self) -> bool:
        if self._down and time.monotonic() - self._down[0] > self.cooldown_s:
            self._down = None
        return self._down is not None

    def _failure(self, exc: Exception) -> str | None:
        """The one-line note for a connection, timeout or server error; None for anything else (a bug).
        An unreachable server is remembered for ``cooldown_s`` so the next call does not wait again."""
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:160]
        if isinstance(exc, _unreachable()):
            self._down = (time.monotonic(), reason)
            return f"LLM unreachable ({reason}); extractive answer shown"
        if isinstance(exc, _server_errors()):
            return f"LLM error ({reason}); extractive answer shown"
        return None


def tidy(text: str) -> str:
    """Normalise citation spellings small models use (``[1, 2]``, ``[Passage 3]``, ``[1-2]``) to ``[n]``."""

    def expand(m: re.Match[str]) -> str:
        nums: list[int] = []
        for part in re.split(r"\s*(?:[,;]|and)\s*", m.group(1)):
            lo, _, hi = re.sub(r"\s", "", part).replace("–", "-").partition("-")
            if hi and lo.isdigit() and hi.isdigit() and 0 < int(hi) - int(lo) < 10:
                nums.extend(range(int(lo), int(hi) + 1))
            elif lo.isdigit():
                nums.append(int(lo))
        return "".join(f"[{n}]" for n in nums)

    text = _MULTI.sub(expand, text)
    # "... in 2020. [1]": the marker belongs before the full stop, with the sentence it supports
    text = _AFTER_STOP.sub(lambda m: f" {''.join(m.group(2).split())}{m.group(1)}", text)
    return text.strip()


def _unreachable() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the LLM server cannot be reached or did not answer in time."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        import httpx

        kinds.append(httpx.TransportError)  # connect/read timeouts, refused, reset (Ollama's client)
    except ImportError:
        pass
    try:
        import openai

        kinds.append(openai.APIConnectionError)  # includes APITimeoutError
    except ImportError:
        pass
    return tuple(kinds)


def _server_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the server answered with an error (unknown model, prompt too long)."""
    kinds: list[type[BaseException]] = []
    try:
        import httpx

        kinds.append(httpx.HTTPStatusError)
    except ImportError:
        pass
    try:
        import openai

        kinds.append(openai.APIStatusError)
    except ImportError:
        pass
    try:
        import ollama

        kinds.append(ollama.ResponseError)
    except ImportError:
        pass
    return tuple(kinds)


# --- backends ---------------------------------------------------------------------------------------------


def _openai(settings: Settings) -> tuple[BaseChatModel, str]:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:
        raise UserError("--llm openai needs langchain-openai: pip install 'stdnews[llm]'") from exc
    if not settings.llm_base_url and settings.llm_api_key == "not-needed":
        raise UserError("--llm openai needs --llm-base-url URL (any OpenAI-compatible server) or an API key")
    model = settings.llm_model or "default"  # llama.cpp's server and many others ignore the name
    chat = ChatOpenAI(base_url=settings.llm_base_url, model=model, api_key=settings.llm_api_key,
                      timeout=settings.llm_timeout, max_retries=0, streaming=True, temperature=0.0,
                      max_tokens=MAX_TOKENS)
    return chat, f"openai:{model}"


def _ollama(settings: Settings) -> tuple[BaseChatModel, str]:
    try:
        from langchain_ollama import ChatOllama
    except ImportError as exc:
        raise UserError("--llm ollama needs langchain-ollama: pip install 'stdnews[llm]'") from exc
    if not settings.llm_model:
        raise UserError("--llm ollama needs --llm-model NAME (a model pulled into Ollama, e.g. llama3.2)")
    chat = ChatOllama(model=settings.llm_model, base_url=settings.llm_base_url, temperature=0.0,
                      num_predict=MAX_TOKENS, client_kwargs={"timeout": settings.llm_timeout})
    return chat, f"ollama:{settings.llm_model}"


def _llamacpp(settings: Settings) -> tuple[BaseChatModel, str]:
    path = settings.llm_model_path
    if path is None or not Path(path).is_file():
        raise UserError(f"--llm llamacpp needs --llm-model-path FILE.gguf (got {path}); point it at a GGUF file")
    return loaded(Path(path), settings.llm_threads), f"llamacpp:{Path(path).stem}"


def _local(settings: Settings) -> tuple[BaseChatModel, str]:
    """The packaged instruction model: joined and verified on first use, loaded once per process."""
    from assistant.packaged import MODELS, model_file
    from index.embed import default_models_dir

    if importlib.util.find_spec("llama_cpp") is None:
        raise UserError("--llm local needs llama.cpp and the model parts: make install-local-llm "
                        "(or bash .ci/llama.sh .venv/bin && pip install -e '.[local-llm]')")
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"joining the {settings.llm_size} model once",
                       file=sys.stderr)
        bar.update(done - bar.n)

    try:
        path = model_file(settings.llm_size, settings.models_dir or default_models_dir(), progress=progress)
    finally:
        if bar is not None:
            bar.close()
    return loaded(path, settings.llm_threads), f"local:{MODELS[settings.llm_size].name.removesuffix('.gguf')}"


_LOADED: dict[tuple[str, int | None], LlamaCppChat] = {}
_LOADING = threading.Lock()


@atexit.register
def _close_loaded() -> None:
    """Free the shared models before the interpreter tears down the modules llama.cpp's finaliser needs."""
    for chat in _LOADED.values():
        chat.close()
    _LOADED.clear()


def loaded(path: Path, threads: int | None = None) -> LlamaCppChat:
    """One llama.cpp model per file and process, shared by every answerer (the chat server's users
    take turns on it); ``threads`` defaults to every core."""
    key = (str(path.resolve()), threads)
    with _LOADING:
        if key not in _LOADED:
            chat = LlamaCppChat(model_path=str(path), n_threads=threads or os.cpu_count())
            # the first evaluation after a load pages the weights in (twice as slow); the fixed system
            # prompt evaluated now is a prefix llama.cpp reuses for every question
            chat.invoke(prompt.answer_messages("", []), max_tokens=1)
            _LOADED[key] = chat
        return _LOADED[key]


BACKENDS: dict[str, Callable[[Settings], tuple[BaseChatModel, str]]] = {
    "local": _local, "openai": _openai, "ollama": _ollama, "llamacpp": _llamacpp}


def make_llm_answerer(settings: Settings, fallback: ExtractiveAnswerer) -> LLMAnswerer:
    """The answerer for ``settings.llm``; the extractive ``fallback`` gates and backs it up."""
    if settings.llm not in BACKENDS:
        raise UserError(f"--llm {settings.llm!r} is not one of {', '.join(BACKENDS)}")
    chat, name = BACKENDS[settings.llm](settings)
    if settings.llm == "local":  # the packaged CPU model: excerpts to read, and a quote shown first
        # follow-ups keep the heuristic rewrite: it retrieves better than a small model's, and costs no seconds
        # a written sentence must share SUPPORTED of its words with what it cites: the rule the evaluation's
        # supported-sentence rate applies (evals/metrics.py SUPPORT_MIN, evals/README.md)
        return LLMAnswerer(chat, fallback, name=name, excerpt_chars=EXCERPT_CHARS, strict=True, condense=False,
                           min_overlap=SUPPORTED)
    return LLMAnswerer(chat, fallback, name=name)


class LlamaCppChat(BaseChatModel):
    """A GGUF model run in-process by llama-cpp-python, as a LangChain chat model that streams.

    Written here rather than taken from langchain-community: that package is large and this is
    forty lines; the GGUF's own chat template formats the messages."""

    model_path: str
    n_ctx: int = 4096
    n_threads: int | None = None
    max_tokens: int = MAX_TOKENS
    temperature: float = 0.0
    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any, /) -> None:
        try:
            import llama_cpp
        except ImportError as exc:
            raise UserError("--llm llamacpp needs llama-cpp-python: pip install 'stdnews[llamacpp]'") from exc
        try:
            with plain_cpu_buffers():
                self._llama = llama_cpp.Llama(model_path=self.model_path, n_ctx=self.n_ctx,
                                              n_threads=self.n_threads, verbose=False)
        except ValueError as exc:
            raise UserError(f"{self.model_path}: llama.cpp cannot load it ({exc}); is it a GGUF file?") from exc

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-in-process"

    def close(self) -> None:
        if self._llama is not None:
            self._llama.close()
            self._llama = None

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        chat = [{"role": roles.get(m.type, "user"), "content": m.text} for m in messages]
        with self._lock:  # one llama.cpp context, one generation at a time
            for part in self._llama.create_chat_completion(
                    messages=chat, stream=True, stop=stop, max_tokens=kwargs.get("max_tokens", self.max_tokens),
                    temperature=self.temperature):
                delta = part["choices"][0]["delta"].get("content") or ""
                if delta:
                    if run_manager:
                        run_manager.on_llm_new_token(delta)
                    yield ChatGenerationChunk(message=AIMessageChunk(content=delta))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        text = "".join(c.text for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessageChunk(content=text))])


_PARAMS_LOCK = threading.Lock()


@contextmanager
def plain_cpu_buffers() -> Iterator[None]:
    """Load models without llama.cpp's extra CPU buffer types when the library was built with AMX.

    The AMX matrix kernels of a natively built wheel crash (SIGSEGV in ``ldtilecfg``) on the
    virtual machines this project runs on; plain buffers cost some speed, never correctness."""
    import llama_cpp

    if not amx_built():
        yield
        return
    with _PARAMS_LOCK:
        original = llama_cpp.llama_cpp.llama_model_default_params

        def params() -> Any:
            p = original()
            p.use_extra_bufts = False
            return p

        llama_cpp.llama_cpp.llama_model_default_params = params
        try:
            yield
        finally:
            llama_cpp.llama_cpp.llama_model_default_params = original


def amx_built() -> bool:
    """Whether the installed llama.cpp CPU library has AMX kernels compiled in (and the CPU has AMX)."""
    import ctypes

    import llama_cpp

    for name in ("libggml-cpu.so", "libggml-cpu.dylib", "ggml-cpu.dll"):
        lib = Path(llama_cpp.__file__).parent / "lib" / name
        if lib.exists():
            try:
                return bool(ctypes.CDLL(str(lib)).ggml_cpu_has_amx_int8())
            except (OSError, AttributeError):
                return False
    return False
