//! The hardened XML pull reader under both readers of the bank's answers ([`super::pain002`],
//! [`super::camt054`]): a `quick-xml` reader that keeps only the path of open elements and hands
//! each element to a [`Handler`], which extracts the fields it wants.
//!
//! It does not validate against the schema (a bank's extra or reordered elements are ignored),
//! but it is strict about everything that could hurt the station. Invariants (hostile input):
//! - input is at most [`MAX_INPUT_BYTES`], valid UTF-8, declared (if at all) as XML 1.0 in UTF-8,
//!   free of characters XML 1.0 forbids;
//! - a `DOCTYPE` is refused before anything else is read, and only the five predefined entities
//!   and character references are resolved: no entity expansion ("billion laughs") and no
//!   external entity (XXE) is possible;
//! - element nesting is at most [`MAX_DEPTH`]; each extracted value is at most
//!   [`MAX_EXTRACTED_CHARS`] characters;
//! - the root is `Document` in the expected namespace, closed, with nothing but whitespace,
//!   comments and processing instructions after it;
//! - no input makes it panic (proptests feed random and mutated documents), and no error carries
//!   element text (a `camt.054` may echo the memo, hence the PIN).

use quick_xml::XmlVersion;
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::{BankError, MAX_DEPTH, MAX_EXTRACTED_CHARS, MAX_INPUT_BYTES};

/// Receives the elements of a document below its `Document` root.
pub(super) trait Handler {
    /// An element opened; `path` is the local names from below `Document` to it (elements of
    /// other namespaces appear as `#foreign`). Returns whether its text is wanted.
    fn start(&mut self, path: &[&str], attrs: &[(String, String)]) -> Result<bool, BankError>;
    /// An element closed; `text` is its text (XML whitespace trimmed) when `start` wanted it.
    fn end(&mut self, path: &[&str], text: Option<String>) -> Result<(), BankError>;
}

const FOREIGN: &str = "#foreign";

/// XML 1.0 `Char` production.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Trims XML whitespace (space, tab, CR, LF), not Unicode whitespace.
pub(super) fn trim_xml(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

enum NsKind {
    Expected,
    Other(String),
    Unbound,
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

fn malformed(offset: u64, e: impl std::fmt::Display) -> BankError {
    BankError::Malformed {
        offset,
        message: e.to_string(),
    }
}

/// Reads `xml` as a document whose root is `Document` in `expected_ns`, feeding `handler`.
pub(super) fn read_document(
    xml: &[u8],
    expected_ns: &'static str,
    handler: &mut impl Handler,
) -> Result<(), BankError> {
    if xml.len() > MAX_INPUT_BYTES {
        return Err(BankError::InputTooLarge {
            size: xml.len(),
            limit: MAX_INPUT_BYTES,
        });
    }
    let text = std::str::from_utf8(xml).map_err(|e| BankError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    if let Some((offset, _)) = text.char_indices().find(|(_, c)| !is_xml_char(*c)) {
        return Err(BankError::ForbiddenCharacter { offset });
    }

    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;
    config.check_comments = true;

    // Local names of the open elements below the root, and their text buffers.
    let mut names: Vec<String> = Vec::new();
    let mut texts: Vec<Option<String>> = Vec::new();
    let mut root_open = false;
    let mut root_closed = false;
    let mut attrs: Vec<(String, String)> = Vec::new();

    loop {
        let step = match reader.read_resolved_event() {
            Ok((ResolveResult::Bound(ns), event)) => Ok((
                if ns.as_ref() == expected_ns {
                    NsKind::Expected
                } else {
                    NsKind::Other(shorten(ns.as_ref()))
                },
                event,
            )),
            Ok((ResolveResult::Unbound, event)) => Ok((NsKind::Unbound, event)),
            Ok((ResolveResult::Unknown(prefix), _)) => Err(malformed(
                reader.buffer_position(),
                format!("undeclared namespace prefix `{}`", shorten(&prefix)),
            )),
            Err(e) => Err(malformed(reader.error_position(), e)),
        };
        let (ns, event) = step?;
        let offset = reader.buffer_position();
        match event {
            Event::Decl(decl) => check_declaration(&decl, offset)?,
            Event::DocType(_) => return Err(BankError::DtdRefused { offset }),
            Event::PI(_) | Event::Comment(_) => {}
            // `expand_empty_elements` turns `<a/>` into Start + End; never reached.
            Event::Empty(_) => return Err(malformed(offset, "unexpected empty-element event")),
            Event::Start(start) => {
                if root_closed {
                    return Err(BankError::ContentOutsideRoot { offset });
                }
                if names.len() + 1 >= MAX_DEPTH {
                    return Err(BankError::TooDeep {
                        limit: MAX_DEPTH,
                        offset,
                    });
                }
                collect_attributes(&start, &mut attrs, offset)?;
                let local = start.local_name();
                let local = local.as_ref();
                if !root_open {
                    match ns {
                        NsKind::Expected if local == "Document" => root_open = true,
                        NsKind::Expected => {
                            return Err(BankError::WrongDocument {
                                expected: expected_ns,
                                found: format!("root element `{}`", shorten(local)),
                            });
                        }
                        NsKind::Other(found) => {
                            return Err(BankError::WrongDocument {
                                expected: expected_ns,
                                found,
                            });
                        }
                        NsKind::Unbound => {
                            return Err(BankError::WrongDocument {
                                expected: expected_ns,
                                found: "no namespace".into(),
                            });
                        }
                    }
                    continue;
                }
                names.push(match ns {
                    NsKind::Expected => local.to_owned(),
                    NsKind::Other(_) | NsKind::Unbound => FOREIGN.to_owned(),
                });
                let path: Vec<&str> = names.iter().map(String::as_str).collect();
                let wanted = handler.start(&path, &attrs)?;
                texts.push(wanted.then(String::new));
            }
            Event::End(_) => match names.pop() {
                Some(name) => {
                    let text = texts.pop().flatten().map(|t| trim_xml(&t).to_owned());
                    let mut path: Vec<&str> = names.iter().map(String::as_str).collect();
                    path.push(&name);
                    handler.end(&path, text)?;
                }
                None => {
                    root_open = false;
                    root_closed = true;
                }
            },
            Event::Text(t) => {
                let content = t.xml10_content();
                if root_open {
                    append_text(&mut texts, &names, &content)?;
                } else if !trim_xml(&content).is_empty() {
                    return Err(BankError::ContentOutsideRoot { offset });
                }
            }
            Event::CData(c) => {
                if !root_open {
                    return Err(BankError::ContentOutsideRoot { offset });
                }
                append_text(&mut texts, &names, &c.xml10_content())?;
            }
            Event::GeneralRef(r) => {
                if !root_open {
                    return Err(BankError::ContentOutsideRoot { offset });
                }
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) if is_xml_char(c) => c,
                    Ok(Some(_)) => {
                        return Err(BankError::ForbiddenCharacter {
                            offset: usize::try_from(offset).unwrap_or(usize::MAX),
                        });
                    }
                    Ok(None) => match r.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => return Err(BankError::UndefinedEntity { offset }),
                    },
                    Err(e) => return Err(malformed(offset, e)),
                };
                let mut buf = [0u8; 4];
                append_text(&mut texts, &names, c.encode_utf8(&mut buf))?;
            }
            Event::Eof => {
                return if root_closed {
                    Ok(())
                } else if root_open {
                    Err(BankError::Truncated {
                        open: names.len() + 1,
                    })
                } else {
                    Err(BankError::Truncated { open: 0 })
                };
            }
        }
    }
}

fn check_declaration(decl: &BytesDecl<'_>, offset: u64) -> Result<(), BankError> {
    match decl.version() {
        Ok(v) if v == "1.0" => {}
        Ok(_) => {
            return Err(BankError::UnsupportedDeclaration {
                reason: "only XML version 1.0 is accepted",
            });
        }
        Err(e) => return Err(malformed(offset, e)),
    }
    match decl.encoding() {
        None => Ok(()),
        Some(Ok(enc)) if enc.eq_ignore_ascii_case("UTF-8") => Ok(()),
        Some(Ok(_)) => Err(BankError::UnsupportedDeclaration {
            reason: "only the UTF-8 encoding is accepted",
        }),
        Some(Err(e)) => Err(malformed(offset, e)),
    }
}

/// Parses every attribute (so malformed or duplicate attributes are errors, not silently
/// ignored) and keeps the unprefixed, non-`xmlns` ones with their normalized values.
fn collect_attributes(
    start: &BytesStart<'_>,
    attrs: &mut Vec<(String, String)>,
    offset: u64,
) -> Result<(), BankError> {
    attrs.clear();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| malformed(offset, e))?;
        let key = attr.key;
        if key.prefix().is_some() || key.as_ref() == "xmlns" {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| malformed(offset, e))?;
        attrs.push((key.as_ref().to_owned(), value.into_owned()));
    }
    Ok(())
}

fn append_text(
    texts: &mut [Option<String>],
    names: &[String],
    content: &str,
) -> Result<(), BankError> {
    if let Some(Some(buf)) = texts.last_mut() {
        // Bytes bound chars from above by 4x; checked in chars once near the limit.
        if buf.len() + content.len() > MAX_EXTRACTED_CHARS
            && buf.chars().count() + content.chars().count() > MAX_EXTRACTED_CHARS
        {
            return Err(BankError::InvalidValue {
                path: names.join("/"),
                reason: format!("longer than {MAX_EXTRACTED_CHARS} characters"),
            });
        }
        buf.push_str(content);
    }
    Ok(())
}

/// Stores the value of an element the schema allows once; a second occurrence is an error.
pub(super) fn set_once(
    slot: &mut Option<String>,
    value: String,
    path: &[&str],
) -> Result<(), BankError> {
    if slot.is_some() {
        return Err(BankError::DuplicateElement {
            path: path.join("/"),
        });
    }
    *slot = Some(value);
    Ok(())
}

/// The text of an element that must not be empty.
pub(super) fn non_empty(text: Option<String>, path: &[&str]) -> Result<String, BankError> {
    match text {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(BankError::InvalidValue {
            path: path.join("/"),
            reason: "is empty".into(),
        }),
    }
}

/// The error for a required element that is missing.
pub(super) fn missing(path: &str) -> BankError {
    BankError::MissingElement {
        path: path.to_owned(),
    }
}

#[cfg(test)]
mod tests;
