/*!
The cluster's own certificate authority (rcgen, ECDSA P-256), on the effectful side of the plan.

- The Juju leader makes the CA and one client certificate when TLS is on and leader data has no
  CA yet ([`create_ca`]); they go to leader data, which only this application's units can read.
- Every unit signs its own member certificate with that CA ([`write_member_files`]): valid for
  its address, its hostname, `localhost` and `127.0.0.1`, with server and client auth (etcd
  uses it both ways on the peer port). It is made again when a name or the CA changes (the plan
  compares [`crate::core::render::tls_record`]).

The CA is rebuilt for signing from its key and its fixed subject: rcgen needs no certificate
parser for that, and the issuer name and key identifier match the published CA certificate.
*/

use super::host::HostError;
use super::{state, Machine};
use crate::core::observed::keys;
use crate::core::render;
use crate::juju::Settings;
use crate::paths;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// How long the CA and the certificates it signs are valid, in days (about ten years).
const VALIDITY_DAYS: i64 = 3652;

/// A certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen refused (a malformed key or name).
    #[error("cannot make a TLS certificate: {0}")]
    Cert(rcgen::Error),
    /// Leader data lacks a key this unit needs.
    #[error("leader data has no {0}: the leader makes it again on its next hook")]
    Missing(&'static str),
    /// A file could not be written.
    #[error(transparent)]
    Host(#[from] HostError),
}

impl From<rcgen::Error> for TlsError {
    fn from(e: rcgen::Error) -> TlsError {
        TlsError::Cert(e)
    }
}

/// Sets validity from yesterday (some clock skew) for [`VALIDITY_DAYS`].
fn set_validity(params: &mut CertificateParams) {
    let today = time::OffsetDateTime::now_utc().date();
    let midnight = |days| (today + time::Duration::days(days)).midnight().assume_utc();
    params.not_before = midnight(-1);
    params.not_after = midnight(VALIDITY_DAYS);
}

/// A subject `O=etcd charm[, CN=common]`.
fn name(common: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "etcd charm");
    if let Some(common) = common {
        dn.push(DnType::CommonName, common);
    }
    dn
}

/// The CA's parameters: a fixed subject, so the issuer can be rebuilt from the key alone.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(Some("etcd charm CA"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params);
    params
}

/// A leaf certificate's parameters.
fn leaf_params(
    common: Option<&str>,
    sans: &[String],
    usages: Vec<ExtendedKeyUsagePurpose>,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name = name(common);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages;
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params);
    Ok(params)
}

/// A new CA and client certificate, as the leader data keys [`keys::TLS_CA`],
/// [`keys::TLS_CA_KEY`], [`keys::TLS_CLIENT_CERT`] and [`keys::TLS_CLIENT_KEY`].
pub fn create_ca() -> Result<Settings, TlsError> {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let params = ca_params();
    let ca = params.self_signed(&ca_key)?;
    let issuer = Issuer::from_params(&params, &ca_key);
    let client_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    // No common name: `etcd grpc-proxy` (3.4) refuses to start with a client certificate that
    // has one (with etcd auth on, the CN would be taken as the user name).
    let client = leaf_params(None, &[], vec![ExtendedKeyUsagePurpose::ClientAuth])?
        .signed_by(&client_key, &issuer)?;
    Ok(Settings::from([
        (keys::TLS_CA.to_string(), ca.pem()),
        (keys::TLS_CA_KEY.to_string(), ca_key.serialize_pem()),
        (keys::TLS_CLIENT_CERT.to_string(), client.pem()),
        (keys::TLS_CLIENT_KEY.to_string(), client_key.serialize_pem()),
    ]))
}

/// A member certificate and key (PEM) for `sans`, signed by the CA whose key is `ca_key_pem`.
pub fn member_cert(ca_key_pem: &str, sans: &[String]) -> Result<(String, String), TlsError> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let params = ca_params();
    let issuer = Issuer::from_params(&params, &ca_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let common = sans.iter().find(|s| s.parse::<std::net::IpAddr>().is_err());
    let usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = leaf_params(Some(common.map_or("etcd", |s| s.as_str())), sans, usages)?
        .signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes this member's TLS files from leader data: a new member certificate for `sans`, the
/// CA and the client credentials; then records what they were made from. etcd reads the
/// certificate files on each handshake, so a running member needs no restart.
pub fn write_member_files(
    m: &dyn Machine,
    leader: &Settings,
    sans: &[String],
) -> Result<(), TlsError> {
    let get = |key: &'static str| {
        leader
            .get(key)
            .filter(|v| !v.is_empty())
            .ok_or(TlsError::Missing(key))
    };
    let (ca, ca_key) = (get(keys::TLS_CA)?, get(keys::TLS_CA_KEY)?);
    let (client_cert, client_key) = (get(keys::TLS_CLIENT_CERT)?, get(keys::TLS_CLIENT_KEY)?);
    let (cert, key) = member_cert(ca_key, sans)?;
    state::forget_tls(m);
    m.write_private(paths::TLS_KEY, &key, true)?;
    m.write_private(paths::TLS_CERT, &cert, true)?;
    m.write_private(paths::TLS_CA, ca, true)?;
    m.write_private(paths::TLS_CLIENT_KEY, client_key, false)?;
    m.write_private(paths::TLS_CLIENT_CERT, client_cert, false)?;
    state::record_tls(m, &render::tls_record(ca, client_cert, client_key, sans))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_signs_member_certificates() {
        let ca = create_ca().unwrap();
        assert!(ca[keys::TLS_CA].starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(ca[keys::TLS_CLIENT_KEY].contains("PRIVATE KEY"));
        let sans = render::tls_sans("10.0.0.1", Some("machine-0"));
        let (cert, key) = member_cert(&ca[keys::TLS_CA_KEY], &sans).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY"));
        assert!(member_cert("not a key", &sans).is_err());
    }
}
