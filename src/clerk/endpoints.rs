//! One function per Clerk endpoint membersync uses, named after the operation, taking and
//! returning typed models. Each builds its request; [`Client`] sends it under the pacer with the
//! retry policy.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{
    ClerkError, Client, FILTER_LIMIT, Invitation, InvitationPage, Membership, MembershipPage,
    Organization, OrganizationPage, Request, RolePage, RoleSet, User,
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
                own_limit: false,
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
                own_limit: false,
                context: format!("listing the memberships of {organization_id}"),
            })
            .await?;
        page.served_at = served_at;
        Ok(page)
    }

    /// `GET /organizations/{id}/memberships?role=…`: the first page of one organization's
    /// members who hold `role` (its `total_count` counts them all).
    pub async fn list_organization_memberships_with_role(
        &self,
        organization_id: &str,
        role: &str,
        limit: u64,
    ) -> Result<MembershipPage, ClerkError> {
        self.send(Request {
            endpoint: "list_organization_memberships",
            method: Method::GET,
            segments: &["organizations", organization_id, "memberships"],
            query: vec![
                ("order_by", "+created_at".to_owned()),
                ("role", role.to_owned()),
                ("limit", limit.to_string()),
            ],
            body: None,
            own_limit: false,
            context: format!("listing the {role} members of {organization_id}"),
        })
        .await
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
        let created: Membership = self
            .send(Request {
                endpoint: "create_membership",
                method: Method::POST,
                segments: &["organizations", organization_id, "memberships"],
                query: Vec::new(),
                body: Some(body),
                own_limit: false,
                context: format!("creating the membership of {user_id} in {organization_id}"),
            })
            .await?;
        self.shared.own_writes.created(&created.id);
        Ok(created)
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
            own_limit: false,
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
            own_limit: false,
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
            own_limit: false,
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
            own_limit: false,
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
            own_limit: false,
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
                ("include_members_count", "true".to_owned()),
                ("limit", limit.to_string()),
                ("offset", offset.to_string()),
            ],
            body: None,
            own_limit: false,
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
            own_limit: false,
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
            own_limit: false,
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
            own_limit: false,
            context: format!("looking up the organization {id_or_slug}"),
        })
        .await
    }

    /// `GET /organization_invitations?status=pending`: a page of the instance's pending
    /// organization invitations, oldest first.
    pub async fn list_instance_invitations(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<InvitationPage, ClerkError> {
        self.send(Request {
            endpoint: "list_instance_invitations",
            method: Method::GET,
            segments: &["organization_invitations"],
            query: vec![
                ("status", "pending".to_owned()),
                ("order_by", "+created_at".to_owned()),
                ("limit", limit.to_string()),
                ("offset", offset.to_string()),
            ],
            body: None,
            own_limit: false,
            context: format!("listing the instance's pending invitations (offset {offset})"),
        })
        .await
    }

    /// `GET /organizations/{id}/invitations?status=pending`: a page of one organization's
    /// pending invitations, optionally only those to one email address.
    pub async fn list_organization_invitations(
        &self,
        organization_id: &str,
        offset: u64,
        limit: u64,
        email: Option<&str>,
    ) -> Result<InvitationPage, ClerkError> {
        let mut query = vec![
            ("status", "pending".to_owned()),
            ("order_by", "+created_at".to_owned()),
            ("limit", limit.to_string()),
            ("offset", offset.to_string()),
        ];
        if let Some(email) = email {
            query.push(("email_address", email.to_owned()));
        }
        self.send(Request {
            endpoint: "list_organization_invitations",
            method: Method::GET,
            segments: &["organizations", organization_id, "invitations"],
            query,
            body: None,
            own_limit: false,
            context: format!("listing the pending invitations of {organization_id}"),
        })
        .await
    }

    /// `POST /organizations/{id}/invitations`: one invitation.
    pub async fn create_invitation(
        &self,
        organization_id: &str,
        invitation: &Value,
    ) -> Result<Invitation, ClerkError> {
        let email = invitation["email_address"].as_str().unwrap_or_default();
        self.send(Request {
            endpoint: "create_invitation",
            method: Method::POST,
            segments: &["organizations", organization_id, "invitations"],
            query: Vec::new(),
            body: Some(invitation.clone()),
            own_limit: true,
            context: format!("inviting {email} to {organization_id}"),
        })
        .await
    }

    /// `POST /organizations/{id}/invitations/bulk`: up to 10 invitations in one request.
    pub async fn create_invitations(
        &self,
        organization_id: &str,
        invitations: &[Value],
    ) -> Result<InvitationPage, ClerkError> {
        self.send(Request {
            endpoint: "create_invitations_bulk",
            method: Method::POST,
            segments: &["organizations", organization_id, "invitations", "bulk"],
            query: Vec::new(),
            body: Some(Value::Array(invitations.to_vec())),
            own_limit: true,
            context: format!("inviting {} people to {organization_id}", invitations.len()),
        })
        .await
    }

    /// `POST /organizations/{id}/invitations/{invitation_id}/revoke`.
    pub async fn revoke_invitation(
        &self,
        organization_id: &str,
        invitation_id: &str,
    ) -> Result<Invitation, ClerkError> {
        self.send(Request {
            endpoint: "revoke_invitation",
            method: Method::POST,
            segments: &[
                "organizations",
                organization_id,
                "invitations",
                invitation_id,
                "revoke",
            ],
            query: Vec::new(),
            body: Some(json!({})),
            own_limit: true,
            context: format!("revoking the invitation {invitation_id} in {organization_id}"),
        })
        .await
    }
}
