import { test, expect } from "@playwright/test";
import { hydrated, logIn, rest, shot } from "./helpers";

test("self-registration, profile, password change and an expired session", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // Off by default: no link, and the page says so.
  await page.goto("/account/sign-in");
  await hydrated(page);
  await expect(page.getByTestId("signup-link")).toHaveCount(0);
  await page.goto("/account/sign-up");
  await expect(page.getByRole("alert")).toContainText("Self-registration is disabled");

  await rest(request, "PUT", "/configurations", { self_registration: true }, 200);
  await page.goto("/account/sign-in");
  await hydrated(page);
  await page.getByTestId("signup-link").click();
  await expect(page).toHaveURL(/\/account\/sign-up$/);
  const form = page.getByTestId("signup-form");
  await form.getByLabel("Username").fill("e2e-self");
  await form.getByLabel("Email").fill("self@example.com");
  await form.getByLabel("Password", { exact: true }).fill("Selfs3rve");
  await form.getByLabel("Confirm password").fill("Selfs3rve");
  await shot(page, "sign-up");
  await page.getByTestId("signup-submit").click();
  await expect(page).toHaveURL(/\/account\/sign-in\?registered=1$/);
  await expect(page.getByRole("status")).toContainText("Your account was created");
  await logIn(page, "e2e-self", "Selfs3rve");
  await expect(page.getByTestId("current-user")).toHaveText("e2e-self");

  // Profile.
  await page.getByTestId("current-user").click();
  await expect(page).toHaveURL(/\/harbor\/account$/);
  await expect(page.getByLabel("Email")).toHaveValue("self@example.com");
  await page.getByTestId("profile-realname").fill("Self Served");
  await page.getByTestId("profile-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Saved.");
  await page.reload();
  await hydrated(page);
  await expect(page.getByTestId("profile-realname")).toHaveValue("Self Served");

  // Password: the wrong current password is refused; then changed.
  const pw = page.getByTestId("password-form");
  await pw.getByLabel("Current password").fill("nope");
  await pw.getByLabel("New password", { exact: true }).fill("Ch4ngedPw");
  await pw.getByLabel("Confirm new password").fill("Ch4ngedPw");
  await page.getByTestId("password-save").click();
  await expect(page.getByTestId("outcome-error")).toBeVisible();
  await pw.getByLabel("Current password").fill("Selfs3rve");
  await pw.getByLabel("New password", { exact: true }).fill("Ch4ngedPw");
  await pw.getByLabel("Confirm new password").fill("Ch4ngedPw");
  await page.getByTestId("password-save").click();
  await expect(page.getByTestId("outcome")).toContainText("Password changed");
  await shot(page, "account");

  // The session expires (cookie gone): the next action goes to sign in, then back here.
  await page.context().clearCookies();
  await page.getByTestId("profile-save").click();
  await expect(page).toHaveURL(/\/account\/sign-in\?error=expired&redirect_url=\/harbor\/account$/);
  await expect(page.getByRole("alert")).toContainText("Your session has expired");
  await logIn(page, "e2e-self", "Selfs3rve");
  await expect(page.getByRole("alert")).toContainText("invalid username or password");
  await logIn(page, "e2e-self", "Ch4ngedPw");
  await expect(page).toHaveURL(/\/harbor\/account$/);
  await rest(request, "PUT", "/configurations", { self_registration: false }, 200);
  expect(errors).toEqual([]);
});
