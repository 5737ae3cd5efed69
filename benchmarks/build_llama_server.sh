#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` from the sources vendored in the llama-cpp-python source
# package the engine runs (same llama.cpp commit, same CPU flags as scripts/install), for the
# comparison column of benchmarks/concurrency.py. Idempotent: an existing binary is kept.
# Prints the binary's path. Takes about 10 minutes on 2 cores the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
home="${CANDOR_HOME:-$HOME/.candor}"
src="$home/cache/llama-server-src"
bin="$src/build/bin/llama-server"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
version=$(.venv/bin/python -c 'import llama_cpp; print(llama_cpp.__version__)')
mkdir -p "$home/cache/sdist"
sdist=$(ls "$home"/cache/sdist/llama_cpp_python-"$version".tar.gz 2>/dev/null || true)
if [ -z "$sdist" ]; then
  .venv/bin/python -m pip download -q --no-deps --no-binary :all: -d "$home/cache/sdist" "llama-cpp-python==$version" >&2
  sdist="$home/cache/sdist/llama_cpp_python-$version.tar.gz"
fi
rm -rf "$src.part" && mkdir -p "$src.part"
tar -xzf "$sdist" -C "$src.part" --strip-components=3 "llama_cpp_python-$version/vendor/llama.cpp"
flags="-DGGML_NATIVE=OFF"
if [ "$(uname -m)" = x86_64 ]; then
  flags="$flags -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
fi
cmake -S "$src.part" -B "$src.part/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON $flags >&2
cmake --build "$src.part/build" --target llama-server -j "$(nproc)" >&2
rm -rf "$src" && mv "$src.part" "$src"
echo "$bin"
