//! The section validators of the files an application references: `documents` (scans, checked
//! by content and size, complete for the product) and `seals` (seal pictures, exactly those of
//! the seal service, each one that provisioning can normalise).
//!
//! Files are probed through the caller's callback, so validation stays pure: the caller reads
//! the bytes (bounded) and reports [`FileFacts`]; this module decides what is acceptable.

use super::reader::{Checked, Reader, section};
use super::{FileFacts, FileUse, MAX_DOCUMENT_BYTES, PictureProblem};
use crate::domain::order::*;
use crate::domain::text::{self, TextKind};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// `documents`: every referenced scan, and every document the product needs. When the product
/// itself is broken (`None`) what was given is still checked, just not completeness.
pub(super) fn documents(
    root: &Map<String, Value>,
    product: Option<&Product>,
    probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
) -> Checked<Option<Vec<DocumentRef>>> {
    section(root, |r| read_documents(r, product, probe))
}

/// `seals`: every seal picture, and exactly the seals of the ordered service (none for a
/// secondary key). When the product is broken (`None`) the pictures are still checked.
pub(super) fn seals(
    root: &Map<String, Value>,
    product: Option<&Product>,
    probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
) -> Checked<Option<Vec<SealPictureRef>>> {
    section(root, |r| read_seals(r, product, probe))
}

fn read_documents(
    r: &mut Reader<'_, '_>,
    product: Option<&Product>,
    probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
) -> Option<Vec<DocumentRef>> {
    let list = FileList {
        list: "documents",
        file_key: "file",
        kinds: &DocumentKind::ALL.map(DocumentKind::as_str),
        use_: FileUse::Document,
        duplicate_code: "document_duplicate",
        duplicate_message: |kind: DocumentKind| format!("{} is given twice", kind.as_str()),
    };
    let ReadList {
        items,
        seen,
        mut ok,
    } = read_file_list(r, &list, probe, |_, _, _| true)?;
    if let Some(product) = product {
        let needs_form =
            product.key_role == KeyRole::Main && product.seal_service != SealService::None;
        for kind in DocumentKind::ALL {
            if kind == DocumentKind::SealCollectionForm && !needs_form {
                continue;
            }
            if !seen.contains(&kind) {
                r.violation(
                    "documents",
                    "document_missing",
                    format!("the {} document is required", kind.as_str()),
                );
                ok = false;
            }
        }
    }
    ok.then(|| {
        items
            .into_iter()
            .map(|(kind, file)| DocumentRef { kind, file })
            .collect()
    })
}

fn read_seals(
    r: &mut Reader<'_, '_>,
    product: Option<&Product>,
    probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
) -> Option<Vec<SealPictureRef>> {
    let required: Option<&[SealKind]> = match product {
        Some(p) => Some(match p.key_role {
            KeyRole::Secondary => &[],
            KeyRole::Main => p.seal_service.seals(),
        }),
        None => None,
    };
    let list = FileList {
        list: "seals",
        file_key: "picture",
        kinds: &["company", "legal_rep"],
        use_: FileUse::SealPicture,
        duplicate_code: "seal_duplicate",
        duplicate_message: |kind: SealKind| format!("the {} seal is given twice", kind.as_str()),
    };
    let ReadList {
        items,
        seen,
        mut ok,
    } = read_file_list(r, &list, probe, |r, key, kind| match required {
        Some(required) if !required.contains(&kind) => {
            r.violation(
                &format!("{key}.kind"),
                "seal_unexpected",
                format!(
                    "the ordered seal service does not include a {} seal",
                    kind.as_str()
                ),
            );
            false
        }
        _ => true,
    })?;
    if let Some(required) = required {
        for kind in required {
            if !seen.contains(kind) {
                r.violation(
                    "seals",
                    "seal_missing",
                    format!(
                        "a {} seal picture is required by the seal service",
                        kind.as_str()
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then(|| {
        items
            .into_iter()
            .map(|(kind, picture)| SealPictureRef { kind, picture })
            .collect()
    })
}

/// A list of `{"kind": ..., <file_key>: ...}` objects: `documents` or `seals`.
struct FileList<'a, K> {
    /// The list's key, e.g. `documents`.
    list: &'static str,
    /// The key of each item's path, e.g. `file`.
    file_key: &'static str,
    /// The kind names accepted, for the message of a wrong one.
    kinds: &'a [&'a str],
    /// What the files are probed for.
    use_: FileUse,
    /// Code of a kind given twice.
    duplicate_code: &'static str,
    /// Message of a kind given twice.
    duplicate_message: fn(K) -> String,
}

/// Reads every item of `spec`'s list: the item itself, its kind given at most once, `check`
/// on its kind (violations located under the item's key), then its file. `None` when the list
/// itself is not an array.
fn read_file_list<'v, K>(
    r: &mut Reader<'_, 'v>,
    spec: &FileList<'_, K>,
    probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
    mut check: impl FnMut(&mut Reader<'_, 'v>, &str, K) -> bool,
) -> Option<ReadList<K>>
where
    K: DeserializeOwned + Ord + Copy,
{
    let items = r.array(spec.list)?;
    let mut found = Vec::new();
    let mut ok = true;
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("{}[{i}]", spec.list);
        let parsed = r.object_item(&key, item, |d| {
            let kind = d.enumeration::<K>("kind", spec.kinds);
            let path = d
                .raw_string(spec.file_key, true)
                .map(str::trim)
                .map(str::to_string);
            d.finish(&["kind", spec.file_key]);
            Some((kind?, path?))
        });
        let Some((kind, path)) = parsed else {
            ok = false;
            continue;
        };
        if !seen.insert(kind) {
            r.violation(
                &format!("{key}.kind"),
                spec.duplicate_code,
                (spec.duplicate_message)(kind),
            );
            ok = false;
        }
        if !check(r, &key, kind) {
            ok = false;
        }
        let field = format!("{key}.{}", spec.file_key);
        if !check_file(r, &field, &path, spec.use_, probe) {
            ok = false;
        }
        found.push((kind, path));
    }
    Some(ReadList {
        items: found,
        seen,
        ok,
    })
}

/// What [`read_file_list`] found.
struct ReadList<K> {
    /// Kind and path of every item that parsed, in order.
    items: Vec<(K, String)>,
    /// The kinds given.
    seen: BTreeSet<K>,
    /// Whether every item held.
    ok: bool,
}

/// Checks one referenced file: a clean path, present, readable, an accepted image type, not
/// too large, and a seal picture that normalises.
fn check_file(
    r: &mut Reader<'_, '_>,
    field: &str,
    path: &str,
    use_: FileUse,
    probe: &mut dyn FnMut(&str, FileUse) -> FileFacts,
) -> bool {
    if let Err(p) = text::check(path, TextKind::Free) {
        r.violation(field, p.code, p.message);
        return false;
    }
    let accepted: &[ImageType] = match use_ {
        FileUse::Document => &[ImageType::Gif, ImageType::Jpeg, ImageType::Png],
        FileUse::SealPicture => &[ImageType::Jpeg, ImageType::Png],
    };
    let (code, message) = match probe(path, use_) {
        FileFacts::Found { size, image } => match image {
            _ if size > MAX_DOCUMENT_BYTES => (
                "file_too_large",
                format!("{path}: {size} bytes, the limit is 1.5 MiB ({MAX_DOCUMENT_BYTES} bytes)"),
            ),
            Some(t) if accepted.contains(&t) => return true,
            Some(t) => (
                "file_type",
                format!("{path}: a {} picture is not accepted here", t.media_type()),
            ),
            None => (
                "file_type",
                format!(
                    "{path}: not a {} image (checked by content, not by name)",
                    accepted
                        .iter()
                        .map(|t| t.media_type())
                        .collect::<Vec<_>>()
                        .join("/")
                ),
            ),
        },
        FileFacts::TooLarge => (
            "file_too_large",
            format!("{path}: larger than 1.5 MiB ({MAX_DOCUMENT_BYTES} bytes)"),
        ),
        FileFacts::Missing => ("file_missing", format!("{path}: no such file")),
        FileFacts::PathRejected(why) => ("file_path", format!("{path}: {why}")),
        FileFacts::Unreadable => (
            "file_unreadable",
            format!("{path}: cannot be read (not a regular file, or no permission)"),
        ),
        FileFacts::BadPicture(PictureProblem::TooLarge {
            width,
            height,
            max_side,
        }) => (
            "picture_too_large",
            format!("{path}: {width}x{height} px, the limit is {max_side} px per side"),
        ),
        FileFacts::BadPicture(PictureProblem::Empty) => (
            "picture_empty",
            format!(
                "{path}: no red seal impression remains once the background is removed \
                 (a blank, all-white or transparent picture)"
            ),
        ),
        FileFacts::BadPicture(PictureProblem::Unreadable(why)) => (
            "picture_unreadable",
            format!("{path}: does not decode as a picture: {why}"),
        ),
    };
    r.violation(field, code, message);
    false
}
