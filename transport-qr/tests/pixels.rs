//! Every message goes screen → pixels → camera → bytes. Degradations are applied to real
//! rendered images and each is its own test, with the module size it was drawn at.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use image::{GrayImage, Luma, imageops};
use imageproc::geometric_transformations::{
    Border, Interpolation, Projection, rotate_about_center, warp,
};
use offpay_qr::render::{Style, to_gif, to_image, to_png, to_svg, to_terminal};
use offpay_qr::scan::{decode_file, decode_gray, decode_rgb, scan_frames};
use offpay_qr::{EcLevel, Encoded, Frame, Progress, QrConfig, QrError, Scanner};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn vectors() -> Vec<(String, String, Vec<u8>)> {
    let path = offpay_conformance::vectors_dir().join("messages.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["expect"] == "valid")
        .map(|v| {
            (
                v["name"].as_str().unwrap().into(),
                v["message"].as_str().unwrap().into(),
                hex::decode(v["hex"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

fn payment() -> Vec<u8> {
    vectors()
        .into_iter()
        .find(|(n, _, _)| n == "payment-seq-2")
        .unwrap()
        .2
}

fn single(message: &[u8], config: QrConfig) -> Frame {
    match config.encode(message).unwrap() {
        Encoded::Single(f) => f,
        Encoded::Animated(_) => panic!("expected one frame"),
    }
}

fn scan_back(img: &GrayImage) -> Vec<u8> {
    let text = decode_gray(img).expect("a QR code in the image");
    match Scanner::new(64 * 1024).receive(&text).unwrap() {
        Progress::Complete(m) => m,
        p => panic!("incomplete: {p:?}"),
    }
}

#[test]
fn every_message_type_from_the_vectors_round_trips_through_pixels() {
    let mut types = std::collections::BTreeSet::new();
    for (name, ty, bytes) in vectors() {
        let config = QrConfig::default();
        let got = match config.encode(&bytes).unwrap() {
            Encoded::Single(f) => scan_back(&to_image(
                &f,
                Style {
                    module_px: 4,
                    quiet_zone: 4,
                },
            )),
            Encoded::Animated(mut a) => {
                let images: Vec<GrayImage> = a
                    .frames(a.fragment_count() + 4)
                    .unwrap()
                    .iter()
                    .map(|f| {
                        to_image(
                            f,
                            Style {
                                module_px: 4,
                                quiet_zone: 4,
                            },
                        )
                    })
                    .collect();
                scan_frames(&images, &mut Scanner::new(config.max_message_len)).unwrap()
            }
        };
        assert_eq!(got, bytes, "{name}");
        types.insert(ty);
    }
    assert_eq!(types.len(), 12, "every message type: {types:?}");
}

#[test]
fn a_payment_with_its_voucher_is_one_code_of_version_10_at_l_and_13_at_m() {
    let p = payment();
    let at = |ec, max| {
        single(
            &p,
            QrConfig {
                ec_level: ec,
                max_version: max,
                ..QrConfig::default()
            },
        )
        .version()
    };
    let (l, m) = (at(EcLevel::L, 40), at(EcLevel::M, 40));
    assert!(l <= 10, "level L needs version {l}");
    assert!(m <= 13, "level M needs version {m}");
    // The frame is alphanumeric text: prefix and base45 only.
    let f = single(&p, QrConfig::default());
    assert!(f.text().starts_with("OP1:"));
    assert!(
        f.text()
            .bytes()
            .all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b))
    );
}

fn payment_image(module_px: u32) -> GrayImage {
    to_image(
        &single(&payment(), QrConfig::default()),
        Style {
            module_px,
            quiet_zone: 4,
        },
    )
}

#[test]
fn downscaled_to_3_px_per_module() {
    let big = payment_image(12);
    let small = imageops::resize(
        &big,
        big.width() / 4,
        big.height() / 4,
        imageops::FilterType::Triangle,
    );
    assert_eq!(scan_back(&small), payment());
}

#[test]
fn rotated_10_degrees_at_6_px_per_module() {
    let img = payment_image(6);
    let padded = pad(&img, 40);
    let rotated = rotate_about_center(
        &padded,
        10f32.to_radians(),
        Interpolation::Bilinear,
        Border::Constant(Luma([255])),
    );
    assert_eq!(scan_back(&rotated), payment());
}

#[test]
fn gaussian_blur_sigma_1_5_at_6_px_per_module() {
    let blurred = imageproc::filter::gaussian_blur_f32(&payment_image(6), 1.5);
    assert_eq!(scan_back(&blurred), payment());
}

#[test]
fn noise_of_plus_minus_60_levels_at_6_px_per_module() {
    let mut img = payment_image(6);
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    for p in img.pixels_mut() {
        let n = (rng.next_u32() % 121) as i32 - 60;
        p[0] = (i32::from(p[0]) + n).clamp(0, 255) as u8;
    }
    assert_eq!(scan_back(&img), payment());
}

#[test]
fn uneven_lighting_from_35_to_100_percent_at_6_px_per_module() {
    let mut img = payment_image(6);
    let (w, h) = (img.width() as f32, img.height() as f32);
    for (x, y, p) in img.enumerate_pixels_mut() {
        // A light falling off to one corner, on a grey (not white) background.
        let light = 0.35 + 0.65 * (1.0 - (x as f32 / w + y as f32 / h) / 2.0);
        p[0] = (f32::from(p[0].max(40)) * light) as u8;
    }
    assert_eq!(scan_back(&img), payment());
}

#[test]
fn perspective_tilt_at_6_px_per_module() {
    let img = pad(&payment_image(6), 40);
    let (w, h) = (img.width() as f32, img.height() as f32);
    // The top edge 15 % narrower than the bottom: the phone held tilted back.
    let from = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)];
    let to = [
        (0.075 * w, 0.03 * h),
        (0.925 * w, 0.03 * h),
        (w, h),
        (0.0, h),
    ];
    let projection = Projection::from_control_points(from, to).unwrap();
    let tilted = warp(
        &img,
        projection,
        Interpolation::Bilinear,
        Border::Constant(Luma([255])),
    );
    assert_eq!(scan_back(&tilted), payment());
}

fn pad(img: &GrayImage, by: u32) -> GrayImage {
    let mut out = GrayImage::from_pixel(img.width() + 2 * by, img.height() + 2 * by, Luma([255]));
    imageops::overlay(&mut out, img, i64::from(by), i64::from(by));
    out
}

fn ten_kb() -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let mut m = vec![0u8; 10 * 1024];
    rng.fill_bytes(&mut m);
    m
}

/// Frames received until completion with `loss` of them dropped at random.
fn frames_to_complete(message: &[u8], loss: f64, seed: u64) -> (usize, usize) {
    let config = QrConfig::default();
    let mut a = config.animate(message).unwrap();
    let total = a.fragment_count();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut scanner = Scanner::new(config.max_message_len);
    let mut received = 0;
    for _ in 0..total * 10 {
        let f = a.next_frame().unwrap();
        if (rng.next_u32() as f64 / u32::MAX as f64) < loss {
            continue;
        }
        received += 1;
        if let Progress::Complete(m) = scanner.receive(f.text()).unwrap() {
            assert_eq!(m, message);
            return (received, total);
        }
    }
    panic!("did not complete")
}

#[test]
fn ten_kilobytes_at_30_percent_loss_need_at_most_1_6_times_the_fragments() {
    let message = ten_kb();
    let mut ratios: Vec<f64> = (0..20)
        .map(|seed| {
            let (received, total) = frames_to_complete(&message, 0.30, seed);
            received as f64 / total as f64
        })
        .collect();
    ratios.sort_by(|a, b| a.total_cmp(b));
    let median = (ratios[9] + ratios[10]) / 2.0;
    assert!(
        median <= 1.6,
        "median {median:.3} × fragments (all: {ratios:?})"
    );
}

#[test]
fn an_animated_ten_kilobyte_transfer_completes_through_pixels_with_30_percent_of_frames_lost() {
    let message = ten_kb();
    let config = QrConfig::default();
    let mut a = config.animate(&message).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let frames = a.frames(a.fragment_count() * 3).unwrap();
    assert!(frames.iter().all(|f| f.version() <= config.max_version));
    let kept: Vec<GrayImage> = frames
        .iter()
        .filter(|_| rng.next_u32() % 10 >= 3)
        .map(|f| {
            to_image(
                f,
                Style {
                    module_px: 3,
                    quiet_zone: 4,
                },
            )
        })
        .collect();
    let mut scanner = Scanner::new(config.max_message_len);
    assert_eq!(scan_frames(&kept, &mut scanner).unwrap(), message);
}

#[test]
fn png_svg_terminal_and_gif_outputs_carry_the_code() {
    let dir = tempfile_dir();
    let f = single(&payment(), QrConfig::default());
    let png = dir.join("payment.png");
    std::fs::write(&png, to_png(&f, Style::default()).unwrap()).unwrap();
    assert_eq!(decode_file(&png).unwrap(), f.text());
    // The format comes from the content, not the name.
    for name in ["payment", "payment.jpg"] {
        std::fs::copy(&png, dir.join(name)).unwrap();
        assert_eq!(decode_file(dir.join(name)).unwrap(), f.text(), "{name}");
    }
    // RGB input, as a camera gives.
    let rgb = image::DynamicImage::ImageLuma8(to_image(&f, Style::default())).to_rgb8();
    assert_eq!(
        decode_rgb(rgb.as_raw(), rgb.width(), rgb.height()).unwrap(),
        f.text()
    );
    let svg = to_svg(&f, Style::default());
    let dark_modules = (0..f.width())
        .flat_map(|y| (0..f.width()).map(move |x| (x, y)))
        .filter(|&(x, y)| f.is_dark(x, y))
        .count();
    assert_eq!(svg.matches("h1v1h-1z").count(), dark_modules);
    let term = to_terminal(&f, 2);
    assert_eq!(term.lines().count(), (f.width() + 4).div_ceil(2));
    assert!(term.lines().all(|l| l.chars().count() == f.width() + 4));
    // An animated GIF whose every frame scans.
    let mut a = QrConfig::default().animate(&ten_kb()[..2000]).unwrap();
    let frames = a.frames(a.fragment_count()).unwrap();
    let gif = to_gif(
        &frames,
        Style {
            module_px: 3,
            quiet_zone: 4,
        },
        200,
    )
    .unwrap();
    use image::AnimationDecoder;
    let decoded = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(gif))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(decoded.len(), frames.len());
    let images: Vec<GrayImage> = decoded
        .iter()
        .map(|fr| image::DynamicImage::ImageRgba8(fr.buffer().clone()).to_luma8())
        .collect();
    assert_eq!(
        scan_frames(&images, &mut Scanner::new(64 * 1024)).unwrap(),
        ten_kb()[..2000].to_vec()
    );
    let paths =
        offpay_qr::render::save_numbered_pngs(&frames, Style::default(), &dir, "batch").unwrap();
    assert_eq!(paths.len(), frames.len());
    assert!(paths[0].ends_with("batch-0001.png"));
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("offpay-qr-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn hostile_and_foreign_input_gives_typed_errors() {
    let mut s = Scanner::new(64 * 1024);
    assert_eq!(s.receive("XX1:ABC"), Err(QrError::WrongPrefix));
    assert_eq!(s.receive("OP1:abc"), Err(QrError::NotBase45));
    assert_eq!(s.receive("OP1:A"), Err(QrError::NotBase45));
    // Out-of-range groups (RFC 9285 §4.2): a final pair above 255 and a triplet above 65535.
    // "%5" is 39 + 5·45 = 264; "GGW" is 16 + 16·45 + 32·2025 = 65,536. Their in-range
    // neighbours decode, so only the value is refused.
    assert_eq!(s.receive("OP1:%5"), Err(QrError::NotBase45));
    assert_eq!(s.receive("OP1:GGW"), Err(QrError::NotBase45));
    assert_eq!(
        offpay_qr::frame::decode_single("OP1:FGW", 8),
        Ok(vec![0xff, 0xff])
    );
    assert_eq!(offpay_qr::frame::decode_single("OP1:U5", 8), Ok(vec![0xff]));
    assert_eq!(s.receive("https://example.com/"), Err(QrError::WrongPrefix));
    // An image with no QR code.
    let blank = GrayImage::from_fn(300, 300, |x, y| Luma([((x * 7 + y * 13) % 256) as u8]));
    assert_eq!(decode_gray(&blank), Err(QrError::NoQrCode));
    // A single frame above the size limit is refused before decoding.
    let huge = format!("OP1:{}", "0".repeat(200_000));
    assert_eq!(Scanner::new(1024).receive(&huge), Err(QrError::TooLarge));
}

#[test]
fn frames_of_two_messages_mixed_are_refused_and_the_first_transfer_still_completes() {
    let config = QrConfig::default();
    let first = ten_kb()[..3000].to_vec();
    let second = ten_kb()[3000..6000].to_vec();
    let mut a = config.animate(&first).unwrap();
    let mut b = config.animate(&second).unwrap();
    let mut s = Scanner::new(config.max_message_len);
    assert!(matches!(
        s.receive(a.next_frame().unwrap().text()).unwrap(),
        Progress::Partial { .. }
    ));
    let mut done = None;
    for _ in 0..a.fragment_count() * 3 {
        // A frame of the other message, interleaved: refused, nothing merged.
        assert_eq!(
            s.receive(b.next_frame().unwrap().text()),
            Err(QrError::MixedMessages)
        );
        if let Progress::Complete(m) = s.receive(a.next_frame().unwrap().text()).unwrap() {
            done = Some(m);
            break;
        }
    }
    assert_eq!(done, Some(first));
    // Reset for the next customer: now the other message is accepted.
    s.reset();
    let mut got = None;
    for _ in 0..b.fragment_count() * 3 {
        if let Progress::Complete(m) = s.receive(b.next_frame().unwrap().text()).unwrap() {
            got = Some(m);
            break;
        }
    }
    assert_eq!(got, Some(second));
}

#[test]
fn a_wrong_checksum_is_refused() {
    let config = QrConfig::default();
    let mut a = config.animate(&ten_kb()[..2000]).unwrap();
    let f = a.next_frame().unwrap();
    // One byteword changed: the frame's CRC-32 no longer matches.
    let mut t = f.text().to_string();
    let last = t.pop().unwrap();
    t.push(if last == 'A' { 'E' } else { 'A' });
    assert_eq!(
        Scanner::new(64 * 1024).receive(&t),
        Err(QrError::ForgedHeader)
    );
}

#[test]
fn an_oversized_image_is_refused_before_it_is_decoded() {
    let dir = tempfile_dir();
    // A few hundred bytes of PNG that would decode to 8193 × 8193 pixels, and 20000 × 20000.
    for side in [offpay_qr::scan::MAX_SIDE + 1, 20_000] {
        let path = dir.join(format!("huge-{side}.png"));
        image::GrayImage::from_pixel(side, 1, image::Luma([255u8]))
            .save(&path)
            .unwrap();
        assert_eq!(decode_file(&path), Err(QrError::Image), "{side} wide");
        let path = dir.join(format!("tall-{side}.png"));
        image::GrayImage::from_pixel(1, side, image::Luma([255u8]))
            .save(&path)
            .unwrap();
        assert_eq!(decode_file(&path), Err(QrError::Image), "{side} tall");
    }
    // At the limit it is read (and holds no code).
    let path = dir.join("edge.png");
    image::GrayImage::from_pixel(offpay_qr::scan::MAX_SIDE, 1, image::Luma([255u8]))
        .save(&path)
        .unwrap();
    assert_eq!(decode_file(&path), Err(QrError::NoQrCode));
}
