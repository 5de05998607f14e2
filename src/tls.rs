//! The TLS listener's certificate: read from PEM files at start-up and again on every reload
//! (SIGHUP or `POST /api/v1/reload`), so a renewed certificate is served without a restart.
//! New connections get the certificate of the moment; open ones keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

/// Why a certificate or key could not be used; the running certificate stays.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

/// The certificate the listener serves, swapped whole on reload.
#[derive(Debug)]
pub struct ReloadableCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Reads the certificate chain and key files (PEM).
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<ReloadableCert, TlsError> {
        let key = read(cert_file, key_file)?;
        Ok(ReloadableCert {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// Reads the files again; on an error the certificate served so far stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = read(&self.cert_file, &self.key_file)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(())
    }

    /// A rustls server configuration serving this certificate (HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> rustls::ServerConfig {
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn read(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let err = |path: &Path, message: String| TlsError::File {
        path: path.to_path_buf(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| err(cert_file, format!("cannot read the certificate file: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(cert_file, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(err(cert_file, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| err(key_file, format!("cannot read a PEM private key: {e}")))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| err(key_file, format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| {
        err(
            key_file,
            format!("the key does not belong to the certificate: {e}"),
        )
    })?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        let (cert, key) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert, c.cert.pem()).unwrap();
        std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn loads_reloads_and_keeps_the_old_certificate_on_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), "one.test");
        let tls = ReloadableCert::load(&cert, &key).unwrap();
        let first = tls.current.read().unwrap().cert[0].clone();
        // A renewed certificate at the same paths is served after a reload.
        let (c2, k2) = write_pair(dir.path(), "two.test");
        std::fs::copy(&c2, &cert).unwrap();
        std::fs::copy(&k2, &key).unwrap();
        tls.reload().unwrap();
        let second = tls.current.read().unwrap().cert[0].clone();
        assert_ne!(first, second);
        // A broken file is refused and the running certificate stays.
        std::fs::write(&cert, "not pem").unwrap();
        let e = tls.reload().unwrap_err().to_string();
        assert!(e.contains("certificate"), "{e}");
        assert_eq!(tls.current.read().unwrap().cert[0], second);
        // A key of another certificate is refused.
        std::fs::copy(&c2, &cert).unwrap();
        let (_, other_key) = write_pair(dir.path(), "three.test");
        let e = ReloadableCert::load(&cert, &other_key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not belong"), "{e}");
    }
}
