//! One function per Clerk endpoint membersync uses, named after the operation, taking and
//! returning typed models. Each builds its request; [`Client`] sends it under the pacer with the
//! retry policy.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{
    ClerkError, Client, FILTER_LIMIT, Membership, MembershipPage, Organization, OrganizationPage,
    Request, RolePage, RoleSet, User,
};

impl Client {
    /// `GET /organization_memberships`: a page of every membership in the instance.
    pub async fn list_instance_memberships(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<MembershipPage, ClerkError> {
        let (mut page, served_at): (MembershipPage, _) = self
            .send_dated(Request {
                endpoint: "list_instance_memberships",
                method: Method::GET,
                segments: &["organization_memberships"],
                query: vec![
                    ("order_by", "+created_at".to_owned()),
                    ("limit", limit.to_string()),
                    ("offset", offset.to_string()),
                ],
                body: None,
                context: format!("listing the instance's memberships (offset {offset})"),
            })
            .await?;
        page.served_at = served_at;
        Ok(page)
    }

    /// `GET /organizations/{id}/memberships`: a page of one organization's memberships,
    /// optionally only of the given users.
    pub async fn list_organization_memberships(
        &self,
        organization_id: &str,
        offset: u64,
        limit: u64,
        user_ids: &[&str],
    ) -> Result<MembershipPage, ClerkError> {
        let mut query = vec![
            ("order_by", "+created_at".to_owned()),
            ("limit", limit.to_string()),
            ("offset", offset.to_string()),
        ];
        query.extend(user_ids.iter().map(|id| ("user_id", (*id).to_owned())));
        let (mut page, served_at): (MembershipPage, _) = self
            .send_dated(Request {
                endpoint: "list_organization_memberships",
                method: Method::GET,
                segments: &["organizations", organization_id, "memberships"],
                query,
                body: None,
                context: format!("listing the memberships of {organization_id}"),
            })
            .await?;
        page.served_at = served_at;
        Ok(page)
    }

    /// `POST /organizations/{id}/memberships`: role and metadata in one request.
    pub async fn create_membership(
        &self,
        organization_id: &str,
        user_id: &str,
        role: &str,
        public_metadata: Option<&Map<String, Value>>,
        private_metadata: Option<&Map<String, Value>>,
    ) -> Result<Membership, ClerkError> {
        let mut body = json!({ "user_id": user_id, "role": role });
        if let Some(metadata) = public_metadata {
            body["public_metadata"] = Value::Object(metadata.clone());
        }
        if let Some(metadata) = private_metadata {
            body["private_metadata"] = Value::Object(metadata.clone());
        }
        self.send(Request {
            endpoint: "create_membership",
            method: Method::POST,
            segments: &["organizations", organization_id, "memberships"],
            query: Vec::new(),
            body: Some(body),
            context: format!("creating the membership of {user_id} in {organization_id}"),
        })
        .await
    }

    /// `PATCH /organizations/{id}/memberships/{user_id}`: change the role.
    pub async fn update_membership_role(
        &self,
        organization_id: &str,
        user_id: &str,
        role: &str,
    ) -> Result<Membership, ClerkError> {
        self.send(Request {
            endpoint: "update_membership_role",
            method: Method::PATCH,
            segments: &["organizations", organization_id, "memberships", user_id],
            query: Vec::new(),
            body: Some(json!({ "role": role })),
            context: format!("changing the role of {user_id} in {organization_id}"),
        })
        .await
    }

    /// `DELETE /organizations/{id}/memberships/{user_id}`.
    pub async fn delete_membership(
        &self,
        organization_id: &str,
        user_id: &str,
    ) -> Result<Membership, ClerkError> {
        self.send(Request {
            endpoint: "delete_membership",
            method: Method::DELETE,
            segments: &["organizations", organization_id, "memberships", user_id],
            query: Vec::new(),
            body: None,
            context: format!("deleting the membership of {user_id} in {organization_id}"),
        })
        .await
    }

    /// `PATCH /organizations/{id}/memberships/{user_id}/metadata`: a deep merge (RFC 7396).
    pub async fn merge_membership_metadata(
        &self,
        organization_id: &str,
        user_id: &str,
        patch: &Value,
    ) -> Result<Membership, ClerkError> {
        self.send(Request {
            endpoint: "merge_membership_metadata",
            method: Method::PATCH,
            segments: &[
                "organizations",
                organization_id,
                "memberships",
                user_id,
                "metadata",
            ],
            query: Vec::new(),
            body: Some(patch.clone()),
            context: format!("merging the metadata of {user_id} in {organization_id}"),
        })
        .await
    }

    /// `GET /users?email_address=…`: the users with any of these emails (at most 100).
    pub async fn list_users_by_email(&self, emails: &[&str]) -> Result<Vec<User>, ClerkError> {
        let mut query: Vec<(&'static str, String)> = emails
            .iter()
            .map(|email| ("email_address", (*email).to_owned()))
            .collect();
        query.push(("limit", emails.len().clamp(1, FILTER_LIMIT).to_string()));
        self.send(Request {
            endpoint: "list_users",
            method: Method::GET,
            segments: &["users"],
            query,
            body: None,
            context: format!("looking up {} email address(es)", emails.len()),
        })
        .await
    }

    /// `GET /organizations?organization_id=…`: these organizations (at most 100) with their
    /// member counts.
    pub async fn list_organizations(&self, ids: &[&str]) -> Result<OrganizationPage, ClerkError> {
        let mut query: Vec<(&'static str, String)> = ids
            .iter()
            .map(|id| ("organization_id", (*id).to_owned()))
            .collect();
        query.push(("include_members_count", "true".to_owned()));
        query.push(("limit", ids.len().clamp(1, FILTER_LIMIT).to_string()));
        self.send(Request {
            endpoint: "list_organizations",
            method: Method::GET,
            segments: &["organizations"],
            query,
            body: None,
            context: format!("looking up {} organization(s)", ids.len()),
        })
        .await
    }

    /// `GET /organizations?limit=…&offset=…`: a page of every organization, oldest first.
    pub async fn list_all_organizations(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<OrganizationPage, ClerkError> {
        self.send(Request {
            endpoint: "list_organizations",
            method: Method::GET,
            segments: &["organizations"],
            query: vec![
                ("order_by", "+created_at".to_owned()),
                ("limit", limit.to_string()),
                ("offset", offset.to_string()),
            ],
            body: None,
            context: format!("listing the organizations (offset {offset})"),
        })
        .await
    }

    /// `GET /role_sets/{key}`: the roles organizations with this role set allow.
    pub async fn get_role_set(&self, key: &str) -> Result<RoleSet, ClerkError> {
        self.send(Request {
            endpoint: "get_role_set",
            method: Method::GET,
            segments: &["role_sets", key],
            query: Vec::new(),
            body: None,
            context: format!("reading the role set {key}"),
        })
        .await
    }

    /// `GET /organization_roles`: a page of the instance's organization roles.
    pub async fn list_organization_roles(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<RolePage, ClerkError> {
        self.send(Request {
            endpoint: "list_organization_roles",
            method: Method::GET,
            segments: &["organization_roles"],
            query: vec![
                ("order_by", "+created_at".to_owned()),
                ("limit", limit.to_string()),
                ("offset", offset.to_string()),
            ],
            body: None,
            context: format!("listing the organization roles (offset {offset})"),
        })
        .await
    }

    /// `GET /organizations/{id_or_slug}` with its member count.
    pub async fn get_organization(&self, id_or_slug: &str) -> Result<Organization, ClerkError> {
        self.send(Request {
            endpoint: "get_organization",
            method: Method::GET,
            segments: &["organizations", id_or_slug],
            query: vec![("include_members_count", "true".to_owned())],
            body: None,
            context: format!("looking up the organization {id_or_slug}"),
        })
        .await
    }
}
