/*!
The cluster's own certificate authorities (rcgen, ECDSA P-256), on the effectful side of the
plan. Only the Juju leader signs; no unit's private key leaves its machine.

- The leader makes two CAs when TLS is on and leader data has none ([`create_ca`]): the
  **client CA** (members' client-port certificates, the units' and the consumers' client
  certificates) and the **peer CA** (members' peer certificates only: the peer port trusts
  nothing else, so no consumer certificate is accepted there). It also makes the consumers'
  client key and certificate. The certificates go to leader data; under Juju 3 the CA keys go to
  an application secret only the leader reads, and the consumers' key to another one granted to
  each `db`/`proxy` relation. Juju 2.9 has no secrets: the keys go to leader data (the
  documented fallback, see ARCHITECTURE.md).
- Each unit makes its member key and its own client key locally ([`make_request`]), keeps
  them owner-only on its machine, and publishes certificate signing requests in its peer
  data. The leader signs them ([`issue`]): a client-port certificate and a peer certificate
  for the member key (server and client auth: etcd uses them both ways), valid for the names
  the request asks for (DNS names and IP addresses only), and a client certificate with the
  common name `root` for the unit's key (the charm's identity once etcd auth is on).
- Each application related on `db` gets its own client key and certificate, CN = its name
  ([`issue_consumer`]), made by the leader: the consumer sends no request. The unit then writes its files ([`write_member_files`]).

A CA is rebuilt for signing from its key and its fixed subject: rcgen needs no certificate
parser for that, and the issuer name and key identifier match the published CA certificate.
*/

use super::host::HostError;
use super::{state, Machine};
use crate::core::observed::{keys, tls_files_record, CaKeys, Issued, TlsRequest};
use crate::core::{ca_rotation, rotation};
use crate::juju::Settings;
use crate::paths;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
    PKCS_ECDSA_P256_SHA256,
};

/// A certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen refused (a malformed key, request or name).
    #[error("cannot make a TLS certificate: {0}")]
    Cert(rcgen::Error),
    /// A request asks for a name that is neither a DNS name nor an IP address.
    #[error("the certificate request asks for a name other than a DNS name or IP address")]
    BadName,
    /// This unit's pending key is missing.
    #[error("this unit's pending TLS key is missing: it makes a new request on its next hook")]
    NoPendingKey,
    /// A file could not be written.
    #[error(transparent)]
    Host(#[from] HostError),
}

impl From<rcgen::Error> for TlsError {
    fn from(e: rcgen::Error) -> TlsError {
        TlsError::Cert(e)
    }
}

/// Sets the validity of a certificate made now for `days` ([`rotation::window`]).
fn set_validity(params: &mut CertificateParams, days: u64) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (before, after) = rotation::window(now, days);
    let at = |t| {
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    (params.not_before, params.not_after) = (at(before), at(after));
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

/// The client CA's common name.
const CLIENT_CA: &str = "etcd charm CA";
/// The peer CA's common name.
const PEER_CA: &str = "etcd charm peer CA";

/// A CA's parameters: a fixed subject, so the issuer can be rebuilt from the key alone.
fn ca_params(common: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(Some(common));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, rotation::CA_VALIDITY_DAYS);
    params
}

/// A leaf certificate's parameters, valid `days`.
fn leaf_params(
    common: Option<&str>,
    sans: Vec<SanType>,
    usages: Vec<ExtendedKeyUsagePurpose>,
    days: u64,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    params.distinguished_name = name(common);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages;
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, days);
    params
}

fn new_key() -> Result<KeyPair, rcgen::Error> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
}

/// A new pair of CAs and the consumers' client credentials.
pub struct NewCa {
    /// Leader data: [`keys::TLS_CA`], [`keys::TLS_PEER_CA`], [`keys::TLS_CLIENT_CERT`].
    pub public: Settings,
    /// The CA keys.
    pub keys: CaKeys,
    /// The consumers' client key (PEM).
    pub client_key: String,
}

/// Makes the client CA, the peer CA and the consumers' client certificate (valid `days`).
pub fn create_ca(days: u64) -> Result<NewCa, TlsError> {
    let (ca_key, peer_key) = (new_key()?, new_key()?);
    let params = ca_params(CLIENT_CA);
    let ca = params.self_signed(&ca_key)?;
    let peer_ca = ca_params(PEER_CA).self_signed(&peer_key)?;
    let ca_key_pem = ca_key.serialize_pem();
    let client_key = new_key()?;
    let client = shared_client(&Issuer::new(params, ca_key), &client_key, days)?;
    Ok(NewCa {
        public: Settings::from([
            (keys::TLS_CA.to_string(), ca.pem()),
            (keys::TLS_PEER_CA.to_string(), peer_ca.pem()),
            (keys::TLS_CLIENT_CERT.to_string(), client),
        ]),
        keys: CaKeys {
            ca_key: ca_key_pem,
            peer_ca_key: Some(peer_key.serialize_pem()),
            password_key: None,
        },
        client_key: client_key.serialize_pem(),
    })
}

/// A new pair of CAs (client, peer) for a rotation ([`ca_rotation`]): their certificates (PEM)
/// and keys.
pub fn new_cas() -> Result<(String, String, CaKeys), TlsError> {
    let (ca_key, peer_key) = (new_key()?, new_key()?);
    let ca = ca_params(CLIENT_CA).self_signed(&ca_key)?;
    let peer_ca = ca_params(PEER_CA).self_signed(&peer_key)?;
    let keys = CaKeys {
        ca_key: ca_key.serialize_pem(),
        peer_ca_key: Some(peer_key.serialize_pem()),
        password_key: None,
    };
    Ok((ca.pem(), peer_ca.pem(), keys))
}

/// Writes a trust bundle: the CA certificates `pems` in one file, each once ([`ca_rotation::bundle`]),
/// created with its final mode (0640 root:etcd).
pub fn write_trust_bundle(m: &dyn Machine, path: &str, pems: &[&str]) -> Result<(), TlsError> {
    m.write_private(path, &ca_rotation::bundle(pems), true)?;
    Ok(())
}

/// The consumers' shared client certificate for `key` (PEM), without a common name: `etcd
/// grpc-proxy` (3.4) refuses to start with a client certificate that has one (with etcd auth
/// on, the CN would be taken as the user name).
fn shared_client(
    issuer: &Issuer<'_, KeyPair>,
    key: &KeyPair,
    days: u64,
) -> Result<String, TlsError> {
    let usage = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(leaf_params(None, vec![], usage, days)
        .signed_by(key, issuer)?
        .pem())
}

/// The client CA as an issuer, from its key.
fn client_issuer(keys: &CaKeys) -> Result<Issuer<'static, KeyPair>, TlsError> {
    let ca_key = KeyPair::from_pem(&keys.ca_key)?;
    Ok(Issuer::new(ca_params(CLIENT_CA), ca_key))
}

/// The leader renews the consumers' shared client certificate for its existing `key` (PEM).
pub fn renew_shared_client(keys: &CaKeys, key: &str, days: u64) -> Result<String, TlsError> {
    shared_client(&client_issuer(keys)?, &KeyPair::from_pem(key)?, days)
}

/// The common name of the units' own client certificates: etcd's `root` user once auth is on.
pub const ROOT: &str = "root";

/// A `db` consumer's own client credentials.
pub struct ConsumerCert {
    /// The certificate (PEM), CN = the application's name.
    pub cert: String,
    /// Its private key (PEM).
    pub key: String,
}

impl std::fmt::Debug for ConsumerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsumerCert(<redacted>)")
    }
}

/// The leader makes `app`'s own client certificate (client CA, CN = `app`: its etcd user name
/// once auth is on), valid `days`, for its existing key (PEM: a renewal) or a new one.
pub fn issue_consumer(
    keys: &CaKeys,
    app: &str,
    days: u64,
    key: Option<&str>,
) -> Result<ConsumerCert, TlsError> {
    let ca = client_issuer(keys)?;
    let key = match key {
        Some(pem) => KeyPair::from_pem(pem)?,
        None => new_key()?,
    };
    let usage = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf_params(Some(app), vec![], usage, days).signed_by(&key, &ca)?;
    Ok(ConsumerCert {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// `app`'s etcd password (for clients that cannot present a certificate with a common name):
/// derived from the client CA's key, so the leader makes the same one at every hook without
/// storing it, and no one without that key can.
pub fn consumer_password(keys: &CaKeys, app: &str) -> String {
    // Past a CA rotation, from the key that derived them first ([`CaKeys::password_key`]).
    let seed = keys.password_key.as_deref().unwrap_or(&keys.ca_key);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seed.as_bytes());
    let tag = ring::hmac::sign(&key, format!("etcd user password: {app}").as_bytes());
    tag.as_ref()[..20]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The names a request asks for, if each is a DNS name or an IP address.
fn requested_names(csr: &CertificateSigningRequestParams) -> Result<Vec<SanType>, TlsError> {
    let names = &csr.params.subject_alt_names;
    let ok = |s: &SanType| matches!(s, SanType::DnsName(_) | SanType::IpAddress(_));
    match names.iter().all(ok) {
        true => Ok(names.clone()),
        false => Err(TlsError::BadName),
    }
}

/// The leader signs a unit's requests: the member's client-port certificate (client CA) and
/// peer certificate (peer CA; the client CA on a cluster from an older charm), and the unit's
/// client certificate (client CA), each valid `days`. `from` is what [`Issued::from`] records.
pub fn issue(keys: &CaKeys, req: &TlsRequest, from: String, days: u64) -> Result<Issued, TlsError> {
    let member = CertificateSigningRequestParams::from_pem(&req.csr)?;
    let client = CertificateSigningRequestParams::from_pem(&req.client_csr)?;
    let sans = requested_names(&member)?;
    let common = sans.iter().find_map(|s| match s {
        SanType::DnsName(n) => Some(n.to_string()),
        _ => None,
    });
    let ca = client_issuer(keys)?;
    let peer_key = keys
        .peer_ca_key
        .as_deref()
        .map(KeyPair::from_pem)
        .transpose()?;
    let peer = peer_key.map(|k| Issuer::new(ca_params(PEER_CA), k));
    let both = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let leaf = || {
        leaf_params(
            Some(common.as_deref().unwrap_or("etcd")),
            sans.clone(),
            both.clone(),
            days,
        )
    };
    let server = leaf().signed_by(&member.public_key, &ca)?;
    let peer = leaf().signed_by(&member.public_key, peer.as_ref().unwrap_or(&ca))?;
    let usage = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = leaf_params(Some(ROOT), vec![], usage, days).signed_by(&client.public_key, &ca)?;
    Ok(Issued {
        from,
        server: server.pem(),
        peer: peer.pem(),
        client: client.pem(),
    })
}

/// Makes this unit's member and client keys for `sans`, writes them owner-only to the machine
/// (each file created with its final mode) with the record of the request, and returns the
/// requests to publish. The files in use are untouched until the certificates come.
pub fn make_request(m: &dyn Machine, sans: &[String]) -> Result<TlsRequest, TlsError> {
    let (key, client_key) = (new_key()?, new_key()?);
    let mut params = CertificateParams::new(sans.to_vec())?;
    params.distinguished_name = name(None);
    let req = TlsRequest {
        csr: params.serialize_request(&key)?.pem()?,
        client_csr: CertificateParams::default()
            .serialize_request(&client_key)?
            .pem()?,
    };
    m.remove(paths::TLS_PENDING_RECORD);
    m.write_private(paths::TLS_PENDING_KEY, &key.serialize_pem(), false)?;
    m.write_private(
        paths::TLS_PENDING_CLIENT_KEY,
        &client_key.serialize_pem(),
        false,
    )?;
    m.write_private(paths::TLS_PENDING_RECORD, &req.record(sans), false)?;
    Ok(req)
}

/// The record of this unit's pending request, when its keys are there.
pub fn pending_record(m: &dyn Machine) -> Option<String> {
    let keys = [paths::TLS_PENDING_KEY, paths::TLS_PENDING_CLIENT_KEY];
    match keys.iter().all(|f| m.exists(f)) {
        true => m.read(paths::TLS_PENDING_RECORD),
        false => None,
    }
}

/// Writes this member's TLS files: the pending keys with the certificates the leader issued
/// for them, the client CAs and the peer CAs trusted now (two of each during a CA rotation,
/// [`ca_rotation::trusted_lists`]); then records what they were made from. etcd reads the
/// certificate files on each handshake, so a running member needs no restart for them (its CA
/// files, read only at start, restart it through its config, [`ca_rotation::config_line`]).
pub fn write_member_files(
    m: &dyn Machine,
    leader: &Settings,
    issued: &Issued,
    sans: &[String],
) -> Result<(), TlsError> {
    let (cas, peer_cas) = ca_rotation::trusted_lists(leader).unwrap_or_default();
    let (ca, peer_ca) = (ca_rotation::bundle(&cas), ca_rotation::bundle(&peer_cas));
    let key = m
        .read(paths::TLS_PENDING_KEY)
        .ok_or(TlsError::NoPendingKey)?;
    let client_key = m
        .read(paths::TLS_PENDING_CLIENT_KEY)
        .ok_or(TlsError::NoPendingKey)?;
    state::forget_tls(m);
    m.write_private(paths::TLS_KEY, &key, true)?;
    m.write_private(paths::TLS_CERT, &issued.server, true)?;
    m.write_private(paths::TLS_PEER_CERT, &issued.peer, true)?;
    write_trust_bundle(m, paths::TLS_CA, &cas)?;
    write_trust_bundle(m, paths::TLS_PEER_CA, &peer_cas)?;
    m.write_private(paths::TLS_CLIENT_KEY, &client_key, false)?;
    m.write_private(paths::TLS_CLIENT_CERT, &issued.client, false)?;
    state::record_tls(m, &tls_files_record(&ca, &peer_ca, issued, sans))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::render;
    use crate::fakes::FakeMachine;

    /// True if the certificate (PEM) names `common` (as its subject's common name: the
    /// issuer's is the CA's).
    fn names(pem: &str, common: &str) -> bool {
        let der = pem::parse(pem).unwrap();
        let der = der.contents();
        der.windows(common.len()).any(|w| w == common.as_bytes())
    }

    #[test]
    fn the_leader_signs_what_units_request() {
        let ca = create_ca(365).unwrap();
        assert!(ca.public[keys::TLS_CA].starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(ca.public[keys::TLS_CA], ca.public[keys::TLS_PEER_CA]);
        assert!(ca.client_key.contains("PRIVATE KEY"));
        assert_eq!(format!("{:?}", ca.keys), "CaKeys(<redacted>)");
        let m = FakeMachine::new();
        let sans = render::tls_sans("10.0.0.1", Some("machine-0"));
        let req = make_request(&m, &sans).unwrap();
        assert!(req.csr.contains("CERTIFICATE REQUEST"));
        assert!(!req.csr.contains("PRIVATE KEY"));
        assert_eq!(pending_record(&m), Some(req.record(&sans)));
        let issued = issue(&ca.keys, &req, "from".into(), 365).unwrap();
        assert!(issued.server.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(issued.server, issued.peer);
        let leader = ca.public.clone();
        write_member_files(&m, &leader, &issued, &sans).unwrap();
        assert_eq!(m.read(paths::TLS_KEY), m.read(paths::TLS_PENDING_KEY));
        assert_eq!(
            m.read(paths::TLS_PEER_CA),
            Some(leader[keys::TLS_PEER_CA].clone())
        );
        let want = tls_files_record(
            &leader[keys::TLS_CA],
            &leader[keys::TLS_PEER_CA],
            &issued,
            &sans,
        );
        assert_eq!(state::tls_record(&m), Some(want));
        // Garbage is refused, never signed.
        let bad = TlsRequest {
            csr: "not a request".into(),
            client_csr: req.client_csr.clone(),
        };
        assert!(issue(&ca.keys, &bad, String::new(), 365).is_err());
        // The unit's client certificate is the root identity; a consumer's carries its name.
        assert!(names(&issued.client, ROOT));
        let kube = issue_consumer(&ca.keys, "kube-apiserver", 365, None).unwrap();
        assert!(names(&kube.cert, "kube-apiserver") && !names(&kube.cert, ROOT));
        assert!(kube.key.contains("PRIVATE KEY"));
        assert_eq!(format!("{kube:?}"), "ConsumerCert(<redacted>)");
        // Renewals keep the key and take the validity asked for.
        let renewed = issue_consumer(&ca.keys, "kube-apiserver", 2, Some(&kube.key)).unwrap();
        assert_eq!(renewed.key, kube.key);
        let days = |pem: &str| {
            let (before, after) = rotation::validity(pem).unwrap();
            (after - before) / 86_400
        };
        assert_eq!((days(&kube.cert), days(&renewed.cert)), (366, 3));
        assert_eq!(days(&issued.server), 366);
        assert_eq!(days(&ca.public[keys::TLS_CA]), 3653);
        let shared = renew_shared_client(&ca.keys, &ca.client_key, 2).unwrap();
        assert_eq!(days(&shared), 3);
        assert!(!names(&shared, ROOT));
        let password = consumer_password(&ca.keys, "kube-apiserver");
        assert_eq!(password.len(), 40);
        assert_eq!(password, consumer_password(&ca.keys, "kube-apiserver"));
        assert_ne!(password, consumer_password(&ca.keys, "other"));
        let wrong = CaKeys {
            ca_key: "not a key".into(),
            peer_ca_key: None,
            password_key: None,
        };
        assert!(issue(&wrong, &req, String::new(), 365).is_err());
    }
}
