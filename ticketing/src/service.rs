//! [`Tickets`]: the one intake every channel calls, and the one way to change, read and search
//! tickets. It checks what the workflow cannot know (categories, departments, hotlines, who may see
//! what) and leaves the rest to [`workflow::apply`] and the store.

use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::category::Catalogue;
use crate::department::Directory;
use crate::model::{Channel, NewTicket, Ticket, TicketNumber};
use crate::sla::Sla;
use crate::store::{
    Inserted, Origin, Page, Store, StoreError, Supplement, Supplemented, TicketFilter,
    TicketSummary,
};
use crate::workflow::{self, Action, Actor, AuditEvent, Role, WorkState, WorkflowError};

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
    sla: Arc<Sla>,
    catalogue: Arc<Catalogue>,
    directory: Arc<Directory>,
    hotlines: Arc<Vec<Hotline>>,
}

const MAX_CONTENT_CHARS: usize = 5000;

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
            sla: Arc::new(sla),
            catalogue: Arc::new(catalogue),
            directory: Arc::new(directory),
            hotlines: Arc::new(hotlines),
        }
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
        let new = self.validate(new)?;
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
        let inserted = self
            .store
            .insert_ticket(&new, &hotline, channel, day, &state, &event, origin)
            .await?;
        match inserted {
            Inserted::New(ticket) => {
                tracing::info!(ticket = %ticket.number, channel = channel.as_str(), "ticket received");
                Ok(Intake {
                    ticket: present(*ticket, actor),
                    replayed: false,
                })
            }
            Inserted::Existing(number) => {
                tracing::info!(ticket = %number, channel = channel.as_str(), "retried submission: ticket already made");
                Ok(Intake {
                    ticket: self.get(number.as_str(), actor).await?,
                    replayed: true,
                })
            }
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
                Ok(Supplementing {
                    ticket: present(*ticket, actor),
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
                Ok(workflow::apply(
                    &ticket.work,
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
}

/// What [`Tickets::supplement`] did.
#[derive(Debug, Clone)]
pub struct Supplementing {
    /// The ticket as it is now.
    pub ticket: Ticket,
    /// The key had been used: nothing new was stored.
    pub replayed: bool,
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
