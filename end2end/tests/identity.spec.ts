import { test, expect, Page, APIRequestContext, request as newRequest } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { spawn, ChildProcess } from "child_process";
import { mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { createServer } from "net";
import { createProject, createUser, hydrated, logIn, rest } from "./helpers";

// The identity pages: Configuration → Authentication (LDAP and OIDC settings, Test LDAP
// server), Administration → Groups, groups as project members, LDAP import on the users page,
// the OIDC button on the sign-in page and the CLI secret on the account page.
//
// `auth_mode` can change only while no user but the admin exists, and the other specs create
// users on the shared server: the mode switches run against a server of their own, started
// here from the same binary and site (end2end/run.sh passes BERTH_E2E_BIN and BERTH_E2E_SITE).

async function axe(page: Page, what: string) {
  const r = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const problems = r.violations.map((v) => `${what}: ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  expect(problems, problems.join("\n")).toEqual([]);
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A closed port on 127.0.0.1 (bound, then released). */
const closedPort = freePort;

type Fresh = { url: string; proc: ChildProcess; dir: string; log: string[] };

/** Starts a berth with an empty data directory (only the admin exists). */
async function startFresh(): Promise<Fresh> {
  const bin = process.env.BERTH_E2E_BIN, site = process.env.BERTH_E2E_SITE;
  if (!bin || !site) throw new Error("BERTH_E2E_BIN / BERTH_E2E_SITE are not set: run end2end/run.sh");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dir = mkdtempSync(join(tmpdir(), "berth-identity-"));
  const log: string[] = [];
  // The server reads every BERTH_* variable as configuration: pass only its own.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BERTH_")));
  const proc = spawn(bin, [], {
    cwd: dir,
    env: {
      ...env,
      BERTH_LISTEN: `127.0.0.1:${port}`,
      BERTH_EXTERNAL_URL: url,
      BERTH_PORTAL__SITE_ROOT: site,
      BERTH_LOG__LEVEL: "warn",
      BERTH_GC__WINDOW: "0s",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  proc.stdout?.on("data", (d) => log.push(String(d)));
  proc.stderr?.on("data", (d) => log.push(String(d)));
  for (let i = 0; i < 150; i++) {
    try {
      const r = await fetch(`${url}/api/v2.0/ping`);
      if (r.ok) return { url, proc, dir, log };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  proc.kill();
  throw new Error(`the second server did not start:\n${log.join("")}`);
}

function stopFresh(f: Fresh) {
  f.proc.kill();
  rmSync(f.dir, { recursive: true, force: true });
}

/** Whether this build serves `method path` (404 with no route means another part of the work). */
async function served(request: APIRequestContext, method: string, path: string, data?: unknown): Promise<boolean> {
  const r = await rest(request, method, path, data);
  return r.status() !== 404 && r.status() !== 405;
}

test("configuration: the authentication section shows the mode, locked once users exist", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await createUser(request, "e2e-idn-user");
  await page.goto("/harbor/configs");
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(/\/harbor\/configs$/);
  await hydrated(page);
  const form = page.getByTestId("auth-config-form");
  await expect(form.getByRole("heading", { name: "Authentication" })).toBeVisible();
  const mode = form.getByLabel("Authentication mode");
  await expect(mode).toHaveValue("db_auth");
  await expect(mode).toBeDisabled();
  await expect(form.getByTestId("auth-mode-help")).toHaveText("The mode cannot change any more: users other than the admin exist.");
  // Saving the section keeps the mode (an unchanged mode is accepted with users present).
  await form.getByTestId("auth-config-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved.");
  const c = await (await rest(request, "GET", "/configurations", undefined, 200)).json();
  expect(c.auth_mode).toEqual({ value: "db_auth", editable: false });
  await axe(page, "configuration");
  // The navigation has the groups page; a database user's account page has no CLI secret.
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Groups" })).toBeVisible();
  await page.goto("/harbor/account");
  await hydrated(page);
  await expect(page.getByTestId("profile-form")).toBeVisible();
  await expect(page.getByTestId("cli-secret-card")).toHaveCount(0);
  // Database mode: the users page creates local users and has no LDAP import.
  await page.goto("/harbor/users");
  await hydrated(page);
  await expect(page.getByTestId("user-new")).toBeVisible();
  await expect(page.getByTestId("ldap-user-import")).toHaveCount(0);
  expect(errors).toEqual([]);
});

test("a server with only the admin: LDAP settings saved and tested, then OIDC with the sign-in button", async ({ browser }) => {
  const fresh = await startFresh();
  const api = await newRequest.newContext({ baseURL: fresh.url });
  const context = await browser.newContext({ baseURL: fresh.url });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto("/harbor/configs");
    await hydrated(page);
    await logIn(page);
    await expect(page).toHaveURL(/\/harbor\/configs$/);
    await hydrated(page);
    const form = page.getByTestId("auth-config-form");
    const mode = form.getByLabel("Authentication mode");
    await expect(mode).toBeEnabled();
    await expect(form.getByTestId("auth-mode-help")).toHaveText("The mode can change only while no user but the admin exists.");
    await expect(form.getByTestId("ldap-settings")).toHaveCount(0);

    // LDAP: the fields appear with the mode; saved through PUT /configurations.
    const port = await closedPort();
    await mode.selectOption("ldap_auth");
    const ldap = form.getByTestId("ldap-settings");
    await expect(ldap).toBeVisible();
    await ldap.getByLabel("LDAP URL").fill(`ldap://127.0.0.1:${port}`);
    await ldap.getByLabel("LDAP search DN").fill("cn=admin,dc=example,dc=com");
    await ldap.getByLabel("LDAP search password").fill("s3cret-Search");
    await ldap.getByLabel("LDAP base DN").fill("ou=people,dc=example,dc=com");
    await ldap.getByLabel("LDAP UID").fill("uid");
    await ldap.getByLabel("LDAP scope").selectOption({ label: "One level" });
    await ldap.getByLabel("LDAP timeout (seconds)").fill("3");
    await ldap.getByLabel("LDAP group base DN").fill("ou=groups,dc=example,dc=com");
    await axe(page, "LDAP settings");
    // A bad value comes back with the API's message.
    await ldap.getByLabel("LDAP UID").fill("u id");
    await form.getByTestId("auth-config-save").click();
    await expect(page.getByTestId("outcome-error")).toContainText("ldap_uid");
    await ldap.getByLabel("LDAP UID").fill("uid");
    await form.getByTestId("auth-config-save").click();
    await expect(page.getByTestId("outcome")).toHaveText("Saved.");
    let c = await (await rest(api, "GET", "/configurations", undefined, 200)).json();
    expect(c.auth_mode.value).toBe("ldap_auth");
    expect(c.ldap_url.value).toBe(`ldap://127.0.0.1:${port}`);
    expect(c.ldap_base_dn.value).toBe("ou=people,dc=example,dc=com");
    expect(c.ldap_scope.value).toBe(1);
    expect(c.ldap_timeout.value).toBe(3);
    expect(c.ldap_search_password_set.value).toBe(true);
    expect(JSON.stringify(c)).not.toContain("s3cret-Search");

    // Loaded again: the stored password is the mask, and saving the mask keeps it.
    await page.reload();
    await hydrated(page);
    await expect(ldap.getByLabel("LDAP search password")).toHaveValue("*****");
    await ldap.getByLabel("LDAP group filter").fill("(objectClass=groupOfNames)");
    await form.getByTestId("auth-config-save").click();
    await expect(page.getByTestId("outcome")).toHaveText("Saved.");
    c = await (await rest(api, "GET", "/configurations", undefined, 200)).json();
    expect(c.ldap_search_password_set.value).toBe(true);
    expect(c.ldap_group_search_filter.value).toBe("(objectClass=groupOfNames)");

    // Test LDAP server against a closed port: a failure with a message.
    await ldap.getByTestId("ldap-ping").click();
    await expect(ldap.getByTestId("ldap-ping-result")).toContainText("Connection to the LDAP server failed");
    if (await served(api, "POST", "/ldap/ping", { ldap_url: `ldap://127.0.0.1:${port}` })) {
      const ping = await (await rest(api, "POST", "/ldap/ping", { ldap_url: `ldap://127.0.0.1:${port}` })).json();
      expect(ping.success).toBe(false);
      await expect(ldap.getByTestId("ldap-ping-result")).toContainText(ping.message);
    } else {
      test.info().annotations.push({ type: "note", description: "POST /ldap/ping is not served by this build: only the UI's failure path was checked" });
    }

    // LDAP mode on the users page: no local "New user", an LDAP import instead.
    await page.goto("/harbor/users");
    await hydrated(page);
    await expect(page.getByTestId("ldap-user-import")).toBeVisible();
    await expect(page.getByTestId("user-new")).toHaveCount(0);
    await axe(page, "users in LDAP mode");

    // OIDC: saved, then the sign-in page offers the provider (and keeps the local form).
    await page.goto("/harbor/configs");
    await hydrated(page);
    await mode.selectOption("oidc_auth");
    const oidc = form.getByTestId("oidc-settings");
    await expect(oidc).toBeVisible();
    await expect(form.getByTestId("ldap-settings")).toHaveCount(0);
    await oidc.getByLabel("OIDC provider name").fill("E2E IdP");
    await oidc.getByLabel("OIDC endpoint").fill("http://127.0.0.1:9/idp");
    await oidc.getByLabel("OIDC client ID").fill("berth");
    await oidc.getByLabel("OIDC client secret").fill("client-S3cret");
    await oidc.getByLabel("Group claim name").fill("groups");
    await oidc.getByLabel("OIDC scope").fill("openid,profile,email,offline_access");
    await oidc.getByLabel("Automatic onboarding").check();
    await axe(page, "OIDC settings");
    await form.getByTestId("auth-config-save").click();
    await expect(page.getByTestId("outcome")).toHaveText("Saved.");
    c = await (await rest(api, "GET", "/configurations", undefined, 200)).json();
    expect(c.auth_mode.value).toBe("oidc_auth");
    expect(c.oidc_name.value).toBe("E2E IdP");
    expect(c.oidc_client_secret_set.value).toBe(true);
    expect(c.oidc_auto_onboard.value).toBe(true);
    const info = await (await api.get("/api/v2.0/systeminfo")).json();
    expect(info.auth_mode).toBe("oidc_auth");
    expect(info.oidc_provider_name).toBe("E2E IdP");

    await page.getByRole("button", { name: "Log out" }).click();
    await expect(page).toHaveURL(/\/account\/sign-in/);
    await hydrated(page);
    const button = page.getByTestId("oidc-login");
    await expect(button).toHaveText("LOG IN WITH E2E IdP");
    await expect(button).toHaveAttribute("href", "/c/oidc/login");
    await axe(page, "sign-in in OIDC mode");
    // An error passed back in the URL is shown; the local admin still logs in.
    await page.goto("/account/sign-in?error=access_denied&redirect_url=%2Fharbor%2Fusers");
    await hydrated(page);
    await expect(page.getByRole("alert")).toHaveText("Sign-in failed: access_denied");
    await expect(page.getByTestId("oidc-login")).toHaveAttribute("href", "/c/oidc/login?redirect_url=/harbor/users");
    await logIn(page);
    await expect(page).toHaveURL(/\/harbor\/users$/);
    await hydrated(page);
    await expect(page.getByTestId("user-new")).toHaveCount(0);
    expect(errors).toEqual([]);
  } finally {
    await context.close();
    await api.dispose();
    stopFresh(fresh);
  }
});

test("groups: create, rename and delete; a group as a project member", async ({ page, request }) => {
  test.skip(!(await served(request, "GET", "/usergroups")), "GET /usergroups is not served by this build (the user-group API is another part of the work)");
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto("/harbor/groups");
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(/\/harbor\/groups$/);
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "Groups", level: 1 })).toBeVisible();

  // Create an HTTP and an OIDC group (no directory needed).
  const form = page.getByTestId("group-form");
  for (const [name, type] of [["e2e-http-team", "HTTP"], ["e2e-oidc-team", "OIDC"]]) {
    await page.getByTestId("group-new").click();
    await form.getByLabel("Group type").selectOption({ label: type });
    await form.getByLabel("Group name").fill(name);
    await form.getByTestId("group-save").click();
    await expect(page.getByTestId("outcome")).toHaveText(`Created group ${name}.`);
    await expect(form).toHaveCount(0);
    const row = page.locator(`[data-testid="group-row"][data-name="${name}"]`);
    await expect(row.getByTestId("group-type-text")).toHaveText(type);
  }
  await axe(page, "groups");

  // The name filter (a plain GET form).
  await page.getByLabel("Filter groups by name").fill("e2e-oidc");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(/\?name=e2e-oidc/);
  await expect(page.locator('[data-testid="group-row"][data-name="e2e-oidc-team"]')).toBeVisible();
  await expect(page.locator('[data-testid="group-row"][data-name="e2e-http-team"]')).toHaveCount(0);

  // Rename.
  await page.goto("/harbor/groups");
  await hydrated(page);
  await page.locator('[data-testid="group-row"][data-name="e2e-http-team"]').getByTestId("group-edit").click();
  await expect(form.getByLabel("Group name")).toHaveValue("e2e-http-team");
  await expect(form.getByLabel("Group type")).toBeDisabled();
  await form.getByLabel("Group name").fill("e2e-http-crew");
  await form.getByTestId("group-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved group e2e-http-crew.");
  await expect(page.locator('[data-testid="group-row"][data-name="e2e-http-crew"]')).toBeVisible();
  await expect(page.locator('[data-testid="group-row"][data-name="e2e-http-team"]')).toHaveCount(0);

  // A group as a project member: added by name, shown with the group marker, role changed, removed.
  await createProject(request, "e2e-groups");
  await page.goto("/harbor/projects/e2e-groups/members");
  await hydrated(page);
  const add = page.getByTestId("member-group-add");
  await add.getByLabel("Group name or LDAP group DN").fill("e2e-oidc-team");
  await add.getByLabel("Role of the group").selectOption({ label: "Developer" });
  await add.getByTestId("member-group-submit").click();
  await expect(page.getByTestId("outcome")).toHaveText("Added group e2e-oidc-team as Developer.");
  const member = page.locator('[data-testid="member-row"][data-name="e2e-oidc-team"]');
  await expect(member).toHaveAttribute("data-type", "g");
  await expect(member.getByTestId("member-group-badge")).toHaveText("Group");
  await axe(page, "members with a group");
  await member.getByTestId("member-role").selectOption({ label: "Maintainer" });
  await expect(page.getByTestId("outcome")).toHaveText("e2e-oidc-team is now Maintainer.");
  const members = await (await rest(request, "GET", "/projects/e2e-groups/members", undefined, 200)).json();
  expect(members.find((m: { entity_name: string }) => m.entity_name === "e2e-oidc-team")).toMatchObject({ entity_type: "g", role_id: 4 });
  // An unknown name is refused in the page, before any call.
  await add.getByLabel("Group name or LDAP group DN").fill("e2e-no-such-group");
  await add.getByTestId("member-group-submit").click();
  await expect(page.getByTestId("outcome-error")).toContainText("No group named e2e-no-such-group.");
  await member.getByTestId("member-remove").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Removed e2e-oidc-team.");
  await expect(member).toHaveCount(0);

  // Delete after confirming.
  await page.goto("/harbor/groups");
  await hydrated(page);
  for (const name of ["e2e-http-crew", "e2e-oidc-team"]) {
    const row = page.locator(`[data-testid="group-row"][data-name="${name}"]`);
    await row.getByTestId("group-delete").click();
    await expect(page.getByRole("alertdialog")).toContainText(`Delete group ${name}?`);
    await page.getByTestId("confirm-yes").click();
    await expect(page.getByTestId("outcome")).toHaveText(`Deleted group ${name}.`);
    await expect(row).toHaveCount(0);
  }
  expect(errors).toEqual([]);
});
