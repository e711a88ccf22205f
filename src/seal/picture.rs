//! Seal pictures: from an operator's scan or photo of a seal impression to the PNG that goes
//! into `SES_ESPictrueInfo`.
//!
//! Pipeline of [`normalize_seal_picture`]:
//! 1. detect the format by magic bytes: PNG and JPEG are decoded; GIF, BMP, WebP, TIFF are
//!    recognised and refused as unsupported; anything else is unreadable;
//! 2. read the header only and refuse a side above [`MAX_INPUT_SIDE`] px, naming the declared
//!    dimensions, before any pixel buffer exists; then decode under [`image::Limits`] (side
//!    bound plus [`MAX_DECODE_ALLOC`] bytes), so a hostile file declaring huge dimensions cannot
//!    make the station allocate without bound;
//! 3. apply the EXIF orientation (phone photos);
//! 4. find the bounding box of the seal ink (see "Ink thresholds") on the decoded pixels, and
//!    refuse a picture without any ([`SealError::EmptyPicture`]: blank, all white, transparent);
//! 5. crop to that box plus a small margin, converting the crop to RGBA8 and keeping only the
//!    ink (everything else fully transparent) in the same pass. 8-bit RGB and RGBA (every JPEG
//!    and most PNGs) are read in place, so the worst case is the decoded buffer (within
//!    `MAX_DECODE_ALLOC`) plus an RGBA8 copy of the crop; other layouts are converted to RGBA8
//!    whole first, the decoded buffer dropped once converted;
//! 6. downscale (Lanczos3 convolution, aspect kept, colour weighted by alpha) so the long side
//!    is at most [`MAX_OUTPUT_SIDE`] px;
//! 7. encode as PNG RGBA.
//!
//! The intake runs this same function on every seal picture of an order (`station::intake`),
//! so a picture that provisioning could not use is refused before the order exists, and keeps
//! the result (under [`NORMALIZATION_VERSION`]): provisioning seals the kept PNG instead of
//! normalising the picture again.
//!
//! Ink thresholds (on 8-bit channels, `dominance = r - max(g, b)`):
//! - `r >= INK_MIN_RED (100)` and `dominance >= INK_FULL_DOMINANCE (60)`: seal ink, colour and
//!   alpha kept as they are;
//! - `r >= INK_MIN_RED` and `INK_EDGE_DOMINANCE (20) < dominance < 60`: the anti-aliased rim of
//!   the ink (and pale ink); colour kept, alpha scaled linearly from 0 at 20 to full at 60, so
//!   edges stay smooth instead of jagged;
//! - anything else (white or near-white paper, pinkish paper tint, grey shadows, black print or
//!   blue handwriting on a seal collection form): alpha 0. Only red ink survives on purpose: an
//!   impression of an official Chinese seal is red.
//!
//! Fully transparent pixels are stored as transparent white. The downscale weighs each pixel's
//! colour by its alpha (`fast_image_resize`, SIMD), so the colour of transparent pixels never
//! bleeds into the ink rim.

use std::io::Cursor;

use image::codecs::jpeg::JpegDecoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngDecoder, PngEncoder};
use image::{
    DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageError, Limits,
    metadata::Orientation,
};

use super::SealError;

/// Largest accepted width or height of an input picture, in pixels.
pub const MAX_INPUT_SIDE: u32 = 8000;
/// Long side of the normalised picture is at most this many pixels.
pub const MAX_OUTPUT_SIDE: u32 = 600;
/// Memory the decoder may allocate for one picture (an 8000x8000 RGBA8 image).
pub const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;
/// Version of [`normalize_seal_picture`]'s output. The intake keeps each picture's normalised
/// PNG under this number, and provisioning uses a kept PNG only when its number is this one: a
/// change to the pipeline that changes a single output byte (thresholds, margin, filter, PNG
/// encoder settings, an `image` upgrade that resamples differently) must bump it, so pictures
/// kept before are normalised again rather than sealed as the old code made them.
///
/// Version 2: the downscale is `fast_image_resize`'s alpha-weighted Lanczos3 (version 1 was
/// `image`'s, unweighted and four times slower).
pub const NORMALIZATION_VERSION: i64 = 2;

const INK_MIN_RED: u8 = 100;
const INK_FULL_DOMINANCE: i32 = 60;
const INK_EDGE_DOMINANCE: i32 = 20;
const TRANSPARENT: image::Rgba<u8> = image::Rgba([255, 255, 255, 0]);

/// A seal picture ready for [`super::SealSpec::picture_png`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizedPicture {
    /// PNG, 8-bit RGBA, transparent background.
    pub png: Vec<u8>,
    /// Width of `png` in pixels.
    pub width_px: u32,
    /// Height of `png` in pixels.
    pub height_px: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PictureFormat {
    Png,
    Jpeg,
}

/// Normalises a PNG or JPEG seal impression; see the module docs for every step and threshold.
pub fn normalize_seal_picture(bytes: &[u8]) -> Result<NormalizedPicture, SealError> {
    let format = detect_format(bytes)?;
    let decoded = decode_bounded(bytes, format)?;
    let width = decoded.width();
    let mut cropped = match decoded {
        DynamicImage::ImageRgb8(img) => ink_crop(img.as_raw(), width, 3)?,
        DynamicImage::ImageRgba8(img) => ink_crop(img.as_raw(), width, 4)?,
        // Other layouts (grey, 16-bit): converted whole, the decoded buffer given up for it.
        other => ink_crop(other.into_rgba8().as_raw(), width, 4)?,
    };

    let (cw, ch) = cropped.dimensions();
    let long_side = cw.max(ch);
    if long_side > MAX_OUTPUT_SIDE {
        let scale = |side: u32| -> u32 {
            let scaled = u64::from(side) * u64::from(MAX_OUTPUT_SIDE) / u64::from(long_side);
            u32::try_from(scaled).unwrap_or(MAX_OUTPUT_SIDE).max(1)
        };
        cropped = downscale(&cropped, scale(cw), scale(ch))?;
    }

    let (width_px, height_px) = cropped.dimensions();
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, PngFilter::Adaptive)
        .write_image(
            cropped.as_raw(),
            width_px,
            height_px,
            ExtendedColorType::Rgba8,
        )
        .map_err(|e| SealError::PictureEncode(e.to_string()))?;
    Ok(NormalizedPicture {
        png,
        width_px,
        height_px,
    })
}

/// `picture` resized to `width` x `height` (Lanczos3, colour weighted by alpha).
fn downscale(
    picture: &image::RgbaImage,
    width: u32,
    height: u32,
) -> Result<image::RgbaImage, SealError> {
    let mut out = image::RgbaImage::new(width, height);
    fast_image_resize::Resizer::new()
        .resize(
            picture,
            &mut out,
            &fast_image_resize::ResizeOptions::new().resize_alg(
                fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Lanczos3),
            ),
        )
        .map_err(|e| SealError::PictureEncode(format!("resizing: {e}")))?;
    Ok(out)
}

/// The eight bytes every PNG file starts with.
pub(super) const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

fn detect_format(bytes: &[u8]) -> Result<PictureFormat, SealError> {
    if bytes.starts_with(&PNG_SIGNATURE) {
        return Ok(PictureFormat::Png);
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return Ok(PictureFormat::Jpeg);
    }
    let unsupported = if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("GIF")
    } else if bytes.starts_with(b"BM") && bytes.len() >= 26 {
        Some("BMP")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("WebP")
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some("TIFF")
    } else {
        None
    };
    match unsupported {
        Some(format) => Err(SealError::UnsupportedPictureFormat { format }),
        None => Err(SealError::UnreadablePicture(
            "neither a PNG nor a JPEG file (unknown signature)".to_owned(),
        )),
    }
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

/// A picture over the side limits, naming its dimensions.
fn too_large(width: u32, height: u32) -> SealError {
    SealError::PictureTooLarge {
        width,
        height,
        max_side: MAX_INPUT_SIDE,
    }
}

/// A decoder's refusal: over its limits (for a picture of `width` × `height`), or unreadable.
fn refused(e: ImageError, width: u32, height: u32) -> SealError {
    match e {
        ImageError::Limits(_) => too_large(width, height),
        other => SealError::UnreadablePicture(other.to_string()),
    }
}

fn decode_bounded(bytes: &[u8], format: PictureFormat) -> Result<DynamicImage, SealError> {
    // The PNG decoder checks the side limits inside its constructor, where a refusal cannot say
    // which dimensions it refused: the IHDR chunk (always first) is read here to name them.
    if format == PictureFormat::Png {
        if let Some((width, height)) = png_dimensions(bytes) {
            if width > MAX_INPUT_SIDE || height > MAX_INPUT_SIDE {
                return Err(too_large(width, height));
            }
        }
    }
    // Header-only construction: no pixel buffer is allocated yet.
    let mut decoder: Box<dyn ImageDecoder + '_> = match format {
        PictureFormat::Png => Box::new(
            PngDecoder::with_limits(Cursor::new(bytes), limits()).map_err(|e| {
                let (width, height) = png_dimensions(bytes).unwrap_or((0, 0));
                refused(e, width, height)
            })?,
        ),
        PictureFormat::Jpeg => Box::new(
            JpegDecoder::new(Cursor::new(bytes))
                .map_err(|e| SealError::UnreadablePicture(e.to_string()))?,
        ),
    };
    let (width, height) = decoder.dimensions();
    if width > MAX_INPUT_SIDE || height > MAX_INPUT_SIDE {
        return Err(too_large(width, height));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut limits = limits();
    // Same accounting as `ImageReader::decode`: the output buffer counts against max_alloc.
    if limits.reserve(decoder.total_bytes()).is_err() {
        return Err(too_large(width, height));
    }
    decoder
        .set_limits(limits)
        .map_err(|e| refused(e, width, height))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| refused(e, width, height))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Width and height declared by a PNG's IHDR chunk, which the format requires to come first.
fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let be = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    (bytes.get(12..16)? == b"IHDR").then_some(())?;
    Some((be(16)?, be(20)?))
}

/// The ink of an 8-bit picture (`channels` 3 for RGB, 4 for RGBA; rows of `width` pixels, read
/// in place): the bounding box of the pixels [`keep_ink`] keeps plus a margin, copied as RGBA8
/// with only the ink kept, in one pass over the box. [`SealError::EmptyPicture`] when no pixel is
/// ink.
fn ink_crop(raw: &[u8], width: u32, channels: usize) -> Result<image::RgbaImage, SealError> {
    let pixel = |c: &[u8]| match *c {
        [r, g, b] => image::Rgba([r, g, b, 255]),
        [r, g, b, a] => image::Rgba([r, g, b, a]),
        _ => TRANSPARENT,
    };
    let is_ink = |c: &[u8]| keep_ink(pixel(c)).0[3] > 0;
    let stride = usize::try_from(width).unwrap_or(0) * channels;
    if stride == 0 {
        return Err(SealError::EmptyPicture);
    }
    let height = raw.len() / stride;
    // (min_x, min_y, max_x, max_y): each row is searched from both ends only.
    let mut bounds: Option<(usize, usize, usize, usize)> = None;
    for (y, row) in raw.chunks_exact(stride).enumerate() {
        let Some(first) = row.chunks_exact(channels).position(is_ink) else {
            continue;
        };
        let last = row
            .chunks_exact(channels)
            .rposition(is_ink)
            .unwrap_or(first);
        bounds = Some(match bounds {
            None => (first, y, last, y),
            Some((x0, y0, x1, _)) => (x0.min(first), y0, x1.max(last), y),
        });
    }
    let (x0, y0, x1, y1) = bounds.ok_or(SealError::EmptyPicture)?;

    // Margin: 2 % of the impression's long side, at least 2 px, so the resampling filter has
    // transparent pixels to fade into and the rim is not clipped.
    let long = (x1 - x0 + 1).max(y1 - y0 + 1);
    let margin = (long / 50).max(2);
    let left = x0.saturating_sub(margin);
    let top = y0.saturating_sub(margin);
    let right = x1.saturating_add(margin).min(stride / channels - 1);
    let bottom = y1.saturating_add(margin).min(height - 1);
    let (crop_w, crop_h) = (right - left + 1, bottom - top + 1);
    let mut out = Vec::with_capacity(crop_w * crop_h * 4);
    for row in raw.chunks_exact(stride).skip(top).take(crop_h) {
        let ink = row
            .get(left * channels..(right + 1) * channels)
            .unwrap_or(&[]);
        for c in ink.chunks_exact(channels) {
            out.extend_from_slice(&keep_ink(pixel(c)).0);
        }
    }
    let side = |n: usize| u32::try_from(n).map_err(|_| SealError::EmptyPicture);
    image::RgbaImage::from_raw(side(crop_w)?, side(crop_h)?, out)
        .ok_or_else(|| SealError::PictureEncode("cropping the ink".into()))
}

/// Applies the ink thresholds of the module docs to one pixel.
fn keep_ink(pixel: image::Rgba<u8>) -> image::Rgba<u8> {
    let [r, g, b, a] = pixel.0;
    if a == 0 || r < INK_MIN_RED {
        return TRANSPARENT;
    }
    let dominance = i32::from(r) - i32::from(g.max(b));
    if dominance >= INK_FULL_DOMINANCE {
        pixel
    } else if dominance > INK_EDGE_DOMINANCE {
        let span = INK_FULL_DOMINANCE - INK_EDGE_DOMINANCE;
        let alpha = i32::from(a) * (dominance - INK_EDGE_DOMINANCE) / span;
        image::Rgba([r, g, b, u8::try_from(alpha).unwrap_or(a)])
    } else {
        TRANSPARENT
    }
}

#[cfg(test)]
mod tests;
