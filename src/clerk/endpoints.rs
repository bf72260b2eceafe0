//! One function per Clerk endpoint membersync uses, named after the operation, taking and
//! returning typed models. Each describes its request (`Request::get(…).page(…)`); [`Client`]
//! sends it under the pacer with the retry policy.

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
            .send_dated(
                Request::get(
                    "list_instance_memberships",
                    &["organization_memberships"],
                    format!("listing the instance's memberships (offset {offset})"),
                )
                .page(offset, limit),
            )
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
        let (mut page, served_at): (MembershipPage, _) = self
            .send_dated(
                Request::get(
                    "list_organization_memberships",
                    &["organizations", organization_id, "memberships"],
                    format!("listing the memberships of {organization_id}"),
                )
                .page(offset, limit)
                .query_each("user_id", user_ids),
            )
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
        self.send(
            Request::get(
                "list_organization_memberships",
                &["organizations", organization_id, "memberships"],
                format!("listing the {role} members of {organization_id}"),
            )
            .query("order_by", "+created_at")
            .query("role", role)
            .query("limit", limit),
        )
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
            .send(Request::post(
                "create_membership",
                &["organizations", organization_id, "memberships"],
                body,
                format!("creating the membership of {user_id} in {organization_id}"),
            ))
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
        self.send(Request::patch(
            "update_membership_role",
            &["organizations", organization_id, "memberships", user_id],
            json!({ "role": role }),
            format!("changing the role of {user_id} in {organization_id}"),
        ))
        .await
    }

    /// `DELETE /organizations/{id}/memberships/{user_id}`.
    pub async fn delete_membership(
        &self,
        organization_id: &str,
        user_id: &str,
    ) -> Result<Membership, ClerkError> {
        self.send(Request::delete(
            "delete_membership",
            &["organizations", organization_id, "memberships", user_id],
            format!("deleting the membership of {user_id} in {organization_id}"),
        ))
        .await
    }

    /// `PATCH /organizations/{id}/memberships/{user_id}/metadata`: a deep merge (RFC 7396).
    pub async fn merge_membership_metadata(
        &self,
        organization_id: &str,
        user_id: &str,
        patch: &Value,
    ) -> Result<Membership, ClerkError> {
        let segments = [
            "organizations",
            organization_id,
            "memberships",
            user_id,
            "metadata",
        ];
        self.send(Request::patch(
            "merge_membership_metadata",
            &segments,
            patch.clone(),
            format!("merging the metadata of {user_id} in {organization_id}"),
        ))
        .await
    }

    /// `GET /users?email_address=…`: the users with any of these emails (at most 100).
    pub async fn list_users_by_email(&self, emails: &[&str]) -> Result<Vec<User>, ClerkError> {
        self.send(
            Request::get(
                "list_users",
                &["users"],
                format!("looking up {} email address(es)", emails.len()),
            )
            .query_each("email_address", emails)
            .query("limit", emails.len().clamp(1, FILTER_LIMIT)),
        )
        .await
    }

    /// `GET /organizations?organization_id=…`: these organizations (at most 100) with their
    /// member counts.
    pub async fn list_organizations(&self, ids: &[&str]) -> Result<OrganizationPage, ClerkError> {
        self.send(
            Request::get(
                "list_organizations",
                &["organizations"],
                format!("looking up {} organization(s)", ids.len()),
            )
            .query_each("organization_id", ids)
            .query("include_members_count", true)
            .query("limit", ids.len().clamp(1, FILTER_LIMIT)),
        )
        .await
    }

    /// `GET /organizations?limit=…&offset=…`: a page of every organization, oldest first.
    pub async fn list_all_organizations(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<OrganizationPage, ClerkError> {
        self.send(
            Request::get(
                "list_organizations",
                &["organizations"],
                format!("listing the organizations (offset {offset})"),
            )
            .query("order_by", "+created_at")
            .query("include_members_count", true)
            .query("limit", limit)
            .query("offset", offset),
        )
        .await
    }

    /// `GET /role_sets/{key}`: the roles organizations with this role set allow.
    pub async fn get_role_set(&self, key: &str) -> Result<RoleSet, ClerkError> {
        self.send(Request::get(
            "get_role_set",
            &["role_sets", key],
            format!("reading the role set {key}"),
        ))
        .await
    }

    /// `GET /organization_roles`: a page of the instance's organization roles.
    pub async fn list_organization_roles(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<RolePage, ClerkError> {
        self.send(
            Request::get(
                "list_organization_roles",
                &["organization_roles"],
                format!("listing the organization roles (offset {offset})"),
            )
            .page(offset, limit),
        )
        .await
    }

    /// `GET /organizations/{id_or_slug}` with its member count.
    pub async fn get_organization(&self, id_or_slug: &str) -> Result<Organization, ClerkError> {
        self.send(
            Request::get(
                "get_organization",
                &["organizations", id_or_slug],
                format!("looking up the organization {id_or_slug}"),
            )
            .query("include_members_count", true),
        )
        .await
    }

    /// `GET /organization_invitations?status=pending`: a page of the instance's pending
    /// organization invitations, oldest first.
    pub async fn list_instance_invitations(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<InvitationPage, ClerkError> {
        self.send(
            Request::get(
                "list_instance_invitations",
                &["organization_invitations"],
                format!("listing the instance's pending invitations (offset {offset})"),
            )
            .query("status", "pending")
            .page(offset, limit),
        )
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
        self.send(
            Request::get(
                "list_organization_invitations",
                &["organizations", organization_id, "invitations"],
                format!("listing the pending invitations of {organization_id}"),
            )
            .query("status", "pending")
            .page(offset, limit)
            .query_each("email_address", email.as_slice()),
        )
        .await
    }

    /// `POST /organizations/{id}/invitations`: one invitation.
    pub async fn create_invitation(
        &self,
        organization_id: &str,
        invitation: &Value,
    ) -> Result<Invitation, ClerkError> {
        let email = invitation["email_address"].as_str().unwrap_or_default();
        self.send(
            Request::post(
                "create_invitation",
                &["organizations", organization_id, "invitations"],
                invitation.clone(),
                format!("inviting {email} to {organization_id}"),
            )
            .own_limit(),
        )
        .await
    }

    /// `POST /organizations/{id}/invitations/bulk`: up to 10 invitations in one request.
    pub async fn create_invitations(
        &self,
        organization_id: &str,
        invitations: &[Value],
    ) -> Result<InvitationPage, ClerkError> {
        self.send(
            Request::post(
                "create_invitations_bulk",
                &["organizations", organization_id, "invitations", "bulk"],
                Value::Array(invitations.to_vec()),
                format!("inviting {} people to {organization_id}", invitations.len()),
            )
            .own_limit(),
        )
        .await
    }

    /// `POST /organizations/{id}/invitations/{invitation_id}/revoke`.
    pub async fn revoke_invitation(
        &self,
        organization_id: &str,
        invitation_id: &str,
    ) -> Result<Invitation, ClerkError> {
        let segments = [
            "organizations",
            organization_id,
            "invitations",
            invitation_id,
            "revoke",
        ];
        self.send(
            Request::post(
                "revoke_invitation",
                &segments,
                json!({}),
                format!("revoking the invitation {invitation_id} in {organization_id}"),
            )
            .own_limit(),
        )
        .await
    }
}
