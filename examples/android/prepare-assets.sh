#!/usr/bin/env bash
# Put the demo's two TFLite artifacts (int8-dynamic sentiment, int8 MNIST) and the MNIST test vectors into
# app/src/main/assets, converting them first if needed. Run from anywhere, with the repository's venv set up
# (`make install`); PRECISION=fp32 ./prepare-assets.sh picks another precision.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bmsdk="$repo/.venv/bin/bmsdk"
python="$repo/.venv/bin/python"
assets="$here/app/src/main/assets"
cache="$("$python" -c 'from bmsdk.benchmarks import zoo; print(zoo.cache_dir())')"
mkdir -p "$assets"
convert() {  # name, source, eval, calibration, precision
  local out="$cache/artifacts-android/$1-tflite-$5.bmsdk"
  [ -d "$out" ] || "$bmsdk" convert "$2" --target tflite --precision "$5" --eval "$3" --calibration "$4" --name "$1" -o "$out"
  rm -rf "$assets/$1" && cp -r "$out" "$assets/$1"
  "$bmsdk" export-vectors "$out" -o "$assets/$1/vectors.json"
}
zoo() { "$python" -c "from bmsdk.benchmarks import zoo; print(zoo.resolve('zoo:$1'))"; }
convert minilm-sentiment "$(zoo minilm-sentiment)" "$(zoo sentiment-test)" "$(zoo sentiment-calibration)" "${PRECISION:-int8-dynamic}"
convert mnist-cnn "$(zoo mnist-cnn)" "$(zoo mnist-test)" "$(zoo mnist-calibration)" "${PRECISION:-int8}"
echo "assets ready in $assets"
