//! The provisioning page over HTTP: the desk (tokens, approved orders), the batch form (CSRF,
//! the station's role check, the workers field), the server-sent events of a batch, and the
//! audit trail naming the operator who started it.

use super::http::Client;
use super::{Login, ORDER, register, state_of, station_with_console};
use crate::ocsp::Serve;
use crate::support::{Station, order_fixtures};
use serde_json::Value;

/// The second fixture order (its documents too).
pub const SECOND: &str = "KS-DEMO-0002";

/// A station with the fixture orders `ORDER` and `SECOND` approved, and its console.
pub fn approved_station() -> (Station, Serve) {
    let (st, serve) = station_with_console();
    let file = order_fixtures()
        .join("valid")
        .join("0002_main-key_company-seal_corporate-transfer.json");
    st.import(&file, &[]).expect_code(0);
    for no in [ORDER, SECOND] {
        st.run(&["order", "approve", no, "--operator", "console-reviewer"])
            .expect_code(0);
    }
    (st, serve)
}

/// `approved_station`, and the provisioner console-paul registered there.
pub fn approved_station_and_provisioner() -> (Station, Serve, Login) {
    let (st, serve) = approved_station();
    let paul = register(&st, "console-paul", "provisioner");
    (st, serve, paul)
}

/// The provisioning steps of a main key, in order.
pub const STEPS: [&str; 6] = [
    "init_token",
    "init_pin",
    "generate_key",
    "issue_certificate",
    "write_certificate",
    "finish",
];

/// One server-sent event: its id, name and JSON data.
#[derive(Debug)]
struct Sent {
    id: usize,
    name: String,
    data: Value,
}

/// Parses a `text/event-stream` body strictly: each event is `id:`, `event:` and one `data:`
/// line, then an empty line; comment lines (`:` keep-alives) are allowed between events.
fn parse_events(body: &str) -> Vec<Sent> {
    let mut out = Vec::new();
    for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let lines: Vec<&str> = block.lines().filter(|l| !l.starts_with(':')).collect();
        if lines.is_empty() {
            continue;
        }
        let field = |name: &str| -> String {
            let found: Vec<&str> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("{name}:")))
                .collect();
            assert_eq!(found.len(), 1, "one {name} in {block:?}");
            found[0].trim_start().to_string()
        };
        assert_eq!(lines.len(), 3, "id, event, data: {block:?}");
        out.push(Sent {
            id: field("id").parse().expect("a numeric id"),
            name: field("event"),
            data: serde_json::from_str(&field("data")).expect("JSON data"),
        });
    }
    out
}

#[test]
fn a_provisioner_starts_a_batch_and_its_event_stream_tells_each_step_of_each_order() {
    let (st, serve, token) = approved_station_and_provisioner();
    let mut c = Client::new();
    assert_eq!(c.login(&serve, &token).status, 303);

    // Before any batch: the stream has nothing to say (204: EventSource does not reconnect).
    assert_eq!(c.get(&serve, "/provision/events").status, 204);

    // The desk: blank tokens, the approved orders, the form and its script (no inline one).
    let page = c.get(&serve, "/provision");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(
        html.contains("空白（可制作）") && html.contains("本站 CA"),
        "{html}"
    );
    assert!(html.contains(ORDER) && html.contains(SECOND), "{html}");
    assert!(html.contains("<script src=\"/static/provision.js\" defer></script>"));
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(
        page.header("content-security-policy")
            .contains("connect-src 'self'")
    );
    let js = c.get(&serve, "/static/provision.js");
    assert_eq!(js.status, 200);
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert!(js.text().contains("new EventSource(\"/provision/events\")"));
    let csrf = super::csrf_of(&html);

    // Bad workers: 422 naming the field; nothing started.
    let bad = c.post(
        &serve,
        "/provision/batch",
        &[("csrf", &csrf), ("workers", "0")],
    );
    assert_eq!(bad.status, 422, "{}", bad.text());
    assert!(bad.text().contains("workers"));
    assert_eq!(c.get(&serve, "/provision/events").status, 204);

    let started = c.post(
        &serve,
        "/provision/batch",
        &[("csrf", &csrf), ("workers", "2")],
    );
    assert_eq!(started.status, 303, "{}", started.text());
    assert_eq!(started.header("location"), "/provision");

    // The stream: every event from the first, until the batch's end (then it closes).
    let stream = c.get(&serve, "/provision/events");
    assert_eq!(stream.status, 200);
    assert!(
        stream
            .header("content-type")
            .starts_with("text/event-stream"),
        "{}",
        stream.header("content-type")
    );
    let events = parse_events(&stream.text());
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, i, "ids count from 0: {events:?}");
    }
    assert_eq!(events[0].name, "begin", "{events:?}");
    assert_eq!(events[0].data["by"], "console-paul");
    assert_eq!(events[0].data["total"], 2);
    let end = events.last().unwrap();
    assert_eq!(end.name, "end", "{events:?}");
    assert_eq!(end.data["ok"], 2, "{}", end.data);
    assert_eq!(end.data["failed"], 0);
    for no in [ORDER, SECOND] {
        let done: Vec<&str> = events
            .iter()
            .filter(|e| e.name == "step" && e.data["order"] == no && e.data["phase"] == "done")
            .map(|e| e.data["step"].as_str().unwrap())
            .collect();
        for step in &STEPS[..4] {
            assert!(done.contains(step), "{no}: {step} not done in {done:?}");
        }
        assert_eq!(done.last(), Some(&"finish"), "{no}: {done:?}");
        let finished = events
            .iter()
            .find(|e| e.name == "finished" && e.data["order"] == no)
            .unwrap_or_else(|| panic!("{no} never finished: {events:?}"));
        assert_eq!(finished.data["ok"], true, "{}", finished.data);
        assert_eq!(state_of(&st, no), "Provisioned");
    }
    // A reconnect after the last event it has gets only what follows (here: nothing).
    let last = end.id.to_string();
    let req = c
        .http
        .get(super::url(&serve, "/provision/events"))
        .header("last-event-id", &last);
    let again = c.send(req);
    assert_eq!(again.status, 200);
    assert!(parse_events(&again.text()).is_empty(), "{}", again.text());

    // The audit trail names the operator for the batch's state changes, not the station.
    let audit = Value::Array(st.audit());
    let claimed: Vec<&Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["order_no"] == SECOND && r["action"].as_str().is_some_and(|a| a != "order.imported")
        })
        .filter(|r| r["action"] != "order.approved")
        .collect();
    assert!(!claimed.is_empty(), "{audit}");
    for r in claimed {
        assert_eq!(r["actor"], "console-paul", "{r}");
    }
    st.audit_verifies();
}

#[test]
fn a_batch_form_without_csrf_or_from_a_reviewer_is_refused_and_starts_nothing() {
    let (st, serve) = approved_station();
    let reviewer = register(&st, "console-rita", "reviewer");
    let mut c = Client::new();
    assert_eq!(c.login(&serve, &reviewer).status, 303);
    // A reviewer does not see the desk...
    let page = c.get(&serve, "/provision");
    assert_eq!(page.status, 403, "{}", page.text());
    assert!(page.text().contains("E-OPERATOR-ROLE"));
    // ...nor starts a batch: the station refuses it (the session's token from another page).
    let csrf = super::csrf_of(&c.get(&serve, "/").text());
    let refused = c.post(
        &serve,
        "/provision/batch",
        &[("csrf", &csrf), ("workers", "1")],
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("E-OPERATOR-ROLE"),
        "{}",
        refused.text()
    );
    assert!(refused.text().contains("provisioner"), "{}", refused.text());
    assert_eq!(c.get(&serve, "/provision/events").status, 403);

    // A provisioner's form without its CSRF token.
    let provisioner = register(&st, "console-paul", "provisioner");
    let mut p = Client::new();
    assert_eq!(p.login(&serve, &provisioner).status, 303);
    let none = p.post(&serve, "/provision/batch", &[("workers", "1")]);
    assert_eq!(none.status, 403, "{}", none.text());
    assert!(none.text().contains("E-CONSOLE-CSRF"));
    let foreign = p.post(
        &serve,
        "/provision/batch",
        &[("csrf", &csrf), ("workers", "1")],
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(p.get(&serve, "/provision/events").status, 204);
    for no in [ORDER, SECOND] {
        assert_eq!(state_of(&st, no), "Approved");
    }
    // Not logged in: to the login page.
    let mut anonymous = Client::new();
    assert_eq!(anonymous.get(&serve, "/provision").status, 303);
    assert_eq!(anonymous.get(&serve, "/provision/events").status, 303);
}

#[test]
fn a_provisioner_stops_a_running_batch_which_finishes_the_order_in_hand_and_takes_no_other() {
    let (st, serve) = approved_station();
    // The first order's key generation takes two seconds: time to ask for the stop.
    drop(serve);
    let serve = Serve::start_with_env(
        &st.config,
        &["--console-listen", "127.0.0.1:0"],
        &[(
            "KEYSTATION_FAILPOINTS",
            "provision.generate_key.started=sleep2000",
        )],
    );
    let paul = register(&st, "console-paul", "provisioner");
    let rita = register(&st, "console-rita", "reviewer");
    let mut c = Client::new();
    assert_eq!(c.login(&serve, &paul).status, 303);
    // No batch: no stop button, and a stop changes nothing.
    let page = c.get(&serve, "/provision").text();
    assert!(!page.contains("id=\"stop-batch\""), "{page}");
    let csrf = super::csrf_of(&page);
    assert_eq!(
        c.post(&serve, "/provision/stop", &[("csrf", &csrf)]).status,
        303
    );
    let started = c.post(
        &serve,
        "/provision/batch",
        &[("csrf", &csrf), ("workers", "1")],
    );
    assert_eq!(started.status, 303, "{}", started.text());
    // Once the first order is in hand, the page offers the stop.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ![ORDER, SECOND]
        .iter()
        .any(|no| state_of(&st, no) == "Provisioning")
    {
        assert!(std::time::Instant::now() < deadline, "no order taken");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let page = c.get(&serve, "/provision").text();
    assert!(page.contains("id=\"stop-batch\""), "{page}");

    // A reviewer may not stop it (the station's role check), nor a form without its token.
    let mut r = Client::new();
    assert_eq!(r.login(&serve, &rita).status, 303);
    let rita_csrf = super::csrf_of(&r.get(&serve, "/").text());
    let refused = r.post(&serve, "/provision/stop", &[("csrf", &rita_csrf)]);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("E-OPERATOR-ROLE"));
    let tokenless = c.post(&serve, "/provision/stop", &[]);
    assert_eq!(tokenless.status, 403, "{}", tokenless.text());

    let stop = c.post(&serve, "/provision/stop", &[("csrf", &csrf)]);
    assert_eq!(stop.status, 303, "{}", stop.text());
    assert_eq!(stop.header("location"), "/provision");
    let events = parse_events(&c.get(&serve, "/provision/events").text());
    let stopping: Vec<&Sent> = events.iter().filter(|e| e.name == "stopping").collect();
    assert_eq!(stopping.len(), 1, "one stopping event: {events:?}");
    assert_eq!(stopping[0].data["by"], "console-paul");
    let end = events.last().unwrap();
    assert_eq!(end.name, "end", "{events:?}");
    assert_eq!(end.data["stopped"], true, "{}", end.data);
    assert_eq!(end.data["ok"], 1, "{}", end.data);
    assert_eq!(end.data["not_started"], 1, "{}", end.data);
    // The order in hand was finished; the other was never taken.
    let mut states: Vec<String> = [ORDER, SECOND].iter().map(|no| state_of(&st, no)).collect();
    states.sort();
    assert_eq!(states, ["Approved", "Provisioned"]);
    st.audit_verifies();
}
