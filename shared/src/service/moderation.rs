//! Room moderation beyond roles, mutes and bans: pinned messages, freezing, slow mode.

use std::time::Duration;

use uuid::Uuid;

use super::validate::{MAX_PINS, MAX_SLOW_MODE_SECS};
use super::{ChatError, ChatService, Request, Result};
use crate::model::{Caller, Pin, Role};
use crate::protocol::{SendMessage, ServerFrame};
use crate::store::{Membership, Pinned};

/// Refuses a non-admin's change to a frozen room (a post, an edit, a reaction, typing).
pub(super) fn thawed(membership: &Membership) -> Result<()> {
    if membership.frozen && membership.role != Role::Admin {
        return Err(ChatError::PermissionDenied(
            "the room is frozen: only its admins post, edit, react and type".into(),
        ));
    }
    Ok(())
}

impl ChatService {
    /// Slow mode, for a member below moderator: one message per the room's interval. A retry of
    /// a message already stored (its `client_msg_id`) passes, to be answered as a duplicate.
    pub(super) async fn slow_mode(&self, caller: &Caller, req: &SendMessage, membership: &Membership) -> Result<()> {
        if membership.slow_mode_seconds <= 0 || membership.role.rank() >= Role::Moderator.rank() {
            return Ok(());
        }
        let interval = Duration::from_secs(membership.slow_mode_seconds as u64);
        let Err(retry_after_ms) = self.limiter.slow_mode(caller, req.room_id, interval).await? else {
            return Ok(());
        };
        if let Some(id) = &req.client_msg_id {
            if self.store.sent_with(caller, id).await?.is_some() {
                return Ok(());
            }
        }
        // Counted in `RateLimited` where every refused frame is counted.
        Err(ChatError::RateLimited { retry_after_ms })
    }

    pub(super) async fn pin_message(&self, request: Request<'_, '_>, message_id: Uuid) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        let (message, membership) = self.message_for(caller, message_id).await?;
        super::rooms::require(&membership, Role::Moderator, "pinning")?;
        if message.deleted_at.is_some() {
            return Err(ChatError::PermissionDenied("a deleted message cannot be pinned".into()));
        }
        let room_id = message.room_id;
        let pinned = self.store.pin(&caller.tenant_id, room_id, message_id, &caller.user_id, MAX_PINS).await?;
        let (pinned_at, pinned_by, new) = match pinned {
            Pinned::Added(at) => (at, caller.user_id.clone(), true),
            Pinned::Kept(at, by) => (at, by, false),
            Pinned::Full => return Err(ChatError::Invalid(format!("a room holds at most {MAX_PINS} pins"))),
        };
        let mut shown = self.present(caller, &membership, vec![message]).await?;
        let frame = ServerFrame::MessagePinned { room_id, pin: Pin { message: shown.remove(0), pinned_by, pinned_at } };
        if new {
            self.tell_room(request, room_id, &frame).await;
        }
        Ok(frame)
    }

    pub(super) async fn unpin_message(&self, request: Request<'_, '_>, message_id: Uuid) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        let (message, membership) = self.message_for(caller, message_id).await?;
        super::rooms::require(&membership, Role::Moderator, "unpinning")?;
        if !self.store.unpin(&caller.tenant_id, message_id).await? {
            return Err(ChatError::NotFound("pin"));
        }
        Ok(self.unpinned(request, message.room_id, message_id).await)
    }

    /// Tells the room a message is no longer pinned (unpinned, or deleted).
    pub(super) async fn unpinned(&self, request: Request<'_, '_>, room_id: Uuid, message_id: Uuid) -> ServerFrame {
        let Request { caller, .. } = request;
        let frame = ServerFrame::MessageUnpinned { room_id, message_id, by: caller.user_id.clone() };
        self.tell_room(request, room_id, &frame).await;
        frame
    }

    pub async fn list_pins(&self, caller: &Caller, room_id: Uuid) -> Result<ServerFrame> {
        let membership = self.member(caller, room_id).await?;
        let mut by = Vec::new();
        let mut messages = Vec::new();
        for pin in self.store.pins(&caller.tenant_id, room_id).await? {
            // A pinned message archived since is read from the archive, as history reads it.
            let message = match pin.message {
                Some(message) => message,
                None => match Box::pin(self.archived_message(&caller.tenant_id, pin.message_id)).await? {
                    Some((message, _)) => message,
                    None => continue,
                },
            };
            by.push((pin.pinned_by, pin.pinned_at));
            messages.push(message);
        }
        let shown = self.read_by(caller, &membership, messages).await?;
        let pins = shown
            .into_iter()
            .zip(by)
            .map(|(message, (pinned_by, pinned_at))| Pin { message, pinned_by, pinned_at })
            .collect();
        Ok(ServerFrame::Pins { room_id, pins })
    }

    pub(super) async fn freeze_room(&self, request: Request<'_, '_>, room_id: Uuid) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        let membership = self.member(caller, room_id).await?;
        super::rooms::require(&membership, Role::Admin, "freezing")?;
        let frame = ServerFrame::RoomFrozen { room_id, by: caller.user_id.clone() };
        self.set_frozen(request, room_id, true, frame).await
    }

    pub(super) async fn unfreeze_room(&self, request: Request<'_, '_>, room_id: Uuid) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        let membership = self.member(caller, room_id).await?;
        super::rooms::require(&membership, Role::Admin, "unfreezing")?;
        let frame = ServerFrame::RoomUnfrozen { room_id, by: caller.user_id.clone() };
        self.set_frozen(request, room_id, false, frame).await
    }

    /// Stores whether the room is frozen and tells the room with `frame` when that changed.
    async fn set_frozen(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        frozen: bool,
        frame: ServerFrame,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        if self.store.set_frozen(&caller.tenant_id, room_id, frozen).await? {
            self.tell_room(request, room_id, &frame).await;
        }
        Ok(frame)
    }

    pub(super) async fn set_slow_mode(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        seconds: i32,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        if !(0..=MAX_SLOW_MODE_SECS).contains(&seconds) {
            return Err(ChatError::Invalid(format!("seconds must be 0-{MAX_SLOW_MODE_SECS}")));
        }
        let membership = self.member(caller, room_id).await?;
        super::rooms::require(&membership, Role::Admin, "slow mode")?;
        self.store.set_slow_mode(&caller.tenant_id, room_id, seconds).await?;
        let frame = ServerFrame::SlowModeSet { room_id, seconds, by: caller.user_id.clone() };
        self.tell_room(request, room_id, &frame).await;
        Ok(frame)
    }
}
