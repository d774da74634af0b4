//! The workflow (流程): one state machine for every ticket, enforced in [`apply`].
//!
//! ```text
//! 受理 received ──立案 file──▶ filed ──派遣 dispatch──▶ dispatched ──签收 accept──▶ in_progress
//!    │  └─不予立案 reject─▶ rejected           ▲              │ 退单 return            │ 办结 complete
//!    └─直接办结 answer_on_spot─┐          returned ◀──────────┴────────────────────────┤
//!                              ▼                                                       ▼
//!     closed ◀─结案 close─ awaiting_close ◀─回访 callback─ awaiting_callback ◀─核查 verify─ completed
//!                                        (不满意 reopens: back to dispatched)    (fail: 返工, back to in_progress)
//! ```
//! 延期 (request_extension → decide_extension) and 督办 (escalate) change no status; they move or
//! mark the running clock. Sans-IO: `now` is passed in, and the SLA policy computes due times.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{Priority, UnknownCode};
use crate::sla::{Sla, Stage};

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 待立案: received, waiting for the centre's decision.
    Received,
    /// 不予立案: not a case (reason recorded). Final.
    Rejected,
    /// 待派遣: a case, waiting to be sent to a department.
    Filed,
    /// 待签收: sent to a department that has not acknowledged it.
    Dispatched,
    /// 处置中: the department signed for it and is working on it.
    InProgress,
    /// 已退单: the department gave it back; the dispatcher must send it again.
    Returned,
    /// 待核查: the department reports it done.
    Completed,
    /// 待回访: checked (or answered on the spot); the citizen is to be asked.
    AwaitingCallback,
    /// 待结案: the citizen is satisfied.
    AwaitingClose,
    /// 已结案. Final.
    Closed,
}

impl Status {
    /// Every status in workflow order.
    pub const ALL: [Status; 10] = [
        Status::Received,
        Status::Rejected,
        Status::Filed,
        Status::Dispatched,
        Status::InProgress,
        Status::Returned,
        Status::Completed,
        Status::AwaitingCallback,
        Status::AwaitingClose,
        Status::Closed,
    ];

    /// The stable code stored in the database and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Rejected => "rejected",
            Status::Filed => "filed",
            Status::Dispatched => "dispatched",
            Status::InProgress => "in_progress",
            Status::Returned => "returned",
            Status::Completed => "completed",
            Status::AwaitingCallback => "awaiting_callback",
            Status::AwaitingClose => "awaiting_close",
            Status::Closed => "closed",
        }
    }

    /// The name users see.
    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Received => "待立案",
            Status::Rejected => "不予立案",
            Status::Filed => "待派遣",
            Status::Dispatched => "待签收",
            Status::InProgress => "处置中",
            Status::Returned => "已退单",
            Status::Completed => "待核查",
            Status::AwaitingCallback => "待回访",
            Status::AwaitingClose => "待结案",
            Status::Closed => "已结案",
        }
    }

    /// False for the two final statuses.
    pub fn is_open(self) -> bool {
        !matches!(self, Status::Rejected | Status::Closed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownCode::new("status", s))
    }
}

/// What a user is allowed to do is decided by their role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 受理员: takes calls and messages, files and dispatches (三岗合一), calls citizens back.
    Agent,
    /// 派遣员: files and dispatches, escalates.
    Dispatcher,
    /// 专业部门: signs for, returns and completes its own department's tickets.
    Department,
    /// 值班长/监督员: verifies, decides extensions, escalates, closes.
    Supervisor,
    /// Manages users and configuration; reads everything, changes no ticket.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Agent,
        Role::Dispatcher,
        Role::Department,
        Role::Supervisor,
        Role::Admin,
    ];

    /// The stable code stored in the database and used in the API and CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Dispatcher => "dispatcher",
            Role::Department => "department",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may see citizens' full phone numbers (to call them back).
    pub fn sees_phone_numbers(self) -> bool {
        matches!(self, Role::Agent | Role::Supervisor | Role::Admin)
    }

    /// Whether this role may open tickets (受理).
    pub fn may_create_tickets(self) -> bool {
        matches!(self, Role::Agent | Role::Dispatcher | Role::Supervisor)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownCode::new("role", s))
    }
}

/// The person acting, as the audit trail records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// User id.
    pub id: i64,
    /// Display name at the time of acting.
    pub name: String,
    /// Role at the time of acting.
    pub role: Role,
    /// For department users: the department they act for.
    pub department: Option<String>,
}

/// 回访 result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// 满意.
    Satisfied,
    /// 基本满意.
    BasicallySatisfied,
    /// 不满意: reopens the ticket.
    Dissatisfied,
    /// 无法联系: the reporter could not be reached after the centre's tries (回访未成功). Counts
    /// as asked, so the ticket can be closed; it is not a 回访成功 for the 满意率.
    Unreachable,
}

/// A request to move a ticket, with what that step needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// 立案. May set or correct the category and priority; a category is required by then.
    File {
        #[serde(default)]
        category: Option<String>,
        #[serde(default)]
        priority: Option<Priority>,
        #[serde(default)]
        note: Option<String>,
    },
    /// 不予立案, with the reason.
    Reject { reason: String },
    /// 直接办结: answered during the call (a consultation); goes on to 回访.
    AnswerOnSpot { answer: String },
    /// 派遣 to a department.
    Dispatch {
        department: String,
        #[serde(default)]
        note: Option<String>,
    },
    /// 签收 by the department.
    Accept {
        #[serde(default)]
        note: Option<String>,
    },
    /// 退单: the department gives it back, with the reason (属地不符, 权属不清, 职能交叉...).
    Return { reason: String },
    /// 办结: the department reports the work done, with a note and optional photos.
    Complete {
        note: String,
        #[serde(default)]
        photos: Vec<String>,
    },
    /// 核查: pass goes on to 回访; fail sends it back to the department (返工).
    Verify {
        passed: bool,
        #[serde(default)]
        note: Option<String>,
    },
    /// 延期申请: the department asks for a later 处置 deadline, before the current one passes.
    RequestExtension {
        #[schema(value_type = String, format = DateTime)]
        until: Timestamp,
        reason: String,
    },
    /// 延期审批 by a supervisor.
    DecideExtension {
        approve: bool,
        #[serde(default)]
        note: Option<String>,
    },
    /// 督办: escalation of an overdue ticket.
    Escalate {
        #[serde(default)]
        note: Option<String>,
    },
    /// 回访 result of one reporter. A merged ticket has several: each is asked, by index in the
    /// ticket's reporters (default: the first not yet asked), and the ticket moves on when every
    /// one has answered, or at once when one is not satisfied.
    Callback {
        result: Satisfaction,
        #[serde(default)]
        note: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reporter: Option<u32>,
    },
    /// 结案.
    Close {
        #[serde(default)]
        note: Option<String>,
    },
}

/// The name of a step, as the audit trail and permission table use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// 受理: the ticket was opened.
    Create,
    /// 立案.
    File,
    /// 不予立案.
    Reject,
    /// 直接办结.
    AnswerOnSpot,
    /// 派遣.
    Dispatch,
    /// 签收.
    Accept,
    /// 退单.
    Return,
    /// 办结.
    Complete,
    /// 核查.
    Verify,
    /// 延期申请.
    RequestExtension,
    /// 延期审批.
    DecideExtension,
    /// 督办.
    Escalate,
    /// 回访.
    Callback,
    /// 结案.
    Close,
    /// 补充: the citizen added words, photos or a place to an open report (no status change).
    Supplement,
    /// 并单: a duplicate report closed into the ticket that handles the problem (both trails).
    Merge,
    /// 撤销并单: a merge undone; the report is restored as it was.
    Unmerge,
}

impl ActionKind {
    /// Every step that [`apply`] handles (everything but `Create`).
    pub const TRANSITIONS: [ActionKind; 13] = [
        ActionKind::File,
        ActionKind::Reject,
        ActionKind::AnswerOnSpot,
        ActionKind::Dispatch,
        ActionKind::Accept,
        ActionKind::Return,
        ActionKind::Complete,
        ActionKind::Verify,
        ActionKind::RequestExtension,
        ActionKind::DecideExtension,
        ActionKind::Escalate,
        ActionKind::Callback,
        ActionKind::Close,
    ];

    /// The stable code stored in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Create => "create",
            ActionKind::File => "file",
            ActionKind::Reject => "reject",
            ActionKind::AnswerOnSpot => "answer_on_spot",
            ActionKind::Dispatch => "dispatch",
            ActionKind::Accept => "accept",
            ActionKind::Return => "return",
            ActionKind::Complete => "complete",
            ActionKind::Verify => "verify",
            ActionKind::RequestExtension => "request_extension",
            ActionKind::DecideExtension => "decide_extension",
            ActionKind::Escalate => "escalate",
            ActionKind::Callback => "callback",
            ActionKind::Close => "close",
            ActionKind::Supplement => "supplement",
            ActionKind::Merge => "merge",
            ActionKind::Unmerge => "unmerge",
        }
    }

    /// The name users see.
    pub fn label_zh(self) -> &'static str {
        match self {
            ActionKind::Create => "受理",
            ActionKind::File => "立案",
            ActionKind::Reject => "不予立案",
            ActionKind::AnswerOnSpot => "直接办结",
            ActionKind::Dispatch => "派遣",
            ActionKind::Accept => "签收",
            ActionKind::Return => "退单",
            ActionKind::Complete => "办结",
            ActionKind::Verify => "核查",
            ActionKind::RequestExtension => "延期申请",
            ActionKind::DecideExtension => "延期审批",
            ActionKind::Escalate => "督办",
            ActionKind::Callback => "回访",
            ActionKind::Close => "结案",
            ActionKind::Supplement => "补充",
            ActionKind::Merge => "并单",
            ActionKind::Unmerge => "撤销并单",
        }
    }

    /// The permission table: which roles may take this step at all.
    pub fn permitted(self, role: Role) -> bool {
        use ActionKind as A;
        use Role as R;
        match self {
            A::Create
            | A::Supplement
            | A::Merge
            | A::Unmerge
            | A::File
            | A::Reject
            | A::AnswerOnSpot
            | A::Dispatch => {
                matches!(role, R::Agent | R::Dispatcher | R::Supervisor)
            }
            A::Accept | A::Return | A::Complete | A::RequestExtension => role == R::Department,
            A::Verify | A::DecideExtension | A::Close => role == R::Supervisor,
            A::Escalate => matches!(role, R::Dispatcher | R::Supervisor),
            A::Callback => matches!(role, R::Agent | R::Supervisor),
        }
    }

    /// The status table: in which statuses this step can be taken at all.
    pub fn legal_in(self, status: Status) -> bool {
        use ActionKind as A;
        use Status as S;
        match self {
            A::Create => false,
            A::Supplement | A::Merge => status.is_open(),
            A::Unmerge => status == S::Closed,
            A::File | A::Reject | A::AnswerOnSpot => status == S::Received,
            A::Dispatch => matches!(status, S::Filed | S::Returned),
            A::Accept => status == S::Dispatched,
            A::Return => matches!(status, S::Dispatched | S::InProgress),
            A::Complete | A::RequestExtension | A::DecideExtension => status == S::InProgress,
            A::Verify => status == S::Completed,
            A::Escalate => status.is_open(),
            A::Callback => status == S::AwaitingCallback,
            A::Close => status == S::AwaitingClose,
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActionKind {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ActionKind::Create,
            ActionKind::Supplement,
            ActionKind::Merge,
            ActionKind::Unmerge,
        ]
        .into_iter()
        .chain(ActionKind::TRANSITIONS)
        .find(|x| x.as_str() == s)
        .ok_or_else(|| UnknownCode::new("action", s))
    }
}

impl Action {
    /// The step this request asks for.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::File { .. } => ActionKind::File,
            Action::Reject { .. } => ActionKind::Reject,
            Action::AnswerOnSpot { .. } => ActionKind::AnswerOnSpot,
            Action::Dispatch { .. } => ActionKind::Dispatch,
            Action::Accept { .. } => ActionKind::Accept,
            Action::Return { .. } => ActionKind::Return,
            Action::Complete { .. } => ActionKind::Complete,
            Action::Verify { .. } => ActionKind::Verify,
            Action::RequestExtension { .. } => ActionKind::RequestExtension,
            Action::DecideExtension { .. } => ActionKind::DecideExtension,
            Action::Escalate { .. } => ActionKind::Escalate,
            Action::Callback { .. } => ActionKind::Callback,
            Action::Close { .. } => ActionKind::Close,
        }
    }

    /// The free text the audit trail keeps as the step's note.
    pub fn note(&self) -> Option<&str> {
        let text = match self {
            Action::Reject { reason } | Action::Return { reason } => Some(reason),
            Action::AnswerOnSpot { answer } => Some(answer),
            Action::Complete { note, .. } => Some(note),
            Action::RequestExtension { reason, .. } => Some(reason),
            Action::File { note, .. }
            | Action::Dispatch { note, .. }
            | Action::Accept { note }
            | Action::Verify { note, .. }
            | Action::DecideExtension { note, .. }
            | Action::Escalate { note }
            | Action::Callback { note, .. }
            | Action::Close { note } => note.as_ref(),
        };
        text.map(String::as_str).filter(|t| !t.trim().is_empty())
    }
}

/// One stage's clock: when it started, when it is due, when it finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StageClock {
    /// Which stage.
    pub stage: Stage,
    /// When the clock started.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// When the stage is due (moved only by an approved 延期).
    #[schema(value_type = String, format = DateTime)]
    pub due: Timestamp,
    /// When the stage ended; `None` while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
}

impl StageClock {
    /// 按期: finished no later than due. `None` while it runs.
    pub fn on_time(&self) -> Option<bool> {
        self.finished_at.map(|f| f <= self.due)
    }

    /// Whether the clock runs past its due time at `now`.
    pub fn overdue_at(&self, now: Timestamp) -> bool {
        match self.finished_at {
            None => now > self.due,
            Some(f) => f > self.due,
        }
    }
}

/// A department's pending 延期 request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExtensionRequest {
    /// The deadline asked for.
    #[schema(value_type = String, format = DateTime)]
    pub until: Timestamp,
    /// Why.
    pub reason: String,
    /// When it was asked.
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: Timestamp,
    /// Who asked (user id).
    pub requested_by: i64,
}

/// How often things went around the loop; the indicators (返工率, 退单率...) count these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counters {
    /// 督办 count.
    pub escalations: u32,
    /// 返工: failed 核查.
    pub reworks: u32,
    /// 退单.
    pub returns: u32,
    /// Reopened after an unsatisfied 回访.
    pub reopens: u32,
    /// Approved 延期.
    pub extensions: u32,
}

/// The part of a ticket the workflow owns. Only [`apply`] produces a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkState {
    /// Where the ticket stands.
    pub status: Status,
    /// 紧急 or 一般.
    pub priority: Priority,
    /// Category ID.
    pub category: Option<String>,
    /// The department it is dispatched to.
    pub department: Option<String>,
    /// Every stage clock so far, oldest first; the last one runs unless finished.
    pub clocks: Vec<StageClock>,
    /// A 延期 request waiting for a supervisor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<ExtensionRequest>,
    /// Loop counters.
    pub counters: Counters,
    /// The last 回访 result (of a merged ticket: the least satisfied of its reporters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfaction: Option<Satisfaction>,
    /// The 回访 answers of the current round, one per reporter asked so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callbacks: Vec<CallbackAnswer>,
}

/// One reporter's 回访 answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CallbackAnswer {
    /// Index in the ticket's reporters.
    pub reporter: u32,
    /// What they said.
    pub result: Satisfaction,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

/// What a step may need to know about the ticket beyond the workflow's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// How many reporters the ticket has (more than one after a merge): each is called back.
    pub reporters: u32,
}

impl Default for Facts {
    fn default() -> Self {
        Facts { reporters: 1 }
    }
}

impl WorkState {
    /// A ticket just received (受理) at `now`: the 立案 clock starts.
    pub fn received(
        now: Timestamp,
        category: Option<String>,
        priority: Priority,
        sla: &Sla,
    ) -> WorkState {
        let mut state = WorkState {
            status: Status::Received,
            priority,
            category,
            department: None,
            clocks: Vec::new(),
            extension: None,
            counters: Counters::default(),
            satisfaction: None,
            callbacks: Vec::new(),
        };
        state.start(Stage::File, now, sla);
        state
    }

    /// The clock that runs now, if any.
    pub fn running_clock(&self) -> Option<&StageClock> {
        self.clocks.last().filter(|c| c.finished_at.is_none())
    }

    /// When the running stage is due.
    pub fn current_due(&self) -> Option<Timestamp> {
        self.running_clock().map(|c| c.due)
    }

    /// Whether the running stage is past its due time.
    pub fn is_overdue(&self, now: Timestamp) -> bool {
        self.running_clock().is_some_and(|c| c.overdue_at(now))
    }

    fn start(&mut self, stage: Stage, now: Timestamp, sla: &Sla) {
        let due = sla.due(stage, self.category.as_deref(), self.priority, now);
        self.clocks.push(StageClock {
            stage,
            started_at: now,
            due,
            finished_at: None,
        });
    }

    fn finish(&mut self, now: Timestamp) {
        if let Some(clock) = self.clocks.last_mut().filter(|c| c.finished_at.is_none()) {
            clock.finished_at = Some(now);
        }
    }
}

/// One line of the audit trail, written in the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Who (user id).
    pub actor_id: i64,
    /// Who (name at the time).
    pub actor_name: String,
    /// In which role.
    pub role: Role,
    /// What step.
    pub action: ActionKind,
    /// Status before; `None` for the creation.
    pub from: Option<Status>,
    /// Status after.
    pub to: Status,
    /// Reason, answer or remark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The whole request, for the record (department, photos, new deadline...).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl AuditEvent {
    /// The event that records a ticket's creation.
    pub fn created(actor: &Actor, now: Timestamp, data: serde_json::Value) -> AuditEvent {
        AuditEvent {
            at: now,
            actor_id: actor.id,
            actor_name: actor.name.clone(),
            role: actor.role,
            action: ActionKind::Create,
            from: None,
            to: Status::Received,
            note: None,
            data,
        }
    }
}

/// The outcome of an accepted step: the new state and the event that records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The ticket's workflow state after the step.
    pub state: WorkState,
    /// What to append to the audit trail.
    pub event: AuditEvent,
}

/// Why a step was refused. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkflowError {
    /// The role may never take this step.
    #[error("a user with role {role} may not {action} a ticket")]
    Forbidden { role: Role, action: ActionKind },
    /// A department user acting on another department's ticket.
    #[error("this ticket is not dispatched to your department")]
    NotYourDepartment,
    /// The step does not exist from this status.
    #[error("cannot {action} a ticket that is {status}")]
    IllegalInStatus { action: ActionKind, status: Status },
    /// A required field is missing or blank.
    #[error("{field} is required to {action} a ticket")]
    Missing {
        action: ActionKind,
        field: &'static str,
    },
    /// 督办 of a ticket whose clock has not run out.
    #[error("only an overdue ticket can be escalated; this one is due at {due}")]
    NotOverdue { due: String },
    /// A second 延期 request while one waits.
    #[error("an extension request is already waiting for a decision")]
    ExtensionPending,
    /// 延期审批 with nothing to decide.
    #[error("there is no extension request to decide")]
    NoExtensionPending,
    /// 延期 asked after the deadline.
    #[error("an extension must be requested before the deadline ({due})")]
    ExtensionTooLate { due: String },
    /// 延期 to a time no later than the current deadline.
    #[error("the requested deadline must be later than the current one ({due})")]
    ExtensionNotLater { due: String },
    /// 回访 of a reporter the ticket does not have.
    #[error("the ticket has {reporters} reporter(s); there is no reporter {reporter}")]
    NoSuchReporter { reporter: u32, reporters: u32 },
    /// 回访 of a reporter who already answered in this round.
    #[error("reporter {reporter} has already been called back")]
    AlreadyCalledBack { reporter: u32 },
}

impl WorkflowError {
    /// A stable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            WorkflowError::Forbidden { .. } => "forbidden_action",
            WorkflowError::NotYourDepartment => "not_your_department",
            WorkflowError::IllegalInStatus { .. } => "illegal_transition",
            WorkflowError::Missing { .. } => "missing_field",
            WorkflowError::NotOverdue { .. } => "not_overdue",
            WorkflowError::ExtensionPending => "extension_pending",
            WorkflowError::NoExtensionPending => "no_extension_pending",
            WorkflowError::ExtensionTooLate { .. } => "extension_too_late",
            WorkflowError::ExtensionNotLater { .. } => "extension_not_later",
            WorkflowError::NoSuchReporter { .. } => "no_such_reporter",
            WorkflowError::AlreadyCalledBack { .. } => "already_called_back",
        }
    }
}

fn required(text: &str, action: ActionKind, field: &'static str) -> Result<(), WorkflowError> {
    if text.trim().is_empty() {
        Err(WorkflowError::Missing { action, field })
    } else {
        Ok(())
    }
}

/// The steps `actor` could take on a ticket in `state` now (for menus and buttons). A step listed
/// here may still be refused for its content (a blank reason, a deadline too early).
pub fn available(state: &WorkState, actor: &Actor, now: Timestamp) -> Vec<ActionKind> {
    ActionKind::TRANSITIONS
        .into_iter()
        .filter(|&kind| precheck(state, actor, kind).is_ok())
        .filter(|&kind| match kind {
            ActionKind::Escalate => state.is_overdue(now),
            ActionKind::DecideExtension => state.extension.is_some(),
            ActionKind::RequestExtension => {
                state.extension.is_none() && state.current_due().is_some_and(|d| now <= d)
            }
            _ => true,
        })
        .collect()
}

fn precheck(state: &WorkState, actor: &Actor, kind: ActionKind) -> Result<(), WorkflowError> {
    if !kind.permitted(actor.role) {
        return Err(WorkflowError::Forbidden {
            role: actor.role,
            action: kind,
        });
    }
    if actor.role == Role::Department
        && (actor.department.is_none() || state.department != actor.department)
    {
        return Err(WorkflowError::NotYourDepartment);
    }
    if !kind.legal_in(state.status) {
        return Err(WorkflowError::IllegalInStatus {
            action: kind,
            status: state.status,
        });
    }
    Ok(())
}

/// 补充: the audit event for a citizen adding to an open report (words, photos, a place). The
/// status does not change; a closed or rejected ticket is refused.
pub fn supplement(
    state: &WorkState,
    actor: &Actor,
    now: Timestamp,
    note: Option<String>,
    data: serde_json::Value,
) -> Result<AuditEvent, WorkflowError> {
    precheck(state, actor, ActionKind::Supplement)?;
    Ok(AuditEvent {
        at: now,
        actor_id: actor.id,
        actor_name: actor.name.clone(),
        role: actor.role,
        action: ActionKind::Supplement,
        from: Some(state.status),
        to: state.status,
        note,
        data,
    })
}

/// 并单: what merging the report `source` into the ticket `target` does to each. The source is
/// closed (its clock stops) and its trail says where it went, keeping the state it had so an
/// unmerge can restore it; the target's trail records the new report and, when `raise` is set
/// (the configured report count is reached), the target becomes 紧急.
pub fn merge(
    source: &WorkState,
    target: &WorkState,
    actor: &Actor,
    now: Timestamp,
    names: (&str, &str),
    raise: bool,
) -> Result<(Transition, Transition), WorkflowError> {
    precheck(source, actor, ActionKind::Merge)?;
    precheck(target, actor, ActionKind::Merge)?;
    let (source_number, target_number) = names;
    let mut closed = source.clone();
    closed.finish(now);
    closed.status = Status::Closed;
    let mut kept = target.clone();
    let raised = raise && kept.priority == Priority::Normal;
    if raised {
        kept.priority = Priority::Urgent;
    }
    let event = |action_state: &WorkState, from: Status, data: serde_json::Value, note: String| {
        AuditEvent {
            at: now,
            actor_id: actor.id,
            actor_name: actor.name.clone(),
            role: actor.role,
            action: ActionKind::Merge,
            from: Some(from),
            to: action_state.status,
            note: Some(note),
            data,
        }
    };
    let source_event = event(
        &closed,
        source.status,
        serde_json::json!({ "into": target_number, "before": source }),
        format!("并入工单 {target_number}"),
    );
    let target_event = event(
        &kept,
        target.status,
        serde_json::json!({ "from": source_number, "raised_priority": raised }),
        if raised {
            format!("工单 {source_number} 并入；反映次数达到阈值，升为紧急")
        } else {
            format!("工单 {source_number} 并入")
        },
    );
    Ok((
        Transition {
            state: closed,
            event: source_event,
        },
        Transition {
            state: kept,
            event: target_event,
        },
    ))
}

/// 撤销并单: restores a merged report to `before` (the state the merge kept in its trail).
pub fn unmerge(
    merged: &WorkState,
    before: WorkState,
    actor: &Actor,
    now: Timestamp,
    from_number: &str,
) -> Result<Transition, WorkflowError> {
    precheck(merged, actor, ActionKind::Unmerge)?;
    let event = AuditEvent {
        at: now,
        actor_id: actor.id,
        actor_name: actor.name.clone(),
        role: actor.role,
        action: ActionKind::Unmerge,
        from: Some(merged.status),
        to: before.status,
        note: Some(format!("撤销并入工单 {from_number}")),
        data: serde_json::json!({ "from": from_number }),
    };
    Ok(Transition {
        state: before,
        event,
    })
}

/// The one function every state change goes through: checks role, department and status, applies
/// the step to a copy of `state`, and returns it with its audit event. `now` must not be earlier than
/// the ticket's last change.
pub fn apply(
    state: &WorkState,
    actor: &Actor,
    action: &Action,
    now: Timestamp,
    sla: &Sla,
) -> Result<Transition, WorkflowError> {
    apply_with(state, Facts::default(), actor, action, now, sla)
}

/// [`apply`] for a ticket whose `facts` matter to the step (the reporters a 回访 must reach).
pub fn apply_with(
    state: &WorkState,
    facts: Facts,
    actor: &Actor,
    action: &Action,
    now: Timestamp,
    sla: &Sla,
) -> Result<Transition, WorkflowError> {
    let kind = action.kind();
    precheck(state, actor, kind)?;
    let mut next = state.clone();
    match action {
        Action::File {
            category, priority, ..
        } => {
            if let Some(c) = category {
                required(c, kind, "category")?;
                next.category = Some(c.trim().to_owned());
            }
            if next.category.is_none() {
                return Err(WorkflowError::Missing {
                    action: kind,
                    field: "category",
                });
            }
            if let Some(p) = priority {
                next.priority = *p;
            }
            next.finish(now);
            next.status = Status::Filed;
            next.start(Stage::Dispatch, now, sla);
        }
        Action::Reject { reason } => {
            required(reason, kind, "reason")?;
            next.finish(now);
            next.status = Status::Rejected;
        }
        Action::AnswerOnSpot { answer } => {
            required(answer, kind, "answer")?;
            next.finish(now);
            next.status = Status::AwaitingCallback;
            next.start(Stage::Callback, now, sla);
        }
        Action::Dispatch { department, .. } => {
            required(department, kind, "department")?;
            next.finish(now);
            next.department = Some(department.trim().to_owned());
            next.status = Status::Dispatched;
            next.start(Stage::Accept, now, sla);
        }
        Action::Accept { .. } => {
            next.finish(now);
            next.status = Status::InProgress;
            next.start(Stage::Dispose, now, sla);
        }
        Action::Return { reason } => {
            required(reason, kind, "reason")?;
            next.finish(now);
            next.counters.returns += 1;
            next.department = None;
            next.extension = None;
            next.status = Status::Returned;
            next.start(Stage::Dispatch, now, sla);
        }
        Action::Complete { note, .. } => {
            required(note, kind, "note")?;
            next.finish(now);
            next.extension = None;
            next.status = Status::Completed;
            next.start(Stage::Verify, now, sla);
        }
        Action::Verify { passed, .. } => {
            next.finish(now);
            if *passed {
                next.status = Status::AwaitingCallback;
                next.start(Stage::Callback, now, sla);
            } else {
                next.counters.reworks += 1;
                next.status = Status::InProgress;
                next.start(Stage::Dispose, now, sla);
            }
        }
        Action::RequestExtension { until, reason } => {
            required(reason, kind, "reason")?;
            if next.extension.is_some() {
                return Err(WorkflowError::ExtensionPending);
            }
            let due = next.current_due().unwrap_or(now);
            if now > due {
                return Err(WorkflowError::ExtensionTooLate {
                    due: due.to_string(),
                });
            }
            if *until <= due {
                return Err(WorkflowError::ExtensionNotLater {
                    due: due.to_string(),
                });
            }
            next.extension = Some(ExtensionRequest {
                until: *until,
                reason: reason.trim().to_owned(),
                requested_at: now,
                requested_by: actor.id,
            });
        }
        Action::DecideExtension { approve, .. } => {
            let request = next
                .extension
                .take()
                .ok_or(WorkflowError::NoExtensionPending)?;
            if *approve {
                if let Some(clock) = next.clocks.last_mut().filter(|c| c.finished_at.is_none()) {
                    clock.due = clock.due.max(request.until);
                }
                next.counters.extensions += 1;
            }
        }
        Action::Escalate { .. } => {
            if !state.is_overdue(now) {
                let due = state
                    .current_due()
                    .map_or_else(|| "no running deadline".to_owned(), |d| d.to_string());
                return Err(WorkflowError::NotOverdue { due });
            }
            next.counters.escalations += 1;
        }
        Action::Callback {
            result, reporter, ..
        } => {
            let reporters = facts.reporters.max(1);
            let reporter = match reporter {
                Some(r) => *r,
                None => (0..reporters)
                    .find(|r| !next.callbacks.iter().any(|c| c.reporter == *r))
                    .unwrap_or(0),
            };
            if reporter >= reporters {
                return Err(WorkflowError::NoSuchReporter {
                    reporter,
                    reporters,
                });
            }
            if next.callbacks.iter().any(|c| c.reporter == reporter) {
                return Err(WorkflowError::AlreadyCalledBack { reporter });
            }
            next.callbacks.push(CallbackAnswer {
                reporter,
                result: *result,
                at: now,
            });
            // By index: an unmerge may have taken away reporters who had answered.
            let all_asked = (0..reporters).all(|r| next.callbacks.iter().any(|c| c.reporter == r));
            if *result != Satisfaction::Dissatisfied && !all_asked {
                // Others are still to be asked: the 回访 goes on.
                next.satisfaction = Some(least_satisfied(&next.callbacks));
                return Ok(transition(state, &next, actor, action, kind, now));
            }
            next.finish(now);
            next.satisfaction = Some(least_satisfied(&next.callbacks));
            match result {
                Satisfaction::Satisfied
                | Satisfaction::BasicallySatisfied
                | Satisfaction::Unreachable => {
                    next.status = Status::AwaitingClose;
                }
                Satisfaction::Dissatisfied => {
                    // A new round of 回访 follows the rework.
                    next.callbacks.clear();
                    next.counters.reopens += 1;
                    if next.department.is_some() {
                        next.status = Status::Dispatched;
                        next.start(Stage::Accept, now, sla);
                    } else {
                        next.status = Status::Filed;
                        next.start(Stage::Dispatch, now, sla);
                    }
                }
            }
        }
        Action::Close { .. } => {
            next.finish(now);
            next.status = Status::Closed;
        }
    }
    Ok(transition(state, &next, actor, action, kind, now))
}

/// The step from `state` to `next` with its audit event.
fn transition(
    state: &WorkState,
    next: &WorkState,
    actor: &Actor,
    action: &Action,
    kind: ActionKind,
    now: Timestamp,
) -> Transition {
    let event = AuditEvent {
        at: now,
        actor_id: actor.id,
        actor_name: actor.name.clone(),
        role: actor.role,
        action: kind,
        from: Some(state.status),
        to: next.status,
        note: action.note().map(|n| n.trim().to_owned()),
        data: serde_json::to_value(action).unwrap_or(serde_json::Value::Null),
    };
    Transition {
        state: next.clone(),
        event,
    }
}

/// The ticket's 回访 result from its reporters' answers: the least satisfied of those reached;
/// 无法联系 only when nobody was.
fn least_satisfied(answers: &[CallbackAnswer]) -> Satisfaction {
    let rank = |s: Satisfaction| match s {
        Satisfaction::Unreachable => 0,
        Satisfaction::Satisfied => 1,
        Satisfaction::BasicallySatisfied => 2,
        Satisfaction::Dissatisfied => 3,
    };
    answers
        .iter()
        .map(|a| a.result)
        .max_by_key(|s| rank(*s))
        .unwrap_or(Satisfaction::Unreachable)
}
