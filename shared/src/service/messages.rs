//! Messages: sending (with mentions and delivery positions), system messages, edits, deletions,
//! reactions, threads, receipts, reads, typing and history.

use std::collections::HashMap;

use serde_json::json;
use tracing::Span;
use uuid::Uuid;

use super::blocks::unblocked;
use super::moderation::thawed;
use super::validate;
use super::{Answer, Audience, ChatError, ChatService, Request, Result, Skip};
use crate::cache::Page;
use crate::channels::Channel;
use crate::fanout::{Payload, Payloads};
use crate::model::{Caller, Edit, Message, MessageType, Receipt, Role, RoomType};
use crate::protocol::{Cursor, HistoryRequest, SendMessage, ServerFrame, DEFAULT_HISTORY_PAGE, MAX_HISTORY_PAGE};
use crate::receipts::Position;
use crate::store::{Edited, Inserted, Membership, NewMessage, ReactionChange, ReadPosition, RoomVersion};
use crate::webhooks::Event;

/// The sender of system messages (joins, leaves, role changes).
pub const SYSTEM_USER: &str = "system";

/// Earlier versions one message keeps: each edit stores one, and the edit history and the export
/// carry them all.
const MAX_EDIT_VERSIONS: i64 = 100;

fn page_limit(limit: Option<u32>) -> u32 {
    limit.unwrap_or(DEFAULT_HISTORY_PAGE).clamp(1, MAX_HISTORY_PAGE)
}

/// A muted member changes nothing in the room until the mute ends: no messages, edits or reactions.
fn unmuted(membership: &Membership) -> Result<()> {
    match membership.muted_until.filter(|until| *until > chrono::Utc::now()) {
        Some(until) => {
            Err(ChatError::PermissionDenied(format!("you are muted in this room until {}", until.to_rfc3339())))
        }
        None => Ok(()),
    }
}

/// Where a message read by id is kept. Archived messages are read-only, and their record
/// holds their earlier versions.
enum Kept {
    Postgres,
    Archive(Vec<Edit>),
}

/// A typing indicator's change.
pub(super) enum Typing {
    Start,
    Stop,
}

/// A message just stored, with whom it mentions and, when the insert listed them, the room's
/// members (else the fan-out looks them up).
struct Stored<'m> {
    message: &'m Message,
    mentioned: Vec<String>,
    members: Option<Vec<String>>,
}

impl ChatService {
    /// A message in Postgres (one that can still change) and the caller's membership of its room.
    pub(super) async fn message_for(&self, caller: &Caller, message_id: Uuid) -> Result<(Message, Membership)> {
        let message = self.store.message(&caller.tenant_id, message_id).await?.ok_or(ChatError::NotFound("message"))?;
        let membership = self.member(caller, message.room_id).await?;
        Ok((message, membership))
    }

    /// A message to read, in Postgres or archived, and the caller's membership of its room.
    async fn kept_message(&self, caller: &Caller, message_id: Uuid) -> Result<(Message, Membership, Kept)> {
        let (message, kept) = match self.store.message(&caller.tenant_id, message_id).await? {
            Some(message) => (message, Kept::Postgres),
            None => {
                // Boxed, as history pages: the archive behind it makes the future too deep to lay out inline.
                let archived = Box::pin(self.archived_message(&caller.tenant_id, message_id)).await?;
                let (message, versions) = archived.ok_or(ChatError::NotFound("message"))?;
                (message, Kept::Archive(versions))
            }
        };
        let membership = self.member(caller, message.room_id).await?;
        Ok((message, membership, kept))
    }

    /// Stores the message; its fan-out follows the reply (`Answer::then`).
    pub(super) async fn send_message<'a>(&'a self, request: Request<'_, 'a>, req: SendMessage) -> Result<Answer<'a>> {
        let Request { caller, endpoint } = request;
        Span::current().record("room_id", req.room_id.to_string());
        validate::check_message(&req)?;
        let membership = self.member(caller, req.room_id).await?;
        unmuted(&membership)?;
        if membership.role != Role::Admin && membership.room_type == RoomType::Broadcast {
            return Err(ChatError::PermissionDenied("only admins post in a broadcast room".into()));
        }
        thawed(&membership)?;
        unblocked(&membership)?;
        self.slow_mode(caller, &req, &membership).await?;
        let new = NewMessage {
            room_id: req.room_id,
            message_type: req.message_type,
            content: &req.content,
            attachments: serde_json::to_value(&req.attachments).expect("attachments serialize"),
            mentions: &req.mentions,
            reply_to: req.reply_to,
            client_msg_id: req.client_msg_id.as_deref(),
            members_up_to: self.config.fanout_member_list_max,
        };
        let (message, mentioned, members, duplicate) = match self.store.insert_message(caller, new).await? {
            Inserted::New { message, mentioned, members } => (message, mentioned, members, false),
            Inserted::Duplicate(message) => {
                if self.receipts.was_fanned_out(&caller.tenant_id, message.id).await {
                    return Ok(Some(ServerFrame::MessageSent { message, duplicate: true }).into());
                }
                // The first attempt's fan-out did not run to the end (it failed after the commit,
                // or was cut short): this one makes up for it. Recipients drop a message id they have.
                let mut mentioned =
                    self.store.members_among(&caller.tenant_id, message.room_id, &message.mentions).await?;
                mentioned.retain(|user| *user != caller.user_id);
                (message, mentioned, None, true)
            }
            Inserted::ParentMissing => return Err(ChatError::NotFound("reply_to message")),
        };
        let reply = Some(ServerFrame::MessageSent { message: message.clone(), duplicate });
        let sender = caller.clone();
        let blocked_by = membership.blocked_by;
        let then = Box::pin(async move {
            let stored = Stored { message: &message, mentioned, members };
            self.distribute(endpoint, &sender, stored, &blocked_by).await
        });
        Ok(Answer { reply, then: Some(then) })
    }

    /// Everything that follows a stored message: the cache, the fan-out (one payload for every
    /// member's connections but the sending one, flagged for those who blocked the sender), the
    /// channels, mention notifications and the members' delivery positions.
    async fn distribute(
        &self,
        endpoint: Option<&str>,
        sender: &Caller,
        stored: Stored<'_>,
        blocked_by: &[String],
    ) -> Result<()> {
        let Stored { message, mut mentioned, members } = stored;
        let room_id = message.room_id;
        // Before any post: a member who has the message and asks for history finds it cached.
        // A reply changes its parent's reply count, so the cached page is stale as a whole.
        match message.reply_to {
            Some(_) => self.uncache(room_id).await,
            None => {
                if let Err(err) = self.cache.append(message).await {
                    tracing::warn!(error = %err, "recent-message cache not updated");
                }
            }
        }
        let frame = ServerFrame::NewMessage { message: message.clone() };
        mentioned.retain(|user| !blocked_by.contains(user));
        let mention_channels: Vec<Channel> = mentioned.into_iter().map(Channel::User).collect();
        let mention = ServerFrame::Mention { room_id, message: message.clone() };
        let skip = Skip::Connection(&sender.connection_id);
        let room_channel = [Channel::Room(room_id)];
        // System messages do not count as unread, nor move delivery positions.
        let position = (message.message_type != MessageType::System).then_some((room_id, message.seq));
        let payload: Payload = frame.to_json().into();
        let flagged = (!blocked_by.is_empty()).then(|| {
            let message = Message { sender_blocked: true, ..message.clone() };
            Payload::from(ServerFrame::NewMessage { message }.to_json())
        });
        let payloads = Payloads { all: &payload, instead: flagged.as_ref().map(|flagged| (blocked_by, flagged)) };
        let tenant_id = &sender.tenant_id;
        let audience = members.as_deref().map_or(Audience::Room(room_id), Audience::Users);
        // The tenant's backend hears of it too: once per message (a retried fan-out's event has
        // the same id), and not of system messages.
        let webhook = async {
            if position.is_some() {
                let data = json!({ "room_id": room_id, "message": message });
                self.webhooks.emit(tenant_id, Event::MessageNew, message.id, data).await
            }
        };
        let (offline, (), (), ()) = tokio::join!(
            self.fanout.to(endpoint, tenant_id, audience, payloads, skip, position),
            self.publish(tenant_id, &room_channel, &frame),
            self.publish(tenant_id, &mention_channels, &mention),
            webhook,
        );
        let offline = offline?;
        if message.client_msg_id.is_some() {
            self.receipts.fanned_out(tenant_id, message.id).await?;
        }
        self.gone_offline(endpoint, tenant_id, offline).await
    }

    /// Posts a system message (joins, leaves, role changes) in the room, to everyone but the
    /// connection whose action it records (which has its reply).
    pub(super) async fn system_message(&self, request: Request<'_, '_>, room_id: Uuid, content: String) -> Result<()> {
        let Request { caller: cause, endpoint } = request;
        let system = Caller {
            connection_id: cause.connection_id.clone(),
            tenant_id: cause.tenant_id.clone(),
            user_id: SYSTEM_USER.to_string(),
            display_name: "System".to_string(),
            roles: Vec::new(),
        };
        let new = NewMessage {
            room_id,
            message_type: MessageType::System,
            content: &content,
            attachments: serde_json::json!([]),
            mentions: &[],
            reply_to: None,
            client_msg_id: None,
            members_up_to: self.config.fanout_member_list_max,
        };
        if let Inserted::New { message, mentioned, members } = self.store.insert_message(&system, new).await? {
            // Committed: as any fan-out after a change, a failure is logged, not the request's.
            let stored = Stored { message: &message, mentioned, members };
            if let Err(err) = self.distribute(endpoint, &system, stored, &[]).await {
                tracing::warn!(error = %err, "fan-out of a system message failed");
            }
        }
        Ok(())
    }

    pub(super) async fn edit_message(
        &self,
        request: Request<'_, '_>,
        message_id: Uuid,
        content: String,
    ) -> Result<ServerFrame> {
        let Request { caller, endpoint } = request;
        let (message, membership) = self.message_for(caller, message_id).await?;
        unmuted(&membership)?;
        thawed(&membership)?;
        if message.sender_id != caller.user_id {
            return Err(ChatError::PermissionDenied("you can only edit your own messages".into()));
        }
        if message.deleted_at.is_some() {
            return Err(ChatError::PermissionDenied("a deleted message cannot be edited".into()));
        }
        if message.message_type == MessageType::Text {
            validate::check_text(&content)?;
        } else {
            validate::check_len("content", &content, validate::MAX_CONTENT_CHARS)?;
        }
        let edited = match self.store.edit_message(caller, message_id, &content, MAX_EDIT_VERSIONS).await? {
            Edited::Done(edited) => *edited,
            Edited::Full => {
                let reason = format!("a message keeps at most {MAX_EDIT_VERSIONS} earlier versions");
                return Err(ChatError::PermissionDenied(reason));
            }
            Edited::Gone => return Err(ChatError::NotFound("message")),
        };
        self.uncache(edited.room_id).await;
        let edited = self.present(caller, &membership, vec![edited]).await?.remove(0);
        let frame = ServerFrame::MessageEdited { message: edited };
        self.fan_out_room(
            endpoint,
            &caller.tenant_id,
            message.room_id,
            &frame,
            Skip::Connection(&caller.connection_id),
            &[Channel::Room(message.room_id)],
        )
        .await;
        Ok(frame)
    }

    pub(super) async fn delete_message(&self, request: Request<'_, '_>, message_id: Uuid) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        let (message, membership) = self.message_for(caller, message_id).await?;
        self.may_delete(caller, &message, &membership).await?;
        self.remove_message(request, message_id).await
    }

    /// Others' messages: as with removing, muting and banning, only from someone of lower rank;
    /// a room's admins delete any message in it.
    async fn may_delete(&self, caller: &Caller, message: &Message, membership: &Membership) -> Result<()> {
        if message.sender_id != caller.user_id && membership.role != Role::Admin {
            if membership.role.rank() < Role::Moderator.rank() {
                return Err(ChatError::PermissionDenied("only moderators and admins delete others' messages".into()));
            }
            let author = self.store.membership(&caller.tenant_id, message.room_id, &message.sender_id).await?;
            let author = author.map_or(Role::Member, |m| m.role);
            if author.rank() >= membership.role.rank() {
                return Err(ChatError::PermissionDenied(format!(
                    "only admins delete a {}'s messages",
                    author.as_str()
                )));
            }
        }
        Ok(())
    }

    /// Deletes a message its deleter may delete, tells the room, and closes its open reports.
    pub(super) async fn remove_message(&self, request: Request<'_, '_>, message_id: Uuid) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        let deleted = self.store.delete_message(caller, message_id).await?.ok_or(ChatError::NotFound("message"))?;
        self.uncache(deleted.room_id).await;
        // Members who had it unread count one less: they know from their read position.
        let frame = ServerFrame::MessageDeleted {
            room_id: deleted.room_id,
            message_id,
            deleted_by: caller.user_id.clone(),
            deleted_at: deleted.deleted_at.unwrap_or_else(chrono::Utc::now),
        };
        self.tell_room(request, deleted.room_id, &frame).await;
        // A deleted message is no longer pinned.
        if self.store.unpin(&caller.tenant_id, message_id).await? {
            self.unpinned(request, deleted.room_id, message_id).await;
        }
        self.close_reports(request, deleted.room_id, message_id).await?;
        Ok(frame)
    }

    pub(super) async fn edit_history(&self, caller: &Caller, message_id: Uuid) -> Result<ServerFrame> {
        let (message, membership, kept) = self.kept_message(caller, message_id).await?;
        let visible = message.deleted_at.is_none() || Self::sees_deleted(caller, &membership);
        let versions = match kept {
            _ if !visible => Vec::new(),
            Kept::Postgres => self.store.edit_history(&caller.tenant_id, message_id).await?,
            Kept::Archive(versions) => versions,
        };
        let current = self.read_by(caller, &membership, vec![message]).await?.remove(0);
        Ok(ServerFrame::EditHistory { message_id, current, versions })
    }

    pub(super) async fn react(
        &self,
        request: Request<'_, '_>,
        message_id: Uuid,
        emoji: String,
        change: ReactionChange,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        validate::check_emoji(&emoji)?;
        let (message, membership) = self.message_for(caller, message_id).await?;
        unmuted(&membership)?;
        thawed(&membership)?;
        if message.deleted_at.is_some() {
            return Err(ChatError::PermissionDenied("a deleted message cannot get reactions".into()));
        }
        let changed = self
            .store
            .set_reaction(&caller.tenant_id, message_id, &caller.user_id, &emoji, change)
            .await?
            .ok_or(ChatError::NotFound("message"))?;
        let reactions =
            self.store.reactions(&caller.tenant_id, &[message_id]).await?.remove(&message_id).unwrap_or_default();
        let (room_id, user_id) = (message.room_id, caller.user_id.clone());
        let frame = match change {
            ReactionChange::Add => ServerFrame::ReactionAdded { room_id, message_id, user_id, emoji, reactions },
            ReactionChange::Remove => ServerFrame::ReactionRemoved { room_id, message_id, user_id, emoji, reactions },
        };
        if changed {
            self.uncache(room_id).await;
            self.tell_room(request, room_id, &frame).await;
        }
        Ok(frame)
    }

    pub(super) async fn thread(
        &self,
        caller: &Caller,
        message_id: Uuid,
        after: Option<Cursor>,
        limit: Option<u32>,
    ) -> Result<ServerFrame> {
        let (parent, membership, _) = self.kept_message(caller, message_id).await?;
        let limit = page_limit(limit);
        let (mut replies, more) = self.store.thread(&caller.tenant_id, message_id, after, limit).await?;
        // Replies may be archived too (with or without their parent): the first page of each, by
        // seq. Postgres is read first: a reply archived in between is found twice (kept once), never missed.
        let after_seq = after.map_or(0, |c| c.0);
        replies.extend(
            Box::pin(self.archived_replies(&caller.tenant_id, message_id, after_seq, i64::from(limit) + 1)).await?,
        );
        replies.sort_by_key(|m| m.seq);
        replies.dedup_by_key(|m| m.seq);
        let has_more = more || replies.len() > limit as usize;
        replies.truncate(limit as usize);
        let next_cursor = has_more.then(|| replies.last().map(|m| Cursor(m.seq))).flatten();
        let mut shown = self.read_by(caller, &membership, [vec![parent], replies].concat()).await?;
        let parent = shown.remove(0);
        Ok(ServerFrame::Thread { parent, replies: shown, has_more, next_cursor })
    }

    /// Who got and who read a message: for its sender and the room's moderators and admins.
    /// The positions it is answered from stay in Postgres and Redis when the message is archived.
    pub(super) async fn receipts(&self, caller: &Caller, message_id: Uuid) -> Result<ServerFrame> {
        let (message, membership, _) = self.kept_message(caller, message_id).await?;
        if message.sender_id != caller.user_id && membership.role.rank() < Role::Moderator.rank() {
            return Err(ChatError::PermissionDenied("receipts are for the sender and the room's moderators".into()));
        }
        let (positions, delivered_positions) = tokio::try_join!(
            async { Ok::<_, ChatError>(self.store.read_positions(&caller.tenant_id, &message).await?) },
            async { Ok(self.receipts.positions(&caller.tenant_id, message.room_id).await?) },
        )?;
        let (delivered, read) = receipts_of(&message, positions, &delivered_positions);
        Ok(ServerFrame::Receipts { message_id, delivered, read })
    }

    pub(super) async fn typing(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        change: Typing,
    ) -> Result<Option<ServerFrame>> {
        let Request { caller, endpoint } = request;
        let membership = self.member(caller, room_id).await?;
        let (changed, frame) = match change {
            Typing::Start => {
                thawed(&membership)?;
                let started = self.store.start_typing(caller, room_id, self.config.typing_ttl).await?;
                let frame = ServerFrame::TypingStart {
                    room_id,
                    user_id: caller.user_id.clone(),
                    display_name: caller.display_name.clone(),
                };
                (started, frame)
            }
            Typing::Stop => {
                let stopped = self.store.stop_typing(caller, room_id).await?;
                (stopped, ServerFrame::TypingStop { room_id, user_id: caller.user_id.clone() })
            }
        };
        if changed {
            let skip = Skip::User(&caller.user_id);
            self.fan_out_room(endpoint, &caller.tenant_id, room_id, &frame, skip, &[Channel::Typing(room_id)]).await;
        }
        Ok(None)
    }

    pub(super) async fn mark_read(&self, request: Request<'_, '_>, room_id: Uuid, ids: &[Uuid]) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        if ids.len() > MAX_HISTORY_PAGE as usize {
            return Err(ChatError::Invalid(format!("at most {MAX_HISTORY_PAGE} message_ids at a time")));
        }
        self.member(caller, room_id).await?;
        let read = self.store.mark_read(caller, room_id, ids).await?;
        // A read that moves nothing tells nobody anything new.
        if read.moved {
            let event = ServerFrame::MessagesRead {
                room_id,
                user_id: caller.user_id.clone(),
                message_ids: read.message_ids.clone(),
                read_at: read.read_at,
            };
            self.tell_room(request, room_id, &event).await;
        }
        Ok(ServerFrame::ReadMarked {
            room_id,
            message_ids: read.message_ids,
            unread_count: read.unread.unread_count,
            mention_count: read.unread.mention_count,
            capped: read.unread.capped,
        })
    }

    pub async fn history(&self, caller: &Caller, req: HistoryRequest) -> Result<ServerFrame> {
        let membership = self.member(caller, req.room_id).await?;
        // Boxed: the archive behind it makes the future too deep for the compiler to lay out inline.
        let (messages, has_more) =
            Box::pin(self.history_page(&caller.tenant_id, &req, page_limit(req.limit), membership.version)).await?;
        let edge = if req.after.is_some() { messages.last() } else { messages.first() };
        let next_cursor = has_more.then(|| edge.map(|m| Cursor(m.seq))).flatten();
        let messages = self.read_by(caller, &membership, messages).await?;
        Ok(ServerFrame::History { room_id: req.room_id, messages, has_more, next_cursor })
    }

    /// A page of history reaching into archived months where Postgres ends: older pages go on
    /// into the archive, and pages after a cursor start there when the cursor lies in it.
    async fn history_page(
        &self,
        tenant_id: &str,
        req: &HistoryRequest,
        limit: u32,
        version: RoomVersion,
    ) -> Result<Page> {
        let limit_n = limit as usize;
        match req.after {
            None => {
                let (messages, has_more) = self.room_page(tenant_id, req, limit, version).await?;
                if has_more || messages.len() >= limit_n {
                    return Ok((messages, has_more));
                }
                let bound = messages.first().map(|m| m.seq).or(req.before.map(|c| c.0));
                let (mut older, more) =
                    self.archived_page(tenant_id, req.room_id, bound, None, limit_n - messages.len()).await?;
                older.extend(messages);
                Ok((older, more))
            }
            Some(after) => {
                let (mut archived, more) =
                    self.archived_page(tenant_id, req.room_id, req.before.map(|c| c.0), Some(after.0), limit_n).await?;
                if more || archived.len() >= limit_n {
                    return Ok((archived, true));
                }
                let from = archived.last().map_or(after, |m| Cursor(m.seq));
                let rest =
                    HistoryRequest { room_id: req.room_id, before: req.before, after: Some(from), limit: req.limit };
                let (messages, has_more) =
                    self.room_page(tenant_id, &rest, limit - archived.len() as u32, version).await?;
                archived.extend(messages);
                Ok((archived, has_more))
            }
        }
    }

    /// A page of history with reactions: from the recent-message cache when it holds the page
    /// and is up to date with the room at `version`, else from Postgres (filling the cache with
    /// the newest page).
    async fn room_page(&self, tenant_id: &str, req: &HistoryRequest, limit: u32, version: RoomVersion) -> Result<Page> {
        let backwards = req.after.is_none();
        if backwards {
            match self.cache.page(req.room_id, version, req.before.map(|c| c.0), limit as usize).await {
                Ok(Some(page)) => return Ok(page),
                Ok(None) => {}
                Err(err) => tracing::warn!(error = %err, "recent-message cache unavailable"),
            }
        }
        let newest = backwards && req.before.is_none();
        let generation = if newest { self.cache.generation(req.room_id).await.ok() } else { None };
        let (mut messages, has_more) = self.store.history(tenant_id, req.room_id, req.before, req.after, limit).await?;
        let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
        let mut reactions = self.store.reactions(tenant_id, &ids).await?;
        for message in &mut messages {
            message.reactions = reactions.remove(&message.id).unwrap_or_default();
        }
        if let Some(generation) = generation {
            if let Err(err) = self.cache.fill(req.room_id, generation, version.changes, &messages, !has_more).await {
                tracing::warn!(error = %err, "recent-message cache not filled");
            }
        }
        Ok((messages, has_more))
    }
}

/// Who got and who read the message, from positions: a member whose read position reaches it
/// read it (when that position last moved); one whose delivery position reaches it, or who read
/// it, got it (when the delivery position last moved, else when they read). Earliest first.
fn receipts_of(
    message: &Message,
    reads: Vec<ReadPosition>,
    delivered: &HashMap<String, Position>,
) -> (Vec<Receipt>, Vec<Receipt>) {
    let mut got = Vec::new();
    let mut read = Vec::new();
    for position in reads {
        let has_read = position.seq >= message.seq;
        let delivered_at = delivered.get(&position.user_id).filter(|d| d.seq >= message.seq).map(|d| d.at);
        if let Some(at) = delivered_at.or(has_read.then_some(position.at)) {
            got.push(Receipt { user_id: position.user_id.clone(), at });
        }
        if has_read {
            read.push(Receipt { user_id: position.user_id, at: position.at });
        }
    }
    for list in [&mut got, &mut read] {
        list.sort_by(|a, b| (a.at, &a.user_id).cmp(&(b.at, &b.user_id)));
    }
    (got, read)
}
