#!/usr/bin/env bash
# The SDK's bindings: builds the offpay-ffi library and UniFFI's generator, generates the
# Python, Kotlin and Swift sources from the built library (so an interface that does not
# generate fails here), builds the Python package into the test virtualenv and runs its pytest
# suite against a live offpay-issuer on loopback, then compiles the Kotlin bindings with a
# story (sdk/kotlin/Story.kt) and runs it on the JVM against another live issuer. The Kotlin
# compiler comes from the npm registry (package kotlin-compiler, kept in target/tools/), JNA and
# the JVM from Debian (scripts/test-all.sh installs them). Swift sources are generated only:
# no Swift compiler comes from the registries this project reaches.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${OFFPAY_VENV:-.venv}
out=target/bindings
cargo build -q -p offpay-ffi --features bindgen
cargo build -q -p offpay-issuer --bin offpay-issuer
lib=target/debug/liboffpay_ffi.so
[ -f "$lib" ] || lib=target/debug/liboffpay_ffi.dylib

rm -rf "$out"
for language in python kotlin swift; do
    target/debug/uniffi-bindgen generate "$lib" --language "$language" --out-dir "$out/$language" --no-format
done
test -s "$out/kotlin/uniffi/offpay/offpay.kt"
test -s "$out/swift/offpay.swift" && test -s "$out/swift/offpayFFI.h"
echo "generated: $(find "$out" -type f | sort | tr '\n' ' ')"

# The Python package: the generated module and the library beside the package's __init__.
pkg=$out/python-package
mkdir -p "$pkg/offpay"
cp sdk/python/pyproject.toml "$pkg/"
cp sdk/python/offpay/__init__.py "$out/python/offpay.py" "$lib" "$pkg/offpay/"
"$venv/bin/pip" install --quiet --force-reinstall --no-deps "./$pkg"

OFFPAY_ISSUER_BIN=target/debug/offpay-issuer "$venv/bin/python" -m pytest -q -p no:cacheprovider sdk/python/tests

# Kotlin: compile the generated bindings with the story and run it on the JVM.
kotlin_version=2.4.20
tools=target/tools/kotlinc-$kotlin_version
kotlinc=$tools/package/bin/kotlinc
if [ ! -x "$kotlinc" ]; then
    rm -rf "$tools" && mkdir -p "$tools"
    (cd "$tools" && npm pack --silent "kotlin-compiler@$kotlin_version" >/dev/null \
        && tar xzf "kotlin-compiler-$kotlin_version.tgz" && rm "kotlin-compiler-$kotlin_version.tgz")
fi
jna=/usr/share/java/jna.jar
"$kotlinc" -nowarn "$out/kotlin/uniffi/offpay/offpay.kt" sdk/kotlin/Story.kt -cp "$jna" \
    -include-runtime -d "$out/kotlin-story.jar"

source scripts/issuer-up.sh
java -Djna.library.path="$(dirname "$lib")" -cp "$out/kotlin-story.jar:$jna" StoryKt \
    "http://127.0.0.1:$public" "http://127.0.0.1:$admin" "$token" "$dir/work"
