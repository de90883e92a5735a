//! A forged animated-frame header (part count 1,000,000) is refused before any decoding work,
//! in bounded memory. Alone in its own test binary so the allocation counter sees only it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_qr::{Progress, QrError, Scanner};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// An upper-case UR part `[seq, count, message_len, checksum, fragment]`, well formed with a
/// valid CRC, as a forger would make it.
fn part(seq: u32, count: u32, message_len: u32, checksum: u32, fragment: &[u8]) -> String {
    let mut cbor = vec![0x85];
    for v in [seq, count, message_len, checksum] {
        cbor.push(0x1a);
        cbor.extend(v.to_be_bytes());
    }
    cbor.push(0x58);
    cbor.push(fragment.len() as u8);
    cbor.extend(fragment);
    let words = ur::bytewords::encode(&cbor, ur::bytewords::Style::Minimal);
    format!("ur:offpay/{seq}-{count}/{words}").to_ascii_uppercase()
}

#[test]
fn a_forged_part_count_of_a_million_is_refused_without_work_or_memory() {
    let mut scanner = Scanner::new(64 * 1024);
    let forged = [
        // A million parts of a 64 KB message: inconsistent lengths.
        part(1, 1_000_000, 64_000, 7, &[0; 64]),
        // A million one-byte parts of a 1 MB message: over the message bound.
        part(1, 1_000_000, 1_000_000, 7, &[0; 1]),
        // A mixed part far beyond the count.
        part(4_000_000_000, 1_000_000, 1_000_000, 7, &[0; 1]),
    ];
    let region = Region::new(GLOBAL);
    for f in &forged {
        assert_eq!(scanner.receive(f), Err(QrError::ForgedHeader));
    }
    let used = region.change();
    assert!(
        used.bytes_allocated < 1 << 20,
        "allocated {} bytes",
        used.bytes_allocated
    );
    // Nothing of it stayed in the scanner.
    assert_eq!(
        scanner.progress(),
        Progress::Partial {
            recovered: 0,
            total: 0,
            frames_seen: 0
        }
    );
    // And a wrong message checksum, consistent in every frame, is caught at completion.
    let message = [5u8; 40];
    let mut s = Scanner::new(64 * 1024);
    assert!(matches!(
        s.receive(&part(1, 2, 40, 0xdead_beef, &message[..20])),
        Ok(Progress::Partial { .. })
    ));
    assert_eq!(
        s.receive(&part(2, 2, 40, 0xdead_beef, &message[20..])),
        Err(QrError::Checksum)
    );
}
