import { test, expect } from "@playwright/test";
import { hydrated } from "./helpers";

test("switching to 简体中文 translates every page, survives sign-in and switches back", async ({ page }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto("/harbor/projects");
  await expect(page).toHaveURL(/\/account\/sign-in/);
  await hydrated(page);
  await page.getByTestId("lang-zh-CN").click();
  // Back on the sign-in page (same redirect_url), rendered in Chinese by the server.
  await expect(page).toHaveURL(/\/account\/sign-in\?redirect_url=/);
  await hydrated(page);
  await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
  await page.screenshot({ path: "test-results/screenshots/sign-in-zh-CN.png" });
  // The server's known errors in Chinese too.
  await page.getByLabel("用户名").fill("admin");
  await page.getByLabel("密码").fill("wrong-password");
  await page.getByRole("button", { name: "登录" }).click();
  await expect(page.getByRole("alert")).toHaveText("用户名或密码错误");
  await page.getByLabel("密码").fill("Harbor12345");
  await page.getByRole("button", { name: "登录" }).click();
  await expect(page).toHaveURL(/\/harbor\/projects$/);
  await expect(page.getByRole("heading", { name: "项目" })).toBeVisible();
  const table = page.getByTestId("project-table");
  await expect(table.getByRole("columnheader", { name: "项目名称" })).toBeVisible();
  await expect(table.getByRole("columnheader", { name: "存储" })).toBeVisible();
  await expect(table).toContainText("公开");
  // No English left on the page (the brand and user names aside).
  const main = await page.locator("body").innerText();
  for (const english of ["Projects", "Project name", "Search", "Log out", "Public", "Storage", "Administration"]) {
    expect(main, `"${english}" on the Chinese page`).not.toContain(english);
  }
  await page.screenshot({ path: "test-results/screenshots/projects-zh-CN.png", fullPage: true });
  // Client-side navigation keeps the language (hydrated app, no reload).
  await page.getByRole("link", { name: "垃圾清理" }).click();
  await expect(page.getByRole("heading", { name: "垃圾清理" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "立即运行" })).toBeVisible();
  await expect(page.getByRole("button", { name: "运行垃圾清理" })).toBeVisible();
  await page.screenshot({ path: "test-results/screenshots/gc-zh-CN.png", fullPage: true });
  // And back to English, on the same page.
  await page.getByTestId("lang-en-US").click();
  await expect(page).toHaveURL(/\/harbor\/clearing-job\/gc$/);
  await expect(page.getByRole("heading", { name: "Garbage Collection" })).toBeVisible();
  await expect(page.locator("html")).toHaveAttribute("lang", "en-US");
  expect(errors).toEqual([]);
});
