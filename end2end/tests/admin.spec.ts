import { test, expect } from "@playwright/test";
import { createUser, hydrated, logIn, rest, shot, switchUser } from "./helpers";

test("admin creates a developer and a project, adds the developer, and the audit log shows it all", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await createUser(request, "e2e-temp");
  await rest(request, "POST", "/projects", { project_name: "e2e-empty" }, 201);
  await page.goto("/harbor/users");
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(/\/harbor\/users$/);

  // Users: create a developer account.
  await page.getByTestId("user-new").click();
  const form = page.getByTestId("user-form");
  await form.getByLabel("Username").fill("e2e-dev");
  await form.getByLabel("Email").fill("dev@example.com");
  await form.getByLabel("Full name").fill("E2E Developer");
  await form.getByLabel("Password").fill("weak");
  await page.getByTestId("user-create").click();
  // The server's password rule comes back as the message.
  await expect(page.getByTestId("outcome-error")).toContainText("password");
  await form.getByLabel("Password").fill("Dev3loper1");
  await page.getByTestId("user-create").click();
  await expect(page.getByTestId("outcome")).toHaveText("Created user e2e-dev.");
  const devRow = page.locator('[data-testid="user-row"][data-name="e2e-dev"]');
  await expect(devRow).toContainText("dev@example.com");
  await expect(devRow.getByTestId("user-admin")).toHaveText("No");
  await shot(page, "users");
  // Make a user an administrator, take it back, delete the user (after confirming).
  const temp = page.locator('[data-testid="user-row"][data-name="e2e-temp"]');
  await temp.getByTestId("user-toggle-admin").click();
  await expect(page.getByTestId("outcome")).toHaveText("e2e-temp is now an administrator.");
  await expect(temp.getByTestId("user-admin")).toHaveText("Yes");
  await temp.getByTestId("user-toggle-admin").click();
  await expect(temp.getByTestId("user-admin")).toHaveText("No");
  await temp.getByTestId("user-delete").click();
  await expect(page.getByRole("alertdialog")).toContainText("Delete user e2e-temp?");
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Deleted user e2e-temp.");
  await expect(temp).toHaveCount(0);
  // No delete button on one's own row.
  await expect(page.locator('[data-testid="user-row"][data-name="admin"]').getByTestId("user-delete")).toHaveCount(0);

  // Projects: an empty project is deleted after confirming.
  await page.goto("/harbor/projects");
  await hydrated(page);
  await page.locator('[data-testid="project-row"][data-name="e2e-empty"]').getByTestId("project-delete").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Deleted project e2e-empty.");
  await expect(page.locator('[data-testid="project-row"][data-name="e2e-empty"]')).toHaveCount(0);
  // A bad name is refused by the browser's own validation, a good one is created.
  await page.getByTestId("project-new").click();
  await page.getByTestId("project-name").fill("E2E Bad");
  await page.getByTestId("project-create").click();
  expect(await page.getByTestId("project-name").evaluate((e: HTMLInputElement) => e.validity.valid)).toBe(false);
  await page.getByTestId("project-name").fill("e2e-team");
  await page.getByTestId("project-public").check();
  await page.getByTestId("project-create").click();
  await expect(page).toHaveURL(/\/harbor\/projects\/e2e-team\/summary$/);
  await expect(page.getByRole("heading", { name: "e2e-team" })).toContainText("Public");
  await expect(page.getByTestId("summary-repos")).toHaveText("0");
  await expect(page.getByTestId("summary-members")).toContainText("Project Admin");
  await shot(page, "project-summary");

  // The same name again: the API's conflict message.
  await page.goto("/harbor/projects");
  await hydrated(page);
  await page.getByTestId("project-new").click();
  await page.getByTestId("project-name").fill("e2e-team");
  await page.getByTestId("project-create").click();
  await expect(page.getByTestId("outcome-error")).toContainText("already exists");

  // Members: add the developer, then make them a maintainer.
  await page.goto("/harbor/projects/e2e-team/members");
  await hydrated(page);
  const add = page.getByTestId("member-add");
  await add.getByLabel("Username").fill("e2e-dev");
  await add.getByLabel("Role").selectOption({ label: "Developer" });
  await add.getByRole("button", { name: "Add member" }).click();
  await expect(page.getByTestId("outcome")).toHaveText("Added e2e-dev as Developer.");
  const member = page.locator('[data-testid="member-row"][data-name="e2e-dev"]');
  await expect(member.getByTestId("member-role")).toHaveValue("2");
  await member.getByTestId("member-role").selectOption({ label: "Maintainer" });
  await expect(page.getByTestId("outcome")).toHaveText("e2e-dev is now Maintainer.");
  await page.reload();
  await hydrated(page);
  await expect(member.getByTestId("member-role")).toHaveValue("4");
  // Unknown users are refused with the API's message.
  await add.getByLabel("Username").fill("nobody-here");
  await add.getByRole("button", { name: "Add member" }).click();
  await expect(page.getByTestId("outcome-error")).toContainText("not found");
  await shot(page, "project-members");
  // Remove a member (asked first).
  await rest(request, "POST", "/users", { username: "e2e-leaver", password: "Passw0rd1", email: "l@example.com" }, 201);
  await add.getByLabel("Username").fill("e2e-leaver");
  await add.getByRole("button", { name: "Add member" }).click();
  const leaver = page.locator('[data-testid="member-row"][data-name="e2e-leaver"]');
  await expect(leaver).toHaveCount(1);
  await leaver.getByTestId("member-remove").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Removed e2e-leaver.");
  await expect(leaver).toHaveCount(0);

  // Configuration: make the project private again.
  await page.getByTestId("tab-configs").click();
  await expect(page).toHaveURL(/\/configs$/);
  await page.getByTestId("config-public").uncheck();
  await page.getByTestId("config-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved.");

  // The project's logs and the system audit log show what happened.
  await page.getByTestId("tab-logs").click();
  const plog = page.getByTestId("log-table");
  await expect(plog.locator('[data-operation="create"][data-resource="e2e-team:e2e-dev"]')).toHaveCount(1);
  await expect(plog.locator('[data-operation="update"][data-resource="e2e-team"]')).toHaveCount(1);
  await page.goto("/harbor/logs?resource_type=user");
  await hydrated(page);
  await expect(page.getByTestId("log-table").locator('[data-operation="create"][data-resource="e2e-dev"]')).toHaveCount(1);
  // Filters combine and travel in the URL.
  await page.getByTestId("log-filters").getByLabel("Operation").selectOption("create");
  await page.getByTestId("log-filters").getByLabel("Resource type").selectOption("project");
  await page.getByTestId("log-filters").getByLabel("Resource", { exact: true }).fill("team");
  await page.getByTestId("log-filters").getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(/operation=create/);
  await expect(page.getByTestId("log-row")).toHaveCount(1);
  await expect(page.getByTestId("log-row")).toContainText("e2e-team");
  await shot(page, "audit-log");

  // Configuration and system info.
  await page.goto("/harbor/configs");
  await hydrated(page);
  await expect(page.getByTestId("system-info")).toContainText("sqlite");
  await page.getByTestId("config-token").fill("45");
  await page.getByTestId("config-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved.");
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("config-token")).toHaveValue("45");
  // Out of range: the browser refuses before sending; the server would too (400).
  await page.getByTestId("config-token").fill("0");
  await page.getByTestId("config-save").click();
  expect(await page.getByTestId("config-token").evaluate((e: HTMLInputElement) => e.validity.valid)).toBe(false);
  await shot(page, "configuration");

  // The developer (now maintainer) signs in: the project is there, administration is not.
  await switchUser(page, "e2e-dev", "Dev3loper1");
  await expect(page.getByTestId("project-table")).toContainText("e2e-team");
  await expect(page.getByRole("link", { name: "Users" })).toHaveCount(0);
  await page.goto("/harbor/users");
  await expect(page.getByRole("alert")).toContainText("Only system administrators");
  expect(errors).toEqual([]);
});
