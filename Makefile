# Two entry points: `make chat` (set up, index the corpus, serve the chat window)
# and `make test` (set up, install what the tests need, run the whole suite).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install install-local-llm chat index test test-deps eval-gate lint clean

# make chat LLM=local: answers written by the packaged instruction model (offline; LLM_SIZE=0.5b for the
# smaller one). Other values (openai, ollama, llamacpp) pass through to --llm with their own settings.
LLM ?=
LLM_SIZE ?=
CHAT_FLAGS := $(if $(LLM),--llm $(LLM)) $(if $(LLM_SIZE),--llm-size $(LLM_SIZE))

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"   # the CPU build first, so nothing pulls CUDA
	$(BIN)/pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

index: install
	$(BIN)/stdnews index update   # incremental: a no-op when nothing changed

install-local-llm: install
	bash .ci/llama.sh $(BIN)
	$(BIN)/pip install -q -e ".[local-llm]"

chat: index $(if $(filter local,$(LLM)),install-local-llm)
	$(BIN)/stdnews chat $(CHAT_FLAGS)

test-deps: install
	bash .ci/test-deps.sh $(BIN)

test: test-deps
	$(BIN)/pytest -q -ra

# Quality gate: the evaluation sets with thresholds just under the last measured figures
# (each run prints "a gate just under this run: ..."); a regression fails CI. The real-news
# set is used from ../shared (evaluation only, never copied here: its README).
REAL_SET := ../shared/evalsets/realtimeqa-2025-dev
SEED_GATE := --min hit@1=0.97 --min hit@5=0.99 --min mrr@10=0.98 --min evidence@5=0.95 \
	--min answer_accuracy=0.80 --min refusal_accuracy=0.38 --min false_refusal_rate=0.02 \
	--min overall_accuracy=0.74 --min citation_precision=0.97 --min supported_sentence_rate=0.99
# 15 questions (one is 0.067): held to no worse than before the fitted weights, which now score 1.000 on each
STANDARDS_GATE := --min hit@1=0.92 --min mrr@10=0.96 --min evidence@5=0.99 --min answer_accuracy=0.92 \
	--min refusal_accuracy=0.49 --min false_refusal_rate=0.01 --min citation_precision=0.99
REAL_GATE := --min hit@1=0.81 --min hit@5=0.95 --min mrr@10=0.87 --min evidence@5=0.97 \
	--min answer_accuracy=0.88 --min refusal_accuracy=0.54 --min false_refusal_rate=0.09 \
	--min overall_accuracy=0.81 --min citation_precision=0.80 --min supported_sentence_rate=0.99

eval-gate: install
	$(BIN)/stdnews eval run --set evals/sets/seed.jsonl --corpus corpus --out eval-out/seed $(SEED_GATE)
	$(BIN)/stdnews eval run --set evals/sets/standards.jsonl --corpus evals/sets/standards-corpus \
		--out eval-out/standards $(STANDARDS_GATE)
	$(BIN)/stdnews eval run --set $(REAL_SET)/set.jsonl --corpus $(REAL_SET)/corpus \
		--out eval-out/realtimeqa $(REAL_GATE)

lint: install
	$(BIN)/ruff check index assistant evals tests bench

clean:
	rm -rf .stdnews .pytest_cache
