import { test, expect, Page } from "@playwright/test";
import { AUTH, hydrated, logIn } from "./helpers";

// Administration → Clean Up → Log Rotation (audit log purge) and the Job Service Dashboard,
// against the real server. The tests share the purge queue, so they run in order.
test.describe.configure({ mode: "serial" });

const headers = { authorization: AUTH, "content-type": "application/json" };
const LOG_ROTATION = "/harbor/clearing-job/audit-log-purge";
const DASHBOARD = "/harbor/job-service-dashboard";
type Api = import("@playwright/test").APIRequestContext;

/** The newest purge run (none: `undefined`). */
async function newest(request: Api) {
  return (await (await request.get("/api/v2.0/system/purgeaudit?page=1&page_size=1", { headers })).json())[0];
}

async function signIn(page: Page, path: string) {
  await page.goto(path);
  await expect(page).toHaveURL(/\/account\/sign-in\?redirect_url=/);
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(new RegExp(`${path}$`));
  await hydrated(page);
}

test("log rotation: a dry run, then a real purge, show in the history; the schedule shows on the dashboard", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // Earlier runs (other specs) are not this test's: the newest one's id.
  const before = (await newest(request))?.id ?? 0;

  await signIn(page, LOG_ROTATION);
  await expect(page.getByRole("heading", { name: "Clean Up", level: 1 })).toBeVisible();
  const tabs = page.getByRole("navigation", { name: "Clean Up" });
  await expect(tabs.getByRole("link", { name: "Log Rotation" })).toHaveAttribute("aria-current", "page");
  await expect(tabs.getByRole("link", { name: "Garbage Collection" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Clean Up" })).toHaveAttribute("aria-current", "page");

  // Nothing ticked: the page says so and nothing runs.
  const run = page.getByTestId("purge-run-form");
  for (const op of ["create", "update", "delete", "push", "pull", "login", "stop"]) {
    await run.getByTestId(`run-op-${op}`).uncheck();
  }
  await page.getByTestId("purge-run").click();
  await expect(page.getByTestId("purge-error")).toHaveText("Select at least one operation.");

  // Dry run: keep 2 hours, pull and create.
  await run.getByLabel("Keep records in").fill("2");
  await run.getByLabel("Unit").selectOption("hours");
  await run.getByTestId("run-op-pull").check();
  await run.getByTestId("run-op-create").check();
  await page.getByTestId("purge-dry-run").check();
  await page.getByTestId("purge-run").click();
  await expect.poll(async () => (await newest(request))?.id ?? 0).toBeGreaterThan(before);
  const dry = await newest(request);
  const rows = page.getByTestId("purge-row");
  const first = rows.first();
  await expect(first.locator("td").first()).toHaveText(String(dry.id));
  await expect(first).toHaveAttribute("data-status", "Success", { timeout: 30_000 });
  await expect(first).toHaveAttribute("data-dry-run", "true");
  await expect(first).toContainText("create, pull");
  await expect(first).toContainText("older than 2 hours");
  await expect(page.getByTestId("purge-status")).toContainText("(dry run)");
  expect(JSON.parse(dry.job_parameters)).toEqual({ audit_retention_hour: 2, include_event_types: "create,pull", dry_run: true });
  const log = await request.get(`/api/v2.0/system/purgeaudit/${dry.id}/log`, { headers });
  expect(await log.text()).toContain("[dry run]");
  await expect(first.getByRole("link", { name: `Log of purge ${dry.id}` })).toHaveAttribute("href", `/api/v2.0/system/purgeaudit/${dry.id}/log`);

  // The real purge: 3 days of delete records.
  await run.getByLabel("Keep records in").fill("3");
  await run.getByLabel("Unit").selectOption("days");
  await run.getByTestId("run-op-delete").check();
  await page.getByTestId("purge-dry-run").uncheck();
  await page.getByTestId("purge-run").click();
  await expect.poll(async () => (await newest(request))?.id ?? 0).toBeGreaterThan(dry.id);
  const real = await newest(request);
  await expect(first.locator("td").first()).toHaveText(String(real.id));
  await expect(first).toHaveAttribute("data-status", "Success", { timeout: 30_000 });
  await expect(first).toHaveAttribute("data-dry-run", "false");
  await expect(first).toContainText("older than 3 days");
  expect(JSON.parse(real.job_parameters)).toEqual({ audit_retention_hour: 72, include_event_types: "create,delete,pull", dry_run: false });

  // Schedule: daily, 7 days of pull records.
  const sched = page.getByTestId("purge-schedule-form");
  await sched.getByLabel("Repeat").selectOption("Daily");
  await sched.getByLabel("Keep records in").fill("7");
  await sched.getByLabel("Unit").selectOption("days");
  for (const op of ["create", "update", "delete", "push", "login", "stop"]) {
    await sched.getByTestId(`sched-op-${op}`).uncheck();
  }
  await sched.getByTestId("sched-op-pull").check();
  await page.getByTestId("purge-schedule-save").click();
  await expect(page.getByTestId("purge-next")).toContainText("Daily (0 0 0 * * *); next run");
  const saved = await (await request.get("/api/v2.0/system/purgeaudit/schedule", { headers })).json();
  expect(JSON.parse(saved.job_parameters)).toEqual({ audit_retention_hour: 168, include_event_types: "pull", dry_run: false });
  // A bad cron is refused with the API's message.
  await sched.getByLabel("Repeat").selectOption("Custom");
  await sched.getByLabel(/^Cron/).fill("not a cron");
  await page.getByTestId("purge-schedule-save").click();
  await expect(page.getByTestId("purge-error")).toContainText("cron");
  await page.screenshot({ path: "test-results/screenshots/log-rotation.png", fullPage: true });

  // The dashboard lists the saved schedule.
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Job Service Dashboard" }).click();
  await expect(page).toHaveURL(new RegExp(`${DASHBOARD}$`));
  const row = page.locator('[data-testid="schedule-row"][data-vendor="PURGE_AUDIT"]');
  await expect(row).toContainText("0 0 0 * * *");
  expect(errors).toEqual([]);
});

test("job service dashboard: pause a queue (a purge waits), stop the waiting purge, resume; pools and workers", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await signIn(page, DASHBOARD);
  await expect(page.getByRole("heading", { name: "Job Service Dashboard" })).toBeVisible();
  const queue = page.locator('[data-testid="queue-row"][data-type="purge_audit"]');
  await expect(queue).toHaveAttribute("data-paused", "false");
  await queue.getByRole("button", { name: "Pause purge_audit" }).click();
  await expect(page.getByTestId("outcome")).toHaveText("Paused purge_audit.");
  await expect(queue).toHaveAttribute("data-paused", "true");
  await expect(queue.getByTestId("queue-paused")).toHaveText("Yes");
  const q = (await (await request.get("/api/v2.0/jobservice/queues", { headers })).json()).find((x: any) => x.job_type === "purge_audit");
  expect(q.paused).toBe(true);

  // A purge queued now waits: the queue counts it.
  const started = await request.post("/api/v2.0/system/purgeaudit/schedule", {
    headers, data: { schedule: { type: "Manual" }, parameters: { audit_retention_hour: 1, include_event_types: "pull", dry_run: true } },
  });
  expect(started.status()).toBe(201);
  const id = started.headers()["location"].split("/").pop();
  await page.getByTestId("jobs-refresh").click();
  await expect(queue.getByTestId("queue-count")).toHaveText("1");
  // Still pending a moment later: nothing starts a paused type.
  await page.waitForTimeout(3000);
  expect((await (await request.get(`/api/v2.0/system/purgeaudit/${id}`, { headers })).json()).job_status).toBe("Pending");

  // Log rotation shows it pending and stops it.
  await page.goto(LOG_ROTATION);
  await hydrated(page);
  const pending = page.getByTestId("purge-row").first();
  await expect(pending).toHaveAttribute("data-status", "Pending");
  await expect(page.getByTestId("purge-run")).toBeDisabled();
  await pending.getByTestId("purge-stop").click();
  await expect(pending).toHaveAttribute("data-status", "Stopped");
  await expect(page.getByTestId("purge-run")).toBeEnabled();

  // Back on the dashboard: nothing pending; resume.
  await page.goto(DASHBOARD);
  await hydrated(page);
  await expect(queue.getByTestId("queue-count")).toHaveText("0");
  await queue.getByRole("button", { name: "Resume purge_audit" }).click();
  await expect(queue).toHaveAttribute("data-paused", "false");
  const after = (await (await request.get("/api/v2.0/jobservice/queues", { headers })).json()).find((x: any) => x.job_type === "purge_audit");
  expect(after.paused).toBe(false);

  // Pause all: every queue and the schedules are paused; resume all.
  await page.getByTestId("queues-pause-all").click();
  await expect(page.locator('[data-testid="queue-row"][data-paused="false"]')).toHaveCount(0);
  await expect(page.getByTestId("schedules-status")).toContainText("paused");
  await page.getByTestId("queues-resume-all").click();
  await expect(page.locator('[data-testid="queue-row"][data-paused="true"]')).toHaveCount(0);
  await expect(page.getByTestId("schedules-status")).toHaveText("Schedules: running.");

  // A queued purge now runs.
  const again = await request.post("/api/v2.0/system/purgeaudit/schedule", {
    headers, data: { schedule: { type: "Manual" }, parameters: { audit_retention_hour: 1, include_event_types: "pull", dry_run: true } },
  });
  expect(again.status()).toBe(201);
  const againId = again.headers()["location"].split("/").pop();
  await expect.poll(async () => (await (await request.get(`/api/v2.0/system/purgeaudit/${againId}`, { headers })).json()).job_status,
    { timeout: 30_000 }).toBe("Success");

  // This replica's worker pool and its workers (idle or running).
  const pool = page.getByTestId("pool").first();
  await expect(pool).toBeVisible();
  const pools = await (await request.get("/api/v2.0/jobservice/pools", { headers })).json();
  expect(pools.length).toBeGreaterThan(0);
  await expect(pool).toHaveAttribute("data-pool", pools[0].worker_pool_id);
  await expect(pool.getByTestId("worker-row")).toHaveCount(pools[0].concurrency);
  await page.screenshot({ path: "test-results/screenshots/job-service-dashboard.png", fullPage: true });
  expect(errors).toEqual([]);
});

test("a non-admin is told both pages are for administrators", async ({ page, request }) => {
  const r = await request.post("/api/v2.0/users", {
    headers, data: { username: "opsdev", password: "Passw0rd!x", email: "opsdev@example.com", realname: "Ops Dev" },
  });
  expect([201, 409]).toContain(r.status());
  await page.goto(`/account/sign-in?redirect_url=${DASHBOARD}`);
  await hydrated(page);
  await logIn(page, "opsdev", "Passw0rd!x");
  await expect(page.getByRole("alert")).toContainText("Only system administrators");
  await expect(page.getByRole("link", { name: "Job Service Dashboard" })).toHaveCount(0);
  await page.goto(LOG_ROTATION);
  await expect(page.getByRole("alert")).toContainText("Only system administrators");
  expect((await page.request.get("/api/v2.0/jobservice/queues")).status()).toBe(403);
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("log rotation's forms are plain form posts: a dry run and a schedule", async ({ page, request }) => {
    const before = (await newest(request))?.id ?? 0;
    await page.goto(LOG_ROTATION);
    await expect(page).toHaveURL(/\/account\/sign-in/);
    await logIn(page);
    await expect(page).toHaveURL(/\/harbor\//);
    await page.goto(LOG_ROTATION);
    const run = page.getByTestId("purge-run-form");
    await run.getByLabel("Keep records in").fill("5");
    await run.getByLabel("Unit").selectOption("hours");
    await run.getByTestId("run-op-login").check();
    await page.getByTestId("purge-dry-run").check();
    await page.getByTestId("purge-run").click();
    await expect(page).toHaveURL(new RegExp(`${LOG_ROTATION}\\??$`));
    const run0 = await newest(request);
    expect(run0.id).toBeGreaterThan(before);
    expect(JSON.parse(run0.job_parameters)).toMatchObject({ audit_retention_hour: 5, dry_run: true });
    expect(JSON.parse(run0.job_parameters).include_event_types.split(",")).toContain("login");

    const sched = page.getByTestId("purge-schedule-form");
    await sched.getByLabel("Repeat").selectOption("Weekly");
    await sched.getByLabel("Keep records in").fill("14");
    await sched.getByLabel("Unit").selectOption("days");
    await page.getByTestId("purge-schedule-save").click();
    await expect(page).toHaveURL(new RegExp(`${LOG_ROTATION}\\??$`));
    await expect(page.getByTestId("purge-next")).toContainText("Weekly");
    const saved = await (await request.get("/api/v2.0/system/purgeaudit/schedule", { headers })).json();
    expect(saved.schedule.type).toBe("Weekly");
    expect(JSON.parse(saved.job_parameters).audit_retention_hour).toBe(336);
  });
});
