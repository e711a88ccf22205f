//! The tool's logic on the fake PKCS#11 backend, driven like a person at the terminal: its
//! output read line by line, the code and PINs typed after the request code appeared.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::domain::SoPin;
use crate::token::fake::{FakeModule, FakeToken};
use crate::unlock::code::{UnlockSecrets, seal_authorisation};
use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Standard input fed from the test thread.
struct Typed(Receiver<Vec<u8>>, Vec<u8>);

impl Read for Typed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.1.is_empty() {
            match self.0.recv() {
                Ok(v) => self.1 = v,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.1.len());
        buf[..n].copy_from_slice(&self.1[..n]);
        self.1.drain(..n);
        Ok(n)
    }
}

/// Standard output read by the test thread.
struct Shown(Sender<Vec<u8>>);

impl Write for Shown {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn so(s: &str) -> SoPin {
    SoPin::from_secret(Zeroizing::new(s.to_string()))
}

const NOW: u64 = 2_000_000_000;

/// Runs the tool on `fake`; `answer` gets the request code and returns what is typed.
fn run(
    fake: &FakeModule,
    answer: impl FnOnce(&UnlockRequestCode) -> String,
) -> Result<Unlocked, ToolError> {
    let module = Pkcs11Module::with_backend(Arc::new(fake.clone()), PathBuf::from("fake.so"));
    let (type_tx, type_rx) = channel();
    let (show_tx, show_rx) = channel::<Vec<u8>>();
    let worker = std::thread::spawn(move || {
        let mut input = BufReader::new(Typed(type_rx, Vec::new()));
        let mut output = Shown(show_tx);
        let mut io = Io {
            input: &mut input,
            output: &mut output,
            terminal: false,
        };
        let args = RequestArgs {
            module: PathBuf::from("fake.so"),
            slot: None,
            serial: None,
        };
        request_on(&module, &args, &mut io, &|| NOW)
    });
    let mut shown = String::new();
    let code = loop {
        shown.push_str(&String::from_utf8(show_rx.recv().expect("the tool stopped")).unwrap());
        if let Some(line) = shown.lines().find(|l| l.starts_with("KSUR1-")) {
            break UnlockRequestCode::decode(line).unwrap();
        }
    };
    type_tx.send(answer(&code).into_bytes()).unwrap();
    drop(type_tx);
    worker.join().unwrap()
}

fn secrets(current: &str, next: &str) -> UnlockSecrets {
    UnlockSecrets {
        current_so_pin: so(current),
        next_so_pin: so(next),
    }
}

#[test]
fn the_pasted_code_sets_the_typed_pin_and_rotates_the_so_pin() {
    let fake = FakeModule::new(vec![FakeToken::initialised("FAKE0001", "ORDER-1")]);
    let done = run(&fake, |req| {
        assert_eq!(req.token_serial, "FAKE0001");
        let code = seal_authorisation(req, NOW + 60, &secrets("so-pin", "next-so-pin")).unwrap();
        format!("not a code\n{code}\nChosen-1234\nChosen-1234\n")
    })
    .unwrap();
    assert!(done.so_pin_rotated);
    let state = fake.state();
    assert_eq!(state.tokens[0].user_pin, "Chosen-1234");
    assert_eq!(state.tokens[0].so_pin, "next-so-pin");
}

#[test]
fn an_expired_code_or_differing_pins_leave_the_key_untouched() {
    let fake = FakeModule::new(vec![FakeToken::initialised("FAKE0001", "ORDER-1")]);
    let expired = run(&fake, |req| {
        let code = seal_authorisation(req, NOW, &secrets("so-pin", "next")).unwrap();
        format!("{code}\nChosen-1234\nChosen-1234\n")
    });
    assert!(
        matches!(expired, Err(ToolError::Code(CodeError::Expired { .. }))),
        "{expired:?}"
    );
    let differing = run(&fake, |req| {
        let code = seal_authorisation(req, NOW + 60, &secrets("so-pin", "next")).unwrap();
        format!("{code}\nChosen-1234\nChosen-1235\n")
    });
    assert!(
        matches!(differing, Err(ToolError::Input(_))),
        "{differing:?}"
    );
    // Another request's code (a replay) does not open.
    let (_, other) = new_request("FAKE0001").unwrap();
    let replayed = run(&fake, |_| {
        let code = seal_authorisation(&other, NOW + 60, &secrets("so-pin", "next")).unwrap();
        format!("{code}\nChosen-1234\nChosen-1234\n")
    });
    assert!(
        matches!(replayed, Err(ToolError::Code(CodeError::NotForThisRequest))),
        "{replayed:?}"
    );
    let state = fake.state();
    assert_eq!(state.login_attempts, 0, "the key was touched");
    assert_eq!(state.tokens[0].user_pin, "user-pin");
    assert_eq!(state.tokens[0].so_pin, "so-pin");
}

#[test]
fn a_key_rotated_by_an_interrupted_unlock_takes_the_same_code() {
    let mut token = FakeToken::initialised("FAKE0001", "ORDER-1");
    token.so_pin = "next-so-pin".into();
    let fake = FakeModule::new(vec![token]);
    let done = run(&fake, |req| {
        let code = seal_authorisation(req, NOW + 60, &secrets("so-pin", "next-so-pin")).unwrap();
        format!("{code}\nChosen-1234\nChosen-1234\n")
    })
    .unwrap();
    assert!(!done.so_pin_rotated);
    assert_eq!(fake.state().tokens[0].user_pin, "Chosen-1234");
}
