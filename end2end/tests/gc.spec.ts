import { test, expect, Page, APIRequestContext } from "@playwright/test";
import { createHash } from "crypto";

// The server under test runs with gc.window = 0s (end2end/run.sh), so garbage is collectable
// as soon as it is unreferenced.
const AUTH = "Basic " + Buffer.from("admin:Harbor12345").toString("base64");
const sha256 = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

async function hydrated(page: Page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
}

async function pushBlob(request: APIRequestContext, repo: string, data: Buffer): Promise<string> {
  const d = sha256(data);
  const r = await request.post(`/v2/${repo}/blobs/uploads/?digest=${d}`, {
    headers: { authorization: AUTH, "content-type": "application/octet-stream" },
    data,
  });
  expect(r.status()).toBe(201);
  return d;
}

/** Pushes an image (config + one random layer) under `tag`; returns its manifest digest. */
async function pushImage(request: APIRequestContext, repo: string, tag: string): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  const layer = Buffer.from(Array.from({ length: 50_000 }, () => Math.floor(Math.random() * 256)));
  const cd = await pushBlob(request, repo, config);
  const ld = await pushBlob(request, repo, layer);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: cd, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: ld, size: layer.length }],
  }));
  const r = await request.put(`/v2/${repo}/manifests/${tag}`, {
    headers: { authorization: AUTH, "content-type": "application/vnd.oci.image.manifest.v1+json" },
    data: manifest,
  });
  expect(r.status()).toBe(201);
  return sha256(manifest);
}

async function signIn(page: Page) {
  await page.goto("/harbor/clearing-job/gc");
  await expect(page).toHaveURL(/\/account\/sign-in\?redirect_url=/);
  await hydrated(page);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("Harbor12345");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page).toHaveURL(/\/harbor\/clearing-job\/gc$/);
  await hydrated(page);
}

test("admin runs a dry run and a real GC, sees live history, storage and sets a schedule", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await pushImage(request, "library/gc-keep", "v1");
  const gone = await pushImage(request, "library/gc-gone", "v1");
  const del = await request.delete(`/v2/library/gc-gone/manifests/${gone}`, { headers: { authorization: AUTH } });
  expect(del.status()).toBe(202);

  await signIn(page);
  await expect(page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Garbage Collection" })).toBeVisible();
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
  await expect(page.getByTestId("gc-row")).toHaveCount(2);
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
  await page.getByLabel("Username").fill("gcdev");
  await page.getByLabel("Password").fill("Passw0rd!x");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("alert")).toContainText("Only system administrators");
  await expect(page.getByRole("link", { name: "Garbage Collection" })).toHaveCount(0);
});
