import { test, expect } from "@playwright/test";
import { execFileSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { AUTH, getManifest, hydrated, logIn, pushImage, putManifest, sha256 } from "./helpers";

test("a pushed image appears under its project with its tags, and the pull command shown pulls it", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const digest = await pushImage(request, "library/e2e-web", "v1");
  await putManifest(request, "library/e2e-web", "v2", await getManifest(request, "library/e2e-web", digest));

  await page.goto("/harbor/projects");
  await hydrated(page);
  await logIn(page);
  await page.getByRole("link", { name: "library", exact: true }).click();
  await expect(page).toHaveURL(/\/harbor\/projects\/library\/repositories$/);
  const repoRow = page.getByTestId("repo-table").getByRole("row", { name: /library\/e2e-web/ });
  await expect(repoRow.getByTestId("artifact-count")).toHaveText("1");
  await repoRow.getByRole("link", { name: "library/e2e-web" }).click();
  await expect(page).toHaveURL(/\/harbor\/projects\/library\/repositories\/e2e-web$/);
  await expect(page.getByRole("heading", { name: "library/e2e-web" })).toBeVisible();

  const row = page.locator(`[data-testid="artifact-row"][data-digest="${digest}"]`);
  await expect(row).toContainText("v1");
  await expect(row).toContainText("v2");
  await expect(row).toContainText("IMAGE");
  await expect(row).toContainText(digest.slice(0, 19));
  const command = await row.getByTestId("pull-command").inputValue();
  const host = new URL(page.url()).host;
  // The newest tag (tags are listed newest first).
  expect(command).toBe(`docker pull ${host}/library/e2e-web:v2`);
  await row.getByRole("button", { name: "Copy" }).click();
  await expect(row.getByRole("button", { name: "Copied" })).toBeVisible();

  // The command pulls: the same reference through skopeo, the manifest digest as pushed.
  const dir = mkdtempSync(join(tmpdir(), "berth-e2e-pull-"));
  try {
    const ref = "docker://" + command.replace(/^docker pull /, "");
    execFileSync("skopeo", ["copy", "--src-tls-verify=false", "--src-creds", "admin:Harbor12345",
      "--preserve-digests", ref, `oci:${dir}:pulled`], { stdio: "pipe", timeout: 60_000 });
    const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
    expect(index.manifests[0].digest).toBe(digest);
    // Pushed with skopeo into another repository: it appears there with its tag.
    execFileSync("skopeo", ["copy", "--dest-tls-verify=false", "--dest-creds", "admin:Harbor12345",
      "--preserve-digests", `oci:${dir}:pulled`, `docker://${host}/library/e2e-skopeo:s1`], { stdio: "pipe", timeout: 60_000 });
    await page.goto("/harbor/projects/library/repositories/e2e-skopeo");
    await hydrated(page);
    const pushed = page.locator(`[data-testid="artifact-row"][data-digest="${digest}"]`);
    await expect(pushed.getByTestId("tag")).toHaveText([/^s1/]);
    await expect(pushed.getByTestId("pull-command")).toHaveValue(`docker pull ${host}/library/e2e-skopeo:s1`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await page.screenshot({ path: "test-results/screenshots/artifacts.png", fullPage: true });
  expect(errors).toEqual([]);
});

test("an index shows its platforms in the list and links to each platform's image", async ({ page, request }) => {
  const amd = await pushImage(request, "library/e2e-multi", "amd");
  const arm = await pushImage(request, "library/e2e-multi", "arm");
  const size = async (d: string) => (await getManifest(request, "library/e2e-multi", d)).length;
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: amd, size: await size(amd), platform: { os: "linux", architecture: "amd64" } },
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: arm, size: await size(arm), platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    ],
  }));
  const r = await request.put("/v2/library/e2e-multi/manifests/multi", {
    headers: { authorization: AUTH, "content-type": "application/vnd.oci.image.index.v1+json" }, data: index,
  });
  expect(r.status()).toBe(201);
  await page.goto("/harbor/projects/library/repositories/e2e-multi");
  await hydrated(page);
  await logIn(page);
  const row = page.locator(`[data-testid="artifact-row"][data-digest="${sha256(index)}"]`);
  await expect(row).toContainText("INDEX");
  await expect(row.getByTestId("platforms")).toHaveText("linux/amd64, linux/arm64/v8");
  await row.getByTestId("artifact-link").click();
  await expect(page.getByTestId("platform-row")).toHaveCount(2);
  await page.getByTestId("platform-row").filter({ hasText: "linux/arm64/v8" }).getByRole("link").click();
  await expect(page.getByTestId("artifact-digest")).toHaveText(arm);
  await expect(page.getByTestId("layer-row")).toHaveCount(1);
});
