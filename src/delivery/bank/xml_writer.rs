//! The few `quick-xml` calls both writers (`pain.001`, the simulated bank's `pain.002`) build
//! their documents with: an element opened, closed, or written whole with its text (escaped).

use std::io::{Result, Write};

use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

/// Opens element `name`.
pub(super) fn start<W: Write>(w: &mut Writer<W>, name: &str) -> Result<()> {
    w.write_event(Event::Start(BytesStart::new(name)))
}

/// Closes element `name`.
pub(super) fn end<W: Write>(w: &mut Writer<W>, name: &str) -> Result<()> {
    w.write_event(Event::End(BytesEnd::new(name)))
}

/// Writes `<name>text</name>`, escaping `text`.
pub(super) fn leaf<W: Write>(w: &mut Writer<W>, name: &str, text: &str) -> Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))
        .map(|_| ())
}
