//! Ids inside Redis keys.
//!
//! Tenant and user ids may hold any printable character, so a key that joins two of them must
//! escape them first: tenant `a` user `b/c` and tenant `a/b` user `c` must not share a key (they
//! would share connections and rate limits). Each id escapes `%`, `/`, `:`, `{` and `}` as `%XX`;
//! joined with `/`, the parts cannot run into each other, and no id ends a hash tag early (every
//! key of one tag stays in one cluster slot). Ids without these characters keep the keys they
//! had before escaping existed.

use std::borrow::Cow;

const RESERVED: &[char] = &['%', '/', ':', '{', '}'];

/// One id, escaped.
pub fn id(raw: &str) -> Cow<'_, str> {
    if !raw.contains(RESERVED) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for c in raw.chars() {
        if RESERVED.contains(&c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A tenant's user, as one unambiguous key part.
pub fn user(tenant_id: &str, user_id: &str) -> String {
    format!("{}/{}", id(tenant_id), id(user_id))
}

/// The tenant and user of a joined `user` part.
pub fn split_user(joined: &str) -> Option<(String, String)> {
    let (tenant, user) = joined.split_once('/')?;
    Some((unescape(tenant)?, unescape(user)?))
}

fn unescape(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at + 1..at + 3)?;
        out.push(char::from(u8::from_str_radix(code, 16).ok()?));
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_joined_user_splits_back_into_its_ids() {
        for (tenant, user) in [("acme", "alice"), ("X/b", "c"), ("X", "b/c"), ("%41{x}", "a:b%")] {
            assert_eq!(split_user(&super::user(tenant, user)), Some((tenant.to_string(), user.to_string())));
        }
    }

    #[test]
    fn plain_ids_are_unchanged() {
        assert_eq!(id("tenant-1"), "tenant-1");
        assert_eq!(user("acme", "alice"), "acme/alice");
    }

    #[test]
    fn ids_that_hold_the_separator_cannot_collide() {
        assert_ne!(user("X", "b/c"), user("X/b", "c"));
        assert_eq!(user("X", "b/c"), "X/b%2Fc");
        assert_eq!(user("X/b", "c"), "X%2Fb/c");
        // The escape character is escaped too, so an escaped-looking id stays distinct.
        assert_ne!(user("X", "b%2Fc"), user("X", "b/c"));
        assert_eq!(id("{t}:%"), "%7Bt%7D%3A%25");
    }

    proptest::proptest! {
        #[test]
        fn joining_is_injective(a in ".{0,6}", b in ".{0,6}", c in ".{0,6}", d in ".{0,6}") {
            proptest::prop_assume!((a.as_str(), b.as_str()) != (c.as_str(), d.as_str()));
            proptest::prop_assert_ne!(user(&a, &b), user(&c, &d));
        }
    }
}
