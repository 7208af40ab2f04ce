import { test, expect, Page } from "@playwright/test";
import { AUTH, hydrated, logIn, pushImage } from "./helpers";

// The server under test runs with gc.window = 0s (end2end/run.sh), so garbage is collectable
// as soon as it is unreferenced.

async function signIn(page: Page) {
  await page.goto("/harbor/clearing-job/gc");
  await expect(page).toHaveURL(/\/account\/sign-in\?redirect_url=/);
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(/\/harbor\/clearing-job\/gc$/);
  await hydrated(page);
}

test("admin runs a dry run and a real GC, sees live history, storage and sets a schedule", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // Collect what other tests left behind first, so the figures below are this test's own.
  const headers = { authorization: AUTH, "content-type": "application/json" };
  const run = await request.post("/api/v2.0/system/gc/schedule", {
    headers, data: { schedule: { type: "Manual" }, parameters: { dry_run: false, delete_untagged: false } },
  });
  expect(run.status()).toBe(201);
  await expect.poll(async () => (await (await request.get("/api/v2.0/system/gc", { headers })).json())[0].job_status,
    { timeout: 30_000 }).toBe("Success");
  await pushImage(request, "library/gc-keep", "v1");
  const gone = await pushImage(request, "library/gc-gone", "v1");
  const del = await request.delete(`/v2/library/gc-gone/manifests/${gone}`, { headers: { authorization: AUTH } });
  expect(del.status()).toBe(202);

  await signIn(page);
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Clean Up" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Clean Up" }).getByRole("link", { name: "Garbage Collection" })).toHaveAttribute("aria-current", "page");
  await expect(page.getByTestId("storage-total")).toContainText("KiB");
  await expect(page.getByRole("list", { name: "Storage used per project" })).toContainText("library");

  // Dry run: reports what would go, deletes nothing.
  await page.getByTestId("gc-dry-run").check();
  await page.getByTestId("gc-run").click();
  const first = page.getByTestId("gc-row").first();
  await expect(first).toHaveAttribute("data-status", "Success", { timeout: 30_000 });
  await expect(first).toContainText("Dry run");
  await expect(first.getByTestId("gc-freed")).toContainText(/would free 4\d\.\d KiB · 1 blobs, 1 manifests/);
  let pulled = await request.get(`/v2/library/gc-gone/blobs/${gone}`, { headers: { authorization: AUTH } });
  expect(pulled.status()).toBe(200);

  // The real run frees the same.
  await page.getByTestId("gc-dry-run").uncheck();
  await page.getByTestId("gc-run").click();
  await expect(page.getByTestId("gc-row")).toHaveCount(3);
  await expect(first).toHaveAttribute("data-status", "Success", { timeout: 30_000 });
  await expect(first.getByTestId("gc-freed")).toContainText(/^4\d\.\d KiB · 1 blobs, 1 manifests/);
  pulled = await request.get(`/v2/library/gc-gone/blobs/${gone}`, { headers: { authorization: AUTH } });
  expect(pulled.status()).toBe(404);
  const kept = await request.get(`/v2/library/gc-keep/manifests/v1`, { headers: { authorization: AUTH } });
  expect(kept.status()).toBe(200);

  // Schedule.
  await page.getByLabel("Repeat").selectOption("Daily");
  await page.getByRole("button", { name: "Save schedule" }).click();
  await expect(page.getByTestId("gc-next")).toContainText("Daily (0 0 0 * * *); next run");
  await page.getByLabel("Repeat").selectOption("Custom");
  await page.getByLabel(/^Cron/).fill("not a cron");
  await page.getByRole("button", { name: "Save schedule" }).click();
  await expect(page.getByTestId("gc-error")).toContainText("cron");
  await page.screenshot({ path: "test-results/screenshots/gc.png", fullPage: true });
  expect(errors).toEqual([]);
});

test("a non-admin is told GC is for administrators", async ({ page, request }) => {
  const r = await request.post("/api/v2.0/users", {
    headers: { authorization: AUTH, "content-type": "application/json" },
    data: { username: "gcdev", password: "Passw0rd!x", email: "gcdev@example.com", realname: "GC Dev" },
  });
  expect([201, 409]).toContain(r.status());
  await page.goto("/account/sign-in?redirect_url=/harbor/clearing-job/gc");
  await hydrated(page);
  await logIn(page, "gcdev", "Passw0rd!x");
  await expect(page.getByRole("alert")).toContainText("Only system administrators");
  await expect(page.getByRole("link", { name: "Clean Up" })).toHaveCount(0);
});
