import { test, expect } from "@playwright/test";
import { createServer, IncomingHttpHeaders, Server } from "http";
import { AddressInfo } from "net";
import { AUTH, hydrated, logIn, pushImage } from "./helpers";

// A project's Webhooks tab against the real server, delivering to a receiver in this process.

type Hit = { headers: IncomingHttpHeaders; body: any };

let receiver: Server;
let url = "";
const hits: Hit[] = [];
const headers = { authorization: AUTH, "content-type": "application/json" };

test.beforeAll(async () => {
  hits.length = 0;
  receiver = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      let body: any = data;
      try { body = JSON.parse(data); } catch { /* kept as text */ }
      hits.push({ headers: req.headers, body });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});

test.afterAll(async () => {
  await new Promise<void>((r) => receiver.close(() => r()));
});

test("webhooks: add a policy, a push is delivered and shows in its executions and tasks, disable, edit (auth kept), delete", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const p = await request.post("/api/v2.0/projects", { headers, data: { project_name: "e2e-hooks", metadata: { public: "false" } } });
  expect(p.status()).toBe(201);

  await page.goto("/harbor/projects/e2e-hooks/webhook");
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(/\/harbor\/projects\/e2e-hooks\/webhook$/);
  await hydrated(page);
  await expect(page.getByTestId("tab-webhook")).toHaveAttribute("aria-current", "page");
  await expect(page.getByText("No webhooks yet.")).toBeVisible();

  // New policy: pushes only, Default payload, an auth header.
  await page.getByTestId("webhook-new").click();
  const form = page.getByTestId("webhook-form");
  await form.getByLabel("Name").fill("hook1");
  await form.getByLabel("Description").fill("pushes to the receiver");
  await expect(form.getByLabel("Notify type")).toHaveValue("http");
  await expect(form.getByLabel("Payload format")).toHaveValue("Default");
  for (const e of ["PULL_ARTIFACT", "DELETE_ARTIFACT", "QUOTA_EXCEED", "QUOTA_WARNING", "REPLICATION", "TAG_RETENTION"]) {
    await form.getByTestId(`webhook-event-${e}`).uncheck();
  }
  await expect(form.getByTestId("webhook-event-PUSH_ARTIFACT")).toBeChecked();
  await form.getByLabel("Endpoint URL").fill(url);
  await form.getByLabel("Auth header").fill("Bearer s3cret");
  await expect(form.getByLabel("Verify remote certificate")).toBeChecked();
  await page.getByTestId("webhook-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Created webhook hook1.");
  const row = page.locator('[data-testid="webhook-row"][data-name="hook1"]');
  await expect(row).toHaveAttribute("data-enabled", "true");
  await expect(row).toContainText(url);
  await expect(row).toContainText("PUSH_ARTIFACT");
  await expect(row.getByTestId("webhook-last")).toHaveText("—");
  const stored = (await (await request.get("/api/v2.0/projects/e2e-hooks/webhook/policies", { headers })).json())[0];
  expect(stored.event_types).toEqual(["PUSH_ARTIFACT"]);
  expect(stored.targets[0]).toMatchObject({ type: "http", address: url, payload_format: "Default", skip_cert_verify: false, auth_header: "" });

  // A push is delivered with the auth header.
  await pushImage(request, "e2e-hooks/app", "v1");
  await expect.poll(() => hits.length, { timeout: 30_000 }).toBe(1);
  expect(hits[0].headers.authorization).toBe("Bearer s3cret");
  expect(hits[0].body.type).toBe("PUSH_ARTIFACT");

  // Its execution and task, with the task's log.
  await page.reload();
  await hydrated(page);
  await expect(row.getByTestId("webhook-last")).not.toHaveText("—");
  await row.getByTestId("webhook-executions").click();
  const exec = page.getByTestId("webhook-exec-row").first();
  await expect(exec).toHaveAttribute("data-event", "PUSH_ARTIFACT");
  await expect(exec).toHaveAttribute("data-status", "Success", { timeout: 15_000 });
  await exec.getByTestId("webhook-exec-open").click();
  const task = page.getByTestId("webhook-task-row").first();
  await expect(task).toHaveAttribute("data-status", "Success");
  await expect(task).toContainText(url);
  const href = await task.getByRole("link", { name: /^Log of task/ }).getAttribute("href");
  const log = await request.get(href!, { headers });
  expect(log.status()).toBe(200);
  await page.screenshot({ path: "test-results/screenshots/webhooks.png", fullPage: true });

  // Disabled: a push is not delivered.
  await row.getByTestId("webhook-enabled").click();
  await expect(row).toHaveAttribute("data-enabled", "false");
  await expect(row.getByTestId("webhook-enabled")).toHaveAttribute("aria-checked", "false");
  await pushImage(request, "e2e-hooks/app", "v2");
  await page.waitForTimeout(3000);
  expect(hits.length).toBe(1);

  // Edit: CloudEvents; the auth header left empty is kept. Enable again: the next push arrives.
  await row.getByTestId("webhook-edit").click();
  await expect(form.getByLabel("Name")).toHaveValue("hook1");
  await expect(form.getByLabel("Auth header")).toHaveValue("");
  await form.getByLabel("Payload format").selectOption("CloudEvents");
  // Test endpoint: a PING with the stored auth header, in the chosen format; nothing saved.
  await page.getByTestId("webhook-test").click();
  await expect(page.getByTestId("outcome")).toHaveText(`The endpoint ${url} answered the test event.`);
  expect(hits.length).toBe(2);
  expect(hits[1].headers.authorization).toBe("Bearer s3cret");
  expect(hits[1].headers["content-type"]).toContain("application/cloudevents+json");
  await page.getByTestId("webhook-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved webhook hook1.");
  await row.getByTestId("webhook-enabled").click();
  await expect(row).toHaveAttribute("data-enabled", "true");
  const edited = (await (await request.get("/api/v2.0/projects/e2e-hooks/webhook/policies", { headers })).json())[0];
  expect(edited.targets[0].payload_format).toBe("CloudEvents");
  await pushImage(request, "e2e-hooks/app", "v3");
  await expect.poll(() => hits.length, { timeout: 30_000 }).toBe(3);
  expect(hits[2].headers.authorization).toBe("Bearer s3cret");
  expect(hits[2].headers["content-type"]).toContain("application/cloudevents+json");
  expect(hits[2].body.type).toBe("harbor.artifact.pushed");

  // A policy without events is refused in the page.
  await page.getByTestId("webhook-new").click();
  await form.getByLabel("Name").fill("hook2");
  for (const e of ["PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT", "QUOTA_EXCEED", "QUOTA_WARNING", "REPLICATION", "TAG_RETENTION"]) {
    await form.getByTestId(`webhook-event-${e}`).uncheck();
  }
  await form.getByLabel("Endpoint URL").fill(url);
  await page.getByTestId("webhook-save").click();
  await expect(page.getByTestId("outcome-error")).toHaveText("Select at least one event type.");
  // An endpoint that does not answer fails the test with the server's reason.
  await form.getByLabel("Endpoint URL").fill("http://127.0.0.1:9/none");
  await page.getByTestId("webhook-test").click();
  await expect(page.getByTestId("outcome-error")).toContainText("127.0.0.1:9");
  await form.getByRole("button", { name: "Cancel" }).click();

  // Delete.
  await row.getByTestId("webhook-delete").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Deleted webhook hook1.");
  await expect(row).toHaveCount(0);
  expect((await (await request.get("/api/v2.0/projects/e2e-hooks/webhook/policies", { headers })).json())).toEqual([]);
  expect(errors).toEqual([]);
  // Leave no project behind (the project list's first page is other specs').
  expect((await request.delete("/api/v2.0/projects/e2e-hooks/repositories/app", { headers })).status()).toBe(200);
  expect((await request.delete("/api/v2.0/projects/e2e-hooks", { headers })).status()).toBe(200);
});

test("a maintainer sees the webhooks read-only; a developer has no Webhooks tab", async ({ page, request }) => {
  expect((await request.post("/api/v2.0/projects", { headers, data: { project_name: "e2e-hooks-ro", metadata: { public: "false" } } })).status()).toBe(201);
  expect((await request.post("/api/v2.0/projects/e2e-hooks-ro/webhook/policies", {
    headers, data: { name: "ro-hook", event_types: ["PULL_ARTIFACT"], targets: [{ type: "http", address: url }] },
  })).status()).toBe(201);
  for (const [user, role] of [["hookmaint", 4], ["hookdev", 2]] as const) {
    const u = await request.post("/api/v2.0/users", {
      headers, data: { username: user, password: "Passw0rd!x", email: `${user}@example.com`, realname: user },
    });
    expect([201, 409]).toContain(u.status());
    expect((await request.post("/api/v2.0/projects/e2e-hooks-ro/members", {
      headers, data: { role_id: role, member_user: { username: user } },
    })).status()).toBe(201);
  }
  await page.goto("/harbor/projects/e2e-hooks-ro/webhook");
  await hydrated(page);
  await logIn(page, "hookmaint", "Passw0rd!x");
  await expect(page).toHaveURL(/\/harbor\/projects\/e2e-hooks-ro\/webhook$/);
  await hydrated(page);
  const row = page.locator('[data-testid="webhook-row"][data-name="ro-hook"]');
  await expect(row).toContainText(url);
  await expect(page.getByTestId("webhook-new")).toHaveCount(0);
  await expect(row.getByTestId("webhook-edit")).toHaveCount(0);
  await expect(row.getByTestId("webhook-delete")).toHaveCount(0);
  await expect(row.getByTestId("webhook-enabled")).toHaveCount(0);
  await row.getByTestId("webhook-executions").click();
  await expect(page.getByTestId("webhook-executions-view")).toContainText("This webhook has not been triggered yet.");

  await page.getByRole("button", { name: "Log out" }).click();
  await page.goto("/harbor/projects/e2e-hooks-ro/summary");
  await hydrated(page);
  await logIn(page, "hookdev", "Passw0rd!x");
  await expect(page).toHaveURL(/\/harbor\/projects\/e2e-hooks-ro\/summary$/);
  await expect(page.getByTestId("tab-members")).toBeVisible();
  await expect(page.getByTestId("tab-webhook")).toHaveCount(0);
  expect((await page.request.get("/api/v2.0/projects/e2e-hooks-ro/webhook/policies")).status()).toBe(403);
  expect((await request.delete("/api/v2.0/projects/e2e-hooks-ro", { headers })).status()).toBe(200);
});
