//! Stable error codes: what a script, an operator's runbook or the console reads to know which
//! error it has, whatever the wording of the message.
//!
//! Every public error type implements [`Coded`] with an exhaustive match (no wildcard), so a new
//! variant does not compile until it has a code. Variants that mean the same thing to the
//! operator share a code (`StoreError::OrderNotFound` and `ProvisionError::NotFound` are both
//! [`ORDER_NOT_FOUND`]); a wrapper that only passes an error on (`#[error(transparent)]`) gives
//! the code of what it wraps.
//!
//! A code also says whether the request was *refused* (bad input, an unknown order, a change the
//! current state does not allow: exit code 2) or the work *failed* (exit code 1): see [`Class`].
//!
//! [`ALL`] lists every code with its meaning; the README's table of error codes is checked
//! against it (a unit test below), and every code in it is unique. A code, once published, keeps
//! its meaning: a new meaning gets a new code.
//!
//! Codes of the domain's validation (`uscc_checksum`, `enum_invalid`...) are another, finer
//! vocabulary: they name each violation of an input, all reported under [`INPUT_INVALID`].

use serde::{Serialize, Serializer};
use std::fmt;

/// What an error means for the one who asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The request was refused: bad input or usage, an unknown subject, or a change the current
    /// state does not allow. Nothing was changed by it. Exit code 2.
    Refusal,
    /// The work failed (a token, the database, a file, a broken invariant). Exit code 1.
    Failure,
}

/// A stable error code, e.g. `E-ORDER-NOT-FOUND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    code: &'static str,
    class: Class,
    meaning: &'static str,
}

impl ErrorCode {
    /// The code, e.g. `E-ORDER-NOT-FOUND`.
    pub fn as_str(&self) -> &'static str {
        self.code
    }

    /// Refusal or failure.
    pub fn class(&self) -> Class {
        self.class
    }

    /// True for a refused request (exit code 2).
    pub fn is_refusal(&self) -> bool {
        self.class == Class::Refusal
    }

    /// What the code means, as the README's table says it.
    pub fn meaning(&self) -> &'static str {
        self.meaning
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code)
    }
}

/// An error with a stable code.
pub trait Coded {
    /// The code of this error (of this variant).
    fn code(&self) -> ErrorCode;
}

/// Declares the codes and [`ALL`].
macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $class:ident, $meaning:literal;)*) => {
        $(
            $(#[$doc])*
            #[doc = concat!("`", $code, "`: ", $meaning)]
            pub const $name: ErrorCode = ErrorCode {
                code: $code,
                class: Class::$class,
                meaning: $meaning,
            };
        )*
        /// Every code, in the order of the README's table.
        pub const ALL: &[ErrorCode] = &[$($name),*];
    };
}

codes! {
    // Input and usage.
    USAGE = "E-USAGE", Refusal,
        "A command-line argument is missing, malformed or contradicts another.";
    INPUT_INVALID = "E-INPUT-INVALID", Refusal,
        "The input has violations; each is listed as `field: message [code]`. Nothing was stored.";
    INPUT_FILE = "E-INPUT-FILE", Refusal,
        "An input file cannot be read: missing, unreadable, too large or not a regular file.";
    PIN_INPUT = "E-PIN-INPUT", Refusal,
        "A PIN could not be taken: no terminal to ask, an empty or unreadable PIN file, two entries that differ.";
    CONFIG_MISSING = "E-CONFIG-MISSING", Refusal,
        "No configuration file: give --config, set KEYSTATION_CONFIG or run in the station's directory.";
    CONFIG_INVALID = "E-CONFIG-INVALID", Refusal,
        "The configuration file cannot be read or holds an invalid value (named).";
    DIRECTORY_TAKEN = "E-DIRECTORY-TAKEN", Refusal,
        "The directory given to init or demo already holds a station, a PIN file or something else.";
    // Orders.
    ORDER_NOT_FOUND = "E-ORDER-NOT-FOUND", Refusal,
        "No order has this number.";
    ORDER_EXISTS = "E-ORDER-EXISTS", Failure,
        "An order with this number exists already.";
    ORDER_TRANSITION = "E-ORDER-TRANSITION", Refusal,
        "The order's state does not allow this change.";
    ORDER_CHANGED = "E-ORDER-CHANGED", Refusal,
        "The order changed meanwhile (another operator or station acted first); look at it again.";
    ORDER_STATE = "E-ORDER-STATE", Refusal,
        "The order is in a state that cannot be provisioned; the message says what to do.";
    ORDER_SHIPPED = "E-ORDER-SHIPPED", Refusal,
        "The order was shipped already.";
    MAIN_KEY_NOT_LIVE = "E-MAIN-KEY-NOT-LIVE", Refusal,
        "A secondary key (副锁) is refused: the main-key order it names does not exist, is no main key, belongs to another company, or has no live certificate on a bound token.";
    ORDER_CLAIMED = "E-ORDER-CLAIMED", Refusal,
        "Another station has the order (it failed there and is resumed there); `provision ORDER --reinit --token NEW` starts it over here.";
    LEASE_HELD = "E-LEASE-HELD", Refusal,
        "A live process holds the order's lease (it is being worked on); run again once it has ended.";
    LEASE_LOST = "E-LEASE-LOST", Failure,
        "The job's lease expired and another process took the job over; this one stopped.";
    // Provisioning.
    TOKEN_REFUSED = "E-TOKEN-REFUSED", Refusal,
        "The chosen token cannot be used for this order; nothing on it was changed.";
    NO_BLANK_TOKEN = "E-NO-BLANK-TOKEN", Refusal,
        "No blank token is present for the order.";
    TOKEN_IN_USE = "E-TOKEN-IN-USE", Failure,
        "The token is bound to another order already.";
    PROVISION_STEP = "E-PROVISION-STEP", Failure,
        "A provisioning step failed; the order is Failed and `keystation provision ORDER` resumes it.";
    PROVISION_BATCH = "E-PROVISION-BATCH", Failure,
        "Orders of a batch failed; each is kept and resumable.";
    INJECTED_FAILURE = "E-INJECTED-FAILURE", Failure,
        "A failure injected by a test failpoint (KEYSTATION_FAILPOINTS; debug builds only).";
    INCONSISTENT_RECORDS = "E-INCONSISTENT-RECORDS", Failure,
        "The station's records contradict each other or the token; an operator must look.";
    RANDOM = "E-RANDOM", Failure,
        "The operating system's random generator failed.";
    // Delivery.
    DELIVERY_NOT_FOUND = "E-DELIVERY-NOT-FOUND", Refusal,
        "No PIN delivery has this id.";
    DELIVERY_CHANGED = "E-DELIVERY-CHANGED", Refusal,
        "The delivery changed meanwhile (another worker or operator acted first).";
    DELIVERY_EXISTS = "E-DELIVERY-EXISTS", Failure,
        "The order has a PIN delivery that is not cancelled already.";
    OPERATION_REFUSED = "E-OPERATION-REFUSED", Refusal,
        "The current state does not allow the operation; the message says what to do instead.";
    // Renewal.
    RENEWAL_NOT_OPEN = "E-RENEWAL-NOT-OPEN", Refusal,
        "Renewal opens 30 days before the certificate expires; the message names the date.";
    RENEWAL_NO_CERTIFICATE = "E-RENEWAL-NO-CERTIFICATE", Refusal,
        "The order has no live certificate to renew (none on its token, revoked or expired): make a new order.";
    RENEWAL_PENDING = "E-RENEWAL-PENDING", Refusal,
        "The order has a renewal order under way already (named): review, provision or reject it first.";
    RENEWAL_NUMBER = "E-RENEWAL-NUMBER", Refusal,
        "No renewal order number can be made (all of -R1..-R99 taken, or the number would pass 32 characters).";
    // The service desk.
    REQUEST_NOT_FOUND = "E-REQUEST-NOT-FOUND", Refusal,
        "No service request has this id.";
    REQUEST_OPEN = "E-REQUEST-OPEN", Refusal,
        "The order has an open request of this kind already: decide, run or cancel it first.";
    REQUEST_SAME_OPERATOR = "E-REQUEST-SAME-OPERATOR", Refusal,
        "Four-eyes: the operator who made a request cannot approve or reject it; a second, different operator must.";
    REQUEST_TRANSITION = "E-REQUEST-TRANSITION", Refusal,
        "The request's state does not allow this (e.g. running one that is not approved).";
    REQUEST_CHANGED = "E-REQUEST-CHANGED", Refusal,
        "The request changed meanwhile (another operator or run acted first); look at it again.";
    REINIT_NOT_APPROVED = "E-REINIT-NOT-APPROVED", Refusal,
        "`provision --reinit` needs a reinit request a second operator approved (`reinit request ORDER`, `reinit approve ID`).";
    RETIRE_REFUSED = "E-RETIRE-REFUSED", Refusal,
        "The order's key cannot be retired: it was not made, or is no longer bound to the order (lost, broken, retired).";
    REISSUE_REFUSED = "E-REISSUE-REFUSED", Refusal,
        "No reissue (补办) of the order: its key is not reported lost or broken nor retired, or a reissue is under way already.";
    UNLOCK_CODE = "E-UNLOCK-CODE", Refusal,
        "The unlock request code is malformed or mistyped (its checksum names a typing error).";
    UNLOCK_CODE_USED = "E-UNLOCK-CODE-USED", Refusal,
        "This unlock request code was used for a request already: the customer runs `keystation-unlock request` again.";
    UNLOCK_SERIAL = "E-UNLOCK-SERIAL", Refusal,
        "The unlock request code was made on a key that is not the one bound to the order.";
    UNLOCK_NO_EMAIL = "E-UNLOCK-NO-EMAIL", Refusal,
        "An unlock code goes by e-mail only: `[delivery.email]` is not configured, or the order has no handler's address.";
    UNLOCK_IN_DOUBT = "E-UNLOCK-IN-DOUBT", Refusal,
        "The unlock code may have reached the mail server already: it is never sent again automatically; ask the handler, then `unlock run ID --resend`.";
    UNLOCK_SEND = "E-UNLOCK-SEND", Failure,
        "The mail server did not take the unlock code (nothing was handed over): run it again.";
    UNLOCK_UNCONFIRMED = "E-UNLOCK-UNCONFIRMED", Refusal,
        "An unlock code carrying the key's next SO PIN is not confirmed used: `keystation unlock confirm ID` first.";
    // Operators.
    OPERATOR_UNKNOWN = "E-OPERATOR-UNKNOWN", Refusal,
        "The operator is not registered: an administrator adds it with `keystation operator add`.";
    OPERATOR_DISABLED = "E-OPERATOR-DISABLED", Refusal,
        "The operator's account is disabled.";
    OPERATOR_ROLE = "E-OPERATOR-ROLE", Refusal,
        "The operator lacks the role the action needs (the message names the action and the roles that permit it).";
    OPERATOR_CREDENTIAL = "E-OPERATOR-CREDENTIAL", Refusal,
        "No proof of who acts (no credential, OS user not in `[operator.os_users]`), or the credential file is missing, unreadable, open to others, unknown, or another operator's than --operator names.";
    OPERATOR_EXISTS = "E-OPERATOR-EXISTS", Refusal,
        "An operator with this name exists already.";
    OPERATOR_LAST_ADMIN = "E-OPERATOR-LAST-ADMIN", Refusal,
        "The change would leave no enabled administrator.";
    CONSOLE_LOGIN = "E-CONSOLE-LOGIN", Refusal,
        "A console login was refused: unknown operator, wrong password, wrong or already used TOTP code, no password or TOTP enrolled, the account is disabled, or too many failed logins from this client (the audit trail records which).";
    OPERATOR_PASSWORD = "E-OPERATOR-PASSWORD", Refusal,
        "The new console password does not meet the policy (named: at least 12 characters, no control characters, no white space at either end).";
    DELIVERY_UNSENT = "E-DELIVERY-UNSENT", Failure,
        "`deliver run --once` left a due delivery unsent (queued for a retry, in doubt, failed).";
    DELIVERY_LOCKED = "E-DELIVERY-LOCKED", Failure,
        "Another `deliver run` is active for this station.";
    SECRET_FILE = "E-SECRET-FILE", Failure,
        "A channel's secret file is missing, empty or open to others.";
    SMS_CHANNEL = "E-SMS-CHANNEL", Failure,
        "The SMS channel's configuration or template is unusable.";
    SMS_MESSAGE = "E-SMS-MESSAGE", Failure,
        "An SMS could not be built (destination, PIN or delivery id refused).";
    SMS_CLIENT = "E-SMS-CLIENT", Failure,
        "The SMS channel's HTTP client could not be set up.";
    BANK_FILE = "E-BANK-FILE", Refusal,
        "A bank file is not an acceptable pain.002 / camt.054 (the element is named, never a value).";
    BANK_XML = "E-BANK-XML", Refusal,
        "A bank document is not acceptable XML (size, encoding, DTD, entities, depth, root element).";
    BANK_CONTENT = "E-BANK-CONTENT", Refusal,
        "A bank document misses an element, repeats one or holds an invalid value.";
    BANK_MEMO = "E-BANK-MEMO", Failure,
        "The transfer memo's template or values cannot make a safe memo.";
    // Tokens and the HSM.
    PKCS11_MODULE = "E-PKCS11-MODULE", Failure,
        "The PKCS#11 module cannot be found or loaded.";
    PKCS11 = "E-PKCS11", Failure,
        "A PKCS#11 function failed on a token (the function and return value are named).";
    TOKEN_NOT_FOUND = "E-TOKEN-NOT-FOUND", Failure,
        "No token matches the serial or label.";
    TOKEN_AMBIGUOUS = "E-TOKEN-AMBIGUOUS", Failure,
        "Several tokens match the label; select by serial.";
    PIN_INCORRECT = "E-PIN-INCORRECT", Failure,
        "A token refused a PIN as wrong.";
    PIN_LOCKED = "E-PIN-LOCKED", Failure,
        "A token's PIN is locked.";
    PIN_FINAL_TRY = "E-PIN-FINAL-TRY", Failure,
        "A token's PIN is on its final try; the station does not risk locking it.";
    TOKEN_REMOVED = "E-TOKEN-REMOVED", Failure,
        "The token was removed during the operation; re-insert it and resume.";
    TOKEN_FULL = "E-TOKEN-FULL", Failure,
        "The token has no room left for the object.";
    TOKEN_UNEXPECTED = "E-TOKEN-UNEXPECTED", Failure,
        "A token holds something other than what the station expects (named).";
    VENDOR_TABLE = "E-VENDOR-TABLE", Failure,
        "The table of vendor PKCS#11 codes cannot be read or is malformed.";
    USB_CATALOG = "E-USB-CATALOG", Failure,
        "The catalogue of USB key models cannot be read or is malformed.";
    USB_UNAVAILABLE = "E-USB-UNAVAILABLE", Failure,
        "USB devices cannot be listed or watched here.";
    PIN_FILE = "E-PIN-FILE", Failure,
        "The station PIN file is missing, empty, unreadable or open to others.";
    NOT_PRIVATE = "E-NOT-PRIVATE", Failure,
        "A station directory or file is open to group or others (the message says how to fix it).";
    // The CA, certificates and seals.
    CA_CERTIFICATE = "E-CA-CERTIFICATE", Failure,
        "The CA certificate is missing or not a usable certificate.";
    CA_KEY_MISMATCH = "E-CA-KEY-MISMATCH", Failure,
        "The CA signing key does not match the CA certificate.";
    CA_INPUT = "E-CA-INPUT", Failure,
        "A value for a certificate is invalid (named).";
    CSR_INVALID = "E-CSR-INVALID", Failure,
        "A certificate signing request does not parse or its signature does not verify.";
    UNSUPPORTED_KEY = "E-UNSUPPORTED-KEY", Failure,
        "A key or algorithm is not supported.";
    CA_SIGNING = "E-CA-SIGNING", Failure,
        "Building or signing a certificate or CRL failed.";
    CA_SELF_CHECK = "E-CA-SELF-CHECK", Failure,
        "An issued certificate or CRL failed the station's own check; it was not handed out.";
    CERTIFICATE_MALFORMED = "E-CERTIFICATE-MALFORMED", Failure,
        "A certificate does not parse.";
    ENVELOPE = "E-ENVELOPE", Failure,
        "A dual certificate's SM2 encryption key pair could not be made, escrowed or put in its envelope (SM2EnvelopedKey) for the token.";
    SEAL_DATA = "E-SEAL-DATA", Failure,
        "Seal data is invalid (a field, its DER, its algorithm or its certificates).";
    SEAL_SIGNING = "E-SEAL-SIGNING", Failure,
        "Signing a seal failed, or its signature did not verify afterwards.";
    SEAL_PICTURE = "E-SEAL-PICTURE", Failure,
        "A seal picture is unreadable, unsupported, blank or too large.";
    SEAL_INVALID = "E-SEAL-INVALID", Failure,
        "A seal failed verification (each failed check is listed).";
    // The station itself.
    STATION_TOKEN_EXISTS = "E-STATION-TOKEN-EXISTS", Failure,
        "init: the PKCS#11 module already holds a station token with this label.";
    STATION_NO_BLANK_TOKEN = "E-STATION-NO-BLANK-TOKEN", Failure,
        "init: no blank token (slot) for the CA or vault token.";
    EXISTING_CA = "E-EXISTING-CA", Failure,
        "init: the existing CA given cannot be used.";
    INSTALLATION_EXISTS = "E-INSTALLATION-EXISTS", Refusal,
        "init: the database already holds an installation; a new station joins it instead.";
    STATION_EXISTS = "E-STATION-EXISTS", Refusal,
        "init: the installation in this database already has a station with this id.";
    INSTALLATION_UNREACHABLE = "E-INSTALLATION-UNREACHABLE", Failure,
        "init: the installation's CA or vault token is not reachable through this station's PKCS#11 module.";
    INSTALLATION_MISMATCH = "E-INSTALLATION-MISMATCH", Failure,
        "init: the HSM does not hold the installation's material as its database records it (named).";
    OCSP_NO_SIGNER = "E-OCSP-NO-SIGNER", Refusal,
        "The installation has no OCSP signer: make one with `keystation ca ocsp-signer`.";
    OCSP_RESPONDER = "E-OCSP-RESPONDER", Failure,
        "The OCSP responder cannot start: its signer's certificate or key is unusable (named).";
    SERVE_LISTEN = "E-SERVE-LISTEN", Failure,
        "`keystation serve` cannot listen on the address (in use, not permitted) or its server failed.";
    CONSOLE_CSRF = "E-CONSOLE-CSRF", Refusal,
        "A console form was posted without this session's CSRF token, or without a live session (log in again).";
    CONSOLE_INSECURE = "E-CONSOLE-INSECURE", Refusal,
        "The console's address is not a loopback address: without TLS (`[console] tls_cert` and `tls_key`) the console listens on loopback only.";
    CONSOLE_TLS = "E-CONSOLE-TLS", Refusal,
        "The console's TLS certificate or key (`[console] tls_cert`, `tls_key`) cannot be read, is open to others, or they do not match (named).";
    API_UNAUTHENTICATED = "E-API-UNAUTHENTICATED", Refusal,
        "An order API request has no API token, or one that is unknown, revoked or whose operator is disabled (401).";
    API_SCOPE = "E-API-SCOPE", Refusal,
        "The API token lacks the scope the request needs (403; the message names it).";
    API_JSON = "E-API-JSON", Refusal,
        "An order API request's body is not JSON (400).";
    API_MEDIA_TYPE = "E-API-MEDIA-TYPE", Refusal,
        "An order API request's body is not `application/json` (415).";
    API_TOO_LARGE = "E-API-TOO-LARGE", Refusal,
        "An order API request's body is larger than the API takes (413).";
    API_CONFLICT = "E-API-CONFLICT", Refusal,
        "An order with this number exists already with other content: an order number is submitted once (409).";
    API_TOKEN_NOT_FOUND = "E-API-TOKEN-NOT-FOUND", Refusal,
        "No API token has this id.";
    API_TOKEN_REVOKED = "E-API-TOKEN-REVOKED", Refusal,
        "The API token is revoked already.";
    CONSOLE_BATCH_RUNNING = "E-CONSOLE-BATCH-RUNNING", Refusal,
        "A provisioning batch started from this console is still running: one at a time per console.";
    DEMO_STEP = "E-DEMO-STEP", Failure,
        "A stage of the demo failed.";
    DEMO_INCOMPLETE = "E-DEMO-INCOMPLETE", Failure,
        "The demo ended with orders not PinDelivered; re-run it to continue.";
    CHECK_VIOLATION = "E-CHECK-VIOLATION", Failure,
        "`keystation check` found a broken invariant.";
    AUDIT_BROKEN = "E-AUDIT-BROKEN", Failure,
        "The audit trail is broken: a record altered, removed, re-ordered or cut from the end.";
    AUDIT_ANCHOR_REFUSED = "E-AUDIT-ANCHOR-REFUSED", Failure,
        "The audit head does not extend what the vault holds: it is not signed.";
    AUDIT_VAULT_UNREADABLE = "E-AUDIT-VAULT-UNREADABLE", Failure,
        "The audit anchor held by the vault HSM cannot be read.";
    CRL_PUBLISH = "E-CRL-PUBLISH", Failure,
        "A CRL was issued and recorded but not written into the publication directory; the next `ca crl` writes it.";
    CRL_NOT_ISSUED = "E-CRL-NOT-ISSUED", Failure,
        "The change (a revocation, a new installation) is recorded and stands, but no CRL was issued for it; run `keystation ca crl`.";
    DB = "E-DB", Failure,
        "The database failed (what the station was doing is named).";
    DB_MIGRATION = "E-DB-MIGRATION", Failure,
        "The database's migrations could not be applied.";
    STORE_CORRUPT = "E-STORE-CORRUPT", Failure,
        "Stored data does not parse (a bug or tampering); what is named.";
    IO = "E-IO", Failure,
        "A file or directory operation failed (the path is named).";
    OUTPUT = "E-OUTPUT", Failure,
        "The output could not be written (stdout, or a report that would not serialise).";
}

#[cfg(test)]
mod tests;
