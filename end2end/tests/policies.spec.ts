import { test, expect, Page } from "@playwright/test";
import { AUTH, createProject, createUser, formatBytes, hydrated, logIn, pushImage, pushImageSized, rest, shot, switchUser } from "./helpers";

const MiB = 1024 * 1024;

/** The projects this spec makes; removed afterwards so the specs after it (which look for
 * `library` on the first page of the project list) see the list as before. */
const PROJECTS = ["e2e-quota", "e2e-quota-default", "e2e-lbl", "e2e-imm", "e2e-ret", "e2e-ret-dev"];

test.afterAll(async ({ playwright }) => {
  const request = await playwright.request.newContext({ baseURL: process.env.BERTH_E2E_URL });
  for (const p of PROJECTS) {
    const r = await rest(request, "GET", `/projects/${p}/repositories?page_size=100`);
    if (!r.ok()) continue;
    for (const repo of await r.json()) {
      const name = encodeURIComponent(encodeURIComponent(repo.name.slice(p.length + 1)));
      await rest(request, "DELETE", `/projects/${p}/repositories/${name}`, undefined, 200);
    }
    await rest(request, "DELETE", `/projects/${p}`, undefined, 200);
  }
  await request.dispose();
});

/** The project's quota as the REST API has it. */
async function quotaOf(request: import("@playwright/test").APIRequestContext, project: string) {
  const p = await (await rest(request, "GET", `/projects/${project}`, undefined, 200)).json();
  const q = await (await rest(request, "GET", `/quotas?reference=project&reference_id=${p.project_id}`, undefined, 200)).json();
  expect(q).toHaveLength(1);
  return q[0];
}

async function signIn(page: Page, path: string) {
  await page.goto(path);
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(new RegExp(path.replace(/[?]/g, "\\?") + "$"));
  await hydrated(page);
}

test("quota: the bar shows a push's usage against the limit a system admin sets, in the summary and the project list", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await createProject(request, "e2e-quota");
  await signIn(page, "/harbor/projects/e2e-quota/summary");

  // A new project has no limit (storage_per_project is -1): "0 B of unlimited", no bar.
  const summary = page.getByTestId("summary-quota");
  await expect(summary).toHaveAttribute("data-level", "unlimited");
  await expect(summary.getByTestId("quota-text")).toHaveText("0 B of unlimited");
  await expect(summary.getByRole("progressbar")).toHaveCount(0);

  // The system admin sets 1 MiB on the project's Configuration tab.
  await page.getByTestId("tab-configs").click();
  await expect(page.getByTestId("project-quota")).toBeVisible();
  await hydrated(page);
  await page.getByTestId("quota-limit").fill("1");
  await page.getByTestId("quota-limit-unit").selectOption("MiB");
  await page.getByTestId("quota-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved.");
  expect((await quotaOf(request, "e2e-quota")).hard.storage).toBe(MiB);
  await expect(page.getByTestId("config-quota").getByTestId("quota-text")).toHaveText("0 B of 1.0 MiB");

  // A push is charged: the summary's bar shows the bytes and stays green.
  const { size } = await pushImageSized(request, "e2e-quota/app", "v1");
  expect((await quotaOf(request, "e2e-quota")).used.storage).toBe(size);
  await page.getByTestId("tab-summary").click();
  await expect(summary.getByTestId("quota-text")).toHaveText(`${formatBytes(size)} of 1.0 MiB`);
  await expect(summary).toHaveAttribute("data-level", "ok");
  const pct = Math.floor((size * 100) / MiB);
  await expect(summary.getByRole("progressbar")).toHaveAttribute("aria-valuenow", String(pct));

  // Near the limit the bar turns red: a limit the usage fills to ~95 %.
  await page.getByTestId("tab-configs").click();
  await hydrated(page);
  const tight = Math.ceil(size / 0.95);
  await page.getByTestId("quota-limit").fill(String(tight / MiB));
  await page.getByTestId("quota-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved.");
  expect(Math.abs((await quotaOf(request, "e2e-quota")).hard.storage - tight)).toBeLessThanOrEqual(1);
  await expect(page.getByTestId("config-quota")).toHaveAttribute("data-level", "danger");

  // The project list has a Quota column with the same numbers.
  await page.goto("/harbor/projects?name=e2e-quota");
  await hydrated(page);
  const row = page.getByTestId("project-table").getByRole("row", { name: /e2e-quota/ });
  await expect(row.getByTestId("quota")).toHaveAttribute("data-level", "danger");
  await expect(row.getByTestId("quota-text")).toHaveText(`${formatBytes(size)} of ${formatBytes(tight)}`);
  await expect(page.getByRole("columnheader", { name: "Quota" })).toBeVisible();
  await shot(page, "policies-quota-list");

  // Administration → Project Quotas lists it with its bar, and edits the limit in place.
  await page.goto("/harbor/project-quotas");
  await hydrated(page);
  const qrow = page.locator('[data-testid="quota-row"][data-name="e2e-quota"]');
  await expect(qrow.getByTestId("quota")).toHaveAttribute("data-level", "danger");
  await qrow.getByTestId("quota-edit").click();
  await qrow.getByTestId("quota-row-limit").fill("2");
  await qrow.getByTestId("quota-row-limit-unit").selectOption("MiB");
  await qrow.getByTestId("quota-row-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved the quota of e2e-quota.");
  await expect(qrow.getByTestId("quota-text")).toHaveText(`${formatBytes(size)} of 2.0 MiB`);
  await expect(qrow.getByTestId("quota")).toHaveAttribute("data-level", "ok");
  expect((await quotaOf(request, "e2e-quota")).hard.storage).toBe(2 * MiB);

  // Back to unlimited with -1.
  await page.goto("/harbor/projects/e2e-quota/configs");
  await hydrated(page);
  await page.getByTestId("quota-limit").fill("-1");
  await page.getByTestId("quota-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved.");
  expect((await quotaOf(request, "e2e-quota")).hard.storage).toBe(-1);
  await expect(page.getByTestId("config-quota").getByTestId("quota-text")).toHaveText(`${formatBytes(size)} of unlimited`);

  // The default quota of new projects (Configuration → System settings).
  await page.goto("/harbor/configs");
  await hydrated(page);
  await page.getByTestId("config-default-quota").fill("5");
  await page.getByTestId("config-default-quota-unit").selectOption("GiB");
  await page.getByTestId("config-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved.");
  const cfg = await (await rest(request, "GET", "/configurations", undefined, 200)).json();
  expect(cfg.storage_per_project.value).toBe(5 * 1024 * MiB);
  await createProject(request, "e2e-quota-default");
  expect((await quotaOf(request, "e2e-quota-default")).hard.storage).toBe(5 * 1024 * MiB);
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("config-default-quota")).toHaveValue("5");
  await expect(page.getByTestId("config-default-quota-unit")).toHaveValue("GiB");
  await page.getByTestId("config-default-quota").fill("-1");
  await page.getByTestId("config-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved.");
  expect((await (await rest(request, "GET", "/configurations", undefined, 200)).json()).storage_per_project.value).toBe(-1);
  expect(errors).toEqual([]);
});

test("labels: global and project labels are created, attached to an artifact, filter the list and are removed", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await createProject(request, "e2e-lbl");
  const d1 = await pushImage(request, "e2e-lbl/app", "v1");
  const d2 = await pushImage(request, "e2e-lbl/app", "v2");

  // Administration → Labels: a global label.
  await signIn(page, "/harbor/labels");
  await page.getByTestId("label-new").click();
  await page.getByTestId("label-name").fill("e2e-release");
  await page.getByTestId("label-description").fill("shipped");
  await page.getByTestId("label-color").fill("#1e7b45");
  await page.getByTestId("label-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Created label e2e-release.");
  const grow = page.locator('[data-testid="label-row"][data-name="e2e-release"]');
  await expect(grow).toContainText("shipped");
  const globals = await (await rest(request, "GET", "/labels?scope=g&name=e2e-release", undefined, 200)).json();
  expect(globals).toHaveLength(1);
  expect(globals[0].color).toBe("#1e7b45");
  const releaseId = globals[0].id;
  // Edit: the description changes.
  await grow.getByTestId("label-edit").click();
  await expect(page.getByTestId("label-name")).toHaveValue("e2e-release");
  await page.getByTestId("label-description").fill("shipped to prod");
  await page.getByTestId("label-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved label e2e-release.");
  await expect(grow).toContainText("shipped to prod");

  // The project's Labels tab: a project label.
  await page.goto("/harbor/projects/e2e-lbl/labels");
  await hydrated(page);
  await page.getByTestId("label-new").click();
  await page.getByTestId("label-name").fill("qa");
  await page.getByTestId("label-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Created label qa.");
  await expect(page.locator('[data-testid="label-row"][data-name="qa"]')).toBeVisible();
  // A second label of the same name in the project is refused with the API's message.
  await page.getByTestId("label-new").click();
  await page.getByTestId("label-name").fill("qa");
  await page.getByTestId("label-save").click();
  await expect(page.getByTestId("outcome-error")).toContainText("already exists");

  // Attach the global label to v1 in the artifact list.
  await page.goto("/harbor/projects/e2e-lbl/repositories/app");
  await hydrated(page);
  const row1 = page.locator(`[data-testid="artifact-row"][data-digest="${d1}"]`);
  const row2 = page.locator(`[data-testid="artifact-row"][data-digest="${d2}"]`);
  await row1.getByTestId("label-pick").click();
  const picker = row1.getByTestId("label-picker");
  // Global labels (other specs' too) and the project's.
  await expect(picker.locator('[data-testid="label-option"][data-label="e2e-release"]')).toHaveCount(1);
  await expect(picker.locator('[data-testid="label-option"][data-label="qa"]')).toHaveCount(1);
  await picker.locator('[data-label="e2e-release"] input').click();
  await expect(page.getByTestId("outcome")).toHaveText("Added label e2e-release.");
  await expect(row1.getByTestId("artifact-labels").getByTestId("label-chip")).toHaveText(["e2e-release"]);
  await expect(row2.getByTestId("artifact-labels").getByTestId("label-chip")).toHaveCount(0);
  const art = await (await rest(request, "GET", `/projects/e2e-lbl/repositories/app/artifacts/${d1}?with_label=true`, undefined, 200)).json();
  expect(art.labels.map((l: { name: string }) => l.name)).toEqual(["e2e-release"]);

  // Filter by the label: only v1; back to all: both.
  await page.getByTestId("label-filter-select").selectOption({ label: "e2e-release" });
  await page.getByTestId("label-filter-apply").click();
  await expect(page).toHaveURL(new RegExp(`label=${releaseId}`));
  await expect(page.getByTestId("artifact-row")).toHaveCount(1);
  await expect(row1).toBeVisible();
  await shot(page, "policies-labels-filter");
  await page.getByTestId("label-filter-select").selectOption({ label: "All labels" });
  await page.getByTestId("label-filter-apply").click();
  await expect(page.getByTestId("artifact-row")).toHaveCount(2);
  // Filtering by the project label finds nothing yet.
  await page.getByTestId("label-filter-select").selectOption({ label: "qa" });
  await page.getByTestId("label-filter-apply").click();
  await expect(page.getByTestId("artifacts-empty")).toContainText("No artifact has this label.");

  // The artifact page shows the chip and adds the project label.
  await page.goto(`/harbor/projects/e2e-lbl/repositories/app/artifacts/${d1}`);
  await hydrated(page);
  const labels = page.getByTestId("artifact-facts").getByTestId("artifact-labels");
  await expect(labels.getByTestId("label-chip")).toHaveText(["e2e-release"]);
  await page.getByTestId("label-pick").click();
  await page.getByTestId("label-picker").locator('[data-label="qa"] input').click();
  await expect(page.getByTestId("outcome")).toHaveText("Added label qa.");
  await expect(labels.getByTestId("label-chip")).toHaveText(["e2e-release", "qa"]);

  // Untick removes it again.
  await page.getByTestId("label-pick").click();
  await page.getByTestId("label-picker").locator('[data-label="e2e-release"] input').click();
  await expect(page.getByTestId("outcome")).toHaveText("Removed label e2e-release.");
  await expect(labels.getByTestId("label-chip")).toHaveText(["qa"]);
  const after = await (await rest(request, "GET", `/projects/e2e-lbl/repositories/app/artifacts/${d1}?with_label=true`, undefined, 200)).json();
  expect(after.labels.map((l: { name: string }) => l.name)).toEqual(["qa"]);

  // A guest sees the project's labels but no buttons to change them.
  await createUser(request, "e2e-lbl-guest");
  await rest(request, "POST", "/projects/e2e-lbl/members", { role_id: 3, member_user: { username: "e2e-lbl-guest" } }, 201);
  await page.goto("/harbor/projects/e2e-lbl/labels");
  await hydrated(page);
  await switchUser(page, "e2e-lbl-guest", "Passw0rd1");
  await expect(page.getByTestId("current-user")).toHaveText("e2e-lbl-guest");
  await page.goto("/harbor/projects/e2e-lbl/labels");
  await hydrated(page);
  await expect(page.locator('[data-testid="label-row"][data-name="qa"]')).toBeVisible();
  await expect(page.getByTestId("label-new")).toHaveCount(0);
  await expect(page.getByTestId("label-edit")).toHaveCount(0);
  await page.goto("/harbor/projects/e2e-lbl/repositories/app");
  await hydrated(page);
  await expect(page.getByTestId("label-pick")).toHaveCount(0);
  await expect(row1.getByTestId("label-chip")).toHaveText(["qa"]);

  // The admin deletes the global label.
  await switchUser(page, "admin", "Harbor12345");
  await expect(page.getByTestId("current-user")).toHaveText("admin");
  await page.goto("/harbor/labels");
  await hydrated(page);
  await page.locator('[data-testid="label-row"][data-name="e2e-release"]').getByTestId("label-delete").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Deleted label e2e-release.");
  await expect(page.locator('[data-testid="label-row"][data-name="e2e-release"]')).toHaveCount(0);
  expect(await (await rest(request, "GET", "/labels?scope=g&name=e2e-release", undefined, 200)).json()).toEqual([]);
  expect(errors).toEqual([]);
});

test("immutability: a rule is added, protects its tags, is edited, disabled and deleted", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await createProject(request, "e2e-imm");
  await pushImage(request, "e2e-imm/app", "v1");
  await signIn(page, "/harbor/projects/e2e-imm/policy");
  const section = page.getByTestId("immutable-section");
  await expect(section).toContainText("No immutability rules.");

  await page.getByTestId("immutable-add").click();
  await page.getByTestId("immutable-repo").fill("app");
  await page.getByTestId("immutable-tag").fill("v*");
  await page.getByTestId("immutable-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule added.");
  const row = section.getByTestId("immutable-row");
  await expect(row).toHaveCount(1);
  await expect(row).toContainText("For the repositories matching app, tags matching v* are immutable");
  await expect(row).toContainText("Enabled");
  let rules = await (await rest(request, "GET", "/projects/e2e-imm/immutabletagrules", undefined, 200)).json();
  expect(rules).toHaveLength(1);
  expect(rules[0].tag_selectors[0]).toMatchObject({ decoration: "matches", pattern: "v*" });
  expect(rules[0].scope_selectors.repository[0]).toMatchObject({ decoration: "repoMatches", pattern: "app" });
  // It is enforced: v1 cannot be pushed again.
  const again = await pushImage(request, "e2e-imm/app", "v1").then(() => "pushed", (e) => String(e));
  expect(again).toContain("412");

  // Edit: tags excluding v*.
  await row.getByTestId("immutable-edit").click();
  await expect(page.getByTestId("immutable-tag")).toHaveValue("v*");
  await page.getByTestId("immutable-tag-decoration").selectOption("excludes");
  await page.getByTestId("immutable-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule saved.");
  await expect(row).toContainText("tags excluding v*");
  rules = await (await rest(request, "GET", "/projects/e2e-imm/immutabletagrules", undefined, 200)).json();
  expect(rules[0].tag_selectors[0].decoration).toBe("excludes");

  // Disable and enable.
  await row.getByTestId("immutable-toggle").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule disabled.");
  await expect(row).toHaveAttribute("data-disabled", "true");
  await expect(row).toContainText("Disabled");
  rules = await (await rest(request, "GET", "/projects/e2e-imm/immutabletagrules", undefined, 200)).json();
  expect(rules[0].disabled).toBe(true);
  await row.getByTestId("immutable-toggle").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule enabled.");
  await expect(row).toHaveAttribute("data-disabled", "false");
  await shot(page, "policies-immutable");

  // Delete, after confirming.
  await row.getByTestId("immutable-delete").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule deleted.");
  await expect(section).toContainText("No immutability rules.");
  expect(await (await rest(request, "GET", "/projects/e2e-imm/immutabletagrules", undefined, 200)).json()).toEqual([]);
  expect(errors).toEqual([]);
});

test("retention: a rule is added, a dry run reports, the history opens to tasks and logs, a real run deletes, and the schedule is saved", async ({ page, request }) => {
  // Two runs, each polled to its end, and a dozen edits: over a minute on a loaded machine.
  test.slow();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await createProject(request, "e2e-ret");
  for (const tag of ["v1", "v2", "v3"]) await pushImage(request, "e2e-ret/app", tag);
  const v3 = (await (await rest(request, "GET", "/projects/e2e-ret/repositories/app/artifacts/v3", undefined, 200)).json()).digest;
  await signIn(page, "/harbor/projects/e2e-ret/policy");
  const section = page.getByTestId("retention-section");
  await expect(section).toContainText("No retention rules: every artifact is kept.");
  await expect(page.getByTestId("retention-dry-run")).toHaveCount(0);

  // The first rule creates the project's policy: keep the latest pushed artifact.
  await page.getByTestId("retention-add").click();
  await page.getByTestId("retention-template").selectOption("latestPushedK");
  await page.getByTestId("retention-param").fill("1");
  await page.getByTestId("retention-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule added.");
  const row = section.getByTestId("retention-row");
  await expect(row).toHaveCount(1);
  await expect(row.getByTestId("retention-text")).toHaveText(
    "For the repositories matching **, retain the most recently pushed 1 artifacts with tags matching ** including untagged artifacts");
  const project = await (await rest(request, "GET", "/projects/e2e-ret", undefined, 200)).json();
  const id = Number(project.metadata.retention_id);
  expect(id).toBeGreaterThan(0);
  let policy = await (await rest(request, "GET", `/retentions/${id}`, undefined, 200)).json();
  expect(policy.scope).toEqual({ level: "project", ref: project.project_id });
  expect(policy.rules).toHaveLength(1);
  expect(policy.rules[0]).toMatchObject({ template: "latestPushedK", params: { latestPushedK: 1 } });

  // Dry run: the history shows it, and it ends by itself (the page polls).
  await page.getByTestId("retention-dry-run").click();
  await expect(page.getByTestId("outcome")).toHaveText("Dry run started.");
  const run = section.getByTestId("retention-run").first();
  await expect(run).toHaveAttribute("data-dry-run", "true");
  await expect(run).toHaveAttribute("data-status", "Success", { timeout: 30_000 });
  await expect(run).toContainText("MANUAL");
  // Its task: 3 artifacts looked at, 1 retained; the log lists each with its verdict.
  await run.getByTestId("retention-run-open").click();
  const task = section.getByTestId("retention-task");
  await expect(task).toHaveCount(1);
  await expect(task).toHaveAttribute("data-repository", "e2e-ret/app");
  await expect(task.getByTestId("retention-task-total")).toHaveText("3");
  await expect(task.getByTestId("retention-task-retained")).toHaveText("1");
  await task.getByTestId("retention-task-log").click();
  const log = section.getByTestId("retention-log");
  await expect(log).toContainText("Dry run: true");
  await expect(log).toContainText("nothing was deleted");
  await expect(log).toContainText(`${v3}`);
  await shot(page, "policies-retention-dry-run");
  let arts = await (await rest(request, "GET", "/projects/e2e-ret/repositories/app/artifacts", undefined, 200)).json();
  expect(arts).toHaveLength(3);

  // Edit: retain always (no number) the artifacts without the label "keep", then disable and
  // enable again.
  await row.getByTestId("retention-edit").click();
  await page.getByTestId("retention-template").selectOption("always");
  await expect(page.getByTestId("retention-param")).toHaveCount(0);
  await page.getByTestId("retention-label-decoration").selectOption("withoutLabels");
  await page.getByTestId("retention-labels").fill(" keep, ");
  await page.getByTestId("retention-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule saved.");
  await expect(row.getByTestId("retention-text")).toContainText("retain always with tags matching **");
  await expect(row.getByTestId("retention-text")).toContainText("including untagged artifacts, without labels keep");
  await row.getByTestId("retention-toggle").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule disabled.");
  await expect(row).toHaveAttribute("data-disabled", "true");
  policy = await (await rest(request, "GET", `/retentions/${id}`, undefined, 200)).json();
  expect(policy.rules[0]).toMatchObject({ template: "always", disabled: true });
  expect(policy.rules[0].tag_selectors[1]).toMatchObject({ kind: "label", decoration: "withoutLabels", pattern: "keep" });
  await row.getByTestId("retention-toggle").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule enabled.");
  await expect(row).toHaveAttribute("data-disabled", "false");

  // Back to the latest one, labels no matter, and a real run (asks first): v1 and v2 are deleted.
  await row.getByTestId("retention-edit").click();
  await expect(page.getByTestId("retention-labels")).toHaveValue("keep");
  await page.getByTestId("retention-labels").fill("");
  await page.getByTestId("retention-template").selectOption("latestPushedK");
  await page.getByTestId("retention-param").fill("1");
  await page.getByTestId("retention-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule saved.");
  // (The rules are shown again after the save; a confirmation opened before would go with them.)
  await expect(row.getByTestId("retention-text")).toContainText("retain the most recently pushed 1 artifacts");
  await page.getByTestId("retention-run-now").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Retention run started.");
  const real = section.locator('[data-testid="retention-run"][data-dry-run="false"]');
  await expect(real).toHaveCount(1);
  await expect(real).toHaveAttribute("data-status", "Success", { timeout: 30_000 });
  await expect(section.getByTestId("retention-run")).toHaveCount(2);
  arts = await (await rest(request, "GET", "/projects/e2e-ret/repositories/app/artifacts", undefined, 200)).json();
  expect(arts.map((a: { digest: string }) => a.digest)).toEqual([v3]);

  // The schedule: daily, then a bad custom cron is refused with the API's message.
  await page.getByTestId("retention-repeat").selectOption("Daily");
  await page.getByTestId("retention-schedule-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Schedule saved.");
  await expect(page.getByTestId("retention-schedule-current")).toHaveText("Runs on cron 0 0 0 * * *.");
  policy = await (await rest(request, "GET", `/retentions/${id}`, undefined, 200)).json();
  expect(policy.trigger.settings.cron).toBe("0 0 0 * * *");
  await page.getByTestId("retention-repeat").selectOption("Custom");
  await page.getByTestId("retention-cron").fill("every day");
  await page.getByTestId("retention-schedule-save").click();
  await expect(page.getByTestId("outcome-error")).toBeVisible();
  policy = await (await rest(request, "GET", `/retentions/${id}`, undefined, 200)).json();
  expect(policy.trigger.settings.cron).toBe("0 0 0 * * *");

  // Delete the rule: the policy stays, with no rules. (The schedule's save reloads the policy;
  // on a loaded machine that can land after the click and take the confirmation with it, so
  // open it until it stays.)
  await expect(async () => {
    await row.getByTestId("retention-delete").click();
    await expect(page.getByTestId("confirm-yes")).toBeVisible({ timeout: 2_000 });
  }).toPass({ timeout: 30_000 });
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Rule deleted.");
  await expect(section).toContainText("No retention rules: every artifact is kept.");
  policy = await (await rest(request, "GET", `/retentions/${id}`, undefined, 200)).json();
  expect(policy.rules).toEqual([]);
  expect(errors).toEqual([]);
});

test("retention: a developer sees the policy and its runs but cannot change or run it", async ({ page, request }) => {
  await createUser(request, "e2e-ret-dev");
  await createProject(request, "e2e-ret-dev", [["e2e-ret-dev", 2]]);
  await pushImage(request, "e2e-ret-dev/app", "v1");
  const p = await (await rest(request, "GET", "/projects/e2e-ret-dev", undefined, 200)).json();
  const rule = {
    template: "latestPushedK", action: "retain", params: { latestPushedK: 5 },
    tag_selectors: [{ kind: "doublestar", decoration: "matches", pattern: "**", extras: "{\"untagged\":true}" }],
    scope_selectors: { repository: [{ kind: "doublestar", decoration: "repoMatches", pattern: "**" }] },
  };
  await rest(request, "POST", "/retentions", { algorithm: "or", rules: [rule], trigger: { kind: "Schedule", settings: { cron: "" } }, scope: { level: "project", ref: p.project_id } }, 201);
  await page.goto("/harbor/projects/e2e-ret-dev/policy");
  await hydrated(page);
  await logIn(page, "e2e-ret-dev", "Passw0rd1");
  await expect(page).toHaveURL(/\/e2e-ret-dev\/policy$/);
  await hydrated(page);
  const section = page.getByTestId("retention-section");
  await expect(section.getByTestId("retention-text")).toContainText("retain the most recently pushed 5 artifacts");
  await expect(page.getByTestId("retention-add")).toHaveCount(0);
  await expect(page.getByTestId("retention-edit")).toHaveCount(0);
  await expect(page.getByTestId("retention-dry-run")).toHaveCount(0);
  await expect(page.getByTestId("retention-schedule-save")).toHaveCount(0);
  await expect(page.getByTestId("retention-repeat")).toBeDisabled();
  // Harbor's developers see no immutability rules.
  await expect(page.getByTestId("immutable-section")).toHaveCount(0);
});
