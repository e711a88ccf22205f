//! Finding tokens, above the seam: serial before label, ambiguous labels, blank tokens, tokens
//! pulled out while the slots are read. (Against SoftHSM: `tests/it/token.rs`.)

#![allow(clippy::unwrap_used)]
use super::*;
use crate::token::fake::{FakeModule, FakeToken};

fn module(tokens: Vec<FakeToken>) -> (FakeModule, Pkcs11Module) {
    let fake = FakeModule::new(tokens);
    let module = Pkcs11Module::with_backend(Arc::new(fake.clone()), PathBuf::from("fake.so"));
    (fake, module)
}

#[test]
fn a_serial_match_wins_over_a_label_match() {
    let (_, m) = module(vec![
        FakeToken::initialised("0001", "ORDER-7"),
        FakeToken::initialised("ORDER-7", "other"),
    ]);
    let t = m.find(&TokenSelector::either("ORDER-7")).unwrap();
    assert_eq!(t.info().serial, "ORDER-7");
    let t = m.find(&[TokenSelector::Label("ORDER-7".into())]).unwrap();
    assert_eq!(t.info().serial, "0001");
}

#[test]
fn text_that_is_no_token_serial_selects_by_label_only() {
    let label = "Company seal key 2026";
    assert_eq!(
        TokenSelector::either(label),
        vec![TokenSelector::Label(label.into())]
    );
    let (_, m) = module(vec![FakeToken::initialised("0001", label)]);
    assert_eq!(
        m.find(&TokenSelector::either(label)).unwrap().info().serial,
        "0001"
    );
    assert_eq!(
        TokenSelector::either("0001"),
        vec![
            TokenSelector::Serial("0001".parse().unwrap()),
            TokenSelector::Label("0001".into())
        ]
    );
}

#[test]
fn a_label_two_tokens_carry_is_ambiguous_and_names_both_serials() {
    let (_, m) = module(vec![
        FakeToken::initialised("0001", "SAME"),
        FakeToken::initialised("0002", "SAME"),
    ]);
    match m.find(&[TokenSelector::Label("SAME".into())]) {
        Err(TokenError::Ambiguous { serials, .. }) => assert_eq!(serials, "0001, 0002"),
        other => panic!("expected Ambiguous, got {other:?}"),
    }
}

#[test]
fn a_blank_token_has_no_label_to_be_found_by_and_is_found_as_blank_from_the_end() {
    let (_, m) = module(vec![
        FakeToken::blank(),
        FakeToken::initialised("0001", "A"),
        FakeToken::blank(),
    ]);
    assert!(matches!(
        m.find(&[TokenSelector::Label(String::new())]),
        Err(TokenError::NotFound(_))
    ));
    assert_eq!(m.first_blank().unwrap().unwrap().info().slot_id, 2);
}

#[test]
fn a_token_pulled_out_is_left_out_of_the_list_and_a_held_one_reports_removed() {
    let (fake, m) = module(vec![
        FakeToken::initialised("0001", "A"),
        FakeToken::initialised("0002", "B"),
    ]);
    let mut b = m
        .find(&[TokenSelector::Serial("0002".parse().unwrap())])
        .unwrap();
    fake.state().tokens[1].present = false;
    let listed: Vec<String> = m.tokens().unwrap().iter().map(|t| t.name()).collect();
    assert_eq!(listed, ["serial 0001 (A)"]);
    assert!(b.refresh().unwrap_err().is_removed());
}

#[test]
fn init_token_gives_a_blank_token_its_serial_and_label() {
    let (_, m) = module(vec![FakeToken::blank()]);
    let mut t = m.first_blank().unwrap().unwrap();
    let so = crate::domain::SoPin::from_secret(zeroize::Zeroizing::new("so-secret".into()));
    t.init_token(&so, "ORDER-9").unwrap();
    assert!(!t.info().serial.is_empty() && t.info().initialized);
    assert_eq!(
        m.find(&[TokenSelector::Label("ORDER-9".into())])
            .unwrap()
            .info()
            .serial,
        t.info().serial
    );
}
