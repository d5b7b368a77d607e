/*!
The machine side of an external CA ([`crate::core::certificates`]): this unit's request for its
member key, the CA bundle clients trust, and the client port's server certificate file. The
member key never leaves the machine; nothing here logs a PEM.
*/

use super::tls::TlsError;
use super::Machine;
use crate::core::certificates::{self, Facts};
use crate::paths;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PublicKeyData};

/// What this machine holds for the `certificates` relation (the relation's own data is read by
/// the caller).
pub fn local_facts(m: &dyn Machine) -> Facts {
    let public_key = m
        .read(paths::TLS_KEY)
        .and_then(|k| KeyPair::from_pem(&k).ok())
        .map(|k| k.subject_public_key_info());
    Facts {
        csr: m.read(paths::TLS_EXT_CSR),
        csr_names: m.read(paths::TLS_EXT_NAMES),
        public_key,
        served: m.read(paths::TLS_CERT),
        bundle: m.read(paths::TLS_CA_BUNDLE),
        ..Facts::default()
    }
}

/// Makes a CSR for the member key (CN = `unit` with `/` as `-`, the names `sans`) and keeps it
/// on the machine with the names it is for (the names last: the pair is current only then).
pub fn make_request(m: &dyn Machine, unit: &str, sans: &[String]) -> Result<(), TlsError> {
    let key = m.read(paths::TLS_KEY).ok_or(TlsError::NoPendingKey)?;
    let key = KeyPair::from_pem(&key)?;
    let mut params = CertificateParams::new(sans.to_vec())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, certificates::common_name(unit));
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key)?.pem()?;
    m.remove(paths::TLS_EXT_NAMES);
    m.write_private(paths::TLS_EXT_CSR, &csr, false)?;
    m.write_private(paths::TLS_EXT_NAMES, &sans.join(","), false)?;
    Ok(())
}

/// Writes the trust bundle clients verify servers with ([`crate::core::certificates::bundle`]:
/// the charm's client CA, an external CA and its chain, a CA being rotated in), root:etcd 0640
/// from creation.
pub fn write_trust_bundle(m: &dyn Machine, bundle: &str) -> Result<(), TlsError> {
    m.write_private(paths::TLS_CA_BUNDLE, bundle, true)?;
    Ok(())
}

/// Writes the client port's server certificate (leaf first, then its chain); etcd reads it on
/// the next handshake, with the member key that stays where it is.
pub fn serve(m: &dyn Machine, pem: &str) -> Result<(), TlsError> {
    m.write_private(paths::TLS_CERT, pem, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::certificates::{holds_key, requests};
    use crate::fakes::FakeMachine;

    #[test]
    fn the_request_is_for_the_member_key_and_files_get_their_mode() {
        let m = FakeMachine::new();
        let sans = vec!["10.0.0.1".to_string(), "machine-0".to_string()];
        assert!(
            make_request(&m, "etcd/0", &sans).is_err(),
            "no member key yet"
        );
        let key = KeyPair::generate().unwrap();
        m.write_private(paths::TLS_KEY, &key.serialize_pem(), true)
            .unwrap();
        make_request(&m, "etcd/0", &sans).unwrap();
        let facts = local_facts(&m);
        let csr = facts.csr.clone().unwrap();
        assert!(holds_key(&csr, &facts.public_key.clone().unwrap()));
        assert_eq!(facts.csr_names.as_deref(), Some("10.0.0.1,machine-0"));
        let parsed = rcgen::CertificateSigningRequestParams::from_pem(&csr).unwrap();
        let cn = parsed.params.distinguished_name.get(&DnType::CommonName);
        assert_eq!(cn, Some(&rcgen::DnValue::Utf8String("etcd-0".into())));
        assert!(!requests(&csr).contains("PRIVATE KEY"));
        write_trust_bundle(&m, "A\nB\n").unwrap();
        assert_eq!(m.read(paths::TLS_CA_BUNDLE).as_deref(), Some("A\nB\n"));
        serve(&m, "CERT\n").unwrap();
        assert_eq!(local_facts(&m).served.as_deref(), Some("CERT\n"));
    }
}
