import { test, expect, request as pwRequest } from "@playwright/test";
import { spawn, ChildProcess } from "child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "fs";
import { createServer } from "net";
import { tmpdir } from "os";
import { join } from "path";

// The browser flow of OpenID Connect in Chromium against the test provider
// (scripts/oidc-provider, started by `scripts/services.sh start oidc DIR`: TEST_BERTH_OIDC_*).
// Switching auth_mode needs a server where only the admin exists, so this spec starts its own
// berth (BERTH_E2E_BIN and BERTH_E2E_SITE, exported by end2end/run.sh) on a free port with an
// empty data directory, and stops it by PID at the end. Missing variables fail the spec.
//
// The sign-in page's "log in with <provider>" button belongs to the portal's pages; this spec
// starts at /c/oidc/login, where that button points.

function need(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (end2end/run.sh and scripts/services.sh start oidc DIR set it)`);
  return v;
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

const ADMIN = "Basic " + Buffer.from("admin:Harbor12345").toString("base64");
let server: ChildProcess | undefined;
let dir = "";
let base = "";

test.beforeAll(async () => {
  const bin = need("BERTH_E2E_BIN");
  const site = need("BERTH_E2E_SITE");
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  dir = mkdtempSync(join(tmpdir(), "berth-oidc-e2e-"));
  // berth reads every BERTH_* variable as configuration: pass only its own.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BERTH_")));
  const log = openSync(join(dir, "berth.log"), "w");
  server = spawn(bin, [], {
    cwd: dir,
    stdio: ["ignore", log, log],
    env: {
      ...env,
      BERTH_LISTEN: `127.0.0.1:${port}`,
      BERTH_EXTERNAL_URL: base,
      BERTH_PORTAL__SITE_ROOT: site,
      BERTH_LOG__LEVEL: "warn",
    },
  });
  const api = await pwRequest.newContext({ baseURL: base });
  for (let i = 0; i < 150; i++) {
    const ok = await api.get("/api/v2.0/ping").then((r) => r.ok()).catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (server.exitCode !== null) throw new Error(`berth exited: ${readFileSync(join(dir, "berth.log"), "utf8")}`);
  const r = await api.put("/api/v2.0/configurations", {
    headers: { authorization: ADMIN },
    data: {
      auth_mode: "oidc_auth",
      oidc_name: "Test provider",
      oidc_endpoint: need("TEST_BERTH_OIDC_ISSUER"),
      oidc_client_id: need("TEST_BERTH_OIDC_CLIENT_ID"),
      oidc_client_secret: need("TEST_BERTH_OIDC_CLIENT_SECRET"),
      oidc_scope: "openid,profile,email,groups,offline_access",
      oidc_groups_claim: "groups",
      oidc_user_claim: "preferred_username",
      oidc_auto_onboard: true,
      oidc_logout: true,
    },
  });
  expect(r.status(), await r.text()).toBe(200);
  await api.dispose();
});

test.afterAll(async () => {
  if (server?.pid && server.exitCode === null) process.kill(server.pid);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("an OIDC user signs in through the provider, gets a CLI secret, and logs out of both", async ({ page }) => {
  const issuer = need("TEST_BERTH_OIDC_ISSUER");
  await page.goto(`${base}/c/oidc/login?redirect_url=/harbor/projects`);
  // The provider's sign-in form.
  await expect(page).toHaveURL(new RegExp(`^${issuer}/interaction/`));
  await page.getByLabel("Username").fill("olivia");
  await page.getByLabel("Password").fill("Olivia-pass-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  // Back in Berth, signed in (onboarded automatically).
  await expect(page).toHaveURL(`${base}/harbor/projects`);
  await expect(page.getByTestId("current-user")).toHaveText("olivia");

  // The CLI secret works as a password for Basic auth (what docker login sends).
  const me = await page.request.get(`${base}/api/v2.0/users/current`);
  expect(me.status()).toBe(200);
  const secret: string = (await me.json()).oidc_user_meta.secret;
  expect(secret).toHaveLength(32);
  const cli = await pwRequest.newContext({ baseURL: base });
  const basic = "Basic " + Buffer.from(`olivia:${secret}`).toString("base64");
  const viaSecret = await cli.get("/api/v2.0/users/current", { headers: { authorization: basic } });
  expect(viaSecret.status()).toBe(200);
  await cli.dispose();

  // Log out: Berth's session ends and the provider's too (RP-initiated logout), then the
  // browser is back at Berth's sign-in page.
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(new RegExp(`^${base}/account/sign-in`));
  const after = await page.request.get(`${base}/api/v2.0/users/current`);
  expect(after.status()).toBe(401);
  // The provider asks for the password again: its session ended.
  await page.goto(`${base}/c/oidc/login`);
  await expect(page).toHaveURL(new RegExp(`^${issuer}/interaction/`));
  await expect(page.getByLabel("Password")).toBeVisible();
});

test("a wrong password at the provider keeps the user out of Berth", async ({ page }) => {
  const issuer = need("TEST_BERTH_OIDC_ISSUER");
  await page.goto(`${base}/c/oidc/login`);
  await expect(page).toHaveURL(new RegExp(`^${issuer}/interaction/`));
  await page.getByLabel("Username").fill("olivia");
  await page.getByLabel("Password").fill("wrong");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("Invalid username or password");
  const me = await page.request.get(`${base}/api/v2.0/users/current`);
  expect(me.status()).toBe(401);
});
