#!/usr/bin/env bash
# Builds the peers `coderl bench peers` measures against, into .build-peers/ (ignored by git):
#  - llama.cpp from the source vendored in PyPI's llama-cpp-python sdist (version and sha256
#    pinned below), CPU only, built for this machine (GGML_NATIVE): llama-batched-bench,
#    llama-quantize and the fixture's greedy driver (Tests/Fixtures/llama_greedy.cpp);
#  - F32 and BF16 GGUFs of the default model, requantized from the shipped Q4_1 file (the Q4_1
#    file itself is the third llama.cpp variant);
#  - PyTorch (CPU) and transformers in .build-peers/venv (`make peers-venv`).
# Needs cmake, a C++ compiler and python3 (apt: cmake g++ python3-venv). About 6 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.3.36
sha=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
url=https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/llama_cpp_python-$version.tar.gz
root=.build-peers
src=$root/llama-cpp-python-$version
build=$root/llama.cpp
models=$root/models
model=${CODERL_MODELS_DIR:-$HOME/.cache/coderl/models}/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p "$root" "$models"

for tool in cmake g++ curl; do
  command -v $tool >/dev/null || { echo "error: $tool is missing (apt-get install cmake g++ curl)" >&2; exit 1; }
done
[ -f "$model" ] || { echo "error: $model is missing: make model fetches it" >&2; exit 1; }

if [ ! -d "$src" ]; then
  echo "downloading llama-cpp-python $version (sdist) from PyPI..."
  curl -sSfLo "$root/sdist.tar.gz" "$url"
  echo "$sha  $root/sdist.tar.gz" | sha256sum -c --quiet
  mkdir -p "$src.partial"
  tar xzf "$root/sdist.tar.gz" -C "$src.partial" --strip-components=1
  mv "$src.partial" "$src"
  rm "$root/sdist.tar.gz"
fi

if [ ! -x "$build/bin/llama-batched-bench" ] || [ ! -x "$build/bin/llama-quantize" ]; then
  echo "building llama.cpp (vendored in llama-cpp-python $version) in $build..."
  cmake -S "$src/vendor/llama.cpp" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_APP=OFF >"$root/cmake.log" 2>&1 || { tail -20 "$root/cmake.log"; exit 1; }
  cmake --build "$build" -j"$(nproc)" --target llama-batched-bench llama-quantize >"$root/build.log" 2>&1 \
    || { tail -30 "$root/build.log"; exit 1; }
fi

# The greedy driver of the SmolLM2 reference fixture (Tests/Fixtures/llama_greedy.cpp).
if [ ! -x "$build/bin/llama-greedy" ] || [ Tests/Fixtures/llama_greedy.cpp -nt "$build/bin/llama-greedy" ]; then
  g++ -O2 -std=c++17 -I"$src/vendor/llama.cpp/include" -I"$src/vendor/llama.cpp/ggml/include" \
    Tests/Fixtures/llama_greedy.cpp -o "$build/bin/llama-greedy" -L"$build/bin" -lllama -lggml -lggml-base \
    -Wl,-rpath,"$(cd "$build/bin" && pwd)"
fi

for type in F32 BF16; do
  out=$models/SmolLM2-135M-Instruct.$type.gguf
  if [ ! -f "$out" ]; then
    "$build/bin/llama-quantize" --allow-requantize "$model" "$out.partial" $type >"$root/quantize-$type.log" 2>&1 \
      || { tail -5 "$root/quantize-$type.log"; exit 1; }
    mv "$out.partial" "$out"
  fi
done
ln -sf "$model" "$models/SmolLM2-135M-Instruct.Q4_1.gguf"

make -s peers-venv
echo "peers ready: $build/bin, $models, $root/venv"
