//! A stateful Clerk Backend API simulator on a real HTTP server (127.0.0.1).
//!
//! It serves the endpoints membersync uses and those a rehearsal with Clerk's own SDKs needs
//! ([`Simulator::endpoints`](crate::simulator::Simulator::endpoints)), with Clerk's complete
//! objects, status codes and error bodies (400 `already_a_member_in_organization`, 404
//! `resource_not_found`, 401), checks the `Authorization` and `Clerk-API-Version` (any dated
//! version up to the shipped API description's) headers, logs each request it serves, and records
//! every request so tests can assert what was sent. Knobs make it behave like a real, imperfect
//! service: latency, a rate limit answered with 429 and `Retry-After` (counted as one of the
//! limiter designs a real API may run: [`RateLimitModel`](crate::simulator::RateLimitModel)),
//! random 5xx, and scripted [`Fault`](crate::simulator::Fault)s (an error before or after a write
//! takes effect, a dropped connection, a slow or malformed answer, a request that never gets an
//! answer). It records the admin count of an organization after every write, so tests can check
//! that no moment left an organization without an admin. It also serves organization invitations:
//! listing, single and bulk creation with Clerk's errors, revocation, an hourly invitation limit,
//! and a person accepting
//! ([`Simulator::accept_invitation`](crate::simulator::Simulator::accept_invitation)). The tests
//! use it, and so do `membersync simulate` and `membersync demo`.

// Handler helpers return the error response to send as their `Err`; boxing it buys nothing.
#![allow(clippy::result_large_err)]

pub mod directories;
mod domains;
mod endpoints;
mod faults;
mod filters;
mod invitations;
mod limits;
mod lookups;
mod merge;
mod objects;
mod organizations;
mod permissions;
mod query;
mod role_sets;
mod roles;
mod routes;
mod server;
mod shared;
mod state;
mod webhooks;

pub use faults::{Fault, FaultKind, StateHook};
pub use limits::RateLimitModel;
pub use server::Simulator;
pub use shared::SimOptions;
pub use state::{
    IndexCache, LoggedRequest, SEEDED_AT, SimDomain, SimInvitation, SimMembership, SimOrganization,
    SimPermission, SimRoleFields, SimRoleSet, SimState, SimUser, Times, generated_state,
};
pub use webhooks::SimWebhook;
