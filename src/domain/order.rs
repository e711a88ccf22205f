//! The certificate order as the back office keeps it, and its lifecycle.
//!
//! An [`Order`] only exists in validated, normalised form: [`super::validate`] is the one way to
//! build it from an application. Its state moves through [`OrderState::apply`], the single place
//! that knows which transitions are legal; the store refuses anything else.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How the certificate password (user PIN) reaches the company (认证方式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Legal representative's real-name phone (法人手机实名): PIN by SMS to the legal rep.
    LegalRepPhone,
    /// Legal representative's bank card (法人银行卡): PIN by SMS to the legal rep.
    LegalRepBankCard,
    /// Corporate-account 1-cent transfer (企业对公账户打款): PIN in the transfer memo.
    CorporateTransfer,
}

/// The out-of-band channel a PIN travels by, decided by the order's [`AuthMethod`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryChannel {
    /// SMS to the legal representative's mobile.
    Sms,
    /// Memo of a 0.01 CNY credit transfer to the corporate account.
    BankTransfer,
}

impl AuthMethod {
    /// The channel the PIN must use for this method (domain doc §1.7).
    pub fn delivery_channel(self) -> DeliveryChannel {
        match self {
            AuthMethod::LegalRepPhone | AuthMethod::LegalRepBankCard => DeliveryChannel::Sms,
            AuthMethod::CorporateTransfer => DeliveryChannel::BankTransfer,
        }
    }
}

/// Main key (主锁) or secondary key (副锁).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// The company's main key.
    Main,
    /// An additional key; carries no seals.
    Secondary,
}

/// Which electronic seals go onto the key (签章服务).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealService {
    /// Company seal and legal representative's seal (公章和法人章).
    CompanyAndLegalRep,
    /// Company seal only (公章).
    Company,
    /// No seals.
    None,
}

/// One electronic seal kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SealKind {
    /// The company seal (公章), an organisation seal (SESeal type 1).
    Company,
    /// The legal representative's seal (法人章), a personal seal (SESeal type 2).
    LegalRep,
}

impl SealService {
    /// The seals this service puts on a key, in the order they are written.
    pub fn seals(self) -> &'static [SealKind] {
        match self {
            SealService::CompanyAndLegalRep => &[SealKind::Company, SealKind::LegalRep],
            SealService::Company => &[SealKind::Company],
            SealService::None => &[],
        }
    }
}

impl SealKind {
    /// Stable name, used in token object labels (`seal:company`) and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            SealKind::Company => "company",
            SealKind::LegalRep => "legal_rep",
        }
    }
}

/// Identity document type; only the resident identity card is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    /// 居民身份证 (GB 11643-1999, 18 characters).
    ResidentId,
}

/// Kinds of uploaded document images (domain doc §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// Business licence copy stamped with the company seal.
    BusinessLicense,
    /// Handler's ID card, photo side.
    HandlerIdFront,
    /// Handler's ID card, emblem side.
    HandlerIdBack,
    /// Power of attorney (法人授权委托书), stamped.
    PowerOfAttorney,
    /// Seal collection form (单位签章采集表) with the seal impressions.
    SealCollectionForm,
}

impl DocumentKind {
    /// Every kind, in the order the application form lists them.
    pub const ALL: [DocumentKind; 5] = [
        DocumentKind::BusinessLicense,
        DocumentKind::HandlerIdFront,
        DocumentKind::HandlerIdBack,
        DocumentKind::PowerOfAttorney,
        DocumentKind::SealCollectionForm,
    ];

    /// Stable name, as in the order JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::BusinessLicense => "business_license",
            DocumentKind::HandlerIdFront => "handler_id_front",
            DocumentKind::HandlerIdBack => "handler_id_back",
            DocumentKind::PowerOfAttorney => "power_of_attorney",
            DocumentKind::SealCollectionForm => "seal_collection_form",
        }
    }
}

/// Image formats the back office accepts, recognised by magic bytes, never by file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageType {
    /// GIF87a / GIF89a.
    Gif,
    /// JPEG (JFIF/Exif).
    Jpeg,
    /// PNG.
    Png,
}

impl ImageType {
    /// Recognises an image by its first bytes.
    pub fn sniff(bytes: &[u8]) -> Option<ImageType> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageType::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageType::Jpeg)
        } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            Some(ImageType::Gif)
        } else {
            None
        }
    }

    /// The IANA media type.
    pub fn media_type(self) -> &'static str {
        match self {
            ImageType::Gif => "image/gif",
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
        }
    }
}

/// The applying company (单位).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Company {
    /// Legal name, as on the business licence; becomes O and CN of the certificate.
    pub name: String,
    /// Unified social credit code (统一社会信用代码).
    pub uscc: String,
    /// Department (部门); becomes OU when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Company telephone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A natural person identified by a resident ID (legal representative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalRep {
    /// Full name.
    pub name: String,
    /// Mainland mobile number, 11 digits; receives the PIN by SMS for the phone/bank-card methods.
    pub mobile: String,
    /// Identity document type.
    pub id_type: IdType,
    /// Identity document number.
    pub id_number: String,
}

/// The product ordered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Main or secondary key.
    pub key_role: KeyRole,
    /// Certificate validity in years.
    pub years: u8,
    /// Seals on the key.
    pub seal_service: SealService,
    /// For a secondary key: the company's main-key order it is added to (required then, absent
    /// for a main key). See [`super::secondary_key`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_order_no: Option<super::OrderNo>,
}

/// Invoice details (发票).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Invoice title (抬头).
    pub title: String,
    /// Taxpayer identification number (纳税人识别号).
    pub taxpayer_id: String,
    /// Address and phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_phone: Option<String>,
    /// Bank and account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_account: Option<String>,
}

/// The person handling the application (经办人); receives invoices and unlock codes by e-mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handler {
    /// Full name.
    pub name: String,
    /// Mainland mobile number.
    pub mobile: String,
    /// Identity document type.
    pub id_type: IdType,
    /// Identity document number.
    pub id_number: String,
    /// E-mail address.
    pub email: String,
}

/// Where the USB key is shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipping {
    /// Province; becomes ST of the certificate.
    pub province: String,
    /// City; becomes L of the certificate.
    pub city: String,
    /// Street address.
    pub address: String,
}

/// The company's corporate bank account, required for the corporate-transfer method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorporateAccount {
    /// Account holder name.
    pub account_name: String,
    /// Account number, 8-32 digits (not an IBAN).
    pub account_number: String,
    /// Bank name.
    pub bank_name: String,
    /// Branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

/// An uploaded document, as referenced by the order; the content lives in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentRef {
    /// What the document is.
    pub kind: DocumentKind,
    /// The file name as given in the application (relative to the order file).
    pub file: String,
}

/// A seal impression picture from the seal collection form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealPictureRef {
    /// Which seal.
    pub kind: SealKind,
    /// The file name as given in the application.
    pub picture: String,
}

/// A validated, normalised certificate order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The order number; also the label of the USB key (at most 32 bytes, PKCS#11's label size).
    pub order_no: crate::domain::OrderNo,
    /// PIN delivery method.
    pub auth_method: AuthMethod,
    /// The company.
    pub company: Company,
    /// Its legal representative.
    pub legal_rep: LegalRep,
    /// What was ordered.
    pub product: Product,
    /// Invoice details.
    pub invoice: Invoice,
    /// The handler.
    pub handler: Handler,
    /// Shipping address.
    pub shipping: Shipping,
    /// Corporate account (present exactly for the corporate-transfer method).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corporate_account: Option<CorporateAccount>,
    /// Uploaded documents.
    pub documents: Vec<DocumentRef>,
    /// Seal pictures.
    pub seals: Vec<SealPictureRef>,
}

impl Order {
    /// The seals this order's key must carry: none for a secondary key, else per seal service.
    pub fn seals_on_key(&self) -> &'static [SealKind] {
        match self.product.key_role {
            KeyRole::Secondary => &[],
            KeyRole::Main => self.product.seal_service.seals(),
        }
    }

    /// The files attached to this order, documents first, then seal pictures, each as
    /// (role: `document` or `seal`, its kind's name, the file as given in the order) — the
    /// attachments a stored order keeps.
    pub fn attached_files(&self) -> impl Iterator<Item = (&'static str, &'static str, &String)> {
        let documents = self
            .documents
            .iter()
            .map(|d| ("document", d.kind.as_str(), &d.file));
        let seals = self
            .seals
            .iter()
            .map(|s| ("seal", s.kind.as_str(), &s.picture));
        documents.chain(seals)
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderState {
    /// Taken in, awaiting review.
    Submitted,
    /// Approved by an operator; may be provisioned.
    Approved,
    /// Rejected by an operator (terminal): at review, or after provisioning failed.
    Rejected,
    /// A station has claimed it and is writing a token.
    Provisioning,
    /// Token personalised: key, certificate, seals; PIN sealed in the vault.
    Provisioned,
    /// The token has left with a courier.
    Shipped,
    /// The PIN reached the company by its channel; the sealed PIN is destroyed.
    PinDelivered,
    /// Provisioning stopped on an error that needs an operator; resumable.
    Failed,
    /// The certificate was revoked (terminal).
    Revoked,
}

/// Something that happens to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEvent {
    /// Review passed.
    Approve,
    /// Review failed; or an operator gives up a failed order (its certificates are revoked
    /// and its token released in the same transaction).
    Reject,
    /// A station takes the order to provision it (also: resume a failed one).
    Claim,
    /// Provisioning finished.
    CompleteProvisioning,
    /// Provisioning stopped on an error.
    Fail,
    /// Provisioning was rolled back and the order may be claimed again.
    Release,
    /// The key was handed to a courier.
    Ship,
    /// The PIN delivery was confirmed.
    ConfirmPinDelivery,
    /// The certificate was revoked.
    Revoke,
}

/// An attempt to apply an event the order's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("order in state {from} cannot {event:?}")]
pub struct IllegalTransition {
    /// The state the order was in.
    pub from: OrderState,
    /// The refused event.
    pub event: OrderEvent,
}

impl OrderState {
    /// Every state, for listings and property tests.
    pub const ALL: [OrderState; 9] = [
        OrderState::Submitted,
        OrderState::Approved,
        OrderState::Rejected,
        OrderState::Provisioning,
        OrderState::Provisioned,
        OrderState::Shipped,
        OrderState::PinDelivered,
        OrderState::Failed,
        OrderState::Revoked,
    ];

    /// The one table of legal transitions.
    ///
    /// `Ship` on `PinDelivered` is allowed and keeps the state: with `delivery.trigger =
    /// "on_provisioned"` the PIN may arrive before the key is shipped, and shipping must still be
    /// recorded. Whether a key was already shipped is a fact of the shipment record, not a state.
    ///
    /// `Reject` on `Failed`: an order whose provisioning cannot succeed (the applicant's data or
    /// documents turn out wrong, the key is gone) is not left to be resumed forever. Its PIN was
    /// never delivered, so Rejected stays a state where no PIN and no live certificate exist.
    pub fn apply(self, event: OrderEvent) -> Result<OrderState, IllegalTransition> {
        use OrderEvent as E;
        use OrderState as S;
        let to = match (self, event) {
            (S::Submitted, E::Approve) => S::Approved,
            (S::Submitted | S::Failed, E::Reject) => S::Rejected,
            (S::Approved | S::Failed, E::Claim) => S::Provisioning,
            (S::Provisioning, E::CompleteProvisioning) => S::Provisioned,
            (S::Provisioning, E::Fail) => S::Failed,
            (S::Provisioning | S::Failed, E::Release) => S::Approved,
            (S::Provisioned, E::Ship) => S::Shipped,
            (S::PinDelivered, E::Ship) => S::PinDelivered,
            (S::Provisioned | S::Shipped, E::ConfirmPinDelivery) => S::PinDelivered,
            (S::Provisioned | S::Shipped | S::PinDelivered | S::Failed, E::Revoke) => S::Revoked,
            _ => return Err(IllegalTransition { from: self, event }),
        };
        Ok(to)
    }

    /// Stable name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Submitted => "Submitted",
            OrderState::Approved => "Approved",
            OrderState::Rejected => "Rejected",
            OrderState::Provisioning => "Provisioning",
            OrderState::Provisioned => "Provisioned",
            OrderState::Shipped => "Shipped",
            OrderState::PinDelivered => "PinDelivered",
            OrderState::Failed => "Failed",
            OrderState::Revoked => "Revoked",
        }
    }

    /// The state in Chinese, as the console and the portal's progress page (订单查询) show it.
    pub fn label_zh(self) -> &'static str {
        match self {
            OrderState::Submitted => "待审核",
            OrderState::Approved => "已批准",
            OrderState::Rejected => "已驳回",
            OrderState::Provisioning => "制作中",
            OrderState::Provisioned => "已制作",
            OrderState::Shipped => "已发货",
            OrderState::PinDelivered => "PIN 已送达",
            OrderState::Failed => "制作失败",
            OrderState::Revoked => "已吊销",
        }
    }

    /// Parses a stored or typed state name (case-insensitive).
    pub fn parse(s: &str) -> Option<OrderState> {
        OrderState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// No event leads anywhere from here.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderState::Rejected | OrderState::Revoked)
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests;
