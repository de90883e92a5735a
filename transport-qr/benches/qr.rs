//! QR transport costs: encode and decode time per frame, and how many animated frames a
//! receiver needs against the number of source fragments at 0, 10 and 30 % loss.
//!
//! Run: `cargo bench -p offpay-qr --bench qr`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{Criterion, criterion_group, criterion_main};
use offpay_qr::render::{Style, to_image};
use offpay_qr::scan::decode_gray;
use offpay_qr::{Encoded, Progress, QrConfig, Scanner};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::hint::black_box;

fn payment() -> Vec<u8> {
    let path = offpay_conformance::vectors_dir().join("messages.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "payment-seq-2")
        .unwrap();
    hex::decode(v["hex"].as_str().unwrap()).unwrap()
}

fn frames_needed(message: &[u8], loss: u32, seed: u64) -> f64 {
    let config = QrConfig::default();
    let mut a = config.animate(message).unwrap();
    let total = a.fragment_count();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut s = Scanner::new(config.max_message_len);
    let mut received = 0;
    loop {
        let f = a.next_frame().unwrap();
        if rng.next_u32() % 100 < loss {
            continue;
        }
        received += 1;
        if let Progress::Complete(_) = s.receive(f.text()).unwrap() {
            return received as f64 / total as f64;
        }
    }
}

fn bench(c: &mut Criterion) {
    let p = payment();
    let config = QrConfig::default();
    c.bench_function("qr/encode payment frame (text + QR matrix)", |b| {
        b.iter(|| black_box(config.encode(black_box(&p)).unwrap()))
    });
    let Encoded::Single(frame) = config.encode(&p).unwrap() else {
        panic!()
    };
    let img = to_image(
        &frame,
        Style {
            module_px: 4,
            quiet_zone: 4,
        },
    );
    c.bench_function("qr/render payment frame to pixels (4 px/module)", |b| {
        b.iter(|| {
            black_box(to_image(
                &frame,
                Style {
                    module_px: 4,
                    quiet_zone: 4,
                },
            ))
        })
    });
    c.bench_function("qr/decode payment frame from pixels (rxing)", |b| {
        b.iter(|| black_box(decode_gray(black_box(&img)).unwrap()))
    });
    let mut scanner = Scanner::new(64 * 1024);
    c.bench_function("qr/scanner single frame text -> bytes", |b| {
        b.iter(|| black_box(scanner.receive(black_box(frame.text())).unwrap()))
    });

    let mut m = vec![0u8; 10 * 1024];
    ChaCha20Rng::seed_from_u64(1).fill_bytes(&mut m);
    let fragments = config.animate(&m).unwrap().fragment_count();
    println!("10 KiB message at level M, version <= 13: {fragments} source fragments");
    for loss in [0u32, 10, 30] {
        let mut r: Vec<f64> = (0..20).map(|seed| frames_needed(&m, loss, seed)).collect();
        r.sort_by(|a, b| a.total_cmp(b));
        println!(
            "loss {loss:>2} %: frames received / source fragments: median {:.3}, worst {:.3} (20 seeds)",
            (r[9] + r[10]) / 2.0,
            r[19]
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
