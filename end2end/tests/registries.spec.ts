import { test, expect, Page } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { createUser, hydrated, logIn, rest, switchUser } from "./helpers";

// Registry endpoints point at the server under test itself (the `harbor` type speaks this
// product's REST API and /v2), so nothing outside 127.0.0.1 is needed.
const SELF = process.env.BERTH_E2E_URL!;

async function signIn(page: Page, path: string) {
  await page.goto(path);
  await expect(page).toHaveURL(/\/account\/sign-in\?redirect_url=/);
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(new RegExp(path.replace(/\?/g, "\\?") + "$"));
  await hydrated(page);
}

async function axe(page: Page, what: string) {
  const r = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const problems = r.violations.map((v) => `${what}: ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  expect(problems, problems.join("\n")).toEqual([]);
}

test("admin creates, tests, edits and deletes a registry endpoint, and makes a proxy-cache project", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await signIn(page, "/harbor/registries");
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Registries" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Registries", level: 1 })).toBeVisible();

  // The form: a wrong password fails the connection test with the server's reason.
  await page.getByTestId("registry-new").click();
  const form = page.getByTestId("registry-form");
  await form.getByLabel("Provider").selectOption("harbor");
  await form.getByLabel("Name", { exact: true }).fill("e2e-self");
  await form.getByLabel("Description").fill("this server");
  await form.getByLabel("Endpoint URL").fill(SELF);
  await form.getByLabel("Access ID").fill("admin");
  await form.getByLabel("Access secret").fill("wrong-password");
  await axe(page, "registry form");
  await form.getByTestId("registry-ping").click();
  await expect(form.getByTestId("registry-ping-result")).toContainText("Connection failed");
  // The right one succeeds.
  await form.getByLabel("Access secret").fill("Harbor12345");
  await form.getByTestId("registry-ping").click();
  await expect(form.getByTestId("registry-ping-result")).toHaveText("Connection tested successfully.");
  await form.getByTestId("registry-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Created endpoint e2e-self.");
  await expect(form).toHaveCount(0);

  const row = page.locator('[data-testid="registry-row"][data-name="e2e-self"]');
  await expect(row).toContainText(SELF);
  await expect(row).toContainText("harbor");
  await expect(row).toContainText("this server");
  // The API never gives the secret back.
  const stored = (await (await rest(request, "GET", "/registries?q=name%3De2e-self", undefined, 200)).json())[0];
  expect(stored.credential.access_secret).toBe("*****");
  expect(stored.credential.access_key).toBe("admin");

  // Test connection from the list marks it healthy.
  await row.getByTestId("registry-test").click();
  await expect(page.getByTestId("outcome")).toHaveText("Connection tested successfully.");
  await expect(row.getByTestId("registry-status")).toHaveText("healthy");

  // Edit: the secret field starts empty and, left empty, keeps the stored secret.
  await row.getByTestId("registry-edit").click();
  await expect(form.getByLabel("Access secret")).toHaveValue("");
  await expect(form.getByLabel("Name", { exact: true })).toHaveValue("e2e-self");
  await expect(form.getByLabel("Provider")).toBeDisabled();
  await form.getByLabel("Description").fill("this server, edited");
  await form.getByTestId("registry-ping").click();
  await expect(form.getByTestId("registry-ping-result")).toHaveText("Connection tested successfully.");
  await form.getByTestId("registry-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved endpoint e2e-self.");
  await expect(row).toContainText("this server, edited");
  await row.getByTestId("registry-test").click();
  await expect(page.getByTestId("outcome")).toHaveText("Connection tested successfully.");
  await expect(row.getByTestId("registry-status")).toHaveText("healthy");

  // A second endpoint (a docker-registry that does not answer) is deleted after confirming.
  await page.getByTestId("registry-new").click();
  await form.getByLabel("Provider").selectOption("docker-registry");
  await form.getByLabel("Name", { exact: true }).fill("e2e-gone");
  await form.getByLabel("Endpoint URL").fill("http://127.0.0.1:9");
  await form.getByTestId("registry-save").click();
  const gone = page.locator('[data-testid="registry-row"][data-name="e2e-gone"]');
  await expect(gone).toBeVisible();
  await gone.getByTestId("registry-test").click();
  await expect(page.getByTestId("outcome-error")).toBeVisible();
  await expect(gone.getByTestId("registry-status")).toHaveText("unhealthy");
  await gone.getByTestId("registry-delete").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Deleted endpoint e2e-gone.");
  await expect(gone).toHaveCount(0);
  await axe(page, "registries");

  // A proxy-cache project of the endpoint.
  await page.goto("/harbor/projects");
  await hydrated(page);
  await page.getByTestId("project-new").click();
  await page.getByTestId("project-name").fill("e2e-proxy");
  await page.getByTestId("project-proxy").check();
  await expect(page.getByTestId("project-registry")).toBeVisible();
  await page.getByTestId("project-registry").selectOption({ label: `e2e-self · ${SELF}` });
  await page.getByTestId("project-create").click();
  await expect(page).toHaveURL(/\/harbor\/projects\/e2e-proxy\/summary$/);
  await expect(page.getByTestId("proxy-badge")).toHaveText("Proxy Cache");
  await expect(page.getByTestId("summary-proxy")).toContainText(`#${stored.id}`);
  const project = await (await rest(request, "GET", "/projects/e2e-proxy", undefined, 200)).json();
  expect(project.registry_id).toBe(stored.id);
  await page.goto("/harbor/projects?name=e2e-proxy");
  await expect(page.locator('[data-testid="project-row"][data-name="e2e-proxy"]').getByTestId("project-proxy-badge")).toBeVisible();

  // The endpoint is in use: deleting it is refused with the server's reason.
  await page.goto("/harbor/registries");
  await hydrated(page);
  await row.getByTestId("registry-delete").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome-error")).toContainText("e2e-proxy");
  await expect(row).toBeVisible();

  // 简体中文: Harbor's words.
  await page.goto("/language?lang=zh-CN&redirect=/harbor/registries");
  await hydrated(page);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("仓库管理");
  await expect(page.locator("nav.sidenav")).toContainText("复制管理");
  await expect(row.getByTestId("registry-test")).toHaveText("测试连接");
  await axe(page, "registries (zh-CN)");
  await page.goto("/language?lang=en&redirect=/harbor/registries");
  expect(errors).toEqual([]);
});

test("registries and replications are for system administrators only", async ({ page, request }) => {
  await createUser(request, "regdev");
  await page.goto("/account/sign-in?redirect_url=/harbor/registries");
  await hydrated(page);
  await logIn(page, "regdev", "Passw0rd1");
  await expect(page).toHaveURL(/\/harbor\/registries$/);
  await expect(page.getByRole("alert")).toContainText("Only system administrators");
  await expect(page.getByRole("link", { name: "Registries" })).toHaveCount(0);
  await expect(page.getByRole("link", { name: "Replications" })).toHaveCount(0);
  await page.goto("/harbor/replications");
  await expect(page.getByRole("alert")).toContainText("Only system administrators");
  // No proxy-cache choice for someone who may not make one.
  await page.goto("/harbor/projects");
  await hydrated(page);
  await page.getByTestId("project-new").click();
  await expect(page.getByTestId("project-form")).toBeVisible();
  await expect(page.getByTestId("project-proxy")).toHaveCount(0);
  await switchUser(page, "admin", "Harbor12345");
});
