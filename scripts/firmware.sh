#!/usr/bin/env bash
# Builds firmware/ for thumbv7em-none-eabihf, reports its section sizes, and runs it under
# qemu-system-arm (mps2-an386, Cortex-M4, semihosting, -icount shift=0). Fails if the firmware
# reports a failure or does not exit 0. Each build also runs `verify-costs`, which measures the
# pieces of an ed25519 verification (BENCHMARKS.md).
#
#   scripts/firmware.sh          both builds: release (opt-level 3) and size (opt-level z,
#                                compact SHA-512)
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target list --installed | grep -qx thumbv7em-none-eabihf || rustup target add thumbv7em-none-eabihf
if ! command -v qemu-system-arm >/dev/null; then
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
    $sudo_ apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq qemu-system-arm >/dev/null
fi

qemu() {
    timeout 300 qemu-system-arm -cpu cortex-m4 -machine mps2-an386 -nographic \
        -semihosting-config enable=on,target=native -icount shift=0 -kernel "$1"
}

# Decimal size of one ELF section (0 when absent). Flash holds the vector table, .text,
# .rodata and .data's initial values; RAM holds .data and .bss (and the stack).
section() {
    local hex
    hex=$(readelf -S -W "$1" | awk -v s="$2" '{ for (i = 1; i < NF; i++) if ($i == s) { print $(i + 4); exit } }')
    echo $((16#${hex:-0}))
}

report() {
    local elf=$1 label=$2
    awk -v l="$label" -v t="$(section "$elf" .text)" -v r="$(section "$elf" .rodata)" \
        -v d="$(section "$elf" .data)" -v b="$(section "$elf" .bss)" \
        -v v="$(section "$elf" .vector_table)" 'BEGIN {
        printf "%-47s .text %6d B (%4.1f KiB)  .rodata %6d B  .data %4d B  .bss %6d B  flash %6d B\n",
            l, t, t / 1024, r, d, b, v + t + r + d }'
}

cd firmware
for profile in release size; do
    features=""; [ "$profile" = size ] && features="--features compact-sha2"
    # shellcheck disable=SC2086
    cargo build --quiet --profile "$profile" $features
    dir=target/thumbv7em-none-eabihf/$profile
    echo "== firmware, profile $profile"
    report "$dir/payment" "payment (wallet + acceptor, one payment):"
    report "$dir/payment-flash" "payment-flash (the same on NOR flash stores):"
    report "$dir/offpay-firmware" "offpay-firmware (vectors + payments + report):"
    qemu "$dir/payment"
    echo "payment: exit 0"
    qemu "$dir/payment-flash"
    echo "payment-flash: exit 0"
    qemu "$dir/offpay-firmware"
    qemu "$dir/verify-costs"
done
