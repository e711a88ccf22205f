//! Issue 7, hostile input: files from outside the station are refused with a clear message, in
//! bounded time and memory, and nothing is imported.
//!
//! Order import (`keystation order import`): an oversized file, deeply nested JSON, invalid
//! UTF-8, document paths that climb out of the order's directory (`..`, absolute, symlink), an
//! oversized document, a FIFO and a `/dev/zero` symlink as documents. Seal verification
//! (`keystation seal verify`): truncated, garbage, huge and endless files. Bank status readers:
//! the XML attacks at sizes the unit tests do not use.

use crate::station::{TestStation, keystation, order_json};
use keystation::delivery::bank::{BankError, parse_camt054, parse_pain002};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest any of these commands may take: they must fail fast, not hang or read forever.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `cmd` to completion, killing it and failing the test if it outlives [`DEADLINE`].
fn run_with_deadline(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning keystation");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{cmd:?} still running after {DEADLINE:?}: it hangs on hostile input");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    Output {
        status: child.wait().unwrap(),
        stdout,
        stderr,
    }
}

/// `keystation order import FILE` on `st`, under the deadline.
fn import(st: &TestStation, file: &Path) -> Output {
    let mut c = keystation();
    c.arg("--config")
        .arg(st.config())
        .args(["order", "import"])
        .arg(file);
    run_with_deadline(c)
}

/// The import failed as bad input (exit 2), its stderr contains every `needles`, and the station
/// holds no order. Returns stderr.
fn assert_refused(st: &TestStation, out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected exit 2 (bad input), got {}:\n{stderr}",
        out.status
    );
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}:\n{stderr}");
    }
    let orders = st.json(&["order", "list"]);
    assert_eq!(orders, Value::Array(vec![]), "something was imported");
    stderr
}

/// A valid order (no seals, documents all `company.png`) written to `<tmp>/applications/<no>/`.
fn order_dir(st: &TestStation, no: &str) -> (PathBuf, Value) {
    let order = order_json(no, "legal_rep_phone", "none", "main");
    let file = st.write_order(&order);
    (file.parent().unwrap().to_path_buf(), order)
}

/// Rewrites the order in `dir` with `documents[0].file` set to `path`.
/// The order imported with `path` as its first document is refused, saying each of `needles`.
#[track_caller]
fn first_document_refused(
    st: &TestStation,
    dir: &Path,
    order: &Value,
    path: &str,
    needles: &[&str],
) {
    let file = with_first_document(dir, order, path);
    assert_refused(st, &import(st, &file), needles);
}

fn with_first_document(dir: &Path, order: &Value, path: &str) -> PathBuf {
    let mut order = order.clone();
    order["documents"][0]["file"] = Value::String(path.to_owned());
    let file = dir.join("order.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&order).unwrap()).unwrap();
    file
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn order_file_over_16_mib_is_refused_unread() {
    let st = TestStation::new();
    let file = st.tmp().join("huge.json");
    // Sparse: 16 MiB + 1 byte of zeros, instantly made, and refused before any of it is read.
    let f = std::fs::File::create(&file).unwrap();
    f.set_len(16 * 1024 * 1024 + 1).unwrap();
    let out = import(&st, &file);
    assert_refused(&st, &out, &["huge.json", "16777216 bytes"]);
}

#[test]
fn deeply_nested_json_is_refused() {
    let st = TestStation::new();
    let file = st.tmp().join("nested.json");
    std::fs::write(&file, "[".repeat(100_000)).unwrap();
    let out = import(&st, &file);
    assert_refused(
        &st,
        &out,
        &["nested.json", "not valid JSON", "recursion limit"],
    );

    // Nested inside an otherwise valid order: the same refusal, not a stack overflow.
    let (dir, order) = order_dir(&st, "HOSTILE-NEST");
    let text = serde_json::to_string(&order).unwrap().replacen(
        "\"信息部\"",
        &format!("{}1{}", "[".repeat(50_000), "]".repeat(50_000)),
        1,
    );
    let file = dir.join("order.json");
    std::fs::write(&file, text).unwrap();
    let out = import(&st, &file);
    assert_refused(&st, &out, &["order.json", "recursion limit"]);
}

#[test]
fn invalid_utf8_is_refused() {
    let st = TestStation::new();
    let (dir, order) = order_dir(&st, "HOSTILE-UTF8");
    // A lone continuation byte and an overlong encoding inside the company name.
    let text = serde_json::to_string(&order).unwrap();
    let mut bytes = Vec::new();
    let (head, tail) = text.split_once("北京示例").unwrap();
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(&[0x80, 0xC0, 0xAF]);
    bytes.extend_from_slice(tail.as_bytes());
    let file = dir.join("order.json");
    std::fs::write(&file, bytes).unwrap();
    let out = import(&st, &file);
    assert_refused(&st, &out, &["order.json", "not valid JSON", "unicode"]);
}

#[test]
fn document_paths_cannot_leave_the_order_directory() {
    let st = TestStation::new();
    let (dir, order) = order_dir(&st, "HOSTILE-PATH");
    // A real picture outside the order's directory: each path below would reach it.
    let outside = st.tmp().join("outside.png");
    std::fs::copy(dir.join("company.png"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("link.png")).unwrap();

    let mut order = order.clone();
    order["documents"][0]["file"] = Value::from("../outside.png");
    order["documents"][1]["file"] = Value::from(outside.to_str().unwrap());
    order["documents"][2]["file"] = Value::from("link.png");
    order["documents"][3]["file"] = Value::from("sub/../../outside.png");
    let file = dir.join("order.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&order).unwrap()).unwrap();
    let out = import(&st, &file);
    let stderr = assert_refused(
        &st,
        &out,
        &[
            "documents[0].file: ../outside.png: '..' is not allowed",
            "documents[1].file:",
            "absolute paths are not allowed",
            "documents[2].file: link.png: the path leads outside the order file's directory",
            "documents[3].file: sub/../../outside.png: '..' is not allowed",
        ],
    );
    assert!(stderr.contains("[file_path]"), "{stderr}");
}

#[test]
fn document_over_1_5_mib_is_refused() {
    let st = TestStation::new();
    let (dir, order) = order_dir(&st, "HOSTILE-BIG");
    // A 2 MiB "PNG": the signature, then zeros. Its type is fine, its size is not.
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(2 * 1024 * 1024, 0);
    std::fs::write(dir.join("big.png"), &png).unwrap();
    first_document_refused(
        &st,
        &dir,
        &order,
        "big.png",
        &[
            "documents[0].file: big.png: larger than 1.5 MiB",
            "[file_too_large]",
        ],
    );
}

#[test]
fn fifo_and_dev_zero_documents_neither_hang_nor_read_forever() {
    let st = TestStation::new();
    let (dir, order) = order_dir(&st, "HOSTILE-FIFO");
    mkfifo(&dir.join("pipe.png"));
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.png")).unwrap();

    // A FIFO nobody writes to: opening it for reading would wait forever.
    first_document_refused(
        &st,
        &dir,
        &order,
        "pipe.png",
        &[
            "documents[0].file: pipe.png: cannot be read",
            "[file_unreadable]",
        ],
    );

    // An endless device behind a symlink: refused by the path rule, never read.
    first_document_refused(
        &st,
        &dir,
        &order,
        "zero.png",
        &["documents[0].file: zero.png: the path leads outside"],
    );

    // The order file itself as a FIFO or as /dev/zero.
    let pipe = st.tmp().join("order-pipe.json");
    mkfifo(&pipe);
    let out = import(&st, &pipe);
    assert_refused(&st, &out, &["order-pipe.json", "not a regular file"]);
    let out = import(&st, Path::new("/dev/zero"));
    assert_refused(&st, &out, &["/dev/zero", "not a regular file"]);
}

// --- keystation seal verify ------------------------------------------------------------------

fn seal_seed() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds/seal_parse/valid-ecdsa.der"),
    )
    .unwrap()
}

fn seal_ca() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/fixtures/seal-ca.der")
}

/// `keystation seal verify FILE --ca <fuzz CA>` (no station needed), under the deadline, with
/// its data segment limited to `data_limit_kib` so reading a big file whole would fail.
fn seal_verify(file: &Path, data_limit_kib: Option<u64>) -> Output {
    let mut c = match data_limit_kib {
        Some(kib) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -d {kib} && exec \"$0\" \"$@\""))
                .arg(env!("CARGO_BIN_EXE_keystation"));
            c
        }
        None => keystation(),
    };
    c.args(["seal", "verify"])
        .arg(file)
        .arg("--ca")
        .arg(seal_ca());
    run_with_deadline(c)
}

#[test]
fn seal_verify_rejects_truncated_and_garbage_seals() {
    let dir = tempfile::tempdir().unwrap();
    let seal = seal_seed();
    let cases: [(&str, Vec<u8>); 3] = [
        ("truncated.der", seal[..seal.len() / 2].to_vec()),
        (
            "garbage.der",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("empty.der", Vec::new()),
    ];
    for (name, bytes) in cases {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let out = seal_verify(&file, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{name}: {}\n{stderr}",
            out.status
        );
        assert!(
            stderr.contains(name) && stderr.contains("NOT valid: failed structure"),
            "{name}: {stderr}"
        );
        assert!(
            stdout.contains("check structure") && stdout.contains("FAIL"),
            "{stdout}"
        );
        assert!(stdout.contains("DER error in SESeal"), "{name}: {stdout}");
    }
}

#[test]
fn seal_verify_refuses_huge_and_endless_files_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // 50 MiB (sparse): refused by size before it is read, well inside a 48 MiB data limit that
    // reading it whole would break.
    let huge = dir.path().join("huge.der");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(50 * 1024 * 1024)
        .unwrap();
    let out = seal_verify(&huge, Some(48 * 1024));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}\n{stderr}", out.status);
    assert!(
        stderr.contains("huge.der") && stderr.contains("larger than the limit"),
        "{stderr}"
    );

    // The same data limit leaves room for a real verification.
    let good = dir.path().join("good.der");
    std::fs::write(&good, seal_seed()).unwrap();
    let out = seal_verify(&good, Some(48 * 1024));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("check structure"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Endless or blocking sources.
    let pipe = dir.path().join("pipe.der");
    mkfifo(&pipe);
    for file in [pipe.as_path(), Path::new("/dev/zero")] {
        let out = seal_verify(file, Some(48 * 1024));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
}

// --- bank status readers ----------------------------------------------------------------------

/// The unit tests in `delivery::bank::xml_reader` refuse a DOCTYPE, an XXE in `pain.002` and 100
/// levels of nesting; this adds the sizes and the reader they leave out: 100 000 levels (no
/// recursion, no stack overflow, refused at level 64) and the XXE and billion-laughs documents
/// against the `camt.054` reader too.
#[test]
fn bank_readers_refuse_hostile_xml() {
    let pain = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.11";
    let camt = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.08";
    for ns in [pain, camt] {
        let deep = format!(
            "<Document xmlns=\"{ns}\">{}{}</Document>",
            "<A>".repeat(100_000),
            "</A>".repeat(100_000)
        );
        let xxe = format!(
            "<?xml version=\"1.0\"?><!DOCTYPE Document [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\
             <Document xmlns=\"{ns}\"><GrpHdr><MsgId>&x;</MsgId></GrpHdr></Document>"
        );
        let mut laughs =
            String::from("<?xml version=\"1.0\"?><!DOCTYPE Document [<!ENTITY l0 \"lol\">");
        for i in 1..=9 {
            laughs.push_str(&format!(
                "<!ENTITY l{i} \"{}\">",
                format!("&l{};", i - 1).repeat(10)
            ));
        }
        laughs.push_str(&format!(
            "]><Document xmlns=\"{ns}\"><GrpHdr><MsgId>&l9;</MsgId></GrpHdr></Document>"
        ));

        let results: Vec<(&str, Result<(), BankError>)> = vec![
            ("deep", reader_result(ns, &deep)),
            ("xxe", reader_result(ns, &xxe)),
            ("billion laughs", reader_result(ns, &laughs)),
        ];
        for (what, r) in results {
            match (what, r) {
                ("deep", Err(BankError::TooDeep { limit: 64, .. })) => {}
                ("xxe" | "billion laughs", Err(BankError::DtdRefused { .. })) => {}
                (what, other) => panic!("{ns}: {what}: {other:?}"),
            }
        }
    }
}

fn reader_result(ns: &str, xml: &str) -> Result<(), BankError> {
    if ns.contains("pain.002") {
        parse_pain002(xml.as_bytes()).map(|_| ())
    } else {
        parse_camt054(xml.as_bytes()).map(|_| ())
    }
}
