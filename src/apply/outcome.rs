//! How a change ended: applied (with a note when it was not the plain request), failed (with
//! the typed error), skipped or deferred (with the reason); and the report of a whole run.

use std::borrow::Cow;

use crate::clerk::ClerkError;
use crate::plan::OutcomeKind;

/// How one change ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Done; the note says how when it was not the plain request (already a member, …).
    Applied { note: Option<String> },
    /// Clerk refused it or could not be reached, or it could not be made; the error says why.
    Failed { error: ChangeError },
    /// Not sent; the reason says why.
    Skipped { reason: String },
    /// Not sent because Clerk's own invitation limit is spent for longer than a run waits;
    /// reported as skipped, and not a failure of the run: the next run sends it.
    Deferred { reason: String },
}

impl Outcome {
    /// `applied`, `failed` or `skipped`, as the reports name it.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Applied { .. } => OutcomeKind::Applied,
            Outcome::Failed { .. } => OutcomeKind::Failed,
            Outcome::Skipped { .. } | Outcome::Deferred { .. } => OutcomeKind::Skipped,
        }
    }

    /// The note, error or reason.
    pub fn detail(&self) -> Option<Cow<'_, str>> {
        match self {
            Outcome::Applied { note } => note.as_deref().map(Cow::Borrowed),
            Outcome::Failed { error } => Some(Cow::Owned(error.to_string())),
            Outcome::Skipped { reason } | Outcome::Deferred { reason } => {
                Some(Cow::Borrowed(reason))
            }
        }
    }

    pub(super) fn applied() -> Outcome {
        Outcome::Applied { note: None }
    }

    pub(super) fn applied_with(note: &str) -> Outcome {
        Outcome::Applied {
            note: Some(note.to_owned()),
        }
    }

    /// Applied, but the state was not what the plan read (already a member, already gone):
    /// an earlier attempt of this run took effect, or someone else writes too.
    pub(super) fn applied_meeting_another_writer(note: &str) -> Outcome {
        Outcome::Applied {
            note: Some(format!("{note}; {ANOTHER_WRITER}")),
        }
    }

    /// Whether the change met a state another writer may have made.
    pub(super) fn met_another_writer(&self) -> bool {
        matches!(self, Outcome::Applied { note: Some(note) } if note.contains(ANOTHER_WRITER))
    }

    /// A change that met `error`: failed, or skipped when its request was never sent (the
    /// run was interrupted, or stopped after Clerk refused the key).
    pub(super) fn failed(error: ClerkError) -> Outcome {
        if let Some(reason) = error.not_sent_reason() {
            return Outcome::Skipped {
                reason: reason.to_owned(),
            };
        }
        Outcome::from(ChangeError::Clerk(error))
    }
}

/// What the report notes when a write meets a state the plan did not read.
pub const ANOTHER_WRITER: &str = "another writer may be active";

/// The outcome of every change, in run order (`plan.all_changes()`).
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub(crate) fn count(&self, kind: OutcomeKind) -> usize {
        self.outcomes.iter().filter(|o| o.kind() == kind).count()
    }

    /// Whether every change was applied (or deferred to the next run by Clerk's invitation
    /// limit).
    pub fn is_success(&self) -> bool {
        self.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Applied { .. } | Outcome::Deferred { .. }))
    }

    /// Invitations deferred by Clerk's invitation limit.
    pub fn deferred(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Deferred { .. }))
            .count()
    }
}

impl From<ChangeError> for Outcome {
    fn from(error: ChangeError) -> Outcome {
        Outcome::Failed { error }
    }
}

/// Why a change failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChangeError {
    /// Clerk refused it, or could not be reached (with a hint where Clerk's code tells what to
    /// do).
    #[error("{0}{hint}", hint = hint(.0))]
    Clerk(ClerkError),
    /// Not sent: Clerk kept failing and the run's retry budget is spent.
    #[error("{}", crate::clerk::NOT_SENT_OUT_OF_RETRIES)]
    OutOfRetries,
    /// The user is a member already, and the change does not say what the file declares.
    #[error(
        "{user_id} is already a member of {organization_id}; run plan again to see what differs"
    )]
    AlreadyMember {
        user_id: String,
        organization_id: String,
    },
    /// The membership an update was for is gone, and the change does not say what the file
    /// declares.
    #[error("the membership of {user_id} in {organization_id} is gone; run plan again")]
    Gone {
        user_id: String,
        organization_id: String,
    },
    /// Clerk refused an invitation because another one, different, is pending.
    #[error(
        "{0}: a pending invitation with another role or metadata exists; the next run revokes it and invites again"
    )]
    OtherInvitationPending(ClerkError),
    /// A revocation whose plan names no invitation.
    #[error("the plan names no invitation to revoke")]
    NoInvitation,
    /// An admin removal not sent, because the organization's admins could not be read again.
    #[error("not sent: cannot confirm that {organization_id} keeps an org:admin: {error}")]
    AdminsUnconfirmed {
        organization_id: String,
        error: ClerkError,
    },
    /// An admin removal not sent, because it would leave the organization without an admin
    /// after another writer changed its admins.
    #[error("{}", super::admins::ADMINS_CHANGED)]
    AdminsChanged,
}

/// What to do about a Clerk error whose code tells.
fn hint(error: &ClerkError) -> &'static str {
    if error.has_code("organization_membership_managed_by_scim") {
        " — this membership is managed by SCIM; list the user under `ignore` for this organization"
    } else if error.has_code("organization_minimum_permissions_needed") {
        " — Clerk keeps at least one admin in an organization; another writer may have changed its admins: re-plan"
    } else {
        ""
    }
}

/// How one change ended, and the ID of the object it created when the rest of the run needs
/// it (an organization's, for its domains and memberships).
pub(super) struct Done {
    pub outcome: Outcome,
    pub created_id: Option<String>,
}

impl From<Outcome> for Done {
    fn from(outcome: Outcome) -> Done {
        Done {
            outcome,
            created_id: None,
        }
    }
}
