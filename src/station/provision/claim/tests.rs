#![allow(clippy::unwrap_used)]
use super::*;
use crate::token::fake::FakeToken;

fn no(s: &str) -> OrderNo {
    OrderNo::parse(s).unwrap()
}

fn token(serial: &str, label: &str, initialized: bool) -> TokenInfo {
    let mut token = FakeToken::initialised(serial, label);
    token.info.initialized = initialized;
    token.info.user_pin_initialized = initialized;
    token.info
}

fn binding(serial: Option<&str>) -> Binding {
    Binding {
        binding_id: BindingId::parse("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap(),
        order_no: no("KS1"),
        station_id: "station-01".into(),
        so_identity: "blank:67e55044-10b1-426f-9247-bb680e5fe0c8".into(),
        token_serial: serial.map(|s| TokenSerial::parse(s).unwrap()),
        token_label: "KS1".into(),
        key_algorithm: "ecdsa-p256".into(),
        key_id: None,
        public_key: None,
        bound_at: "2026-01-01T00:00:00Z".into(),
        kept_from: None,
    }
}

#[test]
fn a_blank_token_is_usable_for_a_new_order() {
    assert_eq!(
        token_refusal(&token("", "", false), &no("KS1"), None, None),
        None
    );
    assert_eq!(
        token_refusal(&token("A1", "", false), &no("KS1"), None, None),
        None
    );
}

#[test]
fn a_token_bound_to_another_order_is_refused() {
    let refusal = token_refusal(
        &token("A1", "KS2", true),
        &no("KS1"),
        None,
        Some(&no("KS2")),
    );
    assert_eq!(refusal.as_deref(), Some("it is bound to order KS2"));
    // Its own order's binding is no refusal.
    let b = binding(Some("A1"));
    assert_eq!(
        token_refusal(
            &token("A1", "KS1", true),
            &no("KS1"),
            Some(&b),
            Some(&no("KS1"))
        ),
        None
    );
}

#[test]
fn an_order_bound_to_a_token_refuses_any_other() {
    let b = binding(Some("A1"));
    let refusal = token_refusal(&token("B2", "", false), &no("KS1"), Some(&b), None);
    assert!(
        refusal
            .as_deref()
            .is_some_and(|r| r.starts_with("order KS1 is bound to token A1;")),
        "{refusal:?}"
    );
}

#[test]
fn an_initialised_token_is_erased_only_when_the_station_made_it_for_the_order() {
    let foreign = token("C3", "someone else's", true);
    assert!(token_refusal(&foreign, &no("KS1"), None, None).is_some());
    assert!(token_refusal(&foreign, &no("KS1"), Some(&binding(None)), None).is_some());
    // A crash inside C_InitToken: the binding has no serial yet, the label is the order's.
    let ours = token("C3", "KS1", true);
    assert_eq!(
        token_refusal(&ours, &no("KS1"), Some(&binding(None)), None),
        None
    );
    assert!(token_refusal(&ours, &no("KS1"), None, None).is_some());
}
