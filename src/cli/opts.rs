//! Command-line definitions (clap). Handlers live in the sibling modules; nothing here acts.
//!
//! PINs never appear as arguments: commands that need one prompt for it or read `--pin-file`.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub use super::operator_opts::{ApiTokenCmd, ChangeRequestCmd, OperatorCmd, ReinitCmd};
pub use super::order_opts::OrderCmd;
pub use super::request_opts::{
    ApproveArgs, DecideCmd, DeskRequestArgs, RequestListArgs, RevocationArgs, RunArgs,
};

/// keystation — provisioning station for a CA back office.
#[derive(Debug, Parser)]
#[command(name = "keystation", version, about, long_about = None)]
pub struct Cli {
    /// Station configuration file (station.toml).
    #[arg(long, global = true, env = "KEYSTATION_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Act as the operator whose credential is in FILE (from `operator add --credential-out`;
    /// default: `[operator] credential_file`).
    #[arg(long, global = true, value_name = "FILE")]
    pub credential: Option<PathBuf>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole pipeline on embedded defaults in DIR: init, import, approve, provision, ship,
    /// deliver PINs (with a simulated bank); safe to re-run.
    Demo(DemoArgs),
    /// Create a station in DIR: station.toml, database, SoftHSM token directory (or join the
    /// installation a PostgreSQL database holds).
    Init(Box<InitArgs>),
    /// Take in, list, show and review certificate orders.
    #[command(subcommand)]
    Order(OrderCmd),
    /// Read and verify the audit trail.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// PKCS#11 tokens (and matching USB keys).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Certificates the station issued: revoke one by its serial.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Provision an approved order onto a token (resumes an interrupted one).
    Provision(ProvisionArgs),
    /// Electronic seals (GB/T 38540 SESeal): show those on a token, verify a seal file.
    #[command(subcommand)]
    Seal(SealCmd),
    /// Workstation mode for an operator at a desk.
    #[command(subcommand)]
    Station(StationCmd),
    /// Check the station's invariants against the database and the tokens (exit 1 on a violation).
    Check,
    /// Record that an order's key left with a courier (queues its PIN delivery by default).
    Ship(ShipArgs),
    /// The service desk's PIN reset for a delivered key brought to the desk: requested by one
    /// operator, approved by a second, run with the key plugged in; the new PIN goes by the
    /// order's channel, as at issuance.
    #[command(subcommand)]
    PinReset(PinResetCmd),
    /// The service desk's retirement of a returned key (退锁): requested by one operator,
    /// approved by a second, run with the key plugged in; the key is wiped and reusable.
    #[command(subcommand)]
    Retire(super::retire::RetireCmd),
    /// A second operator's decision on a revocation `order revoke` or `cert revoke` requested:
    /// approved, it is carried out at once (certificates revoked, a new CRL issued).
    #[command(subcommand)]
    Revoke(super::at_approval::AtApprovalCmd),
    /// A second operator's decision on a reissue order (补办) `order reissue` requested:
    /// approved, the replacement order is made at once, Submitted for review.
    #[command(subcommand)]
    Reissue(super::at_approval::AtApprovalCmd),
    /// Remote unlock of a delivered key that stays with the customer: the request code of
    /// `keystation-unlock`, a second operator's approval, the unlock code e-mailed once.
    #[command(subcommand)]
    Unlock(super::unlock_opts::UnlockCmd),
    /// PIN delivery: run the worker, list deliveries, retry, cancel or requeue.
    #[command(subcommand)]
    Deliver(DeliverCmd),
    /// The bank's files: import pain.002 status reports and camt.054 notifications.
    #[command(subcommand)]
    Bank(BankCmd),
    /// Several stations, one installation: its stations, their leases, the queue.
    #[command(subcommand)]
    Fleet(FleetCmd),
    /// The issuing CA: its certificate revocation lists and its delegated OCSP signer.
    #[command(subcommand)]
    Ca(CaCmd),
    /// Run the station's server until Ctrl-C / SIGTERM: the OCSP responder at the path of
    /// `ocsp.url` (GET and POST), with the periodic work beside it.
    Serve(ServeArgs),
    /// Operator accounts: add (with a credential file), list, disable, enable, set roles. Needs
    /// an administrator's --credential (the first one is `admin.credential` from `init`).
    #[command(subcommand)]
    Operator(OperatorCmd),
    /// API tokens of the order API (`serve --console-listen`, `/api/v1/`): add (written to a
    /// file), list, revoke. Adding and revoking need an administrator's --credential.
    #[command(subcommand)]
    ApiToken(ApiTokenCmd),
    /// Four-eyes on `provision ORDER --reinit` (which wipes a token keystation initialised and
    /// revokes its certificate): a provisioner asks, a second operator (a security officer)
    /// approves, and `provision --reinit` consumes the approved request.
    #[command(subcommand)]
    Reinit(ReinitCmd),
}

/// `keystation ca ...`
#[derive(Debug, Subcommand)]
pub enum CaCmd {
    /// Issue the next CRL now: every revoked certificate, the next CRL number, signed by the CA
    /// key in the HSM, recorded, and published at the path of `[ca] crl_url` under
    /// `[crl] publish_dir` (DER).
    Crl {
        /// Also write the CRL here, in PEM (what `openssl crl -in` and `openssl verify -CRLfile`
        /// read as it is).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Ask for a new delegated OCSP signer for the installation (a new key on the CA token,
    /// certified by the CA), for an installation without one or to renew it: a request that a
    /// second, different security officer or administrator approves (`ca approve ID`), which
    /// makes it; `serve` takes it into use within seconds.
    OcspSigner,
    /// Approve someone else's CA request (`ca ocsp-signer`) and carry it out now.
    Approve(ApproveArgs),
    /// reject, cancel, requests: the other words on its requests.
    #[command(flatten)]
    Decide(ChangeRequestCmd),
}

/// `keystation serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default: `serve.listen`, 127.0.0.1:8080); port 0 picks a free port,
    /// printed at start.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Address of the operators' console (default: `console.listen`; neither: no console). A
    /// loopback address only: the console has no TLS yet. Port 0 picks a free port, printed
    /// at start.
    #[arg(long, value_name = "ADDR")]
    pub console_listen: Option<String>,
}

/// `keystation fleet ...`
#[derive(Debug, Subcommand)]
pub enum FleetCmd {
    /// Every station with its last heartbeat and the leases it holds; orders and PIN deliveries
    /// per state.
    Status,
}

/// `keystation station ...`
#[derive(Debug, Subcommand)]
pub enum StationCmd {
    /// Watch for USB keys; provision the next approved order onto each blank key inserted.
    Watch {
        /// Provision this order on the next blank key (default: oldest approved first).
        #[arg(long)]
        order: Option<String>,
        /// Stop after one key.
        #[arg(long)]
        once: bool,
        /// Answer yes to every confirmation (unattended desks; the operator still sees each line).
        #[arg(long)]
        yes: bool,
        /// Token poll interval in milliseconds.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
    },
}

/// `keystation seal ...`
#[derive(Debug, Subcommand)]
pub enum SealCmd {
    /// Show and verify the seals on a token (asks for the token's user PIN).
    Show {
        /// Token serial or label.
        #[arg(long, value_name = "SERIAL|LABEL")]
        token: String,
        /// Read the user PIN from this file instead of asking.
        #[arg(long, value_name = "FILE")]
        pin_file: Option<PathBuf>,
        /// Write each seal's DER and picture into this directory.
        #[arg(long, value_name = "DIR")]
        export_dir: Option<PathBuf>,
    },
    /// Verify a DER seal file: structure, maker signature, maker certificate, dates.
    Verify {
        /// The SESeal DER file.
        file: PathBuf,
        /// CA certificate (PEM or DER); default: the station's.
        #[arg(long, value_name = "CA.pem")]
        ca: Option<PathBuf>,
        /// Also check that the seal's certList holds the certificate on this token.
        #[arg(long, value_name = "SERIAL|LABEL")]
        token: Option<String>,
        /// Write the seal picture (PNG) here.
        #[arg(long, value_name = "FILE.png")]
        export_picture: Option<PathBuf>,
    },
}

/// `keystation ship`
#[derive(Debug, Args)]
pub struct ShipArgs {
    /// Order number.
    pub order_no: String,
    /// The courier's tracking number.
    #[arg(long, value_name = "NO")]
    pub tracking: String,
    /// The courier.
    #[arg(long, value_name = "NAME")]
    pub carrier: Option<String>,
    /// Operator recording the shipment (default: the station).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
}

/// `keystation pin-reset ...`
#[derive(Debug, Subcommand)]
pub enum PinResetCmd {
    /// Ask for a PIN reset of a delivered key (order PinDelivered, key at the desk), e.g.
    /// `--reason "PIN forgotten" --evidence "营业执照原件 + 经办人身份证"`.
    Request(DeskRequestArgs),
    /// approve, reject, cancel: a second operator's word on the request.
    #[command(flatten)]
    Decide(DecideCmd),
    /// Carry out an approved request with the key plugged in (resumes a stopped run): a new
    /// PIN on the key, queued for delivery (`keystation deliver run` sends it).
    Run(RunArgs),
    /// List requests.
    List(RequestListArgs),
    /// Show one request with its execution journal.
    Show {
        /// Request id.
        id: String,
    },
}

/// `keystation deliver ...`
#[derive(Debug, Subcommand)]
pub enum DeliverCmd {
    /// Send due PIN deliveries (SMS, bank files); resolves interrupted ones first.
    ///
    /// With --once: exit 0 when every delivery that was due reached its channel (or nothing was
    /// due), 1 when one is left queued for a retry, in doubt, failed or needing an operator.
    Run {
        /// One pass over what is due, then exit (default: keep polling until Ctrl-C).
        #[arg(long)]
        once: bool,
    },
    /// List deliveries and their states.
    Status {
        /// Only this order's deliveries.
        #[arg(long, value_name = "ORDER_NO")]
        order: Option<String>,
        /// Only deliveries in this state (queued, sending, sent, confirmed, failed,
        /// needs_operator, cancelled).
        #[arg(long)]
        state: Option<String>,
    },
    /// List the applicant's notices (review outcome, shipped, PIN sent, expiring, revoked) and
    /// their attempts.
    Notices {
        /// Only this order's notices.
        #[arg(long, value_name = "ORDER_NO")]
        order: Option<String>,
    },
    /// Put a failed / needs_operator delivery back in the queue.
    Retry {
        /// Delivery id.
        id: String,
        /// Operator deciding the retry.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// Bank only: the bank confirmed that the emitted transfer did NOT happen; cancel this
        /// delivery and queue a new transfer (new EndToEndId, new file).
        #[arg(long)]
        force_new_transfer: bool,
    },
    /// Queue a new delivery for an order whose deliveries were all cancelled (it is still
    /// Provisioned or Shipped, with its sealed PIN).
    Requeue {
        /// Order number.
        order_no: String,
        /// Operator deciding it.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// The gateway or bank confirmed that a cancelled delivery which reached it did NOT
        /// reach the customer (required when one may have; recorded in the audit trail).
        #[arg(long)]
        not_delivered: bool,
    },
    /// Abandon a queued, failed or needs_operator delivery.
    Cancel {
        /// Delivery id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Operator deciding it.
        #[arg(long, value_name = "NAME")]
        operator: String,
    },
}

/// `keystation bank ...`
#[derive(Debug, Subcommand)]
pub enum BankCmd {
    /// Import a pain.002 or camt.054 file from the bank (idempotent; unknown references are
    /// reported, never guessed).
    Import {
        /// The file (from the inbound directory it is moved to inbound/processed/ afterwards).
        file: PathBuf,
        /// Operator importing it (default: the station).
        #[arg(long, value_name = "NAME")]
        operator: Option<String>,
    },
}

/// `keystation cert ...`
#[derive(Debug, Subcommand)]
pub enum CertCmd {
    /// Request the revocation of ONE certificate (e.g. a duplicate `check` reports); its order
    /// keeps its state. Nothing is revoked until a second operator approves it
    /// (`keystation revoke approve ID`).
    Revoke {
        /// Certificate serial in hex, as `order show` lists it (upper case and colons accepted).
        serial: String,
        /// Why, and who asks.
        #[command(flatten)]
        revocation: RevocationArgs,
    },
}

/// `keystation token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// List tokens: serial, label, model, flags, and the order each is bound to.
    List,
}

/// `keystation provision`
#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Order number (or --all-approved).
    #[arg(
        required_unless_present = "all_approved",
        conflicts_with = "all_approved"
    )]
    pub order_no: Option<String>,
    /// Provision every approved order (and resume this station's interrupted ones), concurrently.
    #[arg(long)]
    pub all_approved: bool,
    /// Concurrent workers for --all-approved (one token each at a time).
    #[arg(long, default_value_t = 2, requires = "all_approved")]
    pub workers: usize,
    /// At most N orders for --all-approved.
    #[arg(long, value_name = "N", requires = "all_approved")]
    pub limit: Option<usize>,
    /// Token to use, by serial or label (default: the order's bound token, else the first blank).
    #[arg(long, value_name = "SERIAL|LABEL", conflicts_with = "all_approved")]
    pub token: Option<String>,
    /// Start the token over from C_InitToken even where the journal would continue (revokes the
    /// certificate already on it).
    #[arg(long)]
    pub reinit: bool,
}

/// `keystation demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory of the demo station (created; a previous demo there is continued).
    #[arg(long, value_name = "DIR", default_value = "demo-station")]
    pub dir: PathBuf,
    /// Generate N valid orders instead of the three fixture orders.
    #[arg(long, value_name = "N")]
    pub orders: Option<usize>,
    /// Provisioning workers (per station).
    #[arg(long, value_name = "W", default_value_t = 2)]
    pub workers: usize,
    /// Run N stations of one installation, each as its own processes, on one PostgreSQL queue
    /// (needs --database-url); their directories are DIR/station-1 ... DIR/station-N.
    #[arg(long, value_name = "N", requires = "database_url")]
    pub stations: Option<usize>,
    /// The installation's database (PostgreSQL) for --stations.
    #[arg(long, value_name = "URL", requires = "stations")]
    pub database_url: Option<String>,
    /// Key algorithm of the demo's CA and customers' keys. `sm2` puts the CA and customers'
    /// tokens on the project's test token (libkstoken.so, next to the keystation binary), which
    /// speaks a Chinese vendor's SM2 codes; the vault stays on SoftHSM. Only for a new demo.
    #[arg(long, value_name = "ALG", value_parser = ["ecdsa-p256", "sm2"], conflicts_with = "stations")]
    pub algorithm: Option<String>,
}

/// `keystation init`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory of the new station (created if missing; must not hold a station yet).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Station id (default: station-01).
    #[arg(long, default_value = "station-01")]
    pub station_id: String,
    /// Database URL instead of the SQLite file in DIR (e.g. postgres://...).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// File holding the station PIN (user PIN of the CA and vault tokens); default: prompt.
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    /// File holding the SO PIN of the CA and vault tokens; default: prompt. Not stored.
    #[arg(long, value_name = "FILE")]
    pub so_pin_file: Option<PathBuf>,
    /// Generate both PINs (unattended set-ups, demos): the station PIN goes to the station's
    /// PIN file (mode 0600); the SO PIN is used once and not kept.
    #[arg(long, conflicts_with_all = ["pin_file", "so_pin_file"])]
    pub generate_pins: bool,
    /// Organisation (O) of the CA created by init; without it the CA is named as a demo
    /// ("keystation Demo CA") and init says so.
    #[arg(long, value_name = "NAME")]
    pub ca_organization: Option<String>,
    /// Common name (CN) of the CA created by init; without it the demo name is used.
    #[arg(long, value_name = "NAME")]
    pub ca_common_name: Option<String>,
    /// Key algorithm of the CA created by init (or of the existing CA's key). `sm2` needs a
    /// module with SM2 codes in the vendor table (--pkcs11-module).
    #[arg(long, value_name = "ALG", value_parser = ["ecdsa-p256", "rsa-2048", "sm2"])]
    pub ca_algorithm: Option<String>,
    /// Key algorithm of customers' keys (`[product] key_algorithm`).
    #[arg(long, value_name = "ALG", value_parser = ["ecdsa-p256", "rsa-2048", "sm2"])]
    pub key_algorithm: Option<String>,
    /// PKCS#11 module of the CA and customers' tokens (default SoftHSM2; a network HSM's for an
    /// installation); the vault token stays on SoftHSM. The test token (libkstoken.so) gets its configuration in DIR.
    #[arg(long, value_name = "MODULE.so")]
    pub pkcs11_module: Option<PathBuf>,
    /// Use an existing CA instead of creating one: its certificate (PEM or DER). Its key is on
    /// the token --ca-token-label under --ca-key-label, and the station PIN is that token's PIN.
    #[arg(long, value_name = "CA.pem", requires = "pin_file")]
    pub existing_ca_cert: Option<PathBuf>,
    /// Label of the existing CA's token (default keystation-ca).
    #[arg(long, value_name = "LABEL", requires = "existing_ca_cert")]
    pub ca_token_label: Option<String>,
    /// Label of the existing CA's key (default issuing-ca).
    #[arg(long, value_name = "LABEL", requires = "existing_ca_cert")]
    pub ca_key_label: Option<String>,
    /// The installation's HSM is a SoftHSM store shared by its stations: its softhsm2.conf
    /// (instead of a store of the station's own in DIR). What a joining station needs, in tests
    /// and demos.
    #[arg(long, value_name = "FILE")]
    pub softhsm2_conf: Option<PathBuf>,
}

/// `keystation audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Verify the hash chain and its signed anchors; names the first bad record.
    Verify,
    /// Sign the current head of the chain with the installation's anchor key (the vault's; an SM2 CA's on its token).
    Anchor,
    /// Show audit records.
    Show {
        /// Only records of this order.
        #[arg(long)]
        order: Option<String>,
    },
}
