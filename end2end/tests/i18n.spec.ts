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
  await page.getByRole("link", { name: "清理服务" }).click();
  await expect(page.getByRole("heading", { name: "清理服务" })).toBeVisible();
  await expect(page.getByRole("link", { name: "垃圾清理" })).toHaveAttribute("aria-current", "page");
  await expect(page.getByRole("heading", { name: "立即运行" })).toBeVisible();
  await expect(page.getByRole("button", { name: "运行垃圾清理" })).toBeVisible();
  await page.screenshot({ path: "test-results/screenshots/gc-zh-CN.png", fullPage: true });
  // The second tab, log rotation, and the job service dashboard.
  await page.getByRole("link", { name: "日志轮替" }).click();
  await expect(page).toHaveURL(/\/harbor\/clearing-job\/audit-log-purge$/);
  await expect(page.getByRole("heading", { name: "立即清理" })).toBeVisible();
  await expect(page.getByRole("button", { name: "立即清理" })).toBeVisible();
  await expect(page.locator("main .loading")).toHaveCount(0);
  let text = await page.locator("main").innerText();
  for (const english of ["Purge", "Keep", "Days", "Hours", "Included", "Schedule", "Repeat", "Dry run", "History", "Log Rotation", "create", "pull"]) {
    expect(text, `"${english}" on the Chinese log rotation page`).not.toContain(english);
  }
  await page.screenshot({ path: "test-results/screenshots/log-rotation-zh-CN.png", fullPage: true });
  await page.getByRole("link", { name: "任务中心" }).click();
  await expect(page.getByRole("heading", { name: "任务中心" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "工作者池", exact: true })).toBeVisible();
  text = await page.locator("main").innerText();
  for (const english of ["Pending", "Job Type", "Latency", "Paused", "Pause", "Resume", "Stop", "Schedules", "Worker", "Host", "Concurrency", "idle", "Refresh"]) {
    expect(text, `"${english}" on the Chinese job service dashboard`).not.toContain(english);
  }
  await page.screenshot({ path: "test-results/screenshots/job-service-dashboard-zh-CN.png", fullPage: true });
  await page.getByRole("link", { name: "清理服务" }).click();
  await expect(page).toHaveURL(/\/harbor\/clearing-job\/gc$/);
  // And back to English, on the same page.
  await page.getByTestId("lang-en-US").click();
  await expect(page).toHaveURL(/\/harbor\/clearing-job\/gc$/);
  await expect(page.getByRole("heading", { name: "Clean Up" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Garbage Collection" })).toHaveAttribute("aria-current", "page");
  await expect(page.locator("html")).toHaveAttribute("lang", "en-US");
  expect(errors).toEqual([]);
});

test.describe("in the browser's locale", () => {
  test.use({ locale: "zh-CN", timezoneId: "Asia/Shanghai" });

  test("project pages in 简体中文 have no English left, and times are local", async ({ page, request }) => {
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto("/language?lang=zh-CN&redirect=/harbor/projects/library/members");
    await hydrated(page);
    await page.getByLabel("用户名").fill("admin");
    await page.getByLabel("密码").fill("Harbor12345");
    await page.getByRole("button", { name: "登录" }).click();
    await expect(page).toHaveURL(/\/harbor\/projects\/library\/members$/);
    await expect(page.getByRole("navigation", { name: "项目" })).toContainText("机器人账户");
    for (const tab of ["summary", "members", "labels", "policy", "robot-account", "webhook", "logs", "configs"]) {
      await page.getByTestId(`tab-${tab}`).click();
      await expect(page).toHaveURL(new RegExp(`/${tab}$`));
      await expect(page.locator("main .loading")).toHaveCount(0);
      const text = await page.locator("main").innerText();
      for (const english of ["Summary", "Members", "Robot", "Logs", "Configuration", "Role", "Name", "Actions", "Public", "Delete", "Operation", "Resource", "Save"]) {
        expect(text, `"${english}" on the Chinese ${tab} page`).not.toContain(english);
      }
      await page.screenshot({ path: `test-results/screenshots/project-${tab}-zh-CN.png`, fullPage: true });
    }
    // The project was created at start-up: shown in Beijing time, in Chinese date format.
    await page.getByTestId("tab-summary").click();
    const created = page.locator("main time").first();
    await expect(created).toContainText("年");
    const iso = await created.getAttribute("datetime");
    const local = new Date(iso!).toLocaleString("zh-CN", { timeZone: "Asia/Shanghai", dateStyle: "medium", timeStyle: "short" });
    await expect(created).toHaveText(local);
    // The exact UTC time stays available as the tooltip.
    expect(await created.getAttribute("title")).toMatch(/ UTC$/);
    void request;
    expect(errors).toEqual([]);
  });
});

test("project and administration pages work at phone width", async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto("/harbor/projects/library/members");
  await hydrated(page);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("Harbor12345");
  await page.getByRole("button", { name: "Log in" }).click();
  // Signed in and back on the page asked for, before the loop navigates anywhere.
  await expect(page).toHaveURL(/\/harbor\/projects\/library\/members$/);
  await expect(page.getByTestId("current-user")).toHaveText("admin");
  for (const path of ["/harbor/projects/library/members", "/harbor/projects/library/logs", "/harbor/projects/library/policy", "/harbor/users", "/harbor/logs", "/harbor/labels", "/harbor/configs", "/harbor/account", "/harbor/clearing-job/gc", "/harbor/clearing-job/audit-log-purge", "/harbor/job-service-dashboard"]) {
    await page.goto(path);
    await hydrated(page);
    await expect(page).toHaveURL(new RegExp(`${path}$`));
    await expect(page.locator("main#main")).toBeVisible();
    await expect(page.locator("main .loading")).toHaveCount(0);
    // Nothing wider than the screen but tables, which scroll inside their frame.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(overflow, `${path} is wider than the phone`).toBeLessThanOrEqual(375);
    await page.screenshot({ path: `test-results/screenshots/phone${path.replaceAll("/", "-")}.png`, fullPage: true });
  }
});
