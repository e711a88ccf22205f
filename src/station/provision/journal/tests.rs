#![allow(clippy::unwrap_used)]

use super::*;

fn record(step: Step, status: StepStatus) -> StepRecord {
    StepRecord {
        attempt: 3,
        step: step.name().to_string(),
        status,
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        detail: None,
    }
}

/// The latest attempt's journal up to `last` done, then `last_status` for the step after.
fn journal_through(last: Step, next_status: Option<StepStatus>) -> Vec<StepRecord> {
    let mut steps = vec![record(Step::Claim, StepStatus::Done)];
    let mut after = Step::AFTER_CLAIM.into_iter();
    for step in after.by_ref() {
        steps.push(record(step, StepStatus::Done));
        if step == last {
            break;
        }
    }
    if let (Some(status), Some(next)) = (next_status, after.next()) {
        steps.push(record(next, status));
    }
    steps
}

#[test]
fn a_first_run_is_attempt_one_and_skips_nothing() {
    let r = Resume::plan(0, &[], false, false);
    assert_eq!((r.attempt, r.continues), (1, false));
    assert!(Step::AFTER_CLAIM.iter().all(|s| !r.skips(*s)));
}

#[test]
fn once_the_certificate_is_on_the_token_the_attempt_continues_after_it() {
    let journal = journal_through(Step::WriteCertificate, Some(StepStatus::Failed));
    let r = Resume::plan(3, &journal, false, true);
    assert_eq!((r.attempt, r.continues), (3, true));
    let run: Vec<Step> = Step::AFTER_CLAIM
        .into_iter()
        .filter(|s| !r.skips(*s))
        .collect();
    assert_eq!(run, [Step::WriteSeals, Step::Finish]);
}

#[test]
fn before_the_certificate_is_on_the_token_a_new_attempt_redoes_everything() {
    for last in [Step::InitToken, Step::IssueCertificate] {
        for next in [None, Some(StepStatus::Started), Some(StepStatus::Failed)] {
            let r = Resume::plan(3, &journal_through(last, next), false, true);
            assert_eq!((r.attempt, r.continues), (4, false), "{last} then {next:?}");
            assert!(Step::AFTER_CLAIM.iter().all(|s| !r.skips(*s)));
        }
    }
    // `write_certificate` started but not journaled as done: the certificate may not be on
    // the token, so it is not continued either.
    let r = Resume::plan(
        3,
        &journal_through(Step::IssueCertificate, Some(StepStatus::Started)),
        false,
        true,
    );
    assert!(!r.continues);
}

#[test]
fn reinit_or_a_released_binding_starts_a_new_attempt() {
    let journal = journal_through(Step::WriteSeals, Some(StepStatus::Failed));
    for (reinit, bound) in [(true, true), (false, false), (true, false)] {
        let r = Resume::plan(3, &journal, reinit, bound);
        assert_eq!(
            (r.attempt, r.continues),
            (4, false),
            "reinit {reinit}, bound {bound}"
        );
    }
}

/// Group commit: the records are committed before the token is erased (`init_token`: the
/// binding names the token being wiped) and before anything runs after the continuation
/// point (`write_seals`: "the certificate is on the token" must be durable, or a crash would
/// make the next run revoke the certificate on the token). No other step forces a commit.
#[test]
fn commits_come_before_the_token_is_erased_and_after_the_continuation_point() {
    let durable: Vec<Step> = Step::AFTER_CLAIM
        .into_iter()
        .filter(|s| durable_before(*s))
        .collect();
    assert_eq!(durable, [Step::InitToken, Step::WriteSeals]);
    let journal = journal_through(Step::WriteCertificate, None);
    let first_continued = Step::AFTER_CLAIM
        .into_iter()
        .find(|s| !Resume::plan(1, &journal, false, true).skips(*s));
    assert_eq!(first_continued.map(durable_before), Some(true));
}

#[test]
fn a_new_attempt_revokes_what_never_reached_the_token() {
    for status in [CertificateStatus::Reserved, CertificateStatus::Issued] {
        for reinit in [false, true] {
            assert!(superseded(status, reinit).is_some(), "{status}");
        }
    }
    assert_eq!(superseded(CertificateStatus::OnToken, false), None);
    assert_eq!(
        superseded(CertificateStatus::OnToken, true),
        Some("the token was started over (--reinit)")
    );
    assert_eq!(superseded(CertificateStatus::Revoked, true), None);
}

fn started(no: &OrderNo, step: Step) -> Write {
    Write::StepStarted {
        order_no: no.clone(),
        attempt: 2,
        step,
    }
}

fn finished(no: &OrderNo, step: Step, status: StepStatus) -> Write {
    Write::StepFinished(StepEnd {
        order_no: no.clone(),
        attempt: 2,
        step,
        status,
        detail: (status == StepStatus::Failed).then(|| "token removed".to_string()),
    })
}

/// What `merge_steps` gives, as text: `step name=status` for a merged step, the variant's
/// name for a write applied as it is.
fn shape(writes: &[Write]) -> Vec<String> {
    merge_steps(writes)
        .iter()
        .map(|m| match m {
            Merged::Step(end) => format!(
                "step {}={}{}",
                end.step.name(),
                end.status.as_str(),
                end.detail
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            Merged::One(Write::StepStarted { step, .. }) => format!("started {}", step.name()),
            Merged::One(Write::StepFinished(end)) => format!("finished {}", end.step.name()),
            Merged::One(Write::Audit(_)) => "audit".to_string(),
            Merged::One(_) => "other".to_string(),
        })
        .collect()
}

fn audit(no: &OrderNo) -> Write {
    Write::Audit(Box::new(AuditEntry::order(
        no,
        AuditEvent::CertificateRevoked(CertificateRevoked {
            reason: "superseded".into(),
            detail: "test".into(),
            previous_status: CertificateStatus::Issued,
            order_state: None,
            four_eyes: None,
        }),
    )))
}

#[test]
fn a_step_started_and_finished_in_one_transaction_is_one_write_at_its_start() {
    let no: OrderNo = "KS-20260101-0001".parse().unwrap();
    let writes = [
        finished(&no, Step::InitToken, StepStatus::Done),
        audit(&no),
        started(&no, Step::InitPin),
        audit(&no),
        Write::ExpectState {
            order_no: no.clone(),
            state: OrderState::Provisioning,
        },
        finished(&no, Step::InitPin, StepStatus::Done),
        audit(&no),
        started(&no, Step::GenerateKey),
        finished(&no, Step::GenerateKey, StepStatus::Failed),
        started(&no, Step::IssueCertificate),
    ];
    assert_eq!(
        shape(&writes),
        [
            // Started in an earlier transaction: its finish stays an update.
            "finished init_token",
            "audit",
            "step init_pin=done",
            "audit",
            "other",
            "audit",
            "step generate_key=failed (token removed)",
            // Finished in a later transaction: its start stays an insert.
            "started issue_certificate",
        ]
    );
}

#[test]
fn only_the_same_order_attempt_and_step_are_merged() {
    let no: OrderNo = "KS-20260101-0001".parse().unwrap();
    let other: OrderNo = "KS-20260101-0002".parse().unwrap();
    let mut earlier_attempt = finished(&no, Step::InitPin, StepStatus::Done);
    if let Write::StepFinished(end) = &mut earlier_attempt {
        end.attempt = 1;
    }
    let writes = [
        started(&no, Step::InitPin),
        finished(&other, Step::InitPin, StepStatus::Done),
        earlier_attempt,
        finished(&no, Step::GenerateKey, StepStatus::Done),
    ];
    assert_eq!(
        shape(&writes),
        [
            "started init_pin",
            "finished init_pin",
            "finished init_pin",
            "finished generate_key"
        ]
    );
}
