//! Writes a desired-state file (schema v1) from live state, for `membersync export`.
//!
//! The output is meant to be committed and diffed: organizations by ID and members by key,
//! sorted; the slug, name and email go in comments; metadata is written as JSON flow mappings
//! (JSON is valid YAML 1.2), only when not empty. Reading the file back gives exactly the
//! exported roles and metadata.

use std::fmt::Write;

use serde_json::{Map, Value};

/// One organization as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOrganization {
    pub id: String,
    pub slug: Option<String>,
    pub name: Option<String>,
    pub members: Vec<ExportMember>,
    /// Pending invitations: written as email members of an organization that sends
    /// invitations, so that planning the export finds them in sync.
    pub invited: Vec<ExportMember>,
    /// The organization's own fields and domains, written so that planning the export
    /// finds them in sync; `None`: not written.
    pub fields: Option<ExportFields>,
}

/// An organization's own fields and domains as exported.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExportFields {
    pub name: Option<String>,
    pub max_allowed_memberships: Option<u64>,
    pub admin_delete_enabled: Option<bool>,
    pub role_set_key: Option<String>,
    pub public_metadata: Map<String, Value>,
    pub private_metadata: Map<String, Value>,
    /// (domain, enrollment mode), every domain the organization has.
    pub domains: Vec<(String, String)>,
}

/// One membership as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportMember {
    pub user_id: String,
    /// The primary email address, when the member's identifier is one.
    pub email: Option<String>,
    pub role: String,
    pub public_metadata: Map<String, Value>,
    pub private_metadata: Map<String, Value>,
}

/// Renders the file. With `by_email`, members who have an email are keyed by it.
pub fn render(organizations: &[ExportOrganization], by_email: bool, header: &str) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {}", comment_text(line));
    }
    if organizations.is_empty() {
        out.push_str("version: 1\norganizations: {}\n");
        return out;
    }
    out.push_str("version: 1\norganizations:\n");
    let mut organizations: Vec<&ExportOrganization> = organizations.iter().collect();
    organizations.sort_by(|a, b| a.id.cmp(&b.id));
    for organization in organizations {
        write_organization(&mut out, organization, by_email);
    }
    out
}

/// One organization: its key (slug and name in a comment), whether it invites, its members.
fn write_organization(out: &mut String, organization: &ExportOrganization, by_email: bool) {
    let mut about = Vec::new();
    if let Some(slug) = &organization.slug {
        about.push(format!("slug: {}", comment_text(slug)));
    }
    if let Some(name) = &organization.name {
        about.push(format!("name: {}", comment_text(name)));
    }
    let comment = if about.is_empty() {
        String::new()
    } else {
        format!("  # {}", about.join(", "))
    };
    let _ = writeln!(out, "  {}:{comment}", key(&organization.id));
    if let Some(fields) = &organization.fields {
        write_fields(out, fields);
    }
    let invited = still_invited(organization);
    if !invited.is_empty() {
        let _ = writeln!(
            out,
            "    invitations: {{send: true}}  # {} pending invitation(s), listed below by email",
            invited.len()
        );
    }
    if organization.members.is_empty() && invited.is_empty() {
        out.push_str("    members: {}\n");
        return;
    }
    out.push_str("    members:\n");
    let mut members: Vec<(String, Option<String>, &ExportMember)> = organization
        .members
        .iter()
        .map(|member| match (&member.email, by_email) {
            (Some(email), true) => (
                key(&email.to_lowercase()),
                Some(member.user_id.clone()),
                member,
            ),
            _ => (key(&member.user_id), member.email.clone(), member),
        })
        .chain(invited.into_iter().map(|invited| {
            (
                key(&invited.email.as_deref().unwrap_or_default().to_lowercase()),
                Some("invited; no Clerk account yet".to_owned()),
                invited,
            )
        }))
        .collect();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    for (member_key, comment, member) in members {
        write_member(out, &member_key, comment, member);
    }
}

/// The organization's own fields (metadata only when not empty) and its domains, exactly.
fn write_fields(out: &mut String, fields: &ExportFields) {
    let quoted = |text: &str| Value::String(text.to_owned()).to_string();
    if let Some(name) = &fields.name {
        let _ = writeln!(out, "    name: {}", quoted(name));
    }
    if let Some(limit) = fields.max_allowed_memberships {
        let _ = writeln!(out, "    max_allowed_memberships: {limit}  # 0: no limit");
    }
    if let Some(enabled) = fields.admin_delete_enabled {
        let _ = writeln!(out, "    admin_delete_enabled: {enabled}");
    }
    if let Some(role_set) = &fields.role_set_key {
        let _ = writeln!(out, "    role_set: {}", quoted(role_set));
    }
    for (name, metadata) in [
        ("public_metadata", &fields.public_metadata),
        ("private_metadata", &fields.private_metadata),
    ] {
        if !metadata.is_empty() {
            let _ = writeln!(out, "    {name}: {}", Value::Object(metadata.clone()));
        }
    }
    if fields.domains.is_empty() {
        out.push_str("    domains: {}\n");
        return;
    }
    out.push_str("    domains:\n");
    let mut domains = fields.domains.clone();
    domains.sort();
    for (domain, mode) in domains {
        let _ = writeln!(out, "      {}: {}", quoted(&domain), quoted(&mode));
    }
}

/// The pending invitations of people who are not members already (someone invited who is a
/// member is listed as the member).
fn still_invited(organization: &ExportOrganization) -> Vec<&ExportMember> {
    organization
        .invited
        .iter()
        .filter(|invited| {
            let email = invited.email.as_deref().unwrap_or_default().to_lowercase();
            !organization.members.iter().any(|m| {
                m.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&email))
            })
        })
        .collect()
}

/// One member: `key: role`, or a mapping with the role and the metadata that is not empty.
fn write_member(out: &mut String, key: &str, comment: Option<String>, member: &ExportMember) {
    let comment = comment
        .map(|c| format!("  # {}", comment_text(&c)))
        .unwrap_or_default();
    let role = scalar(&member.role);
    if member.public_metadata.is_empty() && member.private_metadata.is_empty() {
        let _ = writeln!(out, "      {key}: {role}{comment}");
        return;
    }
    let _ = writeln!(out, "      {key}:{comment}");
    let _ = writeln!(out, "        role: {role}");
    for (name, metadata) in [
        ("public_metadata", &member.public_metadata),
        ("private_metadata", &member.private_metadata),
    ] {
        if !metadata.is_empty() {
            let json = Value::Object(metadata.clone()).to_string();
            let _ = writeln!(out, "        {name}: {json}");
        }
    }
}

/// A mapping key: plain when it is an ID-like word, JSON-quoted otherwise (emails, slugs).
fn key(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !text.starts_with('-')
    {
        text.to_owned()
    } else {
        Value::String(text.to_owned()).to_string()
    }
}

/// A value: plain for `org:<key>` roles, JSON-quoted otherwise.
fn scalar(text: &str) -> String {
    let plain = text.strip_prefix("org:").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    });
    if plain {
        text.to_owned()
    } else {
        Value::String(text.to_owned()).to_string()
    }
}

/// Text safe inside a one-line comment.
fn comment_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_sorted_commented_yaml_that_reads_back() {
        let organizations = vec![ExportOrganization {
            id: "org_b".into(),
            slug: Some("acme".into()),
            name: Some("Acme\nInc".into()),
            members: vec![
                ExportMember {
                    user_id: "user_2".into(),
                    email: Some("Bob@Example.com".into()),
                    role: "org:member".into(),
                    public_metadata: json!({"team": "x", "tags": ["y", "no"], "n": 1.5})
                        .as_object()
                        .cloned()
                        .unwrap(),
                    private_metadata: Map::new(),
                },
                ExportMember {
                    user_id: "user_1".into(),
                    email: None,
                    role: "org:admin".into(),
                    public_metadata: Map::new(),
                    private_metadata: Map::new(),
                },
            ],
            invited: Vec::new(),
            fields: None,
        }];
        let text = render(&organizations, false, "exported");
        assert_eq!(
            text,
            "# exported\nversion: 1\norganizations:\n  org_b:  # slug: acme, name: Acme Inc\n    members:\n      user_1: org:admin\n      user_2:  # Bob@Example.com\n        role: org:member\n        public_metadata: {\"team\":\"x\",\"tags\":[\"y\",\"no\"],\"n\":1.5}\n"
        );
        let by_email = render(&organizations, true, "");
        assert!(
            by_email.contains("      \"bob@example.com\":  # user_2\n"),
            "{by_email}"
        );
    }
}
