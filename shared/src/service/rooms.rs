//! Rooms and the people in them: creation, joining, invitations, roles, mutes and bans,
//! listings, presence queries and tenant announcements.

use chrono::Utc;
use uuid::Uuid;

use super::validate::{
    self, MAX_DESCRIPTION_CHARS, MAX_INITIAL_MEMBERS, MAX_MUTE_SECS, MAX_NAME_CHARS, MAX_USERS_PER_FRAME,
};
use super::{Audience, ChatError, ChatService, Request, Result, Skip};
use crate::channels::Channel;
use crate::model::{Caller, Role, Room, RoomType};
use crate::protocol::{CreateRoom, PresenceInfo, PresenceStatus, ServerFrame};
use crate::store::{Membership, NewRoom};
use crate::webhooks::Event;

const DEFAULT_MUTE_SECS: u64 = 3600;

/// Refuses unless the member holds at least `min`.
pub(super) fn require(membership: &Membership, min: Role, action: &str) -> Result<()> {
    if membership.role.rank() < min.rank() {
        return Err(ChatError::PermissionDenied(format!("{action} needs the {} role in this room", min.as_str())));
    }
    Ok(())
}

impl ChatService {
    async fn room_of(&self, caller: &Caller, room_id: Uuid) -> Result<Room> {
        self.store.room(&caller.tenant_id, room_id).await?.ok_or(ChatError::NotFound("room"))
    }

    /// The actor's membership, which must hold `min` and outrank the target (a member of the room
    /// unless `target_may_be_absent`); returns the target's membership if they are one.
    async fn moderate(
        &self,
        caller: &Caller,
        room_id: Uuid,
        target: &str,
        min: Role,
        action: &str,
        target_may_be_absent: bool,
    ) -> Result<Option<Membership>> {
        validate::check_id("user_id", target)?;
        let actor = self.member(caller, room_id).await?;
        require(&actor, min, action)?;
        if target == caller.user_id {
            return Err(ChatError::PermissionDenied(format!("you cannot {action} yourself")));
        }
        let membership = self.store.membership(&caller.tenant_id, room_id, target).await?;
        match &membership {
            None if !target_may_be_absent => return Err(ChatError::NotFound("room member")),
            Some(m) if m.role.rank() >= actor.role.rank() => {
                return Err(ChatError::PermissionDenied(format!("you cannot {action} a {}", m.role.as_str())))
            }
            _ => {}
        }
        Ok(membership)
    }

    pub(super) async fn create_room(&self, request: Request<'_, '_>, req: CreateRoom) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        validate::check_ids("participant", &req.participants, MAX_INITIAL_MEMBERS)?;
        let mut members: Vec<String> = Vec::new();
        for user in req.participants {
            if user != caller.user_id && !members.contains(&user) {
                members.push(user);
            }
        }
        if req.room_type == RoomType::Direct {
            let [other] = members.as_slice() else {
                return Err(ChatError::Invalid("a direct room has exactly one other participant".into()));
            };
            self.may_write_to(caller, other).await?;
        }
        let name = match (req.room_type, req.name.as_deref().map(str::trim)) {
            (_, Some(name)) if !name.is_empty() => name.to_string(),
            (RoomType::Direct, _) => "direct".to_string(),
            _ => return Err(ChatError::Invalid("name is required".into())),
        };
        validate::check_len("name", &name, MAX_NAME_CHARS)?;
        if let Some(description) = &req.description {
            validate::check_len("description", description, MAX_DESCRIPTION_CHARS)?;
        }
        if let Some(id) = &req.client_room_id {
            validate::check_id("client_room_id", id)?;
        }
        let new = NewRoom {
            name: &name,
            description: req.description.as_deref(),
            room_type: req.room_type,
            // Direct rooms are for their pair; support rooms for the customer and the agents.
            is_private: req.is_private || matches!(req.room_type, RoomType::Direct | RoomType::Support),
            members: &members,
            client_room_id: req.client_room_id.as_deref(),
        };
        let (room, created) = self.store.create_room(caller, new).await?;
        let room_id = room.id;
        let participants = self.store.participants(&caller.tenant_id, room_id).await?;
        let frame = ServerFrame::RoomCreated { room, participants };
        if created {
            self.tell_room(request, room_id, &frame).await;
        }
        Ok(frame)
    }

    pub(super) async fn join_room(&self, request: Request<'_, '_>, room_id: Uuid) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        let room = self.room_of(caller, room_id).await?;
        if self.store.membership(&caller.tenant_id, room_id, &caller.user_id).await?.is_none() {
            if self.store.is_banned(&caller.tenant_id, room_id, &caller.user_id).await? {
                return Err(ChatError::PermissionDenied("you are banned from this room".into()));
            }
            let agent = room.room_type == RoomType::Support && caller.is_support_agent();
            if room.is_private && !agent {
                return Err(ChatError::PermissionDenied("this room is private: an invitation is required".into()));
            }
            let role = if agent { Role::Moderator } else { Role::Member };
            if self.store.add_participant(caller, room_id, role).await? {
                let frame = ServerFrame::UserJoined {
                    room_id,
                    user_id: caller.user_id.clone(),
                    display_name: caller.display_name.clone(),
                };
                self.tell_room(request, room_id, &frame).await;
                self.system_message(request, room_id, format!("{} joined", caller.display_name)).await?;
            }
        }
        let participants = self.store.participants(&caller.tenant_id, room_id).await?;
        Ok(ServerFrame::RoomJoined { room, participants })
    }

    pub(super) async fn leave_room(&self, request: Request<'_, '_>, room_id: Uuid) -> Result<ServerFrame> {
        let Request { caller, endpoint } = request;
        self.member(caller, room_id).await?;
        if self.store.remove_participant(&caller.tenant_id, room_id, &caller.user_id).await? {
            let frame = ServerFrame::UserLeft { room_id, user_id: caller.user_id.clone() };
            self.fan_out_room(endpoint, &caller.tenant_id, room_id, &frame, Skip::Nobody, &[Channel::Room(room_id)])
                .await;
            self.system_message(request, room_id, format!("{} left", caller.display_name)).await?;
        }
        Ok(ServerFrame::RoomLeft { room_id })
    }

    pub(super) async fn update_room(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        name: Option<String>,
        description: Option<String>,
        is_private: Option<bool>,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        require(&self.member(caller, room_id).await?, Role::Admin, "changing room settings")?;
        let name = name.map(|n| n.trim().to_string());
        if let Some(name) = &name {
            if name.is_empty() {
                return Err(ChatError::Invalid("name must not be empty".into()));
            }
            validate::check_len("name", name, MAX_NAME_CHARS)?;
        }
        if let Some(description) = &description {
            validate::check_len("description", description, MAX_DESCRIPTION_CHARS)?;
        }
        let room = self
            .store
            .update_room(&caller.tenant_id, room_id, name.as_deref(), description.as_deref(), is_private)
            .await?
            .ok_or(ChatError::NotFound("room"))?;
        let frame = ServerFrame::RoomUpdated { room };
        self.tell_room(request, room_id, &frame).await;
        Ok(frame)
    }

    pub(super) async fn invite(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        user_ids: Vec<String>,
    ) -> Result<ServerFrame> {
        let Request { caller, endpoint } = request;
        validate::check_ids("user_id", &user_ids, MAX_USERS_PER_FRAME)?;
        let room = self.room_of(caller, room_id).await?;
        require(&self.member(caller, room_id).await?, Role::Moderator, "inviting")?;
        if room.room_type == RoomType::Direct {
            return Err(ChatError::PermissionDenied("a direct room stays between its two members".into()));
        }
        for user in &user_ids {
            if self.store.is_banned(&caller.tenant_id, room_id, user).await? {
                return Err(ChatError::PermissionDenied(format!("{user} is banned from this room: unban them first")));
            }
        }
        let users: Vec<(String, Option<String>)> = user_ids.iter().map(|u| (u.clone(), None)).collect();
        let added = self.store.add_participants(&caller.tenant_id, room_id, &users, Role::Member).await?;
        if !added.is_empty() {
            let participants = self.store.participants(&caller.tenant_id, room_id).await?;
            let welcome = ServerFrame::AddedToRoom { room, participants, added_by: caller.user_id.clone() };
            self.deliver(endpoint, &caller.tenant_id, Audience::Users(&added), &welcome, Skip::Nobody, &[]).await;
            for user in &added {
                let joined = ServerFrame::UserJoined { room_id, user_id: user.clone(), display_name: user.clone() };
                self.tell_room(request, room_id, &joined).await;
            }
            let text = format!("{} added {}", caller.display_name, added.join(", "));
            self.system_message(request, room_id, text).await?;
        }
        Ok(ServerFrame::Invited { room_id, user_ids: added })
    }

    pub(super) async fn remove_participant(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        user_id: &str,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        self.moderate(caller, room_id, user_id, Role::Moderator, "remove", false).await?;
        self.store.remove_participant(&caller.tenant_id, room_id, user_id).await?;
        let frame = ServerFrame::UserRemoved { room_id, user_id: user_id.into(), by: caller.user_id.clone() };
        self.tell_room_and(request, room_id, user_id, &frame).await;
        self.system_message(request, room_id, format!("{user_id} was removed by {}", caller.display_name)).await?;
        Ok(frame)
    }

    pub(super) async fn set_role(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        user_id: &str,
        role: Role,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        validate::check_id("user_id", user_id)?;
        require(&self.member(caller, room_id).await?, Role::Admin, "changing roles")?;
        let target = self
            .store
            .membership(&caller.tenant_id, room_id, user_id)
            .await?
            .ok_or(ChatError::NotFound("room member"))?;
        if target.role == Role::Admin
            && role != Role::Admin
            && self.store.admin_count(&caller.tenant_id, room_id).await? <= 1
        {
            return Err(ChatError::PermissionDenied("a room keeps at least one admin".into()));
        }
        self.store.set_role(&caller.tenant_id, room_id, user_id, role).await?;
        let frame = ServerFrame::RoleChanged { room_id, user_id: user_id.into(), role, by: caller.user_id.clone() };
        self.tell_room(request, room_id, &frame).await;
        let text = format!("{user_id} is now {} (set by {})", role.as_str(), caller.display_name);
        self.system_message(request, room_id, text).await?;
        Ok(frame)
    }

    /// Mutes for `duration` seconds (unset: the default).
    pub(super) async fn mute(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        user_id: &str,
        duration: Option<u64>,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        self.moderate(caller, room_id, user_id, Role::Moderator, "mute", false).await?;
        let secs = duration.unwrap_or(DEFAULT_MUTE_SECS);
        if !(1..=MAX_MUTE_SECS).contains(&secs) {
            return Err(ChatError::Invalid(format!("duration_seconds must be 1-{MAX_MUTE_SECS}")));
        }
        let until = Utc::now() + chrono::Duration::seconds(secs as i64);
        let frame = ServerFrame::UserMuted { room_id, user_id: user_id.into(), until, by: caller.user_id.clone() };
        self.set_muted_until(request, room_id, user_id, Some(until), frame).await
    }

    pub(super) async fn unmute(&self, request: Request<'_, '_>, room_id: Uuid, user_id: &str) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        self.moderate(caller, room_id, user_id, Role::Moderator, "unmute", false).await?;
        let frame = ServerFrame::UserUnmuted { room_id, user_id: user_id.into(), by: caller.user_id.clone() };
        self.set_muted_until(request, room_id, user_id, None, frame).await
    }

    /// Stores the mute's end (None: none) and tells the room with `frame`.
    async fn set_muted_until(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        user_id: &str,
        until: Option<chrono::DateTime<Utc>>,
        frame: ServerFrame,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        self.store.set_muted_until(&caller.tenant_id, room_id, user_id, until).await?;
        self.tell_room(request, room_id, &frame).await;
        Ok(frame)
    }

    pub(super) async fn ban(
        &self,
        request: Request<'_, '_>,
        room_id: Uuid,
        user_id: &str,
        reason: Option<String>,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        if let Some(reason) = &reason {
            validate::check_len("reason", reason, MAX_DESCRIPTION_CHARS)?;
        }
        self.moderate(caller, room_id, user_id, Role::Moderator, "ban", true).await?;
        self.store.ban(caller, room_id, user_id, reason.as_deref()).await?;
        let frame = ServerFrame::UserBanned { room_id, user_id: user_id.into(), by: caller.user_id.clone(), reason };
        self.tell_room_and(request, room_id, user_id, &frame).await;
        self.system_message(request, room_id, format!("{user_id} was banned by {}", caller.display_name)).await?;
        let mut data = serde_json::to_value(&frame).expect("frames serialize");
        data.as_object_mut().expect("an object").remove("type");
        self.webhooks.emit(&caller.tenant_id, Event::MemberBanned, Uuid::now_v7(), data).await;
        Ok(frame)
    }

    pub(super) async fn unban(&self, request: Request<'_, '_>, room_id: Uuid, user_id: &str) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        self.moderate(caller, room_id, user_id, Role::Moderator, "unban", true).await?;
        if !self.store.unban(&caller.tenant_id, room_id, user_id).await? {
            return Err(ChatError::NotFound("ban"));
        }
        let frame = ServerFrame::UserUnbanned { room_id, user_id: user_id.into(), by: caller.user_id.clone() };
        self.tell_room(request, room_id, &frame).await;
        Ok(frame)
    }

    /// Tells the room and a user who is no longer in it (removed or banned).
    async fn tell_room_and(&self, request: Request<'_, '_>, room_id: Uuid, user_id: &str, frame: &ServerFrame) {
        let Request { caller, endpoint } = request;
        self.tell_room(request, room_id, frame).await;
        let skip = Skip::Connection(&caller.connection_id);
        self.deliver(endpoint, &caller.tenant_id, Audience::Users(&[user_id.to_string()]), frame, skip, &[]).await
    }

    pub(super) async fn list_rooms(&self, caller: &Caller, room_type: Option<RoomType>) -> Result<ServerFrame> {
        let rooms =
            self.store.rooms_of(&caller.tenant_id, &caller.user_id, room_type, caller.is_support_agent()).await?;
        Ok(ServerFrame::Rooms { rooms })
    }

    pub(super) async fn presence_of(&self, caller: &Caller, user_ids: Vec<String>) -> Result<ServerFrame> {
        validate::check_ids("user_id", &user_ids, MAX_USERS_PER_FRAME)?;
        let online = self.presence.online(&caller.tenant_id, &user_ids).await?;
        let seen = self.store.last_seen(&caller.tenant_id, &user_ids).await?;
        let now = Utc::now();
        let users = user_ids
            .into_iter()
            .zip(online)
            .map(|(user_id, online)| {
                let last_seen =
                    if online { Some(now) } else { seen.iter().find(|(u, _)| *u == user_id).map(|(_, at)| *at) };
                let status = if online { PresenceStatus::Online } else { PresenceStatus::Offline };
                PresenceInfo { user_id, status, last_seen }
            })
            .collect();
        Ok(ServerFrame::PresenceState { users })
    }

    /// A tenant admin's announcement: to every connection of the tenant and on `chat:global`.
    pub(super) async fn announce(&self, request: Request<'_, '_>, content: String) -> Result<ServerFrame> {
        let Request { caller, endpoint } = request;
        if !caller.is_tenant_admin() {
            return Err(ChatError::PermissionDenied("announcements are for tenant admins".into()));
        }
        validate::check_text(&content)?;
        let frame = ServerFrame::Announcement { content, from: caller.user_id.clone(), sent_at: Utc::now() };
        let skip = Skip::Connection(&caller.connection_id);
        self.deliver(endpoint, &caller.tenant_id, Audience::Tenant, &frame, skip, &[Channel::Global]).await;
        Ok(frame)
    }
}
