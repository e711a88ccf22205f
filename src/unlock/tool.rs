//! `keystation-unlock request --module LIB [--slot N | --serial S]`: the customer's side of a remote unlock.
//!
//! One process from request to unlock, so the ephemeral private key never leaves its memory:
//! 1. read the token's serial, create an ephemeral X25519 key, print the request code
//!    (`KSUR1-...`) for the service desk, and wait;
//! 2. read the authorisation code (`KSUA1-...`) the station e-mailed to the handler, pasted on
//!    one line; a mistyped one is asked for again;
//! 3. refuse an expired code, or one not made for this request (another request's, a used one,
//!    altered) BEFORE the token is touched;
//! 4. read the new user PIN twice — from the terminal without echo, or, without a terminal
//!    (scripts, tests), the next two lines of standard input; never from the command line;
//! 5. SO login with the current SO PIN, `C_InitPIN`, `C_SetPIN` as SO to the next SO PIN, a
//!    login with the new PIN as proof ([`crate::token::Token::unlock_user_pin`]).
//!
//! Nothing secret is printed or written anywhere: the SO PINs live in zeroizing memory between
//! decryption and the token calls.

use super::code::{AuthorisationCode, CodeError, UnlockRequestCode, new_request};
use crate::domain::Pin;
use crate::token::{Pkcs11Module, Token, TokenError};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use zeroize::Zeroizing;

/// How many times a mistyped authorisation code is asked for again.
const PASTE_TRIES: usize = 3;
/// The bounds of a PIN the customer chooses.
const PIN_MIN: usize = 6;
const PIN_MAX: usize = 32;

/// What `keystation-unlock request` is given.
#[derive(Debug, Clone)]
pub struct RequestArgs {
    /// The PKCS#11 module of the customer's key.
    pub module: PathBuf,
    /// The slot of the key, when more than one is plugged in.
    pub slot: Option<u64>,
    /// Or the key's serial (printed on it), when more than one is plugged in.
    pub serial: Option<String>,
}

/// Why the tool stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The key (or its module) failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The code is refused (expired, not for this request, malformed); the key was not touched.
    #[error("{0} — the key was not touched")]
    Code(#[from] CodeError),
    /// Which key is meant is unclear, or it is not there.
    #[error("{0}")]
    Key(String),
    /// Input ended or was unusable.
    #[error("{0}")]
    Input(String),
}

impl ToolError {
    /// The process exit status: 2 for a refused code or input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ToolError::Code(_) | ToolError::Input(_) | ToolError::Key(_) => 2,
            ToolError::Token(_) => 1,
        }
    }
}

/// Where the tool reads and writes: standard input/output, or a test's buffers.
pub struct Io<'a> {
    /// Codes (and, without a terminal, PINs) one per line.
    pub input: &'a mut dyn BufRead,
    /// Messages and the request code.
    pub output: &'a mut dyn Write,
    /// True when PINs are asked at the terminal without echo.
    pub terminal: bool,
}

impl std::fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("terminal", &self.terminal)
            .finish()
    }
}

impl Io<'_> {
    fn say(&mut self, text: &str) -> Result<(), ToolError> {
        writeln!(self.output, "{text}")
            .and_then(|()| self.output.flush())
            .map_err(|e| ToolError::Input(format!("writing the output: {e}")))
    }

    fn line(&mut self, what: &str) -> Result<Zeroizing<String>, ToolError> {
        let mut s = Zeroizing::new(String::new());
        let n = self
            .input
            .read_line(&mut s)
            .map_err(|e| ToolError::Input(format!("reading the {what}: {e}")))?;
        if n == 0 {
            return Err(ToolError::Input(format!(
                "the input ended before the {what} was given"
            )));
        }
        let t = Zeroizing::new(s.trim_end_matches(['\r', '\n']).to_string());
        Ok(t)
    }

    fn pin(&mut self, prompt: &str) -> Result<Zeroizing<String>, ToolError> {
        if self.terminal {
            rpassword::prompt_password(format!("{prompt}: "))
                .map(Zeroizing::new)
                .map_err(|e| ToolError::Input(format!("reading the PIN: {e}")))
        } else {
            self.say(&format!("{prompt}:"))?;
            self.line("PIN")
        }
    }

    fn new_pin(&mut self) -> Result<Pin, ToolError> {
        let first = self.pin("New user PIN")?;
        let again = self.pin("New user PIN (again)")?;
        if first != again {
            return Err(ToolError::Input(
                "the two PIN entries differ; the key was not touched".into(),
            ));
        }
        let n = first.chars().count();
        if !(PIN_MIN..=PIN_MAX).contains(&n) || first.chars().any(char::is_control) {
            return Err(ToolError::Input(format!(
                "the PIN must have {PIN_MIN}-{PIN_MAX} characters without control characters; \
                 the key was not touched"
            )));
        }
        Ok(Pin::from_secret(first))
    }
}

/// What the tool did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlocked {
    /// The key's serial.
    pub token_serial: String,
    /// False when an earlier, interrupted unlock had already rotated the SO PIN.
    pub so_pin_rotated: bool,
}

/// The key to unlock: the one in `slot`, the one with `serial`, or the only initialised key of
/// the module.
fn pick_token(
    module: &Pkcs11Module,
    slot: Option<u64>,
    serial: Option<&str>,
) -> Result<Token, ToolError> {
    let tokens: Vec<Token> = module
        .tokens()?
        .into_iter()
        .filter(|t| t.info().initialized && !t.info().serial.trim().is_empty())
        .collect();
    if let Some(n) = slot {
        return tokens
            .into_iter()
            .find(|t| t.slot() == n)
            .ok_or_else(|| ToolError::Key(format!("no initialised key in slot {n}")));
    }
    if let Some(want) = serial {
        return tokens
            .into_iter()
            .find(|t| t.info().serial.trim() == want.trim())
            .ok_or_else(|| ToolError::Key(format!("no initialised key with serial {want}")));
    }
    match tokens.len() {
        1 => Ok(tokens
            .into_iter()
            .next()
            .ok_or_else(|| ToolError::Key("the key disappeared while it was being read".into()))?),
        0 => Err(ToolError::Key(
            "no initialised key found: plug in the key to unlock".into(),
        )),
        _ => Err(ToolError::Key(format!(
            "{} keys are plugged in: name one with --slot N or --serial S (slots {})",
            tokens.len(),
            tokens
                .iter()
                .map(|t| format!("{} = {}", t.slot(), t.info().serial.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `keystation-unlock request`: see the module docs. `now` gives the Unix time when the code
/// is checked.
pub fn request(
    args: &RequestArgs,
    io: &mut Io<'_>,
    now: &dyn Fn() -> u64,
) -> Result<Unlocked, ToolError> {
    let module = Pkcs11Module::load(Some(&args.module))?;
    request_on(&module, args, io, now)
}

/// [`request`] on a loaded module.
pub fn request_on(
    module: &Pkcs11Module,
    args: &RequestArgs,
    io: &mut Io<'_>,
    now: &dyn Fn() -> u64,
) -> Result<Unlocked, ToolError> {
    let mut token = pick_token(module, args.slot, args.serial.as_deref())?;
    let serial = token.info().serial.trim().to_string();
    let (key, req) = new_request(&serial)?;
    io.say(&format!(
        "Unlock request for key {serial}. Give this request code to the service desk:"
    ))?;
    io.say(&req.encode())?;
    io.say(
        "Keep this program open. Paste the unlock authorisation code from the e-mail, then \
         press Enter:",
    )?;
    let code = read_code(io)?;
    code.check_expiry(now())?;
    check_same_key(&mut token, &req)?;
    let secrets = code.open(key, &req, now())?;
    let pin = io.new_pin()?;
    let rotated = token.unlock_user_pin(&secrets.current_so_pin, &secrets.next_so_pin, &pin)?;
    io.say(&format!(
        "Key {serial} unlocked: the new PIN is set{}.",
        if rotated {
            " and the unlock code is used up"
        } else {
            " (its SO PIN was already rotated by an earlier, interrupted unlock)"
        }
    ))?;
    Ok(Unlocked {
        token_serial: serial,
        so_pin_rotated: rotated,
    })
}

fn read_code(io: &mut Io<'_>) -> Result<AuthorisationCode, ToolError> {
    let mut tries = 0;
    loop {
        let line = io.line("unlock authorisation code")?;
        if line.trim().is_empty() {
            continue;
        }
        match AuthorisationCode::decode(&line) {
            Ok(c) => return Ok(c),
            Err(e) => {
                tries += 1;
                if tries >= PASTE_TRIES {
                    return Err(e.into());
                }
                io.say(&format!("{e}. Paste it again:"))?;
            }
        }
    }
}

/// The key still in its slot is the one the request was made for.
fn check_same_key(token: &mut Token, req: &UnlockRequestCode) -> Result<(), ToolError> {
    let info = token.refresh()?;
    if info.serial.trim() != req.token_serial {
        return Err(ToolError::Key(format!(
            "the request was made for key {} but key {} is plugged in now",
            req.token_serial,
            info.serial.trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
