#!/usr/bin/env bash
# Every check offpay has, in the order CI runs them. Installs what it needs when missing
# (rustup components, the Cortex-M4 target, the nightly toolchain and cargo-fuzz); needs only
# a Rust toolchain to start.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; df -h . | awk 'NR == 2 { print "    disk: " $4 " free" }'; }
# Incremental caches double a one-off build's size and this command builds everything once.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
# OFFPAY_TEST_LEAN=1 (set by CI) deletes each step's build output once no later step needs it,
# for machines with little disk. A developer's run keeps everything for the next one.
lean() { [ "${OFFPAY_TEST_LEAN:-0}" = 1 ] && rm -rf "$@" || true; }

step "toolchain"
installed_components=$(rustup component list --installed)
for c in rustfmt clippy; do
    grep -q "^$c" <<<"$installed_components" || rustup component add "$c"
done
rustup target list --installed | grep -qx thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf
# System packages: D-Bus headers for the btleplug adapter, QEMU for the firmware, the
# PostgreSQL server for the issuer's PostgreSQL tests (they start their own throw-away cluster).
need=()
pkg-config --exists dbus-1 2>/dev/null || need+=(libdbus-1-dev pkg-config)
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || need+=(postgresql)
# SoftHSM2, a real PKCS#11 token for the hardware-held keys' tests (pkcs11/tests/softhsm.rs).
[ -f /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null || need+=(softhsm2)
# JNA and a JVM for the Kotlin bindings' story (its compiler comes from the npm registry).
[ -f /usr/share/java/jna.jar ] || need+=(libjna-java)
command -v java >/dev/null || need+=(default-jre-headless)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The test virtualenv: Google Bumble's virtual BLE controllers, for the real-stack BLE test
# (tests/ble_bumble.rs), schemathesis, for the issuer API's property tests, and pytest with
# cryptography (a holder key in Python), for the SDK's Python bindings.
if ! .venv/bin/python3 -c "import bumble, schemathesis, pytest, cryptography" 2>/dev/null; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet "bumble==0.0.236" "schemathesis==4.32.5" "pytest==9.2.0" \
        "cryptography==50.0.2"
fi

step "format"
cargo fmt --all --check

step "lints"
cargo clippy --workspace --all-targets -- -D warnings

step "issuer with its key in a PKCS#11 token (feature pkcs11)"
cargo clippy -p offpay-issuer --features pkcs11 --all-targets -- -D warnings
cargo test -p offpay-issuer --features pkcs11 --test hsm

step "btleplug adapter (compiled; there is no Bluetooth hardware to run it on)"
cargo clippy -p offpay-ble --features btleplug -- -D warnings

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "firmware build: offpay-protocol and the offpay-ble core, no_std, no allocator, thumbv7em-none-eabihf"
cargo build -p offpay-protocol --no-default-features --target thumbv7em-none-eabihf
cargo build -p offpay-protocol --no-default-features --features flash --target thumbv7em-none-eabihf
cargo build -p offpay-ble --no-default-features --target thumbv7em-none-eabihf
cargo build -p offpay-ble --no-default-features --features trouble --target thumbv7em-none-eabihf
lean target/thumbv7em-none-eabihf

step "firmware: conformance vectors and whole payments on a Cortex-M4 (qemu mps2-an386)"
bash scripts/firmware.sh
lean firmware/target

step "power cuts: a compaction on a fault-injecting file system, a wallet on simulated NOR flash (cut points printed)"
cargo test -p offpay-conformance --test compaction_crash --test flash_power_cut -- --nocapture

step "tests (unit, property, conformance vectors, end-to-end, doc)"
cargo test --workspace -- --skip a_power_cut_at_every

step "SDK bindings: Python, Kotlin and Swift generated; pytest and a Kotlin story against live offpay-issuers"
bash scripts/bindings.sh

step "issuer API: schemathesis from the OpenAPI document against a live offpay-issuer"
bash scripts/api-fuzz.sh
# The fuzz build comes next, into fuzz/target; the workspace's own build output is done with,
# but for the fuzz-seeds generator, which the fuzz script rebuilds small.
lean target

step "fuzz: every target ~20 s with AddressSanitizer (nightly); a crash fails the run"
bash scripts/fuzz.sh
