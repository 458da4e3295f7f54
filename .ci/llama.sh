#!/usr/bin/env bash
# llama-cpp-python (with its OpenAI-compatible server) into the venv: compiled from source once
# (13-25 min on 2 cores), the wheel cached in ~/.cache/stdnews/wheels and reinstalled from there.
set -euo pipefail
BIN=${1:-.venv/bin}
LLAMA_VERSION=0.3.36
# Portable build: without GGML_NATIVE the wheel carries no CPU-specific code (the native
# build compiled Intel AMX kernels that segfault in our VMs), so a cached wheel runs anywhere.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF"
WHEELS=${STDNEWS_WHEEL_CACHE:-$HOME/.cache/stdnews/wheels}/llama-portable

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
