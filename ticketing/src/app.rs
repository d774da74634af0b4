//! What the city app asks of tickets, through [`Tickets`]: a citizen's own reports as they may see
//! them (their words, where it stands, the steps in plain words, never staff notes or who did
//! what) and their rating (评价) of a closed one. A ticket the citizen did not report is "not
//! found", whatever its number.

use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::citizens::{self, Rating, RatingError};
use crate::model::{Ticket, TicketNumber};
use crate::service::{Error, Tickets};
use crate::store::{Citizen, Page, ReporterKey, StoredRating, TicketFilter};
use crate::workflow::Status;

/// One of a citizen's reports, as the app lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CitizenTicketSummary {
    /// The ticket number.
    pub number: TicketNumber,
    /// Where it stands (the workflow's code).
    pub status: Status,
    /// Where it stands, in plain words.
    pub status_text: &'static str,
    /// The category's name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_name: Option<String>,
    /// The first 120 characters of what they said.
    pub excerpt: String,
    /// Where, as they said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// When it was received.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// One step of a report, told to its reporter.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CitizenStep {
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// What happened, in plain words.
    pub step: &'static str,
    /// Where it stood after, in plain words.
    pub status_text: &'static str,
}

/// A citizen's report in full, as they may see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CitizenTicket {
    /// The ticket number.
    pub number: TicketNumber,
    /// Where it stands (the workflow's code).
    pub status: Status,
    /// Where it stands, in plain words.
    pub status_text: &'static str,
    /// Category code (suggested from the words when the citizen chose none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The category's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_name: Option<String>,
    /// What they said.
    pub content: String,
    /// Where, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// WGS-84 latitude (given, or read from a photo).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    /// WGS-84 longitude.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    /// How many photos are attached.
    pub photos: usize,
    /// The ticket that handles the same problem, when this report was merged into it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<TicketNumber>,
    /// When it was received.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// The steps so far, oldest first.
    pub history: Vec<CitizenStep>,
    /// Their rating, once given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<StoredRating>,
    /// Whether they may rate it now (closed and not yet rated).
    pub may_rate: bool,
}

/// Why a rating was not stored.
#[derive(Debug, thiserror::Error)]
pub enum RateError {
    /// The rating or the ticket's state refused it.
    #[error(transparent)]
    Refused(#[from] RatingError),
    /// Not found, or storage failed.
    #[error(transparent)]
    Ticket(#[from] Error),
}

impl Tickets {
    /// The reports `citizen` made in the app, newest first.
    pub async fn citizen_tickets(
        &self,
        citizen: &Citizen,
        page: u32,
        per_page: u32,
        now: Timestamp,
    ) -> Result<Page<CitizenTicketSummary>, Error> {
        let filter = TicketFilter {
            reporter: Some(ReporterKey::App(citizen.app_user())),
            page: page.max(1),
            per_page: per_page.clamp(1, 100),
            ..TicketFilter::default()
        };
        let found = self.store().list_tickets(&filter, now).await?;
        Ok(Page {
            items: found
                .items
                .into_iter()
                .map(|t| CitizenTicketSummary {
                    status_text: citizens::status_for_citizens(t.status),
                    category_name: t.category.as_deref().and_then(|c| self.category_name(c)),
                    number: t.number,
                    status: t.status,
                    excerpt: t.excerpt,
                    address: t.address,
                    created_at: t.created_at,
                })
                .collect(),
            total: found.total,
            page: found.page,
            per_page: found.per_page,
        })
    }

    /// One of `citizen`'s reports with its steps in plain words and their rating.
    pub async fn citizen_ticket(
        &self,
        citizen: &Citizen,
        number: &str,
    ) -> Result<CitizenTicket, Error> {
        let ticket = self.own_ticket(citizen, number).await?;
        let history = self
            .store()
            .events(ticket.id)
            .await?
            .into_iter()
            .filter_map(|e| {
                citizens::step_for_citizens(e.action, e.to).map(|step| CitizenStep {
                    at: e.at,
                    step,
                    status_text: citizens::status_for_citizens(e.to),
                })
            })
            .collect();
        let rating = self.store().rating(ticket.id, citizen.id).await?;
        let status = ticket.work.status;
        Ok(CitizenTicket {
            number: ticket.number.clone(),
            status,
            status_text: citizens::status_for_citizens(status),
            category_name: ticket
                .work
                .category
                .as_deref()
                .and_then(|c| self.category_name(c)),
            category: ticket.work.category.clone(),
            content: ticket.content.clone(),
            address: ticket.location.address.clone(),
            lat: ticket.location.lat,
            lon: ticket.location.lon,
            photos: ticket.attachments.len(),
            may_rate: rating.is_none() && status == Status::Closed && ticket.merged_into.is_none(),
            merged_into: ticket.merged_into.clone(),
            created_at: ticket.created_at,
            history,
            rating,
        })
    }

    /// 评价: `citizen` rates the result of their closed report, once. Audited in the general log
    /// (`ticket.rate` on `ticket:<number>`) in the rating's transaction.
    pub async fn rate(
        &self,
        citizen: &Citizen,
        number: &str,
        rating: &Rating,
        now: Timestamp,
    ) -> Result<StoredRating, RateError> {
        let ticket = self.own_ticket(citizen, number).await?;
        let checked = rating.check(ticket.work.status, ticket.merged_into.is_some())?;
        let stored = self
            .store()
            .add_rating(ticket.id, &ticket.number, citizen.id, &checked, now)
            .await
            .map_err(Error::from)?;
        if !stored {
            return Err(RatingError::AlreadyRated.into());
        }
        tracing::info!(ticket = %ticket.number, stars = checked.stars, "citizen rated the result");
        Ok(StoredRating {
            stars: checked.stars,
            comment: checked.comment,
            rated_at: now,
        })
    }

    async fn own_ticket(&self, citizen: &Citizen, number: &str) -> Result<Ticket, Error> {
        let parsed = TicketNumber::parse(number).map_err(|_| Error::NotFound(number.to_owned()))?;
        let app_user = citizen.app_user();
        self.store()
            .ticket(&parsed)
            .await?
            .filter(|t| {
                t.reporters
                    .iter()
                    .any(|r| r.app_user.as_deref() == Some(app_user.as_str()))
            })
            .ok_or_else(|| Error::NotFound(number.to_owned()))
    }

    fn category_name(&self, id: &str) -> Option<String> {
        self.catalogue().get(id).map(|c| c.name.clone())
    }
}
