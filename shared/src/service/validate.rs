//! Checks of client input that need no database: lengths, ids, attachments, emoji.

use super::{ChatError, Result};
use crate::model::{Attachment, MessageType};
use crate::protocol::SendMessage;

pub const MAX_CONTENT_CHARS: usize = 10_000;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 1_000;
pub const MAX_INITIAL_MEMBERS: usize = 1_000;
pub const MAX_USERS_PER_FRAME: usize = 100;
pub const MAX_MENTIONS: usize = 50;
pub const MAX_ID_CHARS: usize = 128;
pub const MAX_ATTACHMENTS: usize = 10;
/// Attachments are links to files stored elsewhere; this bounds what a client may claim.
pub const MAX_ATTACHMENT_BYTES: i64 = 100 * 1024 * 1024;
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_FILE_NAME_CHARS: usize = 255;
pub const MAX_MIME_CHARS: usize = 127;
pub const MAX_EMOJI_CHARS: usize = 16;
pub const MAX_MUTE_SECS: u64 = 30 * 24 * 3600;
/// Slow mode's longest interval: an hour.
pub const MAX_SLOW_MODE_SECS: i32 = 3600;
/// Pinned messages a room holds at most.
pub const MAX_PINS: i64 = 50;
/// Users one user blocks at most.
pub const MAX_BLOCKS: i64 = 1_000;
/// A report's reason.
pub const MAX_REASON_CHARS: usize = 500;
/// Reports one listing returns at most.
pub const MAX_REPORTS_PAGE: i64 = 100;

pub fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(ChatError::Invalid(format!("{field} is longer than {max} characters")));
    }
    Ok(())
}

pub fn check_id(field: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > MAX_ID_CHARS || value.chars().any(char::is_control) {
        return Err(ChatError::Invalid(format!("{field} must be 1-{MAX_ID_CHARS} printable characters")));
    }
    Ok(())
}

pub fn check_ids(field: &str, values: &[String], max: usize) -> Result<()> {
    if values.len() > max {
        return Err(ChatError::Invalid(format!("at most {max} {field}s at a time")));
    }
    values.iter().try_for_each(|v| check_id(field, v))
}

/// Text content: not blank, not too long.
pub fn check_text(content: &str) -> Result<()> {
    check_len("content", content, MAX_CONTENT_CHARS)?;
    if content.trim().is_empty() {
        return Err(ChatError::Invalid("content must not be empty".into()));
    }
    Ok(())
}

pub fn check_attachment(a: &Attachment) -> Result<()> {
    let scheme_ok = a.url.starts_with("https://") || a.url.starts_with("http://");
    if !scheme_ok || a.url.len() > MAX_URL_CHARS || a.url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        let reason = format!("attachment url must be an http(s) URL of at most {MAX_URL_CHARS} characters");
        return Err(ChatError::Invalid(reason));
    }
    if a.name.trim().is_empty() || a.name.chars().count() > MAX_FILE_NAME_CHARS {
        return Err(ChatError::Invalid(format!("attachment name must be 1-{MAX_FILE_NAME_CHARS} characters")));
    }
    if !(0..=MAX_ATTACHMENT_BYTES).contains(&a.size) {
        return Err(ChatError::Invalid(format!("attachment size must be 0-{MAX_ATTACHMENT_BYTES} bytes")));
    }
    let mime_ok = a.mime_type.len() <= MAX_MIME_CHARS
        && a.mime_type.split_once('/').is_some_and(|(t, s)| {
            let token =
                |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c));
            token(t) && token(s)
        });
    if !mime_ok {
        return Err(ChatError::Invalid("attachment mime_type must look like type/subtype".into()));
    }
    Ok(())
}

pub fn check_message(req: &SendMessage) -> Result<()> {
    match req.message_type {
        MessageType::Text => check_text(&req.content)?,
        MessageType::Image | MessageType::File => {
            check_len("content", &req.content, MAX_CONTENT_CHARS)?;
            if req.attachments.is_empty() {
                return Err(ChatError::Invalid("image and file messages need at least one attachment".into()));
            }
        }
        MessageType::System => {
            return Err(ChatError::PermissionDenied("system messages are sent by the server only".into()))
        }
    }
    if req.attachments.len() > MAX_ATTACHMENTS {
        return Err(ChatError::Invalid(format!("at most {MAX_ATTACHMENTS} attachments")));
    }
    for attachment in &req.attachments {
        check_attachment(attachment)?;
        if req.message_type == MessageType::Image && !attachment.mime_type.starts_with("image/") {
            return Err(ChatError::Invalid("image messages carry image/* attachments".into()));
        }
    }
    check_ids("mention", &req.mentions, MAX_MENTIONS)?;
    if let Some(id) = &req.client_msg_id {
        check_id("client_msg_id", id)?;
    }
    Ok(())
}

/// One emoji (including sequences joined with ZWJ, skin tones and keycaps), not words.
pub fn check_emoji(emoji: &str) -> Result<()> {
    let count = emoji.chars().count();
    let ok = (1..=MAX_EMOJI_CHARS).contains(&count)
        && !emoji.chars().any(|c| c.is_whitespace() || c.is_control())
        && !emoji.is_ascii()
        && emoji.chars().all(|c| !c.is_ascii() || c.is_ascii_digit() || c == '#' || c == '*');
    if !ok {
        return Err(ChatError::Invalid("emoji must be a single emoji".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn message(kind: MessageType, content: &str, attachments: Vec<Attachment>) -> SendMessage {
        SendMessage {
            room_id: Uuid::nil(),
            content: content.into(),
            message_type: kind,
            attachments,
            mentions: vec![],
            reply_to: None,
            client_msg_id: None,
        }
    }

    fn attachment(url: &str, mime: &str, size: i64) -> Attachment {
        Attachment { url: url.into(), name: "a.png".into(), size, mime_type: mime.into() }
    }

    #[test]
    fn message_validation() {
        assert!(check_message(&message(MessageType::Text, "hi", vec![])).is_ok());
        assert_eq!(check_message(&message(MessageType::Text, "  ", vec![])).unwrap_err().code(), "validation_error");
        assert_eq!(check_message(&message(MessageType::Image, "", vec![])).unwrap_err().code(), "validation_error");
        assert_eq!(check_message(&message(MessageType::System, "x", vec![])).unwrap_err().code(), "permission_denied");
        let long = "x".repeat(MAX_CONTENT_CHARS + 1);
        assert!(check_message(&message(MessageType::Text, &long, vec![])).is_err());
        let png = attachment("https://cdn.example.com/a.png", "image/png", 10);
        assert!(check_message(&message(MessageType::Image, "", vec![png.clone()])).is_ok());
        let pdf = attachment("https://cdn.example.com/a.pdf", "application/pdf", 10);
        assert!(check_message(&message(MessageType::Image, "", vec![pdf.clone()])).is_err());
        assert!(check_message(&message(MessageType::File, "", vec![pdf])).is_ok());
    }

    #[test]
    fn attachment_validation() {
        assert!(check_attachment(&attachment("javascript:alert(1)", "image/png", 1)).is_err());
        assert!(check_attachment(&attachment("https://x/a b", "image/png", 1)).is_err());
        assert!(check_attachment(&attachment("https://x/a", "png", 1)).is_err());
        assert!(check_attachment(&attachment("https://x/a", "image/png", -1)).is_err());
        assert!(check_attachment(&attachment("https://x/a", "image/png", MAX_ATTACHMENT_BYTES + 1)).is_err());
    }

    #[test]
    fn emoji_validation() {
        for ok in ["👍", "❤️", "👨‍👩‍👧", "👍🏽", "1️⃣", "🇫🇷"] {
            assert!(check_emoji(ok).is_ok(), "{ok}");
        }
        for bad in ["", "like", ":+1:", "👍 👍", "<b>", "a👍"] {
            assert!(check_emoji(bad).is_err(), "{bad}");
        }
    }
}
