//! Users blocking users: a blocked user cannot open or write in a direct room with the blocker,
//! and the blocker's clients get the blocked user's messages elsewhere flagged.

use super::validate::{self, MAX_BLOCKS};
use super::{Audience, ChatError, ChatService, Request, Result, Skip};
use crate::channels::Channel;
use crate::model::{Caller, Message, RoomType};
use crate::protocol::ServerFrame;
use crate::store::{Blocked, Membership};

/// Refuses a message from a member whom the other member of a direct room blocked.
pub(super) fn unblocked(membership: &Membership) -> Result<()> {
    if membership.room_type == RoomType::Direct && !membership.blocked_by.is_empty() {
        return Err(ChatError::PermissionDenied("the other member of this direct room blocked you".into()));
    }
    Ok(())
}

impl ChatService {
    pub(super) async fn block_user(&self, request: Request<'_, '_>, user_id: &str) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        validate::check_id("user_id", user_id)?;
        if user_id == caller.user_id {
            return Err(ChatError::Invalid("you cannot block yourself".into()));
        }
        let (blocked, new) = match self.store.block(&caller.tenant_id, &caller.user_id, user_id, MAX_BLOCKS).await? {
            Blocked::Added(blocked) => (blocked, true),
            Blocked::Kept(blocked) => (blocked, false),
            Blocked::Full => return Err(ChatError::Invalid(format!("you block at most {MAX_BLOCKS} users"))),
        };
        let frame = ServerFrame::UserBlocked { user_id: blocked.user_id, blocked_at: blocked.blocked_at };
        if new {
            self.tell_own(request, &frame).await;
        }
        Ok(frame)
    }

    pub(super) async fn unblock_user(&self, request: Request<'_, '_>, user_id: &str) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        validate::check_id("user_id", user_id)?;
        if !self.store.unblock(&caller.tenant_id, &caller.user_id, user_id).await? {
            return Err(ChatError::NotFound("block"));
        }
        let frame = ServerFrame::UserUnblocked { user_id: user_id.to_string() };
        self.tell_own(request, &frame).await;
        Ok(frame)
    }

    pub async fn list_blocked(&self, caller: &Caller) -> Result<ServerFrame> {
        Ok(ServerFrame::BlockedUsers { users: self.store.blocked_by(&caller.tenant_id, &caller.user_id).await? })
    }

    /// Messages as the caller reads them (history, threads, pins, edit history): presented, and
    /// flagged where the caller blocked their sender. Frames the room shares are only presented.
    pub(super) async fn read_by(
        &self,
        caller: &Caller,
        membership: &Membership,
        messages: Vec<Message>,
    ) -> Result<Vec<Message>> {
        let mut messages = self.present(caller, membership, messages).await?;
        if !membership.blocks.is_empty() {
            for message in &mut messages {
                message.sender_blocked = membership.blocks.contains(&message.sender_id);
            }
        }
        Ok(messages)
    }

    /// Refuses to open a direct room with a user who blocked the caller.
    pub(super) async fn may_write_to(&self, caller: &Caller, other: &str) -> Result<()> {
        if self.store.is_blocked(&caller.tenant_id, other, &caller.user_id).await? {
            return Err(ChatError::PermissionDenied(format!("{other} blocked you")));
        }
        Ok(())
    }

    /// Tells the caller's other connections (their other devices) of a change of their own.
    async fn tell_own(&self, request: Request<'_, '_>, frame: &ServerFrame) {
        let Request { caller, endpoint } = request;
        let me = [caller.user_id.clone()];
        let skip = Skip::Connection(&caller.connection_id);
        let channels = [Channel::User(caller.user_id.clone())];
        self.deliver(endpoint, &caller.tenant_id, Audience::Users(&me), frame, skip, &channels).await
    }
}
