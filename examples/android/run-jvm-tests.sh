#!/usr/bin/env bash
# Compile the plain-JVM core of bmsdk-android and run its JUnit 4 tests, without Gradle or the Android SDK.
#   ./run-jvm-tests.sh VECTORS_DIR
# VECTORS_DIR holds one folder per artifact (bmsdk.json, tokenizer.json, vectors.json from `bmsdk export-vectors`,
# boundary.json, tokenizer-cases.json); tests/test_android_jvm.py writes it. The LiteRT Interpreter class
# (src/main/java/dev/bmsdk/android/litert/) is Android-only and is not compiled here. Text-generation folders hold
# tokenizer.json with vectors.json (task text-generation) or bpe-cases.json; tests/devices/generation_fixture.py
# writes them. Token-classification and question-answering folders hold spans.json (tests/devices/span_fixtures.py).
# Audio-classification folders hold audio.json (tests/devices/audio_fixtures.py), semantic-segmentation folders
# segmentation.json (tests/devices/segmentation_fixtures.py), object-detection folders detection.json
# (tests/devices/detection_fixtures.py), each beside its vectors.json.
# JUNIT_TESTS="dev.bmsdk.android.GenerationTest ..." runs only those test classes (default: all).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
vectors="${1:?usage: run-jvm-tests.sh VECTORS_DIR}"
junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
hamcrest="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
for jar in "$junit" "$hamcrest"; do
  [ -f "$jar" ] || { echo "missing $jar: apt-get install -y junit4 (or set JUNIT_JAR/HAMCREST_JAR)" >&2; exit 2; }
done
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
src="$here/bmsdk-android/src"
find "$src/main/java" -name '*.java' -not -path '*/litert/*' > "$out/main.txt"
find "$src/test/java" -name '*.java' > "$out/test.txt"
javac -Xlint:all -Werror -d "$out/classes" @"$out/main.txt"
javac -Xlint:all -d "$out/test-classes" -cp "$out/classes:$junit:$hamcrest" @"$out/test.txt"
tests="${JUNIT_TESTS:-$(cd "$src/test/java" && find . -name '*Test.java' | sed 's|^\./||; s|\.java$||; s|/|.|g')}"
# shellcheck disable=SC2086  # one word per test class
java -Dbmsdk.vectors="$vectors" -cp "$out/classes:$out/test-classes:$junit:$hamcrest" org.junit.runner.JUnitCore $tests
