//! [`Tickets`]: the one intake every channel calls, and the one way to change, read and search
//! tickets. It checks what the workflow cannot know (categories, departments, hotlines, who may see
//! what) and leaves the rest to [`workflow::apply`] and the store.

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::category::Catalogue;
use crate::department::Directory;
use crate::merge::{self, Decision, Match, MergePolicy};
use crate::model::{Channel, NewTicket, Ticket, TicketNumber};
use crate::sla::Sla;
use crate::store::{
    Inserted, Origin, Page, Store, StoreError, Suggestion, Supplement, Supplemented, TicketFilter,
    TicketSummary,
};
use crate::workflow::{
    self, Action, ActionKind, Actor, AuditEvent, Role, WorkState, WorkflowError,
};

/// A hotline the centre runs (12319, 12345), from `[[hotline]]` in `config/hotline.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hotline {
    /// The number citizens dial; also the prefix of its ticket numbers.
    pub number: String,
    /// Its name (城市管理服务热线).
    pub name: String,
    /// Other numbers that reach it (`+8651012319`, a trunk's DID).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// When agents answer (the IVR's business-hours branch); always when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<crate::calendar::OpeningHours>,
}

/// Why a ticket operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No such ticket, or not one this user may see.
    #[error("ticket {0} not found")]
    NotFound(String),
    /// A field of the request is wrong.
    #[error("{field}: {message}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// What is wrong, in words a person can act on.
        message: String,
    },
    /// The user's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The workflow refused the step.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }

    /// A stable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "ticket_not_found",
            Error::Invalid { .. } => "invalid_request",
            Error::Forbidden(_) => "forbidden",
            Error::Workflow(e) => e.code(),
            Error::Store(StoreError::Duplicate(_)) => "duplicate",
            Error::Store(_) => "storage_error",
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Store(e.into())
    }
}

/// Everything tickets need, shared by every channel and request handler; cheap to clone.
#[derive(Clone)]
pub struct Tickets {
    store: Store,
    merge: Arc<MergePolicy>,
    sla: Arc<Sla>,
    catalogue: Arc<Catalogue>,
    directory: Arc<Directory>,
    hotlines: Arc<Vec<Hotline>>,
}

pub(crate) const MAX_CONTENT_CHARS: usize = 5000;

impl Tickets {
    /// Wires the store to the configured policy. `hotlines` must not be empty.
    pub fn new(
        store: Store,
        sla: Sla,
        catalogue: Catalogue,
        directory: Directory,
        hotlines: Vec<Hotline>,
    ) -> Self {
        Tickets {
            store,
            merge: Arc::new(MergePolicy {
                enabled: false,
                ..MergePolicy::default()
            }),
            sla: Arc::new(sla),
            catalogue: Arc::new(catalogue),
            directory: Arc::new(directory),
            hotlines: Arc::new(hotlines),
        }
    }

    /// Turns duplicate merging on with `policy` (it is off until this is called).
    pub fn with_merge_policy(mut self, policy: MergePolicy) -> Self {
        self.merge = Arc::new(policy);
        self
    }

    /// The duplicate-merging policy.
    pub fn merge_policy(&self) -> &MergePolicy {
        &self.merge
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The SLA policy and calendar.
    pub fn sla(&self) -> &Sla {
        &self.sla
    }

    /// The categories.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The departments.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The hotlines.
    pub fn hotlines(&self) -> &[Hotline] {
        &self.hotlines
    }

    /// 受理: checks a submission and stores it as a new ticket with its number, its first clock and
    /// its first audit event. Acknowledge only after this returns: then it is committed. The ticket
    /// comes back as `actor` may see it.
    pub async fn intake(
        &self,
        new: NewTicket,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Ticket, Error> {
        Ok(self
            .intake_once(new, &Origin::default(), actor, now)
            .await?
            .ticket)
    }

    /// [`Tickets::intake`] for a channel that retries: a submission whose `origin` carries a key
    /// already used (a WeChat MsgId, an app's `Idempotency-Key`) makes nothing new and returns the
    /// ticket the first one made, with `replayed` set. Keys are namespaced by the channel
    /// (`wechat:msg:…`). The origin's thread is pointed at the ticket in the same transaction.
    pub async fn intake_once(
        &self,
        new: NewTicket,
        origin: &Origin<'_>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Intake, Error> {
        if !actor.role.may_create_tickets() {
            return Err(Error::Forbidden(format!(
                "a user with role {} may not open tickets",
                actor.role
            )));
        }
        let mut new = self.validate(new)?;
        if new.category.is_none() {
            // 受理 suggests the category from the citizen's words; 立案 can correct it.
            new.category = self.catalogue.suggest(&new.content).map(|c| c.id.clone());
        }
        let hotline = match new.hotline.as_deref() {
            None => self.hotlines.first().map(|h| h.number.clone()),
            Some(n) => self
                .hotlines
                .iter()
                .find(|h| h.number == n || h.aliases.iter().any(|a| a == n))
                .map(|h| h.number.clone()),
        }
        .ok_or_else(|| Error::invalid("hotline", "no such hotline is configured"))?;
        let channel = new.channel.unwrap_or(Channel::Phone);
        let state = WorkState::received(now, new.category.clone(), new.priority, &self.sla);
        let data = serde_json::json!({ "channel": channel, "hotline": hotline });
        let event = AuditEvent::created(actor, now, data);
        let day = self.sla.calendar().local_date(now);
        let sub = merge::Submission {
            content: new.content.clone(),
            category: new.category.clone(),
            location: new.location.clone(),
            at: now,
        };
        let decision = self.find_duplicates(&sub, None).await?;
        let suggestions = match &decision {
            Decision::Suggest(matches) => matches.clone(),
            _ => Vec::new(),
        };
        let inserted = self
            .store
            .insert_ticket(
                &new,
                &hotline,
                channel,
                day,
                &state,
                &event,
                origin,
                &suggestions,
            )
            .await?;
        match inserted {
            Inserted::New(ticket) => {
                tracing::info!(ticket = %ticket.number, channel = channel.as_str(), "ticket received");
                let ticket = match decision {
                    Decision::Merge(m) => {
                        tracing::info!(ticket = %ticket.number, into = %m.number, score = m.score, "duplicate merged automatically");
                        self.merge_into(
                            ticket.number.as_str(),
                            m.number.as_str(),
                            &merge_actor(),
                            now,
                        )
                        .await?
                        .0
                    }
                    Decision::Suggest(m) => {
                        tracing::info!(ticket = %ticket.number, best = %m[0].number, score = m[0].score, "possible duplicate: suggested to the agent");
                        *ticket
                    }
                    Decision::New => *ticket,
                };
                Ok(Intake {
                    ticket: present(ticket, actor),
                    replayed: false,
                    suggestions,
                })
            }
            Inserted::Existing(number) => {
                tracing::info!(ticket = %number, channel = channel.as_str(), "retried submission: ticket already made");
                Ok(Intake {
                    ticket: self.get(number.as_str(), actor).await?,
                    replayed: true,
                    suggestions: Vec::new(),
                })
            }
        }
    }

    /// The merge decision for a report about to be stored (or `exclude`, one just given its
    /// place), against the open tickets. A report that does not say where can never be merged
    /// automatically, so intake does not search for it: WeChat text comes first and its place
    /// later, and the search runs when the place arrives ([`Tickets::supplement`]); agents get
    /// suggestions for it on demand ([`Tickets::duplicates`]).
    async fn find_duplicates(
        &self,
        sub: &merge::Submission,
        exclude: Option<i64>,
    ) -> Result<Decision, Error> {
        if !self.merge.enabled || !merge::has_place(&sub.location) {
            return Ok(Decision::New);
        }
        let candidates = self
            .store
            .merge_candidates(sub, self.merge.window(), self.merge.distance_m, exclude)
            .await?;
        Ok(merge::decide(sub, &candidates, &self.merge))
    }

    /// After a supplement gave an open report its place: merge it or suggest its duplicates now.
    async fn merge_placed(&self, ticket: Ticket, now: Timestamp) -> Result<Ticket, Error> {
        if ticket.merged_into.is_some() || !ticket.work.status.is_open() {
            return Ok(ticket);
        }
        let sub = merge::Submission {
            content: ticket.content.clone(),
            category: ticket.work.category.clone(),
            location: ticket.location.clone(),
            at: ticket.created_at,
        };
        match self.find_duplicates(&sub, Some(ticket.id)).await? {
            Decision::Merge(m) => {
                tracing::info!(ticket = %ticket.number, into = %m.number, score = m.score, "duplicate merged automatically once placed");
                let (merged, _) = self
                    .merge_into(
                        ticket.number.as_str(),
                        m.number.as_str(),
                        &merge_actor(),
                        now,
                    )
                    .await?;
                Ok(merged)
            }
            Decision::Suggest(matches) => {
                self.store.add_suggestions(ticket.id, &matches, now).await?;
                Ok(ticket)
            }
            Decision::New => Ok(ticket),
        }
    }

    /// 并单: closes the report `number` into the open ticket `into` that handles the same
    /// problem. Every reporter of `number` becomes a reporter of `into` (each is told and called
    /// back), and at the configured count `into` becomes 紧急. Returns both tickets.
    pub async fn merge_into(
        &self,
        number: &str,
        into: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(Ticket, Ticket), Error> {
        let source = TicketNumber::parse(number).map_err(|_| Error::NotFound(number.to_owned()))?;
        let target = TicketNumber::parse(into).map_err(|_| Error::NotFound(into.to_owned()))?;
        if source == target {
            return Err(Error::invalid(
                "into",
                "a ticket cannot be merged into itself",
            ));
        }
        let policy = self.merge.clone();
        let done = self
            .store
            .merge_tickets(&source, &target, |s, t| {
                if !visible(s, actor) || !visible(t, actor) {
                    return Err(Error::NotFound(number.to_owned()));
                }
                if s.merged_into.is_some() {
                    return Err(Error::invalid(
                        "number",
                        format!("{number} is already merged"),
                    ));
                }
                if t.merged_into.is_some() {
                    return Err(Error::invalid(
                        "into",
                        format!("{into} was itself merged; merge into the ticket it went to"),
                    ));
                }
                let reports =
                    u32::try_from(t.reporters.len() + s.reporters.len()).unwrap_or(u32::MAX);
                let raise = merge::raises_priority(reports, &policy);
                Ok(workflow::merge(
                    &s.work,
                    &t.work,
                    actor,
                    now,
                    (number, into),
                    raise,
                )?)
            })
            .await?;
        let (s, t) = done.ok_or_else(|| Error::NotFound(format!("{number} or {into}")))?;
        tracing::info!(ticket = %s.number, into = %t.number, reports = t.reporters.len(), "ticket merged");
        Ok((present(s, actor), present(t, actor)))
    }

    /// 撤销并单: restores a merged report as it was before the merge and takes its reporters off
    /// the ticket it was merged into; both trails record it.
    pub async fn unmerge(
        &self,
        number: &str,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<(Ticket, TicketNumber), Error> {
        let source = TicketNumber::parse(number).map_err(|_| Error::NotFound(number.to_owned()))?;
        let done = self
            .store
            .unmerge_ticket(
                &source,
                |s, before| {
                    if !visible(s, actor) {
                        return Err(Error::NotFound(number.to_owned()));
                    }
                    let (Some(into), Some(before)) = (&s.merged_into, before) else {
                        return Err(Error::invalid("number", format!("{number} is not merged")));
                    };
                    Ok(workflow::unmerge(
                        &s.work,
                        before,
                        actor,
                        now,
                        into.as_str(),
                    )?)
                },
                |s, t| AuditEvent {
                    at: now,
                    actor_id: actor.id,
                    actor_name: actor.name.clone(),
                    role: actor.role,
                    action: ActionKind::Unmerge,
                    from: Some(t.work.status),
                    to: t.work.status,
                    note: Some(format!("工单 {} 撤销并入", s.number)),
                    data: serde_json::json!({ "removed": s.number }),
                },
            )
            .await?;
        let (ticket, from) = done.ok_or_else(|| Error::NotFound(number.to_owned()))?;
        tracing::info!(ticket = %ticket.number, from = %from, "merge undone");
        Ok((present(ticket, actor), from))
    }

    /// The possible duplicates of a ticket an agent has not decided on yet (`now` dates any
    /// found at this look).
    pub async fn duplicates(
        &self,
        number: &str,
        viewer: &Actor,
        now: Timestamp,
    ) -> Result<Vec<Suggestion>, Error> {
        let ticket = self.visible_ticket(number, viewer).await?;
        if self.merge.enabled
            && ticket.merged_into.is_none()
            && ticket.work.status.is_open()
            && !merge::has_place(&ticket.location)
        {
            // A report without a place was not searched at intake: look now, by category and
            // words, and keep what is found so the agent can confirm or reject it.
            let sub = merge::Submission {
                content: ticket.content.clone(),
                category: ticket.work.category.clone(),
                location: ticket.location.clone(),
                at: ticket.created_at,
            };
            let candidates = self
                .store
                .merge_candidates(
                    &sub,
                    self.merge.window(),
                    self.merge.distance_m,
                    Some(ticket.id),
                )
                .await?;
            // Without a place nothing scores high enough to merge unasked.
            let matches = match merge::decide(&sub, &candidates, &self.merge) {
                Decision::Suggest(matches) => matches,
                Decision::Merge(m) => vec![m],
                Decision::New => Vec::new(),
            };
            self.store.add_suggestions(ticket.id, &matches, now).await?;
        }
        Ok(self.store.suggestions(&ticket.number).await?)
    }

    /// The agent says `other` is not a duplicate of `number`.
    pub async fn reject_duplicate(
        &self,
        number: &str,
        other: &str,
        viewer: &Actor,
        now: Timestamp,
    ) -> Result<(), Error> {
        if !viewer.role.may_create_tickets() {
            return Err(Error::Forbidden(format!(
                "a user with role {} may not decide on duplicates",
                viewer.role
            )));
        }
        let ticket = self.visible_ticket(number, viewer).await?;
        let other = TicketNumber::parse(other).map_err(|_| Error::NotFound(other.to_owned()))?;
        if self
            .store
            .reject_suggestion(&ticket.number, &other, now)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "no open suggestion {other} for {number}"
            )))
        }
    }

    /// 补充: adds a citizen's further words, photos or place to their open report, audited; an
    /// `origin` key already used makes this a replay that changes nothing. A closed or rejected
    /// ticket is refused (the citizen should open a new report).
    pub async fn supplement(
        &self,
        number: &str,
        add: Supplement,
        origin: &Origin<'_>,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Supplementing, Error> {
        let mut add = add;
        if let Some(text) = &mut add.content {
            *text = text.trim().to_owned();
            if text.chars().count() > MAX_CONTENT_CHARS {
                return Err(Error::invalid(
                    "content",
                    format!("at most {MAX_CONTENT_CHARS} characters"),
                ));
            }
        }
        let probe = NewTicket {
            content: "-".into(),
            location: add.location.clone(),
            attachments: add.attachments.clone(),
            ..NewTicket::default()
        };
        self.validate(probe)?;
        let parsed = TicketNumber::parse(number).map_err(|_| Error::NotFound(number.to_owned()))?;
        let data = serde_json::json!({
            "content": add.content,
            "location": add.location,
            "attachments": add.attachments,
        });
        let note = add.content.clone().filter(|t| !t.is_empty());
        let done = self
            .store
            .supplement_ticket(&parsed, &add, origin, |ticket| {
                let added = add.content.as_deref().map_or(0, |t| t.chars().count());
                if added > 0 && ticket.content.chars().count() + added > 2 * MAX_CONTENT_CHARS {
                    return Err(Error::invalid(
                        "content",
                        "the report is as long as it may be; open a new one",
                    ));
                }
                Ok(workflow::supplement(&ticket.work, actor, now, note, data)?)
            })
            .await?;
        match done.ok_or_else(|| Error::NotFound(number.to_owned()))? {
            Supplemented::Done(ticket) => {
                tracing::info!(ticket = %ticket.number, "report supplemented");
                let ticket = if merge::has_place(&add.location) {
                    self.merge_placed(*ticket, now).await?
                } else {
                    *ticket
                };
                Ok(Supplementing {
                    ticket: present(ticket, actor),
                    replayed: false,
                })
            }
            Supplemented::Replayed(owner) => Ok(Supplementing {
                ticket: self.get(owner.as_str(), actor).await?,
                replayed: true,
            }),
        }
    }

    fn validate(&self, mut new: NewTicket) -> Result<NewTicket, Error> {
        new.content = new.content.trim().to_owned();
        if new.content.is_empty() {
            return Err(Error::invalid("content", "say what the problem is"));
        }
        if new.content.chars().count() > MAX_CONTENT_CHARS {
            return Err(Error::invalid(
                "content",
                format!("at most {MAX_CONTENT_CHARS} characters"),
            ));
        }
        if let Some(c) = &new.category {
            self.check_category(c)?;
        }
        let loc = &new.location;
        match (loc.lat, loc.lon) {
            (None, None) => {}
            (Some(lat), Some(lon)) => {
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return Err(Error::invalid(
                        "location",
                        "lat must be within ±90 and lon within ±180",
                    ));
                }
            }
            _ => {
                return Err(Error::invalid(
                    "location",
                    "give both lat and lon, or neither",
                ));
            }
        }
        if let Some(g) = &loc.grid_code
            && (g.is_empty() || g.len() > 20 || !g.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(Error::invalid(
                "location.grid_code",
                "a grid code is up to 20 digits",
            ));
        }
        if new
            .reporter
            .name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 64)
        {
            return Err(Error::invalid("reporter.name", "at most 64 characters"));
        }
        if new.attachments.iter().any(|a| a.uri.trim().is_empty()) {
            return Err(Error::invalid(
                "attachments",
                "every attachment needs a uri",
            ));
        }
        Ok(new)
    }

    fn check_category(&self, id: &str) -> Result<(), Error> {
        if self.catalogue.get(id.trim()).is_none() {
            return Err(Error::invalid(
                "category",
                format!("category `{id}` is not in config/categories.toml"),
            ));
        }
        Ok(())
    }

    /// One ticket as `viewer` may see it: department users only their own department's, and phone
    /// numbers masked for roles that do not call back.
    pub async fn get(&self, number: &str, viewer: &Actor) -> Result<Ticket, Error> {
        Ok(present(self.visible_ticket(number, viewer).await?, viewer))
    }

    /// The audit trail of a ticket `viewer` may see.
    pub async fn history(&self, number: &str, viewer: &Actor) -> Result<Vec<AuditEvent>, Error> {
        let ticket = self.visible_ticket(number, viewer).await?;
        Ok(self.store.events(ticket.id).await?)
    }

    async fn visible_ticket(&self, number: &str, viewer: &Actor) -> Result<Ticket, Error> {
        let parsed = TicketNumber::parse(number).map_err(|_| Error::NotFound(number.to_owned()))?;
        self.store
            .ticket(&parsed)
            .await?
            .filter(|t| visible(t, viewer))
            .ok_or_else(|| Error::NotFound(number.to_owned()))
    }

    /// Searches tickets; a department user's search is always limited to their department.
    pub async fn list(
        &self,
        mut filter: TicketFilter,
        viewer: &Actor,
        now: Timestamp,
    ) -> Result<Page<TicketSummary>, Error> {
        if viewer.role == Role::Department {
            filter.department = Some(viewer.department.clone().unwrap_or_default());
        }
        Ok(self.store.list_tickets(&filter, now).await?)
    }

    /// Takes one workflow step on a ticket and returns it changed, with the audit event written.
    pub async fn act(
        &self,
        number: &str,
        actor: &Actor,
        action: &Action,
        now: Timestamp,
    ) -> Result<(Ticket, AuditEvent), Error> {
        match action {
            Action::File {
                category: Some(c), ..
            } => self.check_category(c)?,
            Action::Dispatch { department, .. }
                if self.directory.get(department.trim()).is_none() =>
            {
                return Err(Error::invalid(
                    "department",
                    format!("department `{department}` is not in config/departments.toml"),
                ));
            }
            _ => {}
        }
        let parsed = TicketNumber::parse(number).map_err(|_| Error::NotFound(number.to_owned()))?;
        let changed = self
            .store
            .change_ticket(&parsed, |ticket| {
                if !visible(ticket, actor) {
                    return Err(Error::NotFound(number.to_owned()));
                }
                let facts = workflow::Facts {
                    reporters: u32::try_from(ticket.reporters.len()).unwrap_or(u32::MAX),
                };
                Ok(workflow::apply_with(
                    &ticket.work,
                    facts,
                    actor,
                    action,
                    now,
                    &self.sla,
                )?)
            })
            .await?;
        let (ticket, event) = changed.ok_or_else(|| Error::NotFound(number.to_owned()))?;
        tracing::info!(ticket = %ticket.number, action = event.action.as_str(), to = event.to.as_str(), "ticket changed");
        Ok((present(ticket, actor), event))
    }
}

/// What [`Tickets::intake_once`] did.
#[derive(Debug, Clone)]
pub struct Intake {
    /// The ticket, new or the one a retried submission made before.
    pub ticket: Ticket,
    /// The submission's key had been used: nothing new was stored.
    pub replayed: bool,
    /// Open tickets that may report the same problem, for the agent to confirm or reject (the
    /// middle band of the merge decision). An automatic merge shows in `ticket.merged_into`.
    pub suggestions: Vec<Match>,
}

/// What [`Tickets::supplement`] did.
#[derive(Debug, Clone)]
pub struct Supplementing {
    /// The ticket as it is now.
    pub ticket: Ticket,
    /// The key had been used: nothing new was stored.
    pub replayed: bool,
}

/// Who automatic merges are recorded as.
fn merge_actor() -> Actor {
    Actor {
        id: 0,
        name: "自动并单".into(),
        role: Role::Agent,
        department: None,
    }
}

fn visible(ticket: &Ticket, viewer: &Actor) -> bool {
    viewer.role != Role::Department
        || (viewer.department.is_some() && ticket.work.department == viewer.department)
}

fn present(ticket: Ticket, viewer: &Actor) -> Ticket {
    if viewer.role.sees_phone_numbers() {
        ticket
    } else {
        ticket.masked()
    }
}
