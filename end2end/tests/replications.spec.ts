import { test, expect, Page, APIRequestContext } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { AUTH, hydrated, logIn, pushImage, rest, shot } from "./helpers";

// Replication from the server under test to itself: the endpoint is this server (type
// `harbor`, admin / Harbor12345), the rule copies one project's repositories into another
// namespace, which the harbor adapter creates.
const SELF = process.env.BERTH_E2E_URL!;

async function signIn(page: Page, path: string) {
  await page.goto(path);
  await expect(page).toHaveURL(/\/account\/sign-in\?redirect_url=/);
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(new RegExp(path + "$"));
  await hydrated(page);
}

async function axe(page: Page, what: string) {
  const r = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const problems = r.violations.map((v) => `${what}: ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  expect(problems, problems.join("\n")).toEqual([]);
}

/** A `harbor` endpoint pointing at this server; its id. */
async function selfEndpoint(request: APIRequestContext, name: string): Promise<number> {
  await rest(request, "POST", "/registries", {
    name, type: "harbor", url: SELF, insecure: false,
    credential: { type: "basic", access_key: "admin", access_secret: "Harbor12345" },
  }, 201);
  const list = await (await rest(request, "GET", `/registries?q=name%3D${name}`, undefined, 200)).json();
  return list[0].id;
}

async function manifestDigest(request: APIRequestContext, repo: string, tag: string): Promise<string | null> {
  const r = await request.head(`/v2/${repo}/manifests/${tag}`, {
    headers: { authorization: AUTH, accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  return r.status() === 200 ? r.headers()["docker-content-digest"] : null;
}

test("admin writes a push rule in the editor, replicates, watches the execution live, opens its tasks and a task log", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await rest(request, "POST", "/projects", { project_name: "e2e-rep-src", metadata: { public: "false" } }, 201);
  const digest = await pushImage(request, "e2e-rep-src/app", "v1");
  await selfEndpoint(request, "e2e-rep-self");

  await signIn(page, "/harbor/replications");
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Replications" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Replications", level: 1 })).toBeVisible();

  // The editor: a bad cron is refused with the server's reason.
  await page.getByTestId("rule-new").click();
  const form = page.getByTestId("rule-form");
  await form.getByTestId("rule-name").fill("e2e-push");
  await form.getByLabel("Description").fill("to this server");
  await expect(form.getByTestId("rule-push")).toBeChecked();
  await form.getByTestId("rule-registry").selectOption({ label: `e2e-rep-self · ${SELF}` });
  await expect(form.getByText("Destination registry")).toBeVisible();
  await form.getByTestId("rule-filter-name").fill("e2e-rep-src/**");
  await form.getByTestId("rule-filter-tag").fill("v*");
  await form.getByTestId("rule-namespace").fill("e2e-rep-dst");
  await expect(form.getByTestId("rule-flatten")).toHaveValue("-1");
  await expect(form.getByTestId("rule-flatten").locator("option")).toHaveText(
    ["Flatten All Levels", "No Flattening", "Flatten 1 Level", "Flatten 2 Levels", "Flatten 3 Levels"]);
  await form.getByTestId("rule-trigger").selectOption("scheduled");
  await form.getByTestId("rule-cron").fill("not a cron");
  // Slow enough (8 KiB/s for a ~50 KB layer) that the run is seen in progress first.
  await form.getByTestId("rule-speed").fill("8");
  await axe(page, "rule editor");
  await form.getByTestId("rule-save").click();
  await expect(page.getByTestId("outcome-error")).toContainText("cron");
  await expect(form).toBeVisible();
  await form.getByTestId("rule-trigger").selectOption("manual");
  await expect(form.getByTestId("rule-cron")).toHaveCount(0);
  await form.getByTestId("rule-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Created rule e2e-push.");
  await expect(form).toHaveCount(0);

  const row = page.locator('[data-testid="rule-row"][data-name="e2e-push"]');
  await expect(row).toContainText("Enabled");
  await expect(row).toContainText("Local");
  await expect(row).toContainText("Push-based");
  await expect(row).toContainText("e2e-rep-self");
  await expect(row).toContainText("e2e-rep-dst · Flatten All Levels");
  await expect(row).toContainText("Manual");
  const policy = (await (await rest(request, "GET", "/replication/policies?name=e2e-push", undefined, 200)).json())[0];
  expect(policy.filters).toEqual(expect.arrayContaining([
    { type: "name", value: "e2e-rep-src/**" },
    { type: "tag", value: "v*", decoration: "matches" },
  ]));
  expect(policy.speed).toBe(8);
  expect(policy.dest_namespace_replace_count).toBe(-1);

  // The editor opens with the rule's values.
  await row.getByTestId("rule-edit").click();
  await expect(form.getByTestId("rule-name")).toHaveValue("e2e-push");
  await expect(form.getByTestId("rule-namespace")).toHaveValue("e2e-rep-dst");
  await expect(form.getByTestId("rule-filter-tag")).toHaveValue("v*");
  await expect(form.getByTestId("rule-speed")).toHaveValue("8");
  await form.getByRole("button", { name: "Cancel" }).click();

  // Replicate: the execution appears in progress and reaches Succeed without a reload.
  await row.getByTestId("rule-replicate").click();
  await expect(page).toHaveURL(new RegExp(`/harbor/replications\\?rule=${policy.id}$`));
  await expect(page.getByTestId("outcome")).toHaveText("Started replication of e2e-push.");
  const exec = page.getByTestId("execution-row").first();
  await expect(exec).toHaveAttribute("data-status", /Pending|InProgress/);
  await shot(page, "replication-in-progress");
  await expect(exec).toHaveAttribute("data-status", "Succeed", { timeout: 60_000 });
  await expect(exec.getByTestId("execution-rate")).toContainText("100%");
  await expect(exec).toContainText("Manual");
  expect(await manifestDigest(request, "e2e-rep-dst/app", "v1")).toBe(digest);

  // Its tasks, and a task's log.
  await exec.getByTestId("execution-open").click();
  const task = page.getByTestId("task-row");
  await expect(task).toHaveCount(1);
  await expect(task).toHaveAttribute("data-status", "Succeed");
  await expect(task).toContainText("e2e-rep-src/app:v1");
  await expect(task).toContainText("e2e-rep-dst/app:v1");
  await expect(task).toContainText("copy");
  await axe(page, "replications with executions and tasks");
  await shot(page, "replications");
  const [log] = await Promise.all([page.waitForEvent("popup"), task.getByTestId("task-log").click()]);
  await log.waitForLoadState();
  expect((await log.locator("body").innerText()).trim().length).toBeGreaterThan(0);
  await log.close();

  // The endpoint is in use by the rule: the registries page shows the server's refusal.
  await page.goto("/harbor/registries");
  await hydrated(page);
  await page.locator('[data-testid="registry-row"][data-name="e2e-rep-self"]').getByTestId("registry-delete").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome-error")).toContainText("e2e-push");

  // Disable, then delete the rule.
  await page.goto("/harbor/replications");
  await hydrated(page);
  await row.getByTestId("rule-edit").click();
  await form.getByTestId("rule-enabled").uncheck();
  await form.getByTestId("rule-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved rule e2e-push.");
  await expect(row).toContainText("Disabled");
  await expect(row.getByTestId("rule-replicate")).toBeDisabled();
  await row.getByTestId("rule-delete").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Deleted rule e2e-push.");
  await expect(row).toHaveCount(0);

  // 简体中文.
  await page.goto("/language?lang=zh-CN&redirect=/harbor/replications");
  await hydrated(page);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("复制管理");
  await page.getByTestId("rule-new").click();
  await expect(form.getByTestId("rule-flatten").locator("option").first()).toHaveText("替换所有级");
  await axe(page, "rule editor (zh-CN)");
  await page.goto("/language?lang=en&redirect=/harbor/replications");
  expect(errors).toEqual([]);
});

test("a running execution is stopped from the executions list", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await rest(request, "POST", "/projects", { project_name: "e2e-stop-src", metadata: { public: "false" } }, 201);
  await pushImage(request, "e2e-stop-src/app", "v1");
  const id = await selfEndpoint(request, "e2e-stop-self");
  // 1 KiB/s: the copy takes about a minute, long enough to stop it.
  await rest(request, "POST", "/replication/policies", {
    name: "e2e-stop", src_registry: { id: 0 }, dest_registry: { id }, dest_namespace: "e2e-stop-dst",
    filters: [{ type: "name", value: "e2e-stop-src/**" }], trigger: { type: "manual" }, enabled: true, speed: 1,
  }, 201);
  await signIn(page, "/harbor/replications");
  const row = page.locator('[data-testid="rule-row"][data-name="e2e-stop"]');
  await row.getByTestId("rule-replicate").click();
  const exec = page.getByTestId("execution-row").first();
  await expect(exec).toHaveAttribute("data-status", /Pending|InProgress/);
  await exec.getByTestId("execution-stop").click();
  await expect(page.getByTestId("outcome")).toContainText("Stopping execution");
  await expect(exec).toHaveAttribute("data-status", "Stopped", { timeout: 60_000 });
  await expect(exec.getByTestId("execution-stop")).toHaveCount(0);
  expect(await manifestDigest(request, "e2e-stop-dst/app", "v1")).toBeNull();
  expect(errors).toEqual([]);
});
