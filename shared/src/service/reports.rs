//! Reports of messages: any member files one; the room's moderators and admins (and tenant
//! admins) list them and resolve them, dismissing the report or deleting the message.

use futures::future::BoxFuture;
use serde_json::json;
use uuid::Uuid;

use super::validate::{self, MAX_REASON_CHARS, MAX_REPORTS_PAGE};
use super::{Answer, Audience, ChatError, ChatService, Request, Result, Skip};
use crate::model::{Caller, MessageType, Report, ReportStatus, Role};
use crate::protocol::{ReportAction, ServerFrame};
use crate::store::{Closing, Filed, ReportFilter};
use crate::webhooks::Event;

impl ChatService {
    pub(super) async fn report_message(
        &self,
        request: Request<'_, '_>,
        message_id: Uuid,
        reason: &str,
    ) -> Result<ServerFrame> {
        let Request { caller, .. } = request;
        let reason = reason.trim();
        validate::check_len("reason", reason, MAX_REASON_CHARS)?;
        if reason.is_empty() {
            return Err(ChatError::Invalid("reason must not be empty".into()));
        }
        let (message, _) = self.message_for(caller, message_id).await?;
        if message.deleted_at.is_some() {
            return Err(ChatError::PermissionDenied("the message was deleted already".into()));
        }
        if message.sender_id == caller.user_id || message.message_type == MessageType::System {
            return Err(ChatError::Invalid("only other members' messages can be reported".into()));
        }
        let report = match self
            .store
            .file_report(&caller.tenant_id, message.room_id, message_id, &caller.user_id, reason)
            .await?
        {
            Filed::Kept(report) => return Ok(ServerFrame::MessageReported { report }),
            Filed::New(report) => report,
        };
        self.webhooks.emit(&caller.tenant_id, Event::MessageFlagged, report.id, json!({ "report": &report })).await;
        let frame = ServerFrame::MessageReported { report };
        self.tell_moderators(request, message.room_id, &frame).await?;
        Ok(frame)
    }

    pub async fn list_reports(
        &self,
        caller: &Caller,
        room_id: Option<Uuid>,
        status: Option<ReportStatus>,
    ) -> Result<ServerFrame> {
        let admin = caller.is_tenant_admin();
        if let (Some(room_id), false) = (room_id, admin) {
            super::rooms::require(&self.member(caller, room_id).await?, Role::Moderator, "reading reports")?;
        }
        let filter = ReportFilter {
            room_id,
            status: status.unwrap_or(ReportStatus::Open),
            moderated_by: (room_id.is_none() && !admin).then_some(caller.user_id.as_str()),
            limit: MAX_REPORTS_PAGE,
        };
        let reports = self.store.reports(&caller.tenant_id, filter).await?;
        Ok(ServerFrame::Reports { reports: reports.into_iter().map(shown).collect() })
    }

    pub(super) async fn resolve_report<'a>(
        &'a self,
        request: Request<'_, 'a>,
        report_id: Uuid,
        action: ReportAction,
    ) -> Result<Answer<'a>> {
        let Request { caller, endpoint } = request;
        let report = self.store.report(&caller.tenant_id, report_id).await?.ok_or(ChatError::NotFound("report"))?;
        if !caller.is_tenant_admin() {
            super::rooms::require(&self.member(caller, report.room_id).await?, Role::Moderator, "resolving reports")?;
        }
        let room_id = report.room_id;
        if report.status != ReportStatus::Open {
            return Err(ChatError::Invalid(format!("the report is {} already", report.status.as_str())));
        }
        match action {
            ReportAction::Dismiss => {
                let closing = Closing::Dismissed(report_id);
                let mut closed = self.store.close_reports(&caller.tenant_id, closing, &caller.user_id).await?;
                // Another moderator closed it a moment ago.
                let report = closed.pop().ok_or_else(|| ChatError::Invalid("the report is closed already".into()))?;
                let frame = ServerFrame::ReportResolved { report: shown(report) };
                self.tell_moderators(request, room_id, &frame).await?;
                Ok(Some(frame).into())
            }
            // Deleting closes the message's reports, this one among them, and tells of each.
            ReportAction::DeleteMessage => {
                let deleted = match &report.message {
                    Some(message) if message.deleted_at.is_none() => Some(if caller.is_tenant_admin() {
                        self.remove_message(request, message.id).await?
                    } else {
                        self.delete_message(request, message.id).await?
                    }),
                    // Deleted already (or archived): the reports close all the same.
                    _ => {
                        self.close_reports(request, room_id, report.message_id).await?;
                        None
                    }
                };
                let report =
                    self.store.report(&caller.tenant_id, report_id).await?.ok_or(ChatError::NotFound("report"))?;
                let reply = Some(ServerFrame::ReportResolved { report: shown(report) });
                // The reply is the report's: after it, the resolver's connection hears of the
                // deletion as the rest of the room did.
                let then = deleted.map(|frame| {
                    let connection_id = caller.connection_id.clone();
                    Box::pin(
                        async move { Ok(self.fanout.post_to(endpoint, &connection_id, frame.to_json().into()).await?) },
                    ) as BoxFuture<'a, Result<()>>
                });
                Ok(Answer { reply, then })
            }
        }
    }

    /// Closes the open reports of a deleted message and tells the room's moderators of each.
    pub(super) async fn close_reports(&self, request: Request<'_, '_>, room_id: Uuid, message_id: Uuid) -> Result<()> {
        let Request { caller, .. } = request;
        let closing = Closing::Deleted(message_id);
        for report in self.store.close_reports(&caller.tenant_id, closing, &caller.user_id).await? {
            let frame = ServerFrame::ReportResolved { report: shown(report) };
            self.tell_moderators(request, room_id, &frame).await?;
        }
        Ok(())
    }

    /// Sends a report's frame to the moderators and admins of its room, on every connection but
    /// the caller's own (which has the reply).
    async fn tell_moderators(&self, request: Request<'_, '_>, room_id: Uuid, frame: &ServerFrame) -> Result<()> {
        let Request { caller, endpoint } = request;
        let moderators = self.store.moderators(&caller.tenant_id, room_id).await?;
        let skip = Skip::Connection(&caller.connection_id);
        self.deliver(endpoint, &caller.tenant_id, Audience::Users(&moderators), frame, skip, &[]).await;
        Ok(())
    }
}

/// A report as it is shown: a deleted message's content hidden, as from members (room admins
/// read it in the room's history).
fn shown(mut report: Report) -> Report {
    report.message = report.message.map(|m| m.redacted());
    report
}
