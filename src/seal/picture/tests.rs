#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, Rgb, RgbImage};

const INK: Rgb<u8> = Rgb([210, 25, 35]);
const PAPER: Rgb<u8> = Rgb([255, 255, 255]);

/// White canvas with a filled red disc of radius `r` centred at (`cx`, `cy`).
fn disc(width: u32, height: u32, cx: f64, cy: f64, r: f64) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (f64::from(x) + 0.5 - cx, f64::from(y) + 0.5 - cy);
        if dx * dx + dy * dy <= r * r {
            INK
        } else {
            PAPER
        }
    })
}

fn png_bytes(img: &RgbImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn jpeg_bytes(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    out
}

fn decode_png(bytes: &[u8]) -> image::RgbaImage {
    image::load_from_memory_with_format(bytes, ImageFormat::Png)
        .unwrap()
        .into_rgba8()
}

fn assert_corners_transparent(img: &image::RgbaImage) {
    let (w, h) = img.dimensions();
    for (x, y) in [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)] {
        assert_eq!(
            img.get_pixel(x, y).0[3],
            0,
            "corner ({x},{y}) not transparent"
        );
    }
}

fn assert_centre_red(img: &image::RgbaImage) {
    let (w, h) = img.dimensions();
    let [r, g, b, a] = img.get_pixel(w / 2, h / 2).0;
    assert!(
        r > 150 && g < 80 && b < 80 && a == 255,
        "centre is {r},{g},{b},{a}"
    );
}

#[test]
fn png_is_cropped_made_transparent_and_bounded() {
    // 2000 px square, disc of radius 700 off-centre.
    let input = png_bytes(&disc(2000, 2000, 900.0, 1100.0, 700.0));
    let out = normalize_seal_picture(&input).unwrap();
    assert!(out.png.starts_with(&[0x89, b'P', b'N', b'G']));
    assert_eq!((out.width_px, out.height_px), (600, 600));
    let img = decode_png(&out.png);
    assert_eq!(img.dimensions(), (out.width_px, out.height_px));
    assert_corners_transparent(&img);
    assert_centre_red(&img);
}

/// 8-bit RGB and RGBA are read in place, other layouts converted first: the same impression
/// in any of them gives the same picture, to the byte.
#[test]
fn every_pixel_layout_of_one_impression_gives_the_same_picture() {
    let rgb = disc(300, 200, 120.0, 90.0, 70.0);
    let encode = |img: DynamicImage| {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        normalize_seal_picture(&out.into_inner()).unwrap()
    };
    let reference = encode(DynamicImage::ImageRgb8(rgb.clone()));
    assert_eq!((reference.width_px, reference.height_px), (144, 144));
    let rgba = DynamicImage::ImageRgb8(rgb.clone()).to_rgba8();
    let wide = DynamicImage::ImageRgb8(rgb);
    for (layout, img) in [
        ("RGBA8", DynamicImage::ImageRgba8(rgba)),
        ("RGB16", DynamicImage::ImageRgb16(wide.to_rgb16())),
        ("RGBA16", DynamicImage::ImageRgba16(wide.to_rgba16())),
    ] {
        assert_eq!(encode(img), reference, "{layout}");
    }
    // Alpha is read: the same ink, fully transparent, is no ink.
    let mut clear = DynamicImage::ImageRgb8(disc(300, 200, 120.0, 90.0, 70.0)).to_rgba8();
    clear.pixels_mut().for_each(|p| p.0[3] = 0);
    let mut bytes = Cursor::new(Vec::new());
    clear.write_to(&mut bytes, ImageFormat::Png).unwrap();
    assert!(matches!(
        normalize_seal_picture(&bytes.into_inner()),
        Err(SealError::EmptyPicture)
    ));
}

/// An impression touching the picture's edges: the margin stops at the edge.
#[test]
fn ink_at_the_edges_is_cropped_within_the_picture() {
    let out = normalize_seal_picture(&png_bytes(&disc(120, 90, 0.0, 90.0, 60.0))).unwrap();
    // Ink from x 0 to 59 and y 30 to 89, margin 2: x 0..=61, y 28..=89.
    assert_eq!((out.width_px, out.height_px), (62, 62));
    let img = decode_png(&out.png);
    assert_eq!(img.get_pixel(0, 61).0[3], 255, "the corner's ink is kept");
    assert_eq!(img.get_pixel(61, 0).0[3], 0);
}

#[test]
fn the_downscaled_rim_keeps_the_ink_colour() {
    // A one-colour disc downscaled 2000 -> 600: the rim is partly transparent, and weighting by
    // alpha keeps its colour the ink's, instead of blending it towards the transparent white
    // (below alpha 32, the 8-bit colour of so faint a pixel is too coarse to compare).
    let out = normalize_seal_picture(&png_bytes(&disc(2000, 2000, 1000.0, 1000.0, 900.0))).unwrap();
    let img = decode_png(&out.png);
    let rim: Vec<_> = img
        .pixels()
        .filter(|p| (32..200).contains(&p.0[3]))
        .collect();
    assert!(rim.len() > 100, "only {} rim pixels", rim.len());
    for p in rim {
        let [r, g, b, _] = p.0;
        let near = |c: u8, ink: u8| c.abs_diff(ink) <= 24;
        assert!(
            near(r, INK.0[0]) && near(g, INK.0[1]) && near(b, INK.0[2]),
            "rim pixel {:?} is not the ink's colour {:?}",
            p.0,
            INK.0
        );
    }
}

#[test]
fn jpeg_small_input_is_cropped_not_scaled() {
    // 500x400, disc radius 120: the crop is ~ 250 px, smaller than the input, below 600.
    let input = jpeg_bytes(&disc(500, 400, 250.0, 200.0, 120.0), 90);
    let out = normalize_seal_picture(&input).unwrap();
    assert!(out.width_px < 500 && out.height_px < 400, "{out:?}");
    assert!(out.width_px >= 240 && out.height_px >= 240, "{out:?}");
    let img = decode_png(&out.png);
    assert_corners_transparent(&img);
    assert_centre_red(&img);
    // JPEG noise on the paper must not survive: count opaque pixels far from the disc.
    let stray = img
        .enumerate_pixels()
        .filter(|(x, y, p)| {
            let (dx, dy) = (
                f64::from(*x) - f64::from(img.width()) / 2.0,
                f64::from(*y) - f64::from(img.height()) / 2.0,
            );
            p.0[3] > 0 && (dx * dx + dy * dy).sqrt() > 130.0
        })
        .count();
    assert_eq!(stray, 0);
}

#[test]
fn black_print_is_removed_and_aspect_is_kept() {
    // Wide picture: red bar 1800x300 with black text-like blocks next to it.
    let img = RgbImage::from_fn(2400, 1000, |x, y| {
        if (300..2100).contains(&x) && (350..650).contains(&y) {
            INK
        } else if (50..250).contains(&x) && (100..900).contains(&y) {
            Rgb([20, 20, 20])
        } else {
            PAPER
        }
    });
    let out = normalize_seal_picture(&png_bytes(&img)).unwrap();
    // Crop 1800x300 plus a 36 px margin each side = 1872x372, scaled to 600 wide.
    assert_eq!(out.width_px, 600);
    assert_eq!(out.height_px, 372 * 600 / 1872);
}

#[test]
fn all_white_is_empty() {
    let white = RgbImage::from_pixel(300, 200, PAPER);
    assert!(matches!(
        normalize_seal_picture(&png_bytes(&white)),
        Err(SealError::EmptyPicture)
    ));
    assert!(matches!(
        normalize_seal_picture(&jpeg_bytes(&white, 85)),
        Err(SealError::EmptyPicture)
    ));
}

#[test]
fn random_bytes_and_truncated_files_are_unreadable() {
    // Deterministic pseudo-random bytes (xorshift), not starting with a known signature.
    let mut state: u32 = 0x9e37_79b9;
    let random: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect();
    assert!(matches!(
        normalize_seal_picture(&random),
        Err(SealError::UnreadablePicture(_))
    ));
    assert!(matches!(
        normalize_seal_picture(&[]),
        Err(SealError::UnreadablePicture(_))
    ));
    let png = png_bytes(&disc(100, 100, 50.0, 50.0, 30.0));
    assert!(matches!(
        normalize_seal_picture(&png[..png.len() / 2]),
        Err(SealError::UnreadablePicture(_))
    ));
    let jpeg = jpeg_bytes(&disc(100, 100, 50.0, 50.0, 30.0), 90);
    assert!(matches!(
        normalize_seal_picture(&jpeg[..20]),
        Err(SealError::UnreadablePicture(_))
    ));
}

#[test]
fn gif_is_unsupported() {
    // A complete 1x1 GIF89a.
    let gif: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    assert!(matches!(
        normalize_seal_picture(gif),
        Err(SealError::UnsupportedPictureFormat { format: "GIF" })
    ));
}

/// A PNG whose IHDR claims 9000x9000 (with a valid CRC) and no pixel data: refused on the
/// header alone, before any pixel buffer exists.
#[test]
fn absurd_dimensions_are_refused_before_decoding() {
    fn png_with_size(w: u32, h: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(w.to_be_bytes());
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 6, 0, 0, 0]); // 8-bit RGBA
        let crc = crc32(&ihdr);
        let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc.to_be_bytes());
        png
    }
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    // The message names the declared dimensions (it used to say "0x0 px").
    for (w, h) in [(9000, 9000), (100, 8001), (20_000, 20_000)] {
        let err = normalize_seal_picture(&png_with_size(w, h)).unwrap_err();
        assert!(
            matches!(err, SealError::PictureTooLarge { width, height, max_side: 8000 }
                if (width, height) == (w, h)),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("{w}x{h} px")), "{err}");
    }
}

#[test]
fn ink_thresholds() {
    let px = |r, g, b| keep_ink(image::Rgba([r, g, b, 255])).0;
    assert_eq!(px(210, 25, 35), [210, 25, 35, 255]); // ink
    assert_eq!(px(255, 255, 255)[3], 0); // paper
    assert_eq!(px(250, 238, 236)[3], 0); // near-white, pinkish tint (dominance 12)
    assert_eq!(px(30, 30, 30)[3], 0); // black print
    assert_eq!(px(40, 60, 200)[3], 0); // blue ink
    assert_eq!(px(90, 0, 0)[3], 0); // too dark to be seal red
    let rim = px(255, 215, 215); // dominance 40: half way between 20 and 60
    assert_eq!(rim, [255, 215, 215, 127]);
}

// ---- Sample fixtures: fixtures/seals/company.png and fixtures/seals/legal_rep.jpg ----
//
// Regenerate with:
//   cargo test --lib seal::picture::tests::write_seal_fixtures -- --ignored
// Deterministic pixel loops (no randomness, no fonts). Each file stays below 200 KiB.

const FIXTURE_INK: [f64; 3] = [214.0, 30.0, 38.0];
/// 4x4 supersampling: anti-aliased edges like a real scan.
const SUBSAMPLES: u32 = 4;

/// Renders `inside(x, y)` (continuous pixel coordinates) as red ink on white paper.
fn render(size: u32, inside: impl Fn(f64, f64) -> bool) -> RgbImage {
    RgbImage::from_fn(size, size, |x, y| {
        let mut hits = 0u32;
        for sy in 0..SUBSAMPLES {
            for sx in 0..SUBSAMPLES {
                let fx = f64::from(x) + (f64::from(sx) + 0.5) / f64::from(SUBSAMPLES);
                let fy = f64::from(y) + (f64::from(sy) + 0.5) / f64::from(SUBSAMPLES);
                if inside(fx, fy) {
                    hits += 1;
                }
            }
        }
        let coverage = f64::from(hits) / f64::from(SUBSAMPLES * SUBSAMPLES);
        let mix = |ink: f64| (255.0 + (ink - 255.0) * coverage).round() as u8;
        Rgb([
            mix(FIXTURE_INK[0]),
            mix(FIXTURE_INK[1]),
            mix(FIXTURE_INK[2]),
        ])
    })
}

/// Point-in-polygon (even-odd rule).
fn in_polygon(px: f64, py: f64, poly: &[(f64, f64)]) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let ((xi, yi), (xj, yj)) = (poly[i], poly[j]);
        if (yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Company seal: outer ring, a five-pointed star, and 14 short radial "character" strokes
/// along the upper arc where the company name would be, plus a bar under the star.
fn company_seal(size: u32) -> RgbImage {
    let c = f64::from(size) / 2.0;
    let outer = c * 0.95;
    let ring = c * 0.07;
    let star: Vec<(f64, f64)> = (0..10)
        .map(|k| {
            let angle = -std::f64::consts::FRAC_PI_2 + f64::from(k) * std::f64::consts::PI / 5.0;
            let radius = if k % 2 == 0 { c * 0.30 } else { c * 0.12 };
            (c + radius * angle.cos(), c + radius * angle.sin())
        })
        .collect();
    render(size, |x, y| {
        let (dx, dy) = (x - c, y - c);
        let dist = (dx * dx + dy * dy).sqrt();
        if dist <= outer && dist >= outer - ring {
            return true;
        }
        if in_polygon(x, y, &star) {
            return true;
        }
        // Glyph strokes: 14 blocks on an arc from 200 to 340 degrees (the upper side).
        if (c * 0.62..=c * 0.78).contains(&dist) {
            let deg = dy.atan2(dx).to_degrees().rem_euclid(360.0);
            if (200.0..=340.0).contains(&deg) {
                let slot = (deg - 200.0) / 10.0;
                if slot.fract() < 0.6 {
                    return true;
                }
            }
        }
        // A bar under the star (where a seal's serial line sits).
        (c * 0.55..=c * 1.45).contains(&x) && (c * 1.40..=c * 1.48).contains(&y)
    })
}

/// Legal-representative seal: a square frame with four glyph-like marks (2x2 grid).
fn legal_rep_seal(size: u32) -> RgbImage {
    let s = f64::from(size);
    let (outer0, outer1) = (s * 0.08, s * 0.92);
    let frame = s * 0.06;
    render(size, |x, y| {
        let in_outer = (outer0..=outer1).contains(&x) && (outer0..=outer1).contains(&y);
        let (inner0, inner1) = (outer0 + frame, outer1 - frame);
        let in_inner = (inner0..=inner1).contains(&x) && (inner0..=inner1).contains(&y);
        if in_outer && !in_inner {
            return true;
        }
        if !in_inner {
            return false;
        }
        // Four cells; each holds a different stroke pattern (horizontal bars, vertical bar,
        // a cross, a box) standing in for the two-by-two characters of a name seal.
        let cell = (inner1 - inner0) / 2.0;
        let (u, v) = ((x - inner0) / cell, (y - inner0) / cell);
        let (col, row) = (u.floor(), v.floor());
        let (fu, fv) = (u.fract(), v.fract());
        let pad = (0.18..=0.82).contains(&fu) && (0.18..=0.82).contains(&fv);
        if !pad {
            return false;
        }
        let stroke = 0.09;
        match (col as u32, row as u32) {
            (0, 0) => [0.25, 0.5, 0.75]
                .iter()
                .any(|h| (fv - h).abs() < stroke / 2.0),
            (1, 0) => (fu - 0.5).abs() < stroke / 2.0 || (fv - 0.3).abs() < stroke / 2.0,
            (0, 1) => (fu - 0.5).abs() < stroke / 2.0 || (fv - 0.5).abs() < stroke / 2.0,
            _ => {
                (fu - 0.2).abs() < stroke / 2.0
                    || (fu - 0.8).abs() < stroke / 2.0
                    || (fv - 0.2).abs() < stroke / 2.0
                    || (fv - 0.8).abs() < stroke / 2.0
            }
        }
    })
}

fn fixture_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seals")
}

#[test]
#[ignore = "writes fixtures/seals/*; run explicitly to regenerate them"]
fn write_seal_fixtures() {
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("company.png"), png_bytes(&company_seal(800))).unwrap();
    std::fs::write(
        dir.join("legal_rep.jpg"),
        jpeg_bytes(&legal_rep_seal(400), 90),
    )
    .unwrap();
}

#[test]
fn fixtures_are_present_small_and_normalise() {
    for (name, format, size) in [
        ("company.png", ImageFormat::Png, 800),
        ("legal_rep.jpg", ImageFormat::Jpeg, 400),
    ] {
        let bytes = std::fs::read(fixture_dir().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}; regenerate (see write_seal_fixtures)"));
        assert!(bytes.len() < 200 * 1024, "{name} is {} bytes", bytes.len());
        let decoded = image::load_from_memory_with_format(&bytes, format).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (size, size), "{name}");
        let out = normalize_seal_picture(&bytes).unwrap();
        assert!(out.width_px <= size && out.height_px <= size, "{name}");
        let img = decode_png(&out.png);
        assert_corners_transparent(&img);
    }
}
