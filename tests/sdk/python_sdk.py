#!/usr/bin/env python3
"""Clerk's official Python SDK (clerk-backend-api) against `membersync simulate`.

Starts the simulator on a free loopback port with tests/sdk/state.json, performs every
operation a rehearsal needs through the SDK as shipped (no header override: it sends its own
Clerk-API-Version), prints a pass/fail table and exits 1 if any operation failed.

An operation passes only if the SDK returns its typed model (pydantic validates the answer
against the SDK's models) with the expected content, or raises its typed error (ClerkErrors)
with the expected status and code.

    python3 tests/sdk/python_sdk.py target/debug/membersync
"""

import sys
import warnings

from clerk_backend_api import Clerk, models

from simulator import Failed, Simulator, run_checks

KEY = "sk_test_sdk_python_0123456789"
ACME = "org_2sdkAcme"
GLOBEX = "org_2sdkGlobex"


def expect(condition, message):
    if not condition:
        raise Failed(message)


def typed(value, model):
    expect(isinstance(value, model), f"expected {model.__name__}, got {type(value).__name__}")
    return value


def fails_with(call, status, code):
    """The call raises ClerkErrors with this HTTP status and Clerk error code."""
    try:
        call()
    except models.ClerkErrors as error:
        got = (error.raw_response.status_code, error.data.errors[0].code)
        expect(got == (status, code), f"expected {status} {code}, got {got[0]} {got[1]}")
        return
    raise Failed(f"expected ClerkErrors {status} {code}, the call succeeded")


def ids(page):
    return [m.id for m in page.data]


def checks(clerk, wrong_key_clerk):
    memberships = clerk.organization_memberships
    invitations = clerk.organization_invitations
    state = {}

    def instance_first_page():
        page = typed(
            clerk.users.get_instance_organization_memberships(
                order_by="+created_at", limit=3, offset=0
            ),
            models.OrganizationMemberships,
        )
        expect(ids(page) == ["orgmem_2sdk1", "orgmem_2sdk2", "orgmem_2sdk3"], ids(page))
        expect(page.total_count == 6, page.total_count)
        member = page.data[0]
        typed(member.organization, models.OrganizationMembershipOrganization)
        typed(member.public_user_data, models.OrganizationMembershipPublicUserData)
        expect(member.public_user_data.first_name == "Ada", member.public_user_data)

    def instance_second_page():
        page = clerk.users.get_instance_organization_memberships(
            order_by="+created_at", limit=3, offset=3
        )
        typed(page, models.OrganizationMemberships)
        expect(ids(page) == ["orgmem_2sdk4", "orgmem_2sdk5", "orgmem_2sdk6"], ids(page))

    def instance_default_order():
        page = typed(
            clerk.users.get_instance_organization_memberships(limit=2),
            models.OrganizationMemberships,
        )
        expect(ids(page) == ["orgmem_2sdk6", "orgmem_2sdk5"], f"not newest first: {ids(page)}")

    def organization_paging():
        page = typed(
            memberships.list(organization_id=ACME, order_by="+created_at", limit=2, offset=2),
            models.OrganizationMemberships,
        )
        expect(ids(page) == ["orgmem_2sdk3", "orgmem_2sdk4"], ids(page))
        expect(page.total_count == 4, page.total_count)

    def organization_order_by_email():
        page = typed(
            memberships.list(organization_id=ACME, order_by="-email_address"),
            models.OrganizationMemberships,
        )
        emails = [m.public_user_data.identifier for m in page.data]
        expect(emails == sorted(emails, reverse=True) and len(emails) == 4, emails)

    def organization_filter_email():
        page = typed(
            memberships.list(
                organization_id=ACME,
                email_address=["Brian.Kernighan@acme.test", "nobody@acme.test"],
            ),
            models.OrganizationMemberships,
        )
        expect(ids(page) == ["orgmem_2sdk3"] and page.total_count == 1, ids(page))

    def organization_filter_user_id():
        page = typed(
            memberships.list(organization_id=ACME, user_id=["user_2sdkAda", "user_2sdkChloe"]),
            models.OrganizationMemberships,
        )
        expect(sorted(ids(page)) == ["orgmem_2sdk1", "orgmem_2sdk4"], ids(page))

    def organization_filter_query():
        page = typed(
            memberships.list(organization_id=ACME, query="kernig"),
            models.OrganizationMemberships,
        )
        expect(ids(page) == ["orgmem_2sdk3"], ids(page))

    def create():
        member = typed(
            memberships.create(organization_id=ACME, user_id="user_2sdkEmma", role="org:member"),
            models.OrganizationMembership,
        )
        expect(member.role == "org:member", member.role)
        expect(member.public_user_data.identifier == "emma.watson@acme.test", member)
        state["emma"] = member.id

    def role_change():
        member = typed(
            memberships.update(organization_id=ACME, user_id="user_2sdkChloe", role="org:billing"),
            models.OrganizationMembership,
        )
        expect(member.role == "org:billing", member.role)
        expect(member.updated_at > member.created_at, "updated_at did not move")

    def metadata_merge():
        member = typed(
            memberships.update_metadata(
                organization_id=ACME,
                user_id="user_2sdkBrian",
                public_metadata={"team": {"oncall": None, "lead": "ada"}, "seat": None},
                private_metadata={"level": 2},
            ),
            models.OrganizationMembership,
        )
        expected = {"team": {"name": "web", "lead": "ada"}}
        expect(member.public_metadata == expected, member.public_metadata)
        expect(member.private_metadata == {"level": 2}, member.private_metadata)

    def delete():
        member = typed(
            memberships.delete(organization_id=ACME, user_id="user_2sdkEmma"),
            models.OrganizationMembership,
        )
        expect(member.id == state.get("emma"), member.id)
        left = memberships.list(organization_id=ACME, user_id=["user_2sdkEmma"])
        expect(left.total_count == 0, "still a member")

    def organizations_with_counts():
        page = typed(
            clerk.organizations.list(include_members_count=True, order_by="+created_at"),
            models.Organizations,
        )
        counts = {o.id: o.members_count for o in page.data}
        expect(counts == {ACME: 4, GLOBEX: 2}, counts)

    def organizations_without_counts():
        page = typed(clerk.organizations.list(), models.Organizations)
        expect(all(o.members_count is None for o in page.data), "members_count not asked for")

    def organization_by_id():
        organization = typed(
            clerk.organizations.get(organization_id=GLOBEX), models.Organization
        )
        expect(organization.slug == "globex", organization.slug)

    def organization_by_slug():
        organization = typed(
            clerk.organizations.get(organization_id="acme", include_members_count=True),
            models.Organization,
        )
        expect(organization.id == ACME and organization.members_count == 4, organization)

    def users_by_email():
        users = clerk.users.list(
            request={"email_address": ["dev@personal.test", "farid@contractor.test"]}
        )
        for user in users:
            typed(user, models.User)
        expect(sorted(u.id for u in users) == ["user_2sdkDev", "user_2sdkFarid"], users)
        dev = next(u for u in users if u.id == "user_2sdkDev")
        addresses = [e.email_address for e in dev.email_addresses]
        expect(addresses == ["dev.patel@acme.test", "dev@personal.test"], addresses)
        expect(dev.primary_email_address_id == dev.email_addresses[0].id, "primary address")

    def user_by_id():
        user = typed(clerk.users.get(user_id="user_2sdkGrace"), models.User)
        expect((user.first_name, user.last_name) == ("Grace", "Hopper"), user)

    def users_count():
        count = typed(
            clerk.users.count(request={"email_address": ["dev@personal.test", "x@y.test"]}),
            models.TotalCount,
        )
        expect(count.total_count == 1, count.total_count)

    def roles():
        page = typed(clerk.organization_roles.list(limit=10), models.Roles)
        keys = [r.key for r in page.data]
        expect(keys == ["org:admin", "org:member", "org:billing"], keys)

    def role_set():
        role_set = typed(clerk.role_sets.get(role_set_key_or_id="role_set:finance"), models.RoleSet)
        keys = [r.key for r in role_set.roles]
        expect(keys == ["org:admin", "org:member", "org:auditor"], keys)

    def role_sets():
        page = typed(clerk.role_sets.list(), models.RoleSets)
        expect([s.key for s in page.data] == ["role_set:finance"], page)

    def invitation_create():
        invitation = typed(
            invitations.create(
                organization_id=ACME,
                email_address="new.hire@acme.test",
                role="org:member",
                public_metadata={"team": "web"},
                redirect_url="https://app.example.com/accept",
                expires_in_days=7,
            ),
            models.OrganizationInvitation,
        )
        expect(invitation.status == "pending", invitation.status)
        state["new_hire"] = invitation.id

    def invitation_bulk():
        page = typed(
            invitations.bulk_create(
                organization_id=ACME,
                request_body=[
                    {"email_address": "bulk1@acme.test", "role": "org:member"},
                    {"email_address": "bulk2@acme.test", "role": "org:billing"},
                ],
            ),
            models.OrganizationInvitations,
        )
        expect(sorted(i.email_address for i in page.data) == ["bulk1@acme.test", "bulk2@acme.test"], page)

    def invitation_list():
        page = typed(
            invitations.list(organization_id=ACME, status="pending", order_by="+created_at"),
            models.OrganizationInvitations,
        )
        emails = [i.email_address for i in page.data]
        expected = ["old.friend@acme.test", "new.hire@acme.test", "bulk1@acme.test", "bulk2@acme.test"]
        expect(emails == expected, emails)

    def invitation_list_instance():
        page = typed(
            invitations.get_all(status="pending"),
            models.OrganizationInvitationsWithPublicOrganizationData,
        )
        expect(page.total_count == 4, page.total_count)
        expect(page.data[0].public_organization_data.slug == "acme", page.data[0])

    def invitation_get():
        invitation = typed(
            invitations.get(organization_id=ACME, invitation_id=state.get("new_hire", "?")),
            models.OrganizationInvitation,
        )
        expect(invitation.email_address == "new.hire@acme.test", invitation)

    def invitation_revoke():
        invitation = typed(
            invitations.revoke(organization_id=ACME, invitation_id="orginv_2sdkOld"),
            models.OrganizationInvitation,
        )
        expect(invitation.status == "revoked", invitation.status)

    def invitation_pending():
        page = typed(
            invitations.list_pending(organization_id=ACME), models.OrganizationInvitations
        )
        emails = sorted(i.email_address for i in page.data)
        expect(emails == ["bulk1@acme.test", "bulk2@acme.test", "new.hire@acme.test"], emails)

    def duplicate_membership():
        fails_with(
            lambda: memberships.create(organization_id=ACME, user_id="user_2sdkAda", role="org:member"),
            400,
            "already_a_member_in_organization",
        )

    def remove_non_member():
        fails_with(
            lambda: memberships.delete(organization_id=ACME, user_id="user_2sdkFarid"),
            404,
            "resource_not_found",
        )

    def unknown_role():
        fails_with(
            lambda: memberships.update(organization_id=ACME, user_id="user_2sdkAda", role="org:wizard"),
            422,
            "form_param_value_invalid",
        )

    def bulk_limit():
        eleven = [{"email_address": f"many{n}@acme.test", "role": "org:member"} for n in range(11)]
        fails_with(
            lambda: invitations.bulk_create(organization_id=ACME, request_body=eleven),
            400,
            "bulk_size_exceeded",
        )

    def wrong_key():
        fails_with(
            lambda: wrong_key_clerk.users.get_instance_organization_memberships(),
            401,
            "authentication_invalid",
        )

    return [
        ("instance memberships: first page, +created_at", instance_first_page),
        ("instance memberships: second page", instance_second_page),
        ("instance memberships: default order, newest first", instance_default_order),
        ("organization memberships: limit and offset", organization_paging),
        ("organization memberships: order_by -email_address", organization_order_by_email),
        ("organization memberships: email_address filter", organization_filter_email),
        ("organization memberships: user_id filter", organization_filter_user_id),
        ("organization memberships: query filter", organization_filter_query),
        ("membership: create", create),
        ("membership: role change, updated_at moves", role_change),
        ("membership: deep metadata merge, null removes", metadata_merge),
        ("membership: delete", delete),
        ("organizations: list with include_members_count", organizations_with_counts),
        ("organizations: list without members_count", organizations_without_counts),
        ("organization: get by ID", organization_by_id),
        ("organization: get by slug", organization_by_slug),
        ("users: by email address", users_by_email),
        ("user: get by ID", user_by_id),
        ("users: count", users_count),
        ("organization roles: list", roles),
        ("role sets: list", role_sets),
        ("role set: get", role_set),
        ("invitation: create", invitation_create),
        ("invitation: bulk create", invitation_bulk),
        ("invitations: organization list, status pending", invitation_list),
        ("invitations: instance list", invitation_list_instance),
        ("invitation: get", invitation_get),
        ("invitation: revoke", invitation_revoke),
        ("invitations: pending", invitation_pending),
        ("error: duplicate membership", duplicate_membership),
        ("error: removing a non-member", remove_non_member),
        ("error: unknown role", unknown_role),
        ("error: bulk over 10", bulk_limit),
        ("error: wrong key", wrong_key),
    ]


def main():
    # list_pending is deprecated in the SDK; it is still Clerk's endpoint, and checked.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if len(sys.argv) != 2:
        sys.exit("usage: python_sdk.py PATH/TO/membersync")
    with Simulator(sys.argv[1], KEY, "python") as simulator:
        # httpx's default timeout is 5 s; a busy CI machine deserves more.
        clerk = Clerk(bearer_auth=KEY, server_url=simulator.api_url, timeout_ms=60_000)
        wrong = Clerk(bearer_auth="sk_test_wrong_key", server_url=simulator.api_url, timeout_ms=60_000)
        failed = run_checks("clerk-backend-api (Python)", checks(clerk, wrong), simulator)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
