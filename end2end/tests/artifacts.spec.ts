import { test, expect } from "@playwright/test";
import { AUTH, createProject, getManifest, hydrated, logIn, pushBlob, pushImage, putManifest, shot } from "./helpers";

test("tags are added and removed, an artifact's detail shows layers, config, referrers and manifest, and deletion asks first", async ({ page, request }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await createProject(request, "e2e-art");
  const digest = await pushImage(request, "e2e-art/web", "v1");
  const keep = await pushImage(request, "e2e-art/web", "keep");
  // An SBOM-like referrer of the first image.
  const empty = await pushBlob(request, "e2e-art/web", Buffer.from("{}"));
  const sbom = await pushBlob(request, "e2e-art/web", Buffer.from("spdx"));
  const subjectBytes = await getManifest(request, "e2e-art/web", digest);
  const referrer = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", artifactType: "application/spdx+json",
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: empty, size: 2 },
    layers: [{ mediaType: "application/spdx+json", digest: sbom, size: 4 }],
    subject: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest, size: subjectBytes.length },
  }));
  const put = await request.put(`/v2/e2e-art/web/manifests/sha256-sbom`, {
    headers: { authorization: AUTH, "content-type": "application/vnd.oci.image.manifest.v1+json" }, data: referrer,
  });
  expect(put.status()).toBe(201);

  await page.goto("/harbor/projects/e2e-art/repositories/web");
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(/\/repositories\/web$/);
  const row = page.locator(`[data-testid="artifact-row"][data-digest="${digest}"]`);

  // Add a tag; an invalid one is refused by the browser, a taken one by the API.
  await row.getByTestId("tag-add").click();
  await row.getByTestId("tag-input").fill("release-1");
  await row.getByTestId("tag-save").click();
  await expect(page.getByTestId("outcome")).toHaveText("Added tag release-1.");
  await expect(row.getByTestId("tag")).toHaveText([/release-1/, /v1/]);
  await row.getByTestId("tag-add").click();
  await row.getByTestId("tag-input").fill("keep");
  await row.getByTestId("tag-save").click();
  await expect(page.getByTestId("outcome-error")).toContainText("already exists");
  expect((await request.get("/v2/e2e-art/web/tags/list", { headers: { authorization: AUTH } })).ok()).toBe(true);
  const tags = await (await request.get("/v2/e2e-art/web/tags/list", { headers: { authorization: AUTH } })).json();
  expect(tags.tags.sort()).toEqual(["keep", "release-1", "sha256-sbom", "v1"]);

  // Remove a tag: the first press asks, Cancel keeps it, Confirm removes it.
  const v1 = row.getByTestId("tag").filter({ hasText: "v1" });
  await v1.getByTestId("tag-remove").click();
  await expect(page.getByRole("alertdialog")).toContainText("Remove tag v1?");
  await page.getByRole("alertdialog").getByRole("button", { name: "Cancel" }).click();
  await expect(row.getByTestId("tag")).toHaveCount(2);
  await v1.getByTestId("tag-remove").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText("Removed tag v1.");
  await expect(row.getByTestId("tag")).toHaveCount(1);
  expect((await request.get("/v2/e2e-art/web/manifests/v1", { headers: { authorization: AUTH } })).status()).toBe(404);
  await shot(page, "artifacts-tags");

  // Detail: facts, layers with sizes, config, the referrer, the raw manifest as pushed.
  await row.getByTestId("artifact-link").click();
  await expect(page).toHaveURL(new RegExp(`/repositories/web/artifacts/${digest}$`));
  await expect(page.getByTestId("artifact-digest")).toHaveText(digest);
  await expect(page.getByTestId("artifact-facts")).toContainText("IMAGE");
  await expect(page.getByTestId("layer-row")).toHaveCount(1);
  await expect(page.getByTestId("layer-row")).toContainText("48.8 KiB");
  await expect(page.getByTestId("artifact-config")).toContainText("linux/amd64");
  await expect(page.getByTestId("referrer-row")).toHaveCount(1);
  await expect(page.getByTestId("referrer-row")).toContainText("application/spdx+json");
  await page.getByText("Manifest (raw)").click();
  expect(await page.getByTestId("raw-manifest").textContent()).toBe(subjectBytes.toString());
  expect(await page.getByTestId("pull-command").inputValue()).toMatch(new RegExp(`/e2e-art/web@${digest}$`));
  await shot(page, "artifact-detail");

  // Delete the artifact: it goes with its referrer; the other image stays.
  await page.goto("/harbor/projects/e2e-art/repositories/web");
  await hydrated(page);
  await row.getByTestId("artifact-delete").click();
  await expect(page.getByRole("alertdialog")).toContainText("Delete artifact sha256:");
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText(`Deleted ${digest}.`);
  await expect(row).toHaveCount(0);
  await expect(page.locator(`[data-testid="artifact-row"][data-digest="${keep}"]`)).toHaveCount(1);
  expect((await request.get(`/v2/e2e-art/web/manifests/${digest}`, { headers: { authorization: AUTH } })).status()).toBe(404);
  const logs = await (await request.get("/api/v2.0/audit-logs?q=operation=delete,resource_type=artifact", { headers: { authorization: AUTH } })).json();
  expect(logs.map((l: { resource: string }) => l.resource)).toContain(`e2e-art/web@${digest}`);
  expect(errors).toEqual([]);
});
