import { test, expect, Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { AUTH, hydrated, logIn, pushImageSized } from "./helpers";

/** Runs axe-core (WCAG 2.0/2.1 A and AA rules) on the hydrated page and adds each violation —
 * rule, impact, the offending elements and why — to `problems`. */
async function audit(page: Page, what: string, problems: string[]) {
  await hydrated(page);
  const r = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  for (const v of r.violations) {
    const nodes = v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${(n.failureSummary ?? "").split("\n").slice(1, 2).join("").trim()}`);
    problems.push(`${what}: ${v.id} (${v.impact}): ${v.help}\n    ${nodes.join("\n    ")}`);
  }
}

test("the main pages have no WCAG 2.1 A/AA violations axe can detect, in English and 简体中文", async ({ page, request }) => {
  // Some 30 audits (each page hydrated, then axe): past the default 60 s when the machine is busy.
  test.slow();
  const r = await request.post("/api/v2.0/projects", {
    headers: { authorization: AUTH, "content-type": "application/json" },
    data: { project_name: "e2e-a11y", metadata: { public: "true" } },
  });
  expect(r.status()).toBe(201);
  const digest = (await pushImageSized(request, "e2e-a11y/app", "v1")).digest;
  // Policies on show: a light and a dark label on the artifact, a quota bar, an immutability rule.
  const headers = { authorization: AUTH, "content-type": "application/json", "x-is-resource-name": "true" };
  for (const [name, color] of [["a11y-light", "#ffd56b"], ["a11y-dark", "#13243a"]]) {
    const l = await request.post("/api/v2.0/labels", { headers, data: { name, color, scope: "g", description: name } });
    expect(l.status()).toBe(201);
    const id = Number((l.headers()["location"] ?? "").split("/").pop());
    const a = await request.post(`/api/v2.0/projects/e2e-a11y/repositories/app/artifacts/${digest}/labels`, { headers, data: { id } });
    expect(a.status()).toBe(200);
  }
  const rule = await request.post("/api/v2.0/projects/e2e-a11y/immutabletagrules", {
    headers,
    data: { tag_selectors: [{ kind: "doublestar", decoration: "matches", pattern: "v*" }], scope_selectors: { repository: [{ kind: "doublestar", decoration: "repoMatches", pattern: "**" }] } },
  });
  expect(rule.status()).toBe(201);
  const project = await (await request.get("/api/v2.0/projects/e2e-a11y", { headers })).json();
  // A retention policy with a rule, a schedule and a dry run in its history.
  const retention = await request.post("/api/v2.0/retentions", {
    headers,
    data: {
      algorithm: "or",
      rules: [{ template: "latestPushedK", action: "retain", params: { latestPushedK: 3 },
        tag_selectors: [{ kind: "doublestar", decoration: "matches", pattern: "**", extras: "{\"untagged\":true}" }],
        scope_selectors: { repository: [{ kind: "doublestar", decoration: "repoMatches", pattern: "**" }] } }],
      trigger: { kind: "Schedule", settings: { cron: "0 0 0 * * *" } },
      scope: { level: "project", ref: project.project_id },
    },
  });
  expect(retention.status()).toBe(201);
  const policyId = (retention.headers()["location"] ?? "").split("/").pop();
  expect((await request.post(`/api/v2.0/retentions/${policyId}/executions`, { headers, data: { dry_run: true } })).status()).toBe(201);
  const quotas = await (await request.get(`/api/v2.0/quotas?reference=project&reference_id=${project.project_id}`, { headers })).json();
  expect((await request.put(`/api/v2.0/quotas/${quotas[0].id}`, { headers, data: { hard: { storage: 1024 * 1024 } } })).status()).toBe(200);
  // Log rotation with a schedule and a dry run in its history; the dashboard then lists the schedule.
  const purge = await request.post("/api/v2.0/system/purgeaudit/schedule", {
    headers, data: { schedule: { type: "Manual" }, parameters: { audit_retention_hour: 24, include_event_types: "pull", dry_run: true } },
  });
  expect(purge.status()).toBe(201);
  expect((await request.put("/api/v2.0/system/purgeaudit/schedule", {
    headers, data: { schedule: { type: "Daily" }, parameters: { audit_retention_hour: 48, include_event_types: "create,pull" } },
  })).status()).toBe(200);
  // A webhook policy on the project.
  expect((await request.post("/api/v2.0/projects/e2e-a11y/webhook/policies", {
    headers, data: { name: "a11y-hook", description: "to nowhere", event_types: ["PUSH_ARTIFACT", "PULL_ARTIFACT"], targets: [{ type: "http", address: "http://127.0.0.1:9/hook", payload_format: "Default" }] },
  })).status()).toBe(201);
  const problems: string[] = [];

  await page.goto("/account/sign-in");
  await audit(page, "sign-in", problems);
  await logIn(page);
  await expect(page).toHaveURL(/\/harbor\/projects$/);
  const pages = [
    "/harbor/projects",
    "/harbor/projects/e2e-a11y/summary",
    "/harbor/projects/e2e-a11y/repositories",
    "/harbor/projects/e2e-a11y/repositories/app",
    `/harbor/projects/e2e-a11y/repositories/app/artifacts/${digest}`,
    "/harbor/projects/e2e-a11y/members",
    "/harbor/projects/e2e-a11y/robot-account",
    "/harbor/projects/e2e-a11y/logs",
    "/harbor/projects/e2e-a11y/configs",
    "/harbor/projects/e2e-a11y/labels",
    "/harbor/projects/e2e-a11y/policy",
    "/harbor/projects/e2e-a11y/webhook",
    "/harbor/labels",
    "/harbor/project-quotas",
    "/harbor/users",
    "/harbor/logs",
    "/harbor/configs",
    "/harbor/clearing-job/gc",
    "/harbor/clearing-job/audit-log-purge",
    "/harbor/job-service-dashboard",
    "/harbor/registries",
    "/harbor/replications",
    "/harbor/account",
  ];
  for (const path of pages) {
    await page.goto(path);
    await audit(page, path, problems);
  }
  // The forms that open in place: retention and immutability rules, the label picker, a label.
  await page.goto("/harbor/projects/e2e-a11y/policy");
  await hydrated(page);
  await page.getByTestId("retention-add").click();
  await page.getByTestId("immutable-add").click();
  await page.getByTestId("retention-run-open").first().click();
  await expect(page.getByTestId("retention-form")).toBeVisible();
  await expect(page.getByTestId("immutable-form")).toBeVisible();
  await expect(page.getByTestId("retention-tasks")).toBeVisible();
  await audit(page, "policy forms and a run's tasks", problems);
  // The webhook form and a policy's (empty) executions.
  await page.goto("/harbor/projects/e2e-a11y/webhook");
  await hydrated(page);
  await page.getByTestId("webhook-new").click();
  await page.getByTestId("webhook-executions").first().click();
  await expect(page.getByTestId("webhook-form")).toBeVisible();
  await expect(page.getByTestId("webhook-executions-view")).toBeVisible();
  await audit(page, "webhook form and executions", problems);
  await page.goto("/harbor/projects/e2e-a11y/repositories/app");
  await hydrated(page);
  await page.getByTestId("label-pick").first().click();
  await expect(page.getByTestId("label-picker")).toBeVisible();
  await audit(page, "label picker", problems);
  await page.goto("/harbor/labels");
  await hydrated(page);
  await page.getByTestId("label-new").click();
  await expect(page.getByTestId("label-form")).toBeVisible();
  await audit(page, "label form", problems);
  // The same pages in Chinese (lang attribute, translated labels).
  await page.goto("/language?lang=zh-CN&redirect=/harbor/projects");
  await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
  for (const path of ["/harbor/projects", "/harbor/projects/e2e-a11y/members", "/harbor/projects/e2e-a11y/policy", "/harbor/users", "/harbor/clearing-job/audit-log-purge", "/harbor/job-service-dashboard"]) {
    await page.goto(path);
    await audit(page, `${path} (zh-CN)`, problems);
  }
  await page.goto("/language?lang=en&redirect=/harbor/projects");
  expect(problems, problems.join("\n")).toEqual([]);
});

test("keyboard: the skip link reaches the content, and a confirmation is answered with Escape and Enter", async ({ page, request }) => {
  const r = await request.post("/api/v2.0/projects", {
    headers: { authorization: AUTH, "content-type": "application/json" },
    data: { project_name: "e2e-kbd", metadata: { public: "false" } },
  });
  expect(r.status()).toBe(201);
  await pushImageSized(request, "e2e-kbd/app", "v1");
  const tagged = await pushImageSized(request, "e2e-kbd/web", "v1");
  await page.goto("/harbor/projects/e2e-kbd/repositories");
  await hydrated(page);
  await logIn(page);
  await expect(page.getByTestId("repo-table")).toContainText("e2e-kbd/app");
  await hydrated(page);

  // The first Tab lands on "Skip to content"; Enter moves the focus into the page's content.
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.locator("main#main")).toBeFocused();

  // Opening a confirmation focuses Cancel; Escape closes it and gives the focus back.
  const row = page.getByTestId("repo-row").filter({ hasText: "e2e-kbd/app" });
  const del = row.getByTestId("repo-delete");
  await del.focus();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("alertdialog")).toContainText("Delete repository e2e-kbd/app");
  await expect(page.getByTestId("confirm-cancel")).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(page.getByRole("alertdialog")).toHaveCount(0);
  await expect(row.getByTestId("repo-delete")).toBeFocused();
  // Enter opens it again, Shift+Tab goes to Confirm, Enter deletes.
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("confirm-cancel")).toBeFocused();
  await page.keyboard.press("Shift+Tab");
  await expect(page.getByTestId("confirm-yes")).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("outcome")).toContainText("Deleted e2e-kbd/app.");
  await expect(page.getByTestId("repo-table")).not.toContainText("e2e-kbd/app");
  await expect(page.getByTestId("repo-table")).toContainText("e2e-kbd/web");

  // A symbol-only button has a spoken name: the tag's × reads "Remove tag v1".
  await page.goto("/harbor/projects/e2e-kbd/repositories/web");
  await hydrated(page);
  await expect(page.getByRole("button", { name: "Remove tag v1" })).toBeVisible();
  expect(tagged.digest).toMatch(/^sha256:/);
});
