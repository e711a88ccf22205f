//! Unit tests of station set-up (`keystation init`).

#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn the_example_marks_its_demo_values_and_set_value_clears_the_mark() {
    let all = demo_values(EXAMPLE);
    for key in [
        "ca.common_name",
        "ca.organization",
        "delivery.bank.debtor_account",
        "delivery.sms.sign_name",
    ] {
        assert!(all.iter().any(|k| k == key), "{key} not marked: {all:?}");
    }
    let named = set_value(EXAMPLE, "organization", "北京某某CA \"有限\"公司");
    let left = demo_values(&named);
    assert!(!left.iter().any(|k| k == "ca.organization"), "{left:?}");
    assert_eq!(left.len(), all.len() - 1);
    let cfg = Config::parse(&named, Path::new("/tmp")).unwrap();
    assert_eq!(cfg.ca.organization, "北京某某CA \"有限\"公司");
}
#[test]
fn generated_pins_come_from_the_given_randomness() {
    let (user, so) = generate_pins(&crate::random::SeededRandom::new(7));
    let (again, so_again) = generate_pins(&crate::random::SeededRandom::new(7));
    assert_eq!(user.expose_secret(), again.expose_secret());
    assert_eq!(so.expose_secret(), so_again.expose_secret());
    assert_ne!(user.expose_secret(), so.expose_secret());
    assert_eq!(user.len(), 16);
    assert_eq!(so.expose_secret().chars().count(), 16);
    let (other, _) = generate_pins(&crate::random::SeededRandom::new(8));
    assert_ne!(user.expose_secret(), other.expose_secret());
}
