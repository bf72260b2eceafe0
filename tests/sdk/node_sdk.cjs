#!/usr/bin/env node
// Clerk's official JavaScript SDK (@clerk/backend) against `membersync simulate`.
//
// Starts the simulator on a free loopback port with tests/sdk/state.json, performs every
// operation a rehearsal needs through the SDK as shipped, prints a pass/fail table and exits 1
// if any operation failed.
//
// The SDK does not validate answers: it maps JSON onto its resource classes and leaves a
// missing field `undefined` (or throws on a missing array). So an operation passes only if
// the SDK returns its resource class, with no field `undefined` that Clerk's API description
// requires, and the expected content; or throws its ClerkAPIResponseError with the expected
// status and code.
//
//     node tests/sdk/node_sdk.cjs target/debug/membersync NODE_PREFIX
//
// NODE_PREFIX is the folder whose node_modules holds @clerk/backend (npm install --prefix).

'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { createRequire } = require('node:module');

const KEY = 'sk_test_sdk_node_0123456789';
const ACME = 'org_2sdkAcme';
const GLOBEX = 'org_2sdkGlobex';

// Fields the SDK's classes read that Clerk's API description does not require, by class.
const OPTIONAL = {
  Organization: ['membersCount', 'createdBy'],
  OrganizationInvitation: ['publicOrganizationData'],
  EmailAddress: ['id'],
  Verification: ['nonce', 'externalVerificationRedirectUrl'],
  RoleSetItem: ['membersCount', 'hasMembers'],
  User: ['locale'],
};

class Failed extends Error {}

function expect(condition, message) {
  if (!condition) throw new Failed(typeof message === 'string' ? message : JSON.stringify(message));
}

function className(value) {
  return value && value.constructor ? value.constructor.name.replace(/^_+/, '') : typeof value;
}

// The fields of a resource (and of the resources inside it) left undefined.
function missing(value, where, found = []) {
  if (Array.isArray(value)) {
    value.forEach((item, i) => missing(item, `${where}[${i}]`, found));
  } else if (value && typeof value === 'object' && !['Object', 'URL'].includes(className(value))) {
    const optional = OPTIONAL[className(value)] || [];
    for (const [key, field] of Object.entries(value)) {
      if (field === undefined && !optional.includes(key)) found.push(`${where}.${key}`);
      else missing(field, `${where}.${key}`, found);
    }
  }
  return found;
}

function typed(value, name) {
  expect(className(value) === name, `expected ${name}, got ${className(value)}`);
  const undefinedFields = missing(value, name);
  expect(undefinedFields.length === 0, `undefined: ${undefinedFields.slice(0, 6).join(', ')}`);
  return value;
}

function typedPage(page, name) {
  expect(Array.isArray(page.data), 'no data array');
  expect(typeof page.totalCount === 'number', `totalCount ${page.totalCount}`);
  page.data.forEach((item) => typed(item, name));
  return page;
}

async function failsWith(call, isClerkAPIResponseError, status, code) {
  try {
    await call();
  } catch (error) {
    expect(isClerkAPIResponseError(error), `not a ClerkAPIResponseError: ${error}`);
    const got = [error.status, error.errors && error.errors[0] && error.errors[0].code];
    expect(got[0] === status && got[1] === code, `expected ${status} ${code}, got ${got.join(' ')}`);
    return;
  }
  throw new Failed(`expected ${status} ${code}, the call succeeded`);
}

const ids = (page) => page.data.map((m) => m.id);

function checks(clerk, wrongKey, isError) {
  const orgs = clerk.organizations;
  const state = {};
  return [
    ['instance memberships: first page, +created_at', async () => {
      const page = typedPage(await orgs.getInstanceOrganizationMembershipList({ orderBy: '+created_at', limit: 3, offset: 0 }), 'OrganizationMembership');
      expect(JSON.stringify(ids(page)) === '["orgmem_2sdk1","orgmem_2sdk2","orgmem_2sdk3"]', ids(page));
      expect(page.totalCount === 6, `totalCount ${page.totalCount}`);
      expect(page.data[0].publicUserData.firstName === 'Ada', page.data[0].publicUserData);
    }],
    ['instance memberships: second page', async () => {
      const page = typedPage(await orgs.getInstanceOrganizationMembershipList({ orderBy: '+created_at', limit: 3, offset: 3 }), 'OrganizationMembership');
      expect(JSON.stringify(ids(page)) === '["orgmem_2sdk4","orgmem_2sdk5","orgmem_2sdk6"]', ids(page));
    }],
    ['instance memberships: default order, newest first', async () => {
      const page = typedPage(await orgs.getInstanceOrganizationMembershipList({ limit: 2 }), 'OrganizationMembership');
      expect(JSON.stringify(ids(page)) === '["orgmem_2sdk6","orgmem_2sdk5"]', `not newest first: ${ids(page)}`);
    }],
    ['organization memberships: limit and offset', async () => {
      const page = typedPage(await orgs.getOrganizationMembershipList({ organizationId: ACME, orderBy: '+created_at', limit: 2, offset: 2 }), 'OrganizationMembership');
      expect(JSON.stringify(ids(page)) === '["orgmem_2sdk3","orgmem_2sdk4"]', ids(page));
      expect(page.totalCount === 4, `totalCount ${page.totalCount}`);
    }],
    ['organization memberships: order_by -email_address', async () => {
      const page = typedPage(await orgs.getOrganizationMembershipList({ organizationId: ACME, orderBy: '-email_address' }), 'OrganizationMembership');
      const emails = page.data.map((m) => m.publicUserData.identifier);
      expect(emails.length === 4 && JSON.stringify(emails) === JSON.stringify([...emails].sort().reverse()), emails);
    }],
    ['organization memberships: email_address filter', async () => {
      const page = typedPage(await orgs.getOrganizationMembershipList({ organizationId: ACME, emailAddress: ['Brian.Kernighan@acme.test', 'nobody@acme.test'] }), 'OrganizationMembership');
      expect(JSON.stringify(ids(page)) === '["orgmem_2sdk3"]' && page.totalCount === 1, ids(page));
    }],
    ['organization memberships: user_id filter', async () => {
      const page = typedPage(await orgs.getOrganizationMembershipList({ organizationId: ACME, userId: ['user_2sdkAda', 'user_2sdkChloe'] }), 'OrganizationMembership');
      expect(JSON.stringify(ids(page).sort()) === '["orgmem_2sdk1","orgmem_2sdk4"]', ids(page));
    }],
    ['organization memberships: query filter', async () => {
      const page = typedPage(await orgs.getOrganizationMembershipList({ organizationId: ACME, query: 'kernig' }), 'OrganizationMembership');
      expect(JSON.stringify(ids(page)) === '["orgmem_2sdk3"]', ids(page));
    }],
    ['membership: create', async () => {
      const member = typed(await orgs.createOrganizationMembership({ organizationId: ACME, userId: 'user_2sdkEmma', role: 'org:member' }), 'OrganizationMembership');
      expect(member.role === 'org:member', member.role);
      expect(member.publicUserData.identifier === 'emma.watson@acme.test', member.publicUserData);
      state.emma = member.id;
    }],
    ['membership: role change, updated_at moves', async () => {
      const member = typed(await orgs.updateOrganizationMembership({ organizationId: ACME, userId: 'user_2sdkChloe', role: 'org:billing' }), 'OrganizationMembership');
      expect(member.role === 'org:billing', member.role);
      expect(member.updatedAt > member.createdAt, 'updated_at did not move');
    }],
    ['membership: deep metadata merge, null removes', async () => {
      const member = typed(await orgs.updateOrganizationMembershipMetadata({
        organizationId: ACME,
        userId: 'user_2sdkBrian',
        publicMetadata: { team: { oncall: null, lead: 'ada' }, seat: null },
        privateMetadata: { level: 2 },
      }), 'OrganizationMembership');
      expect(JSON.stringify(member.publicMetadata) === '{"team":{"name":"web","lead":"ada"}}', member.publicMetadata);
      expect(JSON.stringify(member.privateMetadata) === '{"level":2}', member.privateMetadata);
    }],
    ['membership: delete', async () => {
      const member = typed(await orgs.deleteOrganizationMembership({ organizationId: ACME, userId: 'user_2sdkEmma' }), 'OrganizationMembership');
      expect(member.id === state.emma, member.id);
      const left = await orgs.getOrganizationMembershipList({ organizationId: ACME, userId: ['user_2sdkEmma'] });
      expect(left.totalCount === 0, 'still a member');
    }],
    ['organizations: list with include_members_count', async () => {
      const page = typedPage(await orgs.getOrganizationList({ includeMembersCount: true, orderBy: '+created_at' }), 'Organization');
      const counts = Object.fromEntries(page.data.map((o) => [o.id, o.membersCount]));
      expect(counts[ACME] === 4 && counts[GLOBEX] === 2, counts);
    }],
    ['organizations: list without members_count', async () => {
      const page = typedPage(await orgs.getOrganizationList(), 'Organization');
      expect(page.data.every((o) => o.membersCount === undefined), 'members_count not asked for');
    }],
    ['organization: get by ID', async () => {
      const organization = typed(await orgs.getOrganization({ organizationId: GLOBEX }), 'Organization');
      expect(organization.slug === 'globex', organization.slug);
    }],
    ['organization: get by slug', async () => {
      const organization = typed(await orgs.getOrganization({ slug: 'acme', includeMembersCount: true }), 'Organization');
      expect(organization.id === ACME && organization.membersCount === 4, organization);
    }],
    ['users: by email address', async () => {
      const page = typedPage(await clerk.users.getUserList({ emailAddress: ['dev@personal.test', 'farid@contractor.test'] }), 'User');
      expect(JSON.stringify(page.data.map((u) => u.id).sort()) === '["user_2sdkDev","user_2sdkFarid"]', page.data.map((u) => u.id));
      expect(page.totalCount === 2, `totalCount ${page.totalCount}`);
      const dev = page.data.find((u) => u.id === 'user_2sdkDev');
      expect(JSON.stringify(dev.emailAddresses.map((e) => e.emailAddress)) === '["dev.patel@acme.test","dev@personal.test"]', dev.emailAddresses);
      expect(dev.primaryEmailAddress && dev.primaryEmailAddress.emailAddress === 'dev.patel@acme.test', 'primary address');
    }],
    ['user: get by ID', async () => {
      const user = typed(await clerk.users.getUser('user_2sdkGrace'), 'User');
      expect(user.firstName === 'Grace' && user.lastName === 'Hopper', [user.firstName, user.lastName]);
    }],
    ['users: count', async () => {
      const count = await clerk.users.getCount({ emailAddress: ['dev@personal.test', 'x@y.test'] });
      expect(count === 1, `count ${count}`);
    }],
    ['organization roles: list', async () => {
      const page = typedPage(await clerk.organizationRoles.getOrganizationRoleList({ limit: 10 }), 'Role');
      expect(JSON.stringify(page.data.map((r) => r.key)) === '["org:admin","org:member","org:billing"]', page.data.map((r) => r.key));
    }],
    ['role sets: list', async () => {
      const page = typedPage(await clerk.roleSets.getRoleSetList(), 'RoleSet');
      expect(JSON.stringify(page.data.map((s) => s.key)) === '["role_set:finance"]', page.data.map((s) => s.key));
    }],
    ['role set: get', async () => {
      const set = typed(await clerk.roleSets.getRoleSet('role_set:finance'), 'RoleSet');
      expect(JSON.stringify(set.roles.map((r) => r.key)) === '["org:admin","org:member","org:auditor"]', set.roles.map((r) => r.key));
    }],
    ['invitation: create', async () => {
      const invitation = typed(await orgs.createOrganizationInvitation({
        organizationId: ACME,
        emailAddress: 'new.hire@acme.test',
        role: 'org:member',
        publicMetadata: { team: 'web' },
        redirectUrl: 'https://app.example.com/accept',
        expiresInDays: 7,
      }), 'OrganizationInvitation');
      expect(invitation.status === 'pending', invitation.status);
      state.newHire = invitation.id;
    }],
    ['invitation: bulk create', async () => {
      const page = typedPage(await orgs.createOrganizationInvitationBulk(ACME, [
        { emailAddress: 'bulk1@acme.test', role: 'org:member' },
        { emailAddress: 'bulk2@acme.test', role: 'org:billing' },
      ]), 'OrganizationInvitation');
      expect(JSON.stringify(page.data.map((i) => i.emailAddress).sort()) === '["bulk1@acme.test","bulk2@acme.test"]', page.data);
    }],
    ['invitations: organization list, status pending', async () => {
      const page = typedPage(await orgs.getOrganizationInvitationList({ organizationId: ACME, status: ['pending'], orderBy: '+created_at' }), 'OrganizationInvitation');
      const emails = page.data.map((i) => i.emailAddress);
      expect(JSON.stringify(emails) === '["old.friend@acme.test","new.hire@acme.test","bulk1@acme.test","bulk2@acme.test"]', emails);
    }],
    ['invitation: get', async () => {
      const invitation = typed(await orgs.getOrganizationInvitation({ organizationId: ACME, invitationId: state.newHire || '?' }), 'OrganizationInvitation');
      expect(invitation.emailAddress === 'new.hire@acme.test', invitation.emailAddress);
    }],
    ['invitation: revoke', async () => {
      const invitation = typed(await orgs.revokeOrganizationInvitation({ organizationId: ACME, invitationId: 'orginv_2sdkOld' }), 'OrganizationInvitation');
      expect(invitation.status === 'revoked', invitation.status);
    }],
    ['invitations: pending (status filter)', async () => {
      const page = typedPage(await orgs.getOrganizationInvitationList({ organizationId: ACME, status: ['pending'] }), 'OrganizationInvitation');
      const emails = page.data.map((i) => i.emailAddress).sort();
      expect(JSON.stringify(emails) === '["bulk1@acme.test","bulk2@acme.test","new.hire@acme.test"]', emails);
    }],
    ['error: duplicate membership', () => failsWith(
      () => orgs.createOrganizationMembership({ organizationId: ACME, userId: 'user_2sdkAda', role: 'org:member' }),
      isError, 400, 'already_a_member_in_organization')],
    ['error: removing a non-member', () => failsWith(
      () => orgs.deleteOrganizationMembership({ organizationId: ACME, userId: 'user_2sdkFarid' }),
      isError, 404, 'resource_not_found')],
    ['error: unknown role', () => failsWith(
      () => orgs.updateOrganizationMembership({ organizationId: ACME, userId: 'user_2sdkAda', role: 'org:wizard' }),
      isError, 422, 'form_param_value_invalid')],
    ['error: bulk over 10', () => failsWith(
      () => orgs.createOrganizationInvitationBulk(ACME, Array.from({ length: 11 }, (_, n) => ({ emailAddress: `many${n}@acme.test`, role: 'org:member' }))),
      isError, 400, 'bulk_size_exceeded')],
    ['error: wrong key', () => failsWith(
      () => wrongKey.organizations.getInstanceOrganizationMembershipList({}),
      isError, 401, 'authentication_invalid')],
  ];
}

// `membersync simulate` on a free port; resolves with the process and its API URL.
function startSimulator(binary) {
  const log = path.join(os.tmpdir(), 'membersync-sdk-node.log');
  const env = { ...process.env, CLERK_SECRET_KEY: KEY, RUST_LOG: 'membersync=info' };
  delete env.CLERK_SECRET_KEY_FILE;
  const child = spawn(binary, ['simulate', '--state', path.join(__dirname, 'state.json'), '--listen', '127.0.0.1:0'], {
    env,
    stdio: ['ignore', 'pipe', fs.openSync(log, 'w')],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill(); reject(new Error(`the simulator did not start; its log: ${log}`)); }, 60000);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the simulator exited (${code}); its log: ${log}`)); });
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const at = line.indexOf('serving ');
      if (at >= 0) { clearTimeout(timer); resolve({ child, log, apiUrl: line.slice(at + 8).trim() }); }
    });
  });
}

async function main() {
  const [binary, prefix] = process.argv.slice(2);
  if (!binary || !prefix) {
    console.error('usage: node_sdk.cjs PATH/TO/membersync NODE_PREFIX');
    process.exit(2);
  }
  const sdkRequire = createRequire(path.join(path.resolve(prefix), 'package.json'));
  const { createClerkClient } = sdkRequire('@clerk/backend');
  const { isClerkAPIResponseError } = sdkRequire('@clerk/backend/errors');
  const simulator = await startSimulator(binary);
  // The SDK appends /v1 itself.
  const apiUrl = simulator.apiUrl.replace(/\/v1$/, '');
  const clerk = createClerkClient({ secretKey: KEY, apiUrl });
  const wrongKey = createClerkClient({ secretKey: 'sk_test_wrong_key', apiUrl });
  const results = [];
  for (const [name, check] of checks(clerk, wrongKey, isClerkAPIResponseError)) {
    try {
      await check();
      results.push([name, 'pass', '']);
    } catch (error) {
      const detail = error instanceof Failed ? error.message : `${error.name}: ${error.message}`;
      results.push([name, 'FAIL', detail.replace(/\s+/g, ' ').slice(0, 300)]);
    }
  }
  simulator.child.removeAllListeners('exit');
  simulator.child.kill('SIGTERM');
  const width = Math.max(...results.map(([name]) => name.length));
  console.log(`\n@clerk/backend (Node ${process.version}) against ${simulator.apiUrl}`);
  for (const [name, outcome, detail] of results) console.log(`  ${name.padEnd(width)}  ${outcome}  ${detail}`.trimEnd());
  const failed = results.filter(([, outcome]) => outcome !== 'pass').length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  if (failed) console.log(`the simulator's log: ${simulator.log}`);
  process.exit(failed ? 1 : 0);
}

main().catch((error) => { console.error(error); process.exit(1); });
