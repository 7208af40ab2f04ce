import { test, expect } from "@playwright/test";
import { hydrated, logIn } from "./helpers";

test("admin signs in (hydrated app) and sees the library project", async ({ page }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto("/harbor/projects");
  await expect(page).toHaveURL(/\/account\/sign-in\?redirect_url=\/harbor\/projects$/);
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(/\/harbor\/projects$/);
  await expect(page.getByTestId("project-table")).toContainText("library");
  await expect(page.getByTestId("project-table")).toContainText("Public");
  await expect(page.getByTestId("current-user")).toHaveText("admin");
  // Client-side filtering through the search form (no full reload needed).
  await page.getByLabel("Filter projects by name").fill("nomatch");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page.getByText("No projects match.")).toBeVisible();
  await expect(page).toHaveURL(/name=nomatch/);
  // Log out, and the projects page sends us back to sign in.
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/account\/sign-in/);
  await page.goto("/harbor/projects");
  await expect(page).toHaveURL(/\/account\/sign-in/);
  expect(errors).toEqual([]);
});

test("a wrong password shows the server's message without leaving the page", async ({ page }) => {
  await page.goto("/account/sign-in");
  await hydrated(page);
  await logIn(page, "admin", "wrong-password");
  await expect(page.getByRole("alert")).toContainText("invalid username or password");
  await expect(page).toHaveURL(/\/account\/sign-in/);
});

test.describe("without JavaScript", () => {
  test.use({ javaScriptEnabled: false });

  test("the server-rendered pages still sign in and list projects", async ({ page }) => {
    await page.goto("/harbor/projects");
    await expect(page).toHaveURL(/\/account\/sign-in/);
    await logIn(page);
    await expect(page).toHaveURL(/\/harbor\/projects$/);
    await expect(page.getByTestId("project-table")).toContainText("library");
  });
});

test("works at phone width", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto("/account/sign-in");
  await hydrated(page);
  const box = await page.locator(".signin-card").boundingBox();
  expect(box!.width).toBeLessThanOrEqual(375);
});
