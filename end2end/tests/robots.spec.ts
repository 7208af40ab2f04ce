import { test, expect } from "@playwright/test";
import { createProject, hydrated, logIn, pushImage, shot } from "./helpers";

test("a project robot is created with its secret shown once, pulls with it, gets a new secret, is disabled and deleted", async ({ page, request, playwright }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await createProject(request, "e2e-bot");
  await pushImage(request, "e2e-bot/app", "v1");
  const base = new URL(page.context()["_options"]?.baseURL ?? process.env.BERTH_E2E_URL!).origin;
  const asRobot = async (name: string, secret: string) => {
    const ctx = await playwright.request.newContext({ baseURL: base });
    const auth = "Basic " + Buffer.from(`${name}:${secret}`).toString("base64");
    const r = await ctx.get("/v2/e2e-bot/app/manifests/v1", { headers: { authorization: auth, accept: "application/vnd.oci.image.manifest.v1+json" } });
    await ctx.dispose();
    return r.status();
  };

  await page.goto("/harbor/projects/e2e-bot/robot-account");
  await hydrated(page);
  await logIn(page);
  await page.getByTestId("robot-new").click();
  await page.getByTestId("robot-name").fill("ci");
  await page.getByTestId("right-repository-push").check();
  await page.getByTestId("robot-create").click();
  await expect(page.getByTestId("outcome")).toHaveText("Created robot account robot$e2e-bot+ci.");
  const name = await page.getByTestId("robot-secret-name").inputValue();
  const secret = await page.getByTestId("robot-secret-value").inputValue();
  expect(name).toBe("robot$e2e-bot+ci");
  expect(secret.length).toBeGreaterThan(20);
  expect(await asRobot(name, secret)).toBe(200);
  const row = page.locator(`[data-testid="robot-row"][data-name="${name}"]`);
  await expect(row).toContainText("Pull artifacts, Push artifacts");
  await shot(page, "robots");
  // Shown once: gone after "Done" and on reload.
  await page.getByRole("button", { name: "Done" }).click();
  await expect(page.getByTestId("robot-secret")).toHaveCount(0);

  await row.getByTestId("robot-refresh").click();
  const fresh = await page.getByTestId("robot-secret-value").inputValue();
  expect(fresh).not.toBe(secret);
  expect(await asRobot(name, secret)).toBe(401);
  expect(await asRobot(name, fresh)).toBe(200);

  await row.getByTestId("robot-toggle").click();
  await expect(row.getByTestId("robot-status")).toHaveText("Disabled");
  expect(await asRobot(name, fresh)).toBe(401);

  await row.getByTestId("robot-delete").click();
  await page.getByTestId("confirm-yes").click();
  await expect(page.getByTestId("outcome")).toHaveText(`Deleted ${name}.`);
  await expect(row).toHaveCount(0);
  expect(errors).toEqual([]);
});
