import { test, expect } from "@playwright/test";
import { createProject, createUser, hydrated, logIn, pushImage, shot } from "./helpers";

test("a guest sees read-only views and the server refuses writes anyway", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await createUser(request, "e2e-guest");
  await createProject(request, "e2e-ro", [["e2e-guest", 3]]);
  const digest = await pushImage(request, "e2e-ro/app", "v1");

  await page.goto("/harbor/projects");
  await hydrated(page);
  await logIn(page, "e2e-guest", "Passw0rd1");
  const projectRow = page.locator('[data-testid="project-row"][data-name="e2e-ro"]');
  await expect(projectRow).toBeVisible();
  await expect(projectRow.getByTestId("project-delete")).toHaveCount(0);
  await expect(page.getByRole("link", { name: "Users" })).toHaveCount(0);

  await page.goto("/harbor/projects/e2e-ro/repositories");
  await hydrated(page);
  await expect(page.getByTestId("repo-row")).toHaveCount(1);
  await expect(page.getByTestId("repo-delete")).toHaveCount(0);
  await page.getByTestId("tab-robot-account").click();
  await expect(page.getByTestId("robot-table").or(page.getByText("No robot accounts."))).toBeVisible();
  await expect(page.getByTestId("robot-new")).toHaveCount(0);

  await page.goto("/harbor/projects/e2e-ro/repositories/app");
  await hydrated(page);
  const row = page.locator(`[data-testid="artifact-row"][data-digest="${digest}"]`);
  await expect(row).toContainText("v1");
  await expect(row.getByTestId("tag-add")).toHaveCount(0);
  await expect(row.getByTestId("tag-remove")).toHaveCount(0);
  await expect(row.getByTestId("artifact-delete")).toHaveCount(0);
  await shot(page, "guest-artifacts");

  await page.goto("/harbor/projects/e2e-ro/members");
  await hydrated(page);
  await expect(page.getByTestId("member-add")).toHaveCount(0);
  await expect(page.getByTestId("member-role")).toHaveCount(0);
  await expect(page.getByTestId("member-remove")).toHaveCount(0);

  await page.goto("/harbor/projects/e2e-ro/configs");
  await hydrated(page);
  await expect(page.getByTestId("config-public")).toBeDisabled();
  await expect(page.getByTestId("config-save")).toHaveCount(0);
  await expect(page.getByTestId("project-delete")).toHaveCount(0);

  // The server refuses the same writes the hidden buttons would make, with the session's cookie.
  const call = (method: string, path: string, body?: unknown) => page.evaluate(async ([method, path, body]) => {
    const r = await fetch("/portal/fn/api", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ method, path, body: body === undefined ? null : JSON.stringify(body) }),
    });
    return r.status;
  }, [method, path, body] as const);
  expect(await call("DELETE", `/projects/e2e-ro/repositories/app/artifacts/${digest}`)).toBe(403);
  expect(await call("POST", `/projects/e2e-ro/repositories/app/artifacts/${digest}/tags`, { name: "x" })).toBe(403);
  expect(await call("PUT", "/projects/e2e-ro/metadatas/public", { public: "true" })).toBe(403);
  expect(await call("GET", "/audit-logs")).toBe(403);
  // Still there.
  await page.reload();
  await hydrated(page);
  expect(errors).toEqual([]);
});
