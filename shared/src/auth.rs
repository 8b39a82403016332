//! JWT verification (HS256 only) and minting of development tokens.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The identity a token carries. The token's user and tenant are the only identity the server trusts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    pub tenant_id: String,
    /// Display name shown to other users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Tenant-wide roles: `admin` (tenant administrator), `support_agent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl Claims {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.sub)
    }

    /// When the token stops holding (`exp`), also during a session.
    pub fn expires_at(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(self.exp, 0).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing token")]
    Missing,
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}

const MAX_ID_LEN: usize = 128;
const MAX_ROLE_LEN: usize = 64;

fn is_role_name(role: &str) -> bool {
    !role.is_empty()
        && role.len() <= MAX_ROLE_LEN
        && role.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Seconds of clock skew allowed between the token's issuer and this server.
pub const LEEWAY_SECS: u64 = 5;

/// Whether a token expiring at `expires_at` no longer holds (during a session: the same
/// allowance for skew as at the door).
pub fn has_expired(expires_at: chrono::DateTime<chrono::Utc>) -> bool {
    expires_at + chrono::Duration::seconds(LEEWAY_SECS as i64) <= chrono::Utc::now()
}

/// What a token must say besides its signature and times: `aud` and `iss`, when configured
/// (then required); unset, a token may carry any or none.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expected<'a> {
    pub audience: Option<&'a str>,
    pub issuer: Option<&'a str>,
}

pub fn verify(token: &str, secret: &str, expected: Expected<'_>) -> Result<Claims, AuthError> {
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    let mut required = vec!["exp", "sub"];
    match expected.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // jsonwebtoken refuses any `aud` when none is expected; unset means not checked.
        None => validation.validate_aud = false,
    }
    if let Some(issuer) = expected.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    let claims = decode::<Claims>(token, &DecodingKey::from_secret(secret.as_bytes()), &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid(e.to_string()),
        })?
        .claims;
    for (what, id) in [("sub", &claims.sub), ("tenant_id", &claims.tenant_id)]
        .into_iter()
        .chain(claims.name.iter().map(|n| ("name", n)))
    {
        if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
            return Err(AuthError::Invalid(format!("claim {what} must be 1-{MAX_ID_LEN} printable characters")));
        }
    }
    // Role names are words: a separator in one would make it look like several anywhere roles
    // are ever joined or split.
    if let Some(role) = claims.roles.iter().find(|r| !is_role_name(r)) {
        return Err(AuthError::Invalid(format!(
            "role {role:?} must be 1-{MAX_ROLE_LEN} letters, digits, '_', '-' or '.'"
        )));
    }
    Ok(claims)
}

/// Signs a token for `user` in `tenant`, valid for `ttl_secs`. Used by the dev-token command and tests.
pub fn mint(secret: &str, tenant_id: &str, user_id: &str, name: Option<&str>, ttl_secs: i64) -> String {
    mint_with_roles(secret, tenant_id, user_id, name, ttl_secs, &[])
}

pub fn mint_with_roles(
    secret: &str,
    tenant_id: &str,
    user_id: &str,
    name: Option<&str>,
    ttl_secs: i64,
    roles: &[&str],
) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: user_id.into(),
        tenant_id: tenant_id.into(),
        name: name.map(Into::into),
        exp: now + ttl_secs,
        iat: Some(now),
        nbf: None,
        roles: roles.iter().map(|r| r.to_string()).collect(),
    };
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("HS256 signing cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "unit-test-secret";

    #[test]
    fn accepts_a_minted_token() {
        let token = mint(SECRET, "t1", "alice", Some("Alice"), 60);
        let claims = verify(&token, SECRET, Expected::default()).unwrap();
        assert_eq!((claims.sub.as_str(), claims.tenant_id.as_str()), ("alice", "t1"));
        assert_eq!(claims.display_name(), "Alice");
    }

    #[test]
    fn rejects_expired_forged_and_garbage() {
        assert!(matches!(
            verify(&mint(SECRET, "t", "u", None, -60), SECRET, Expected::default()),
            Err(AuthError::Expired)
        ));
        assert!(matches!(
            verify(&mint("other", "t", "u", None, 60), SECRET, Expected::default()),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(verify("not.a.jwt", SECRET, Expected::default()), Err(AuthError::Invalid(_))));
        assert!(matches!(verify("", SECRET, Expected::default()), Err(AuthError::Missing)));
    }

    #[test]
    fn rejects_other_algorithms() {
        let claims = serde_json::json!({"sub": "u", "tenant_id": "t", "exp": chrono::Utc::now().timestamp() + 60});
        let hs512 =
            encode(&Header::new(Algorithm::HS512), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
        assert!(verify(&hs512, SECRET, Expected::default()).is_err());
        // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
        let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", base64url(&claims.to_string()));
        assert!(verify(&none, SECRET, Expected::default()).is_err());
    }

    #[test]
    fn rejects_roles_with_separators_and_bad_names() {
        let with_roles =
            |roles: &[&str]| verify(&mint_with_roles(SECRET, "t", "u", None, 60, roles), SECRET, Expected::default());
        assert_eq!(with_roles(&["admin", "support_agent"]).unwrap().roles, ["admin", "support_agent"]);
        for bad in ["x,admin", "admin ", "", "a\nb", "x;admin", &"r".repeat(65)] {
            assert!(matches!(with_roles(&[bad]), Err(AuthError::Invalid(_))), "{bad:?}");
        }
        assert!(verify(&mint(SECRET, "t", "u", Some("bad\u{7}name"), 60), SECRET, Expected::default()).is_err());
        assert!(verify(&mint(SECRET, "t", "u", Some(""), 60), SECRET, Expected::default()).is_err());
    }

    #[test]
    fn checks_audience_and_issuer_only_when_expected() {
        let now = chrono::Utc::now().timestamp();
        let token = |extra: serde_json::Value| {
            let mut claims = serde_json::json!({"sub": "u", "tenant_id": "t", "exp": now + 60});
            claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
        };
        let expected = Expected { audience: Some("chat"), issuer: Some("https://idp") };
        let right = token(serde_json::json!({"aud": "chat", "iss": "https://idp"}));
        assert!(verify(&right, SECRET, expected).is_ok());
        assert!(verify(&right, SECRET, Expected::default()).is_ok(), "unset: not checked");
        for wrong in [
            serde_json::json!({"aud": "other", "iss": "https://idp"}),
            serde_json::json!({"aud": "chat", "iss": "https://evil"}),
            serde_json::json!({"iss": "https://idp"}),
            serde_json::json!({"aud": "chat"}),
        ] {
            assert!(verify(&token(wrong.clone()), SECRET, expected).is_err(), "{wrong}");
        }
    }

    #[test]
    fn rejects_missing_tenant() {
        let claims = serde_json::json!({"sub": "u", "exp": chrono::Utc::now().timestamp() + 60});
        let token =
            encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap();
        assert!(verify(&token, SECRET, Expected::default()).is_err());
    }

    fn base64url(s: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = s.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}
