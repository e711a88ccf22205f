//! The simulator as a decorator: counters, flags and capacity over a backend that never locks
//! or fills up (the in-memory fake here; SoftHSM through the binary in `tests/it/token_faults`).

#![allow(clippy::unwrap_used)]
use super::*;
use crate::token::fake::{FakeModule, FakeToken};
use crate::token::{Pkcs11Module, Token, TokenSelector};
use serde_json::{Value, json};
use zeroize::Zeroizing;

struct Sim {
    fake: FakeModule,
    module: Pkcs11Module,
    state: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sim {
    fn new(tokens: Vec<FakeToken>, state: Value) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token-sim.json");
        std::fs::write(&path, state.to_string()).unwrap();
        let fake = FakeModule::new(tokens);
        let backend = Arc::new(SimulatedFaults {
            inner: Arc::new(fake.clone()),
            state: StateFile(path.clone()),
        });
        Sim {
            module: Pkcs11Module::with_backend(backend, PathBuf::from("fake.so")),
            fake,
            state: path,
            _dir: dir,
        }
    }

    fn token(&self, serial: &str) -> Token {
        self.module
            .find(&[TokenSelector::Serial(serial.parse().unwrap())])
            .unwrap()
    }

    fn counters(&self, serial: &str) -> Value {
        let v: Value = serde_json::from_slice(&std::fs::read(&self.state).unwrap()).unwrap();
        v["tokens"][serial].clone()
    }

    fn attempts(&self) -> usize {
        self.fake.state().login_attempts
    }
}

fn pin(s: &str) -> Pin {
    Pin::from_secret(Zeroizing::new(s.into()))
}

fn so(s: &str) -> SoPin {
    SoPin::from_secret(Zeroizing::new(s.into()))
}

#[test]
fn wrong_pins_count_down_to_the_final_try_where_the_station_stops_and_the_so_unlocks() {
    let sim = Sim::new(
        vec![FakeToken::initialised("0001", "A")],
        json!({"tokens": {"0001": {"max_user_tries": 3, "user_tries_left": 3}}}),
    );
    let mut t = sim.token("0001");
    for (left, count_low, final_try) in [(2, true, false), (1, true, true)] {
        let err = t.login_user(&pin("wrong")).unwrap_err();
        assert!(matches!(err, TokenError::PinIncorrect { .. }), "{err:?}");
        assert_eq!(sim.counters("0001")["user_tries_left"], left);
        let info = t.refresh().unwrap();
        assert_eq!(
            (info.user_pin_count_low, info.user_pin_final_try),
            (count_low, final_try)
        );
    }
    assert_eq!(sim.attempts(), 2);
    let err = t.login_user(&pin("user-pin")).unwrap_err();
    assert!(matches!(err, TokenError::PinFinalTry { .. }), "{err:?}");
    assert_eq!(sim.attempts(), 2, "the final try was not spent");

    t.login_so(&so("so-pin"))
        .unwrap()
        .init_user_pin(&pin("new-pin"))
        .unwrap();
    assert_eq!(sim.counters("0001")["user_tries_left"], 3);
    let info = t.refresh().unwrap();
    assert!(!info.user_pin_count_low && !info.user_pin_final_try);
    t.login_user(&pin("new-pin")).unwrap();
}

#[test]
fn a_locked_pin_answers_locked_without_being_tried() {
    let sim = Sim::new(
        vec![FakeToken::initialised("0001", "A")],
        json!({"tokens": {"*": {"max_user_tries": 3, "user_tries_left": 0}}}),
    );
    let mut t = sim.token("0001");
    assert!(t.info().user_pin_locked, "the flag is on the token's info");
    let err = t.login_user(&pin("user-pin")).unwrap_err();
    assert!(matches!(err, TokenError::PinLocked { .. }), "{err:?}");
    // Below the station's own refusal, the token itself answers CKR_PIN_LOCKED untried.
    let session = t.open().unwrap();
    let err = session
        .backend
        .login(Credential::User(&pin("user-pin")))
        .unwrap_err();
    assert!(
        matches!(err, TokenError::PinLocked { hint: "", .. }),
        "{err:?}"
    );
    assert_eq!(sim.attempts(), 0);
}

#[test]
fn a_full_token_refuses_what_does_not_fit_before_creating_anything() {
    let mut token = FakeToken::initialised("0001", "A");
    token.objects = 1;
    let sim = Sim::new(vec![token], json!({"tokens": {"0001": {"max_objects": 3}}}));
    let s = sim.token("0001").login_user(&pin("user-pin")).unwrap();
    s.write_data(&DataObject::private("app", "one", b"v"))
        .unwrap();
    let err = s
        .generate_key_pair(KeyAlgorithm::EcdsaP256, b"id", "key")
        .unwrap_err();
    assert!(
        matches!(&err, TokenError::Full { function, .. } if function == "C_CreateObject"),
        "{err:?}"
    );
    s.write_certificate(b"id", "cert", b"der").unwrap();
    assert!(matches!(
        s.write_data(&DataObject::private("app", "two", b"v")),
        Err(TokenError::Full { .. })
    ));
    assert_eq!(
        sim.fake.state().created,
        2,
        "nothing was created past the limit"
    );
}

#[test]
fn a_wrong_so_pin_counts_and_initialising_resets_every_counter() {
    let sim = Sim::new(
        vec![FakeToken::initialised("0001", "A"), FakeToken::blank()],
        json!({"tokens": {"*": {"max_user_tries": 3, "user_tries_left": 1,
                                "max_so_tries": 3, "so_tries_left": 3}}}),
    );
    let mut t = sim.token("0001");
    let err = t.init_token(&so("wrong"), "B").unwrap_err();
    assert!(matches!(err, TokenError::PinIncorrect { .. }), "{err:?}");
    assert_eq!(sim.counters("0001")["so_tries_left"], 2);
    assert!(t.refresh().unwrap().so_pin_count_low);

    t.init_token(&so("so-pin"), "B").unwrap();
    assert_eq!(sim.counters("0001")["so_tries_left"], 3);
    assert_eq!(sim.counters("0001")["user_tries_left"], 3);

    // A blank token gains its serial at C_InitToken: its counters start full from the wildcard.
    let mut blank = sim.module.first_blank().unwrap().unwrap();
    blank.init_token(&so("so-2"), "C").unwrap();
    let serial = blank.info().serial.clone();
    assert_eq!(sim.counters(&serial)["user_tries_left"], 3);
}
