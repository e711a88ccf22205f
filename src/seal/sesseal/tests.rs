#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;
use std::time::Duration;

fn gt(secs: u64) -> GeneralizedTime {
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs)).unwrap()
}

fn sample_info() -> SesSealInfo {
    SesSealInfo {
        header: SesHeader {
            id: Ia5String::new("ES").unwrap(),
            version: 4,
            vid: Ia5String::new("TESTVID").unwrap(),
        },
        es_id: Ia5String::new("1101080000001").unwrap(),
        property: SesEsPropertyInfo {
            seal_type: 1,
            name: "北京示例科技有限公司".to_owned(),
            cert_list: SesCertList::Certs(vec![OctetString::new(vec![0x30, 0x00]).unwrap()]),
            create_date: gt(1_735_689_600),
            valid_start: gt(1_735_689_600),
            valid_end: gt(1_767_225_599),
        },
        picture: SesEsPictureInfo {
            picture_type: Ia5String::new("PNG").unwrap(),
            data: OctetString::new(vec![0x89, 0x50, 0x4e, 0x47]).unwrap(),
            width: 40,
            height: 40,
        },
        ext_datas: None,
    }
}

#[test]
fn header_vector_encodes_and_parses() {
    let header = SesHeader {
        id: Ia5String::new("ES").unwrap(),
        version: 4,
        vid: Ia5String::new("TESTVID").unwrap(),
    };
    let expected = hex::decode("301016024553020104160754455354564944").unwrap();
    assert_eq!(header.to_der().unwrap(), expected);
    assert_eq!(SesHeader::from_der(&expected).unwrap(), header);
}

#[test]
fn picture_vector_encodes_and_parses() {
    let picture = SesEsPictureInfo {
        picture_type: Ia5String::new("PNG").unwrap(),
        data: OctetString::new(vec![0x89, 0x50, 0x4e, 0x47]).unwrap(),
        width: 40,
        height: 40,
    };
    let expected = hex::decode("30111603504e47040489504e47020128020128").unwrap();
    assert_eq!(picture.to_der().unwrap(), expected);
    assert_eq!(SesEsPictureInfo::from_der(&expected).unwrap(), picture);
}

#[test]
fn ext_data_default_false_is_omitted_and_explicit_false_rejected() {
    let oid = ObjectIdentifier::new_unwrap("1.2.3.4");
    let value = OctetString::new(vec![0xaa]).unwrap();
    let not_critical = ExtData {
        extn_id: oid,
        critical: false,
        extn_value: value.clone(),
    };
    // SEQUENCE { OID 1.2.3.4, OCTET STRING aa } with no BOOLEAN in between.
    let expected = hex::decode("300806032a03040401aa").unwrap();
    assert_eq!(not_critical.to_der().unwrap(), expected);
    assert_eq!(ExtData::from_der(&expected).unwrap(), not_critical);

    let critical = ExtData {
        critical: true,
        ..not_critical
    };
    let with_true = hex::decode("300b06032a03040101ff0401aa").unwrap();
    assert_eq!(critical.to_der().unwrap(), with_true);
    assert_eq!(ExtData::from_der(&with_true).unwrap(), critical);

    let explicit_false = hex::decode("300b06032a03040101000401aa").unwrap();
    assert!(ExtData::from_der(&explicit_false).is_err());
}

#[test]
fn seal_info_round_trips_and_trailing_garbage_is_rejected() {
    let info = sample_info();
    let der = info.to_der().unwrap();
    assert_eq!(SesSealInfo::from_der(&der).unwrap(), info);

    let mut trailing = der.clone();
    trailing.push(0x00);
    assert!(SesSealInfo::from_der(&trailing).is_err());

    let seal = SesSeal {
        e_seal_info: info,
        cert: OctetString::new(vec![0x30, 0x00]).unwrap(),
        sign_alg_id: OID_ECDSA_WITH_SHA256,
        signed_value: BitString::from_bytes(&[1, 2, 3]).unwrap(),
    };
    let mut seal_der = seal.to_der().unwrap();
    assert_eq!(parse_seal(&seal_der).unwrap(), seal);
    seal_der.extend_from_slice(&[0x05, 0x00]);
    let err = parse_seal(&seal_der).unwrap_err();
    assert!(
        matches!(err, SealError::Der { what: "SESeal", .. }),
        "{err}"
    );
}

#[test]
fn wrong_tag_and_non_minimal_length_are_rejected() {
    let der = sample_info().to_der().unwrap();
    // Outer tag SET instead of SEQUENCE.
    let mut wrong_tag = der.clone();
    wrong_tag[0] = 0x31;
    assert!(SesSealInfo::from_der(&wrong_tag).is_err());
    // Header with a long-form length where the short form is required.
    let non_minimal = hex::decode("30811016024553020104160754455354564944").unwrap();
    assert!(SesHeader::from_der(&non_minimal).is_err());
    // Non-minimal INTEGER 4 (02 02 00 04).
    let padded_int = hex::decode("30111602455302020004160754455354564944").unwrap();
    assert!(SesHeader::from_der(&padded_int).is_err());
}

/// Re-encodes `property` with `certListType` forced to `forced_type`.
fn property_with_type(property: &SesEsPropertyInfo, forced_type: i64) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(property.seal_type.to_der().unwrap());
    body.extend(property.name.to_der().unwrap());
    body.extend(forced_type.to_der().unwrap());
    match &property.cert_list {
        SesCertList::Certs(c) => body.extend(c.to_der().unwrap()),
        SesCertList::CertDigestList(d) => body.extend(d.to_der().unwrap()),
    }
    body.extend(property.create_date.to_der().unwrap());
    body.extend(property.valid_start.to_der().unwrap());
    body.extend(property.valid_end.to_der().unwrap());
    let mut out = Header::new(Tag::Sequence, Length::try_from(body.len()).unwrap())
        .to_der()
        .unwrap();
    out.extend(body);
    out
}

#[test]
fn cert_list_type_mismatch_is_rejected() {
    let certs = sample_info().property;
    assert_eq!(
        SesEsPropertyInfo::from_der(&property_with_type(&certs, 1)).unwrap(),
        certs
    );
    // certs list announced as digests.
    assert!(SesEsPropertyInfo::from_der(&property_with_type(&certs, 2)).is_err());
    // unknown certListType.
    assert!(SesEsPropertyInfo::from_der(&property_with_type(&certs, 3)).is_err());

    let digests = SesEsPropertyInfo {
        cert_list: SesCertList::CertDigestList(vec![CertDigestObj {
            digest_type: PrintableString::new("SHA256").unwrap(),
            value: OctetString::new(vec![7; 32]).unwrap(),
        }]),
        ..certs
    };
    assert_eq!(
        SesEsPropertyInfo::from_der(&property_with_type(&digests, 2)).unwrap(),
        digests
    );
    // digest list announced as certs.
    assert!(SesEsPropertyInfo::from_der(&property_with_type(&digests, 1)).is_err());
}

#[test]
fn check_profile_rejects_wrong_header_and_empty_certs() {
    let seal = SesSeal {
        e_seal_info: sample_info(),
        cert: OctetString::new(vec![0x30, 0x00]).unwrap(),
        sign_alg_id: OID_ECDSA_WITH_SHA256,
        signed_value: BitString::from_bytes(&[1]).unwrap(),
    };
    seal.check_profile().unwrap();
    let mut v3 = seal.clone();
    v3.e_seal_info.header.version = 3;
    assert!(v3.check_profile().is_err());
    let mut bad_id = seal.clone();
    bad_id.e_seal_info.header.id = Ia5String::new("EX").unwrap();
    assert!(bad_id.check_profile().is_err());
    let mut empty = seal;
    empty.e_seal_info.property.cert_list = SesCertList::Certs(vec![]);
    assert!(empty.check_profile().is_err());
}

fn ia5_strategy() -> impl Strategy<Value = Ia5String> {
    proptest::collection::vec(0u8..=127, 0..24)
        .prop_map(|b| Ia5String::new(&String::from_utf8(b).unwrap()).unwrap())
}

fn octets_strategy(max: usize) -> impl Strategy<Value = OctetString> {
    proptest::collection::vec(any::<u8>(), 0..max).prop_map(|b| OctetString::new(b).unwrap())
}

fn time_strategy() -> impl Strategy<Value = GeneralizedTime> {
    // 1970-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z
    (0u64..=253_402_300_799).prop_map(gt)
}

fn oid_strategy() -> impl Strategy<Value = ObjectIdentifier> {
    (
        0u32..=2,
        0u32..=39,
        proptest::collection::vec(any::<u32>(), 0..5),
    )
        .prop_map(|(a, b, rest)| {
            let mut s = format!("{a}.{b}");
            for arc in rest {
                s.push_str(&format!(".{arc}"));
            }
            ObjectIdentifier::new(&s).unwrap()
        })
}

fn printable_strategy() -> impl Strategy<Value = PrintableString> {
    "[A-Za-z0-9 '()+,./:=?-]{0,12}".prop_map(|s| PrintableString::new(&s).unwrap())
}

fn ext_strategy() -> impl Strategy<Value = ExtData> {
    (oid_strategy(), any::<bool>(), octets_strategy(16)).prop_map(|(extn_id, critical, v)| {
        ExtData {
            extn_id,
            critical,
            extn_value: v,
        }
    })
}

fn cert_list_strategy() -> impl Strategy<Value = SesCertList> {
    prop_oneof![
        proptest::collection::vec(octets_strategy(64), 0..3).prop_map(SesCertList::Certs),
        proptest::collection::vec(
            (printable_strategy(), octets_strategy(32))
                .prop_map(|(digest_type, value)| CertDigestObj { digest_type, value }),
            0..3
        )
        .prop_map(SesCertList::CertDigestList),
    ]
}

prop_compose! {
    fn seal_info_strategy()(
        id in ia5_strategy(), version in any::<i64>(), vid in ia5_strategy(),
        es_id in ia5_strategy(),
        seal_type in any::<i64>(), name in any::<String>(), cert_list in cert_list_strategy(),
        create_date in time_strategy(), valid_start in time_strategy(), valid_end in time_strategy(),
        picture_type in ia5_strategy(), data in octets_strategy(256),
        width in any::<i64>(), height in any::<i64>(),
        ext_datas in proptest::option::of(proptest::collection::vec(ext_strategy(), 0..4)),
    ) -> SesSealInfo {
        SesSealInfo {
            header: SesHeader { id, version, vid },
            es_id,
            property: SesEsPropertyInfo {
                seal_type, name, cert_list, create_date, valid_start, valid_end,
            },
            picture: SesEsPictureInfo { picture_type, data, width, height },
            ext_datas,
        }
    }
}

proptest! {
    #[test]
    fn seal_info_round_trip(info in seal_info_strategy()) {
        let der = info.to_der().unwrap();
        prop_assert_eq!(SesSealInfo::from_der(&der).unwrap(), info.clone());
        // And inside a whole SESeal, through the public parser.
        let seal = SesSeal {
            e_seal_info: info,
            cert: OctetString::new(vec![1, 2, 3]).unwrap(),
            sign_alg_id: OID_SHA256_WITH_RSA,
            signed_value: BitString::from_bytes(&[9, 8, 7]).unwrap(),
        };
        let seal_der = seal.to_der().unwrap();
        let parsed = parse_seal(&seal_der).unwrap();
        prop_assert_eq!(parsed.to_der().unwrap(), seal_der);
        prop_assert_eq!(parsed, seal);
    }
}
