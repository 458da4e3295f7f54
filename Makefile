# Two entry points: `make chat` (set up, index the corpus, serve the chat window)
# and `make test` (set up, install what the tests need, run the whole suite).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install chat index test test-deps lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==2.13.0"   # the CPU build first, so nothing pulls CUDA
	$(BIN)/pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

index: install
	$(BIN)/stdnews index update   # incremental: a no-op when nothing changed

chat: index
	$(BIN)/stdnews chat

test-deps: install
	bash .ci/test-deps.sh $(BIN)

test: test-deps
	$(BIN)/pytest -q -ra

lint: install
	$(BIN)/ruff check index assistant evals tests bench

clean:
	rm -rf .stdnews .pytest_cache
