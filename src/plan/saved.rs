//! Saved plans (`plan --out`, `apply --plan`): the plan as versioned JSON, with a
//! fingerprint of every live membership it changes or creates, so that applying it later
//! can tell whether those memberships moved since the plan was reviewed.
//!
//! Each touched membership is stored as a SHA-256 of its canonical state (role and both
//! metadata objects, keys sorted), or `absent`; metadata itself is never written to the file,
//! since a plan file is often attached to a pull request. So is every other object the plan
//! changes (a permission, role, role set, organization or domain): the digest of its state
//! is made by its kind's reading code ([`ResourceStates`]), and the file keeps the digest.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Change, Observed, ObservedInvitation, ObservedInvitations, Plan, Resource};
use crate::desired::{hex, sha256_hex};

/// What identifies the file as a saved plan.
const FORMAT: &str = "membersync-plan";
/// The version of the format this build writes and reads.
const VERSION: u32 = 1;

/// A saved plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: String,
    pub version: u32,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub membersync_version: String,
    /// The desired-state files the plan was computed from, with their SHA-256.
    pub desired_files: Vec<FileDigest>,
    /// SHA-256 over every entry of `touched` and the plan.
    pub fingerprint: String,
    /// The live state, when the plan was made, of every membership the plan changes or creates.
    pub touched: Vec<Touched>,
    /// The instance the plan was computed against; applying it elsewhere is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Instance>,
    /// The state, when the plan was made, of every other object the plan changes (a
    /// permission, role, role set, organization or domain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub touched_resources: Vec<TouchedResource>,
    pub plan: Plan,
}

/// An object other than a membership: its kind, its organization (an organization's or
/// domain's), and its key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResourceRef {
    pub resource: Resource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<String>,
    pub key: String,
}

/// The digest of each object's state (`absent` when it does not exist), as its kind's reading
/// code makes it; an object missing from the map is `absent`.
pub type ResourceStates = BTreeMap<ResourceRef, String>;

/// What a state is when the object does not exist.
pub const ABSENT: &str = "absent";

/// One object other than a membership the plan changes, and a digest of its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchedResource {
    #[serde(flatten)]
    pub object: ResourceRef,
    pub state: String,
}

/// Which Clerk instance: the API URL and the kind of key (`live` or `test`), never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub api_url: String,
    pub key: String,
}

/// One desired-state file and its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

/// One membership the plan touches, and a digest of its state (`absent` when not a member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touched {
    pub organization_id: String,
    /// Written `user_id`, as the file format has always named it.
    #[serde(rename = "user_id")]
    pub subject: Subject,
    pub state: String,
}

/// What a touched entry is about: one membership, or the pending invitations of one email.
/// The file writes a membership as its user ID and an email as `invitation:EMAIL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", from = "String")]
pub enum Subject {
    /// The membership of this user ID.
    Member(String),
    /// The pending invitations of this (lower-cased) email.
    Invited(String),
}

/// The prefix of an invited email, as the file writes it.
const INVITED: &str = "invitation:";

impl Subject {
    /// What a change is about.
    fn of(change: &Change) -> Subject {
        if change.action.is_invitation() {
            Subject::Invited(change.email.clone().unwrap_or_default())
        } else {
            Subject::Member(change.user_id.clone())
        }
    }
}

impl From<String> for Subject {
    fn from(text: String) -> Subject {
        match text.strip_prefix(INVITED) {
            Some(email) => Subject::Invited(email.to_owned()),
            None => Subject::Member(text),
        }
    }
}

impl From<Subject> for String {
    fn from(subject: Subject) -> String {
        subject.to_string()
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Member(user_id) => formatter.write_str(user_id),
            Subject::Invited(email) => write!(formatter, "{INVITED}{email}"),
        }
    }
}

/// The reason a saved plan cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedPlanError {
    /// Not JSON, or not the shape of a saved plan.
    #[error("not a membersync plan file: {0}")]
    Malformed(String),
    /// A plan file of another format version.
    #[error(
        "plan file format version {0} is not supported by this membersync (it reads version {VERSION}); run plan again with this version"
    )]
    Version(u32),
    /// The file was edited after it was written.
    #[error(
        "the plan file's fingerprint does not match its contents (was it edited?); run plan again"
    )]
    Tampered,
}

impl PlanFile {
    /// A plan file for `plan`, computed against `observed` (the live memberships of the plan's
    /// organizations) and `invitations` (their pending invitations, where they invite).
    pub fn new(
        plan: Plan,
        observed: &HashMap<String, Vec<Observed>>,
        invitations: &ObservedInvitations,
        desired_files: Vec<FileDigest>,
        created_at: String,
    ) -> PlanFile {
        let touched = touched(&plan, observed, invitations);
        PlanFile {
            format: FORMAT.to_owned(),
            version: VERSION,
            created_at,
            membersync_version: env!("CARGO_PKG_VERSION").to_owned(),
            desired_files,
            fingerprint: fingerprint(&touched, &[], &plan),
            touched,
            instance: None,
            touched_resources: Vec::new(),
            plan,
        }
    }

    /// Records the state of every other object the plan changes (`states`: as read when the
    /// plan was made).
    pub fn with_resources(mut self, states: &ResourceStates) -> PlanFile {
        self.touched_resources = touched_resources(&self.plan, states);
        self.fingerprint = fingerprint(&self.touched, &self.touched_resources, &self.plan);
        self
    }

    /// Reads a plan file, checking its format, version and internal consistency.
    pub fn parse(text: &str) -> Result<PlanFile, SavedPlanError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| SavedPlanError::Malformed(e.to_string()))?;
        if value.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(SavedPlanError::Malformed(format!(
                "`format` is not \"{FORMAT}\""
            )));
        }
        match value.get("version").and_then(Value::as_u64) {
            Some(version) if version == u64::from(VERSION) => {}
            Some(version) => return Err(SavedPlanError::Version(version as u32)),
            None => return Err(SavedPlanError::Malformed("`version` is missing".into())),
        }
        let file: PlanFile =
            serde_json::from_value(value).map_err(|e| SavedPlanError::Malformed(e.to_string()))?;
        let objects: Vec<&ResourceRef> = file.touched_resources.iter().map(|t| &t.object).collect();
        if fingerprint(&file.touched, &file.touched_resources, &file.plan) != file.fingerprint
            || touched_keys(&file.plan) != file.touched.iter().map(key).collect::<Vec<_>>()
            || resource_refs(&file.plan).iter().collect::<Vec<_>>() != objects
        {
            return Err(SavedPlanError::Tampered);
        }
        Ok(file)
    }

    /// The memberships (and invited emails) whose live state differs from the plan's,
    /// compared with `observed` and `invitations`.
    pub fn drifted(
        &self,
        observed: &HashMap<String, Vec<Observed>>,
        invitations: &ObservedInvitations,
    ) -> Vec<Touched> {
        let now = touched(&self.plan, observed, invitations);
        now.into_iter()
            .zip(&self.touched)
            .filter(|(now, then)| now.state != then.state)
            .map(|(now, _)| now)
            .collect()
    }

    /// The other objects whose state differs from the plan's, compared with `states` (as read
    /// now).
    pub fn drifted_resources(&self, states: &ResourceStates) -> Vec<TouchedResource> {
        touched_resources(&self.plan, states)
            .into_iter()
            .zip(&self.touched_resources)
            .filter(|(now, then)| now.state != then.state)
            .map(|(now, _)| now)
            .collect()
    }
}

/// Every object other than a membership that the plan changes, without repeats, sorted.
pub fn resource_refs(plan: &Plan) -> Vec<ResourceRef> {
    let mut refs: Vec<ResourceRef> = plan
        .resource_changes()
        .map(|change| ResourceRef {
            resource: change.resource,
            organization_id: change.organization_id.clone().filter(|id| !id.is_empty()),
            key: change.key.clone(),
        })
        .collect();
    refs.sort();
    refs.dedup();
    refs
}

fn touched_resources(plan: &Plan, states: &ResourceStates) -> Vec<TouchedResource> {
    resource_refs(plan)
        .into_iter()
        .map(|object| TouchedResource {
            state: states
                .get(&object)
                .cloned()
                .unwrap_or_else(|| ABSENT.to_owned()),
            object,
        })
        .collect()
}

/// The (organization, subject) pairs a plan touches, without repeats, sorted as the file
/// writes them (by organization ID, then the subject's text).
fn touched_keys(plan: &Plan) -> Vec<(String, Subject)> {
    let mut keys: Vec<(String, String)> = plan
        .changes()
        .map(|c| (c.organization_id.clone(), Subject::of(c).to_string()))
        .collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .map(|(organization_id, subject)| (organization_id, Subject::from(subject)))
        .collect()
}

fn key(touched: &Touched) -> (String, Subject) {
    (touched.organization_id.clone(), touched.subject.clone())
}

/// The state of every membership (and invited email) the plan touches.
fn touched(
    plan: &Plan,
    observed: &HashMap<String, Vec<Observed>>,
    invitations: &ObservedInvitations,
) -> Vec<Touched> {
    touched_keys(plan)
        .into_iter()
        .map(|(organization_id, subject)| {
            let state = match &subject {
                Subject::Invited(email) => invitations_digest(
                    invitations
                        .get(&organization_id)
                        .map(Vec::as_slice)
                        .unwrap_or_default(),
                    email,
                ),
                Subject::Member(user_id) => observed
                    .get(&organization_id)
                    .and_then(|members| members.iter().find(|m| *m.user_id == **user_id))
                    .map(membership_digest)
                    .unwrap_or_else(|| "absent".to_owned()),
            };
            Touched {
                organization_id,
                subject,
                state,
            }
        })
        .collect()
}

/// A digest of an object's canonical state (keys sorted), as saved plans keep it.
pub fn digest(state: &Value) -> String {
    sha256_hex(canonical(state).to_string().as_bytes())
}

fn membership_digest(membership: &Observed) -> String {
    let canonical = serde_json::json!({
        "role": membership.role,
        "public_metadata": canonical(&Value::Object(membership.public_metadata.to_map())),
        "private_metadata": canonical(&Value::Object(membership.private_metadata.to_map())),
    });
    sha256_hex(canonical.to_string().as_bytes())
}

/// A digest of the pending invitations to one email (ID, role and metadata), or `absent`.
fn invitations_digest(invitations: &[ObservedInvitation], email: &str) -> String {
    let mut states: Vec<Value> = invitations
        .iter()
        .filter(|invitation| invitation.email == email)
        .map(|invitation| {
            serde_json::json!({
                "id": invitation.id,
                "role": invitation.role,
                "public_metadata": canonical(&Value::Object(invitation.public_metadata.to_map())),
                "private_metadata": canonical(&Value::Object(invitation.private_metadata.to_map())),
            })
        })
        .collect();
    if states.is_empty() {
        return "absent".to_owned();
    }
    states.sort_by_key(|state| state["id"].as_str().unwrap_or_default().to_owned());
    sha256_hex(Value::Array(states).to_string().as_bytes())
}

/// SHA-256 over the touched entries, in order, and the plan itself (so that an edited plan
/// file is noticed).
fn fingerprint(touched: &[Touched], resources: &[TouchedResource], plan: &Plan) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_string(plan).unwrap_or_default().as_bytes());
    for entry in touched {
        for part in [
            &entry.organization_id,
            &entry.subject.to_string(),
            &entry.state,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
    }
    for entry in resources {
        let object = &entry.object;
        let organization = object.organization_id.as_deref().unwrap_or_default();
        for part in [
            object.resource.name(),
            organization,
            &object.key,
            &entry.state,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
    }
    hex(&hasher.finalize())
}

/// The same value with every object's keys sorted, so equal states hash equal whatever
/// order Clerk sent the keys in.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let sorted: Map<String, Value> = keys
                .into_iter()
                .map(|k| (k.clone(), canonical(&map[k])))
                .collect();
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Change, OrganizationPlan};
    use serde_json::json;

    fn observed(role: &str, public: Value) -> Observed {
        Observed {
            user_id: "user_1".into(),
            email: None,
            role: crate::desired::Role::observed(role),
            public_metadata: public.as_object().cloned().unwrap().into(),
            private_metadata: Map::new().into(),
        }
    }

    fn plan() -> Plan {
        Plan {
            organizations: vec![OrganizationPlan {
                organization_id: "org_1".into(),
                label: None,
                resources: Vec::new(),
                changes: vec![Change {
                    role: Some("org:admin".into()),
                    previous_role: Some("org:member".into()),
                    ..Change::new(Action::UpdateRole, "org_1", "user_1")
                }],
                current_members: 1,
                admins_before: 0,
                admins_after: 1,
                withheld: None,
                invitations: None,
                current_invitations: 0,
            }],
            ..Plan::default()
        }
    }

    #[test]
    fn a_plan_file_round_trips_and_detects_drift_of_what_it_touches() {
        let live = HashMap::from([(
            "org_1".to_owned(),
            vec![observed("org:member", json!({"a": 1, "b": 2}))],
        )]);
        let file = PlanFile::new(
            plan(),
            &live,
            &ObservedInvitations::new(),
            vec![],
            "2026-11-28T00:00:00Z".into(),
        );
        let text = serde_json::to_string_pretty(&file).unwrap();
        let read = PlanFile::parse(&text).unwrap();
        assert_eq!(read, file);

        // Same state, keys in another order: no drift.
        let reordered = HashMap::from([(
            "org_1".to_owned(),
            vec![observed("org:member", json!({"b": 2, "a": 1}))],
        )]);
        assert!(
            read.drifted(&reordered, &ObservedInvitations::new())
                .is_empty()
        );
        // Role changed, or the membership gone: drift.
        let promoted = HashMap::from([(
            "org_1".to_owned(),
            vec![observed("org:admin", json!({"a": 1, "b": 2}))],
        )]);
        assert_eq!(
            read.drifted(&promoted, &ObservedInvitations::new()).len(),
            1
        );
        assert_eq!(
            read.drifted(&HashMap::new(), &ObservedInvitations::new())[0].state,
            "absent"
        );
    }

    #[test]
    fn an_edited_or_foreign_plan_file_is_refused() {
        let file = PlanFile::new(
            plan(),
            &HashMap::new(),
            &ObservedInvitations::new(),
            vec![],
            "t".into(),
        );
        let mut edited = file.clone();
        edited.plan.organizations[0].changes[0].user_id = "user_2".into();
        let text = serde_json::to_string(&edited).unwrap();
        assert_eq!(PlanFile::parse(&text), Err(SavedPlanError::Tampered));

        let mut newer = serde_json::to_value(&file).unwrap();
        newer["version"] = json!(2);
        assert_eq!(
            PlanFile::parse(&newer.to_string()),
            Err(SavedPlanError::Version(2))
        );
        assert!(matches!(
            PlanFile::parse("{\"changes\": []}"),
            Err(SavedPlanError::Malformed(_))
        ));
    }
}
