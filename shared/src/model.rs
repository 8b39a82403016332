//! The domain records, shared by the store (rows) and the protocol (wire shapes).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::service::validate::{
    MAX_ATTACHMENT_BYTES, MAX_FILE_NAME_CHARS, MAX_MIME_CHARS, MAX_SLOW_MODE_SECS, MAX_URL_CHARS,
};

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

text_enum!(RoomType { Direct = "direct", Group = "group", Support = "support", Broadcast = "broadcast" });
text_enum!(
    /// Ordered by power: admin > moderator > member.
    Role { Member = "member", Moderator = "moderator", Admin = "admin" }
);
text_enum!(MessageType { Text = "text", Image = "image", File = "file", System = "system" });
text_enum!(
    /// A report is `open` until a moderator dismisses it or deletes its message.
    ReportStatus { Open = "open", Dismissed = "dismissed", Deleted = "deleted" }
);

impl Role {
    pub fn rank(self) -> u8 {
        match self {
            Role::Member => 0,
            Role::Moderator => 1,
            Role::Admin => 2,
        }
    }
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Room {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub room_type: RoomType,
    pub is_private: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Frozen: only the room's admins post, edit, react and type.
    pub frozen: bool,
    /// A member's messages are at least this far apart (0: off); moderators and admins are exempt.
    #[schemars(range(min = 0, max = MAX_SLOW_MODE_SECS))]
    pub slow_mode_seconds: i32,
}

/// A pinned message, as it is now (edits show).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Pin {
    pub message: Message,
    pub pinned_by: String,
    pub pinned_at: DateTime<Utc>,
}

/// A user the caller blocked.
#[derive(Clone, Debug, Serialize, PartialEq, JsonSchema)]
pub struct BlockedUser {
    pub user_id: String,
    pub blocked_at: DateTime<Utc>,
}

/// A member's report of a message, seen by the room's moderators and admins and tenant admins.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    pub id: Uuid,
    pub room_id: Uuid,
    pub message_id: Uuid,
    pub reporter: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub status: ReportStatus,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The message as it is now; absent once it has been archived.
    pub message: Option<Message>,
}

#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Participant {
    pub user_id: String,
    pub display_name: Option<String>,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Attachment {
    /// A link to the file, stored elsewhere.
    #[schemars(length(max = MAX_URL_CHARS), pattern(r"^https?://[^\s]+$"))]
    pub url: String,
    #[schemars(length(min = 1, max = MAX_FILE_NAME_CHARS))]
    pub name: String,
    /// Bytes.
    #[schemars(range(min = 0, max = MAX_ATTACHMENT_BYTES))]
    pub size: i64,
    #[schemars(length(max = MAX_MIME_CHARS), pattern(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$"))]
    pub mime_type: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Message {
    pub id: Uuid,
    /// The cursor position of the message in its room's history. Within a room, messages
    /// commit in `seq` order, so history `after` a seen `seq` holds everything after it.
    pub seq: i64,
    /// The message's number in its room: 1, 2, 3, ... without gaps, so a client that sees
    /// `room_seq` jump knows it missed messages (0 for messages archived before it existed).
    #[serde(default)]
    pub room_seq: i64,
    pub room_id: Uuid,
    pub sender_id: String,
    pub sender_name: Option<String>,
    pub message_type: MessageType,
    pub content: String,
    pub attachments: Vec<Attachment>,
    pub mentions: Vec<String>,
    pub reply_to: Option<Uuid>,
    pub reply_count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deleted_by: Option<String>,
    /// Counts per emoji and who reacted, in first-reaction order.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// Present, and true, for a reader who blocked the sender: a client hides it or shows it folded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sender_blocked: bool,
}

impl Message {
    /// What a member sees of a deleted message: that it was deleted, not what it said.
    pub fn redacted(mut self) -> Self {
        if self.deleted_at.is_some() {
            self.content.clear();
            self.attachments.clear();
            self.mentions.clear();
        }
        self
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Reaction {
    pub emoji: String,
    pub count: usize,
    pub users: Vec<String>,
}

/// Counts stop here: a member far behind costs a bounded count, and sees "1000+".
pub const UNREAD_CAP: i32 = 1000;

/// A member's unread state in one room, counted from their read position.
#[derive(Clone, Debug, Serialize, PartialEq, JsonSchema)]
pub struct Unread {
    pub room_id: Uuid,
    pub unread_count: i32,
    pub mention_count: i32,
    /// A count reached `UNREAD_CAP`: there are at least that many, maybe more.
    pub capped: bool,
    /// The room's newest message when counted: a client adds one for each later message only
    /// (a `new_message` that arrives after these counts but was in them counts once), and
    /// catches up from there after a reconnect.
    #[serde(flatten)]
    pub head: RoomHead,
}

/// A room's newest message: its `seq` and `room_seq` (both 0 when it has none).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, JsonSchema)]
pub struct RoomHead {
    pub last_seq: i64,
    pub last_room_seq: i64,
}

impl Unread {
    /// From counts taken with a limit of one more than the cap.
    pub fn counted(room_id: Uuid, unread: i32, mentions: i32, head: RoomHead) -> Self {
        Self {
            room_id,
            unread_count: unread.min(UNREAD_CAP),
            mention_count: mentions.min(UNREAD_CAP),
            capped: unread > UNREAD_CAP || mentions > UNREAD_CAP,
            head,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.unread_count == 0 && self.mention_count == 0
    }
}

/// One earlier version of an edited message.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct Edit {
    pub version: i32,
    pub content: String,
    pub edited_by: String,
    pub edited_at: DateTime<Utc>,
}

/// Who got or read a message, and when.
#[derive(Clone, Debug, Serialize, PartialEq, JsonSchema)]
pub struct Receipt {
    pub user_id: String,
    pub at: DateTime<Utc>,
}

/// A room as one user sees it in a listing.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct RoomSummary {
    pub room: Room,
    /// None for a support agent looking at a support room they have not joined.
    pub role: Option<Role>,
    /// `unread_count`, `mention_count` and `capped` (with the room's id again).
    #[serde(flatten)]
    pub unread: Unread,
    pub participant_count: i64,
}

/// Who is calling: the identity recorded for a connection at `$connect`, taken from the JWT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Empty for HTTP callers.
    pub connection_id: String,
    pub tenant_id: String,
    pub user_id: String,
    pub display_name: String,
    /// Tenant-wide roles from the token.
    pub roles: Vec<String>,
}

pub const TENANT_ADMIN: &str = "admin";
pub const SUPPORT_AGENT: &str = "support_agent";

impl Caller {
    pub fn from_claims(claims: &crate::auth::Claims, connection_id: &str) -> Self {
        Self {
            connection_id: connection_id.to_string(),
            tenant_id: claims.tenant_id.clone(),
            user_id: claims.sub.clone(),
            display_name: claims.display_name().to_string(),
            roles: claims.roles.clone(),
        }
    }

    pub fn is_tenant_admin(&self) -> bool {
        self.roles.iter().any(|r| r == TENANT_ADMIN)
    }

    pub fn is_support_agent(&self) -> bool {
        self.roles.iter().any(|r| r == SUPPORT_AGENT)
    }
}
