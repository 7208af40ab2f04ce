import { test, expect } from "@playwright/test";
import { AUTH, formatBytes, getManifest, hydrated, logIn, pushImageSized, putManifest } from "./helpers";

test("the project list shows each project's repository count and storage used", async ({ page, request }) => {
  const r = await request.post("/api/v2.0/projects", {
    headers: { authorization: AUTH, "content-type": "application/json" },
    data: { project_name: "e2e-usage", metadata: { public: "false" } },
  });
  expect(r.status()).toBe(201);
  const { size } = await pushImageSized(request, "e2e-usage/app", "v1");
  // The same image under a second tag and in a second repository: stored once, counted once.
  const manifest = await getManifest(request, "e2e-usage/app", "v1");
  const parsed = JSON.parse(manifest.toString());
  for (const blob of parsed.layers.concat([parsed.config])) {
    const m = await request.post(`/v2/e2e-usage/tools/blobs/uploads/?mount=${blob.digest}&from=e2e-usage/app`, {
      headers: { authorization: AUTH },
    });
    expect(m.status()).toBe(201);
  }
  await putManifest(request, "e2e-usage/tools", "v1", manifest);

  await page.goto("/harbor/projects?name=e2e-usage");
  await hydrated(page);
  await logIn(page);
  await expect(page).toHaveURL(/\/harbor\/projects\?name=e2e-usage&page=1$/);
  const row = page.getByTestId("project-table").getByRole("row", { name: /e2e-usage/ });
  await expect(row.getByTestId("repo-count")).toHaveText("2");
  await expect(row.getByTestId("storage")).toHaveText(formatBytes(size));
  await expect(row).toContainText("Private");
  await expect(page.getByRole("columnheader", { name: "Storage" })).toBeVisible();
});
