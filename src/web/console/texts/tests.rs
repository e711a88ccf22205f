use super::*;
use std::collections::BTreeSet;

fn han(s: &str) -> bool {
    s.chars()
        .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) || ('\u{3000}'..='\u{303f}').contains(&c))
}

fn placeholders(s: &str) -> usize {
    s.matches("{}").count()
}

#[test]
fn both_catalogues_have_the_same_keys_and_no_empty_text() {
    let (zh, en) = (ZH.entries(), EN.entries());
    let keys = |e: &[(&'static str, &'static str)]| e.iter().map(|(k, _)| *k).collect::<Vec<_>>();
    assert_eq!(keys(&zh), keys(&en));
    assert_eq!(
        keys(&zh).into_iter().collect::<BTreeSet<_>>().len(),
        zh.len(),
        "a key twice"
    );
    for ((key, z), (_, e)) in zh.iter().zip(&en) {
        assert!(!z.trim().is_empty(), "zh-CN {key} is empty");
        assert!(!e.trim().is_empty(), "en {key} is empty");
        assert_eq!(
            placeholders(z),
            placeholders(e),
            "{key}: the two languages fill different numbers of values"
        );
    }
}

#[test]
fn the_english_catalogue_is_english_and_the_chinese_one_chinese() {
    for (key, text) in EN.entries() {
        // The switch names the other language in its own script.
        if key != "switch_label" {
            assert!(!han(text), "en {key} is not English: {text}");
        }
    }
    let tables = EN
        .field_labels
        .iter()
        .map(|(_, l)| *l)
        .chain(EN.value_labels.iter().map(|(_, _, l)| *l))
        .chain(EN.document_labels.iter().map(|(_, l)| *l));
    for label in tables {
        assert!(
            !label.trim().is_empty() && !han(label),
            "en label {label:?}"
        );
    }
    // The Chinese catalogue is Chinese where it is not a code, a tag or a product name.
    let chinese = ZH.entries().iter().filter(|(_, t)| han(t)).count();
    assert!(chinese * 10 > ZH.entries().len() * 9, "{chinese}");
}

#[test]
fn the_tables_name_the_same_fields_values_and_documents_in_both_languages() {
    let fields = |t: &Texts| t.field_labels.iter().map(|(p, _)| *p).collect::<Vec<_>>();
    assert_eq!(fields(&ZH), fields(&EN), "same fields, same form order");
    let values = |t: &Texts| {
        t.value_labels
            .iter()
            .map(|(p, v, _)| (*p, *v))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(values(&ZH), values(&EN));
    let documents = |t: &Texts| {
        t.document_labels
            .iter()
            .map(|(k, _)| *k)
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(documents(&ZH), documents(&EN));
    for t in [&ZH, &EN] {
        assert!(t.field_labels.iter().all(|(_, l)| !l.trim().is_empty()));
        assert!(t.value_labels.iter().all(|(_, _, l)| !l.trim().is_empty()));
        assert!(t.document_labels.iter().all(|(_, l)| !l.trim().is_empty()));
    }
}

#[test]
fn the_chinese_order_states_are_the_domain_s_and_the_english_ones_distinct() {
    for s in OrderState::ALL {
        assert_eq!(ZH.order_state(s), s.label_zh());
    }
    let en: BTreeSet<_> = OrderState::ALL.iter().map(|s| EN.order_state(*s)).collect();
    assert_eq!(en.len(), OrderState::ALL.len());
}

#[test]
fn coded_values_show_their_code_beside_their_name() {
    assert_eq!(ZH.value_label("product.key_role", "main"), "主密钥（main）");
    assert_eq!(
        EN.value_label("product.key_role", "main"),
        "Main key (main)"
    );
    // Unknown: as sent.
    assert_eq!(EN.value_label("product.key_role", "other"), "other");
    assert_eq!(EN.field_label("company.name"), "Company name");
    assert_eq!(EN.field_label("extra.thing"), "extra.thing");
    assert_eq!(EN.token_role("order KS-1"), "Order KS-1");
    assert_eq!(ZH.token_role("elsewhere"), "非本站制作");
}

#[test]
fn patterns_are_filled_in_order() {
    assert_eq!(
        EN.f4(EN.batch_ended, 3, 1, 0, 2),
        "Batch ended: 3 succeeded, 1 failed, 0 skipped, 2 not started."
    );
    assert_eq!(ZH.f1(ZH.count_orders, 12), "共 12 个订单");
    assert_eq!(fill("{} and {}", &[&"a"]), "a and ");
    assert_eq!(fill("no value", &[&1]), "no value");
}

#[test]
fn a_request_is_chinese_unless_its_cookie_or_its_browser_asks_for_english() {
    assert_eq!(Lang::of_request(None, None), Lang::ZhCn);
    assert_eq!(Lang::of_request(Some("ks_console=x"), None), Lang::ZhCn);
    assert_eq!(Lang::of_request(Some("a=1; ks_lang=en"), None), Lang::En);
    // The cookie (the switch) wins over the browser's header.
    assert_eq!(
        Lang::of_request(Some("ks_lang=zh-CN"), Some("en-US,en;q=0.9")),
        Lang::ZhCn
    );
    assert_eq!(Lang::of_request(Some("ks_lang=fr"), Some("en")), Lang::En);
    assert_eq!(Lang::of_request(None, Some("en-US,en;q=0.9")), Lang::En);
    assert_eq!(
        Lang::of_request(None, Some("zh-CN,zh;q=0.9,en;q=0.8")),
        Lang::ZhCn
    );
    assert_eq!(
        Lang::of_request(None, Some("en;q=0.5,zh;q=0.8")),
        Lang::ZhCn
    );
    assert_eq!(Lang::of_request(None, Some("fr-FR,de")), Lang::ZhCn);
    assert_eq!(Lang::of_request(None, Some("en;q=0")), Lang::ZhCn);
    assert_eq!(Lang::of_request(None, Some("")), Lang::ZhCn);
    assert_eq!(Lang::from_accept_language("de, EN-gb;q=0.7"), Lang::En);
    for lang in Lang::ALL {
        assert_eq!(Lang::parse(lang.tag()), Some(lang));
    }
    assert_eq!(Lang::parse("english"), None);
}

#[test]
fn the_language_cookie_is_like_the_session_s() {
    let c = set_cookie(Lang::En, false);
    assert!(c.starts_with("ks_lang=en;"), "{c}");
    assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
    assert!(set_cookie(Lang::ZhCn, true).ends_with("; Secure"));
}
