//! Seal pictures: the operator-supplied scan or photo of a seal impression (PNG or JPEG, from the
//! order's directory) decoded under size and memory limits and normalised.
//!
//! Asserts, beyond "never panics" (and libFuzzer's RSS limit, which catches an unbounded
//! allocation): a normalised picture is a PNG with the dimensions it claims, each side between 1
//! and `MAX_OUTPUT_SIDE` pixels.
#![no_main]

use keystation::seal::normalize_seal_picture;
use keystation::seal::picture::MAX_OUTPUT_SIDE;
use libfuzzer_sys::fuzz_target;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fuzz_target!(|data: &[u8]| {
    let Ok(picture) = normalize_seal_picture(data) else {
        return;
    };
    assert!(
        picture.png.starts_with(PNG_SIGNATURE),
        "output is not a PNG"
    );
    assert!((1..=MAX_OUTPUT_SIDE).contains(&picture.width_px));
    assert!((1..=MAX_OUTPUT_SIDE).contains(&picture.height_px));
    // The IHDR chunk (right after the signature and the chunk header) holds the dimensions.
    let ihdr = &picture.png[16..24];
    let width = u32::from_be_bytes([ihdr[0], ihdr[1], ihdr[2], ihdr[3]]);
    let height = u32::from_be_bytes([ihdr[4], ihdr[5], ihdr[6], ihdr[7]]);
    assert_eq!((width, height), (picture.width_px, picture.height_px));
});
