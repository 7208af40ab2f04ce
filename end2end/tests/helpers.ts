import { expect, Page, APIRequestContext } from "@playwright/test";
import { createHash } from "crypto";

export const AUTH = "Basic " + Buffer.from("admin:Harbor12345").toString("base64");
export const sha256 = (b: Buffer) => "sha256:" + createHash("sha256").update(b).digest("hex");

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** Fills and submits the sign-in form the page shows. */
export async function logIn(page: Page, username = "admin", password = "Harbor12345") {
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
}

/** The bytes of an OCI image manifest, by tag or digest. */
export async function getManifest(request: APIRequestContext, repo: string, reference: string): Promise<Buffer> {
  const r = await request.get(`/v2/${repo}/manifests/${reference}`, { headers: { authorization: AUTH, accept: OCI_MANIFEST } });
  expect(r.status()).toBe(200);
  return await r.body();
}

/** Pushes OCI image manifest bytes under `reference`; expects 201. */
export async function putManifest(request: APIRequestContext, repo: string, reference: string, manifest: Buffer) {
  const r = await request.put(`/v2/${repo}/manifests/${reference}`, {
    headers: { authorization: AUTH, "content-type": OCI_MANIFEST },
    data: manifest,
  });
  expect(r.status()).toBe(201);
}

export async function hydrated(page: Page) {
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
}

export async function pushBlob(request: APIRequestContext, repo: string, data: Buffer): Promise<string> {
  const d = sha256(data);
  const r = await request.post(`/v2/${repo}/blobs/uploads/?digest=${d}`, {
    headers: { authorization: AUTH, "content-type": "application/octet-stream" },
    data,
  });
  expect(r.status()).toBe(201);
  return d;
}

/** Pushes an image (config + one random layer) under `tag`: its manifest digest and the bytes
 * of config, layer and manifest together. */
export async function pushImageSized(request: APIRequestContext, repo: string, tag: string): Promise<{ digest: string; size: number }> {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } }));
  const layer = Buffer.from(Array.from({ length: 50_000 }, () => Math.floor(Math.random() * 256)));
  const cd = await pushBlob(request, repo, config);
  const ld = await pushBlob(request, repo, layer);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: cd, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: ld, size: layer.length }],
  }));
  await putManifest(request, repo, tag, manifest);
  return { digest: sha256(manifest), size: config.length + layer.length + manifest.length };
}

/** Pushes an image (config + one random layer) under `tag`; returns its manifest digest. */
export async function pushImage(request: APIRequestContext, repo: string, tag: string): Promise<string> {
  return (await pushImageSized(request, repo, tag)).digest;
}

/** The portal's byte formatting (app/src/components/format.rs `bytes`). */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** A REST call as admin (Basic auth); expects `status`. */
export async function rest(request: APIRequestContext, method: string, path: string, data?: unknown, status?: number) {
  const r = await request.fetch(`/api/v2.0${path}`, {
    method,
    headers: { authorization: AUTH, "content-type": "application/json", "x-is-resource-name": "true" },
    data: data === undefined ? undefined : JSON.stringify(data),
  });
  if (status !== undefined) expect(r.status(), `${method} ${path}: ${await r.text()}`).toBe(status);
  return r;
}

/** Creates a user (admin REST call) with a valid password. */
export async function createUser(request: APIRequestContext, username: string, password = "Passw0rd1") {
  await rest(request, "POST", "/users", { username, password, email: `${username}@example.com`, realname: username }, 201);
}

/** Creates a project and adds `members` with their role ids (1 admin, 2 developer, 3 guest, 4 maintainer). */
export async function createProject(request: APIRequestContext, name: string, members: [string, number][] = [], isPublic = false) {
  await rest(request, "POST", "/projects", { project_name: name, metadata: { public: String(isPublic) } }, 201);
  for (const [username, role_id] of members) {
    await rest(request, "POST", `/projects/${name}/members`, { role_id, member_user: { username } }, 201);
  }
}

/** Signs out (top bar) and in again as someone else. */
export async function switchUser(page: Page, username: string, password: string) {
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/account\/sign-in/);
  await logIn(page, username, password);
}

/** A screenshot of the whole page into test-results/screenshots/<name>.png. */
export async function shot(page: Page, name: string) {
  await page.screenshot({ path: `test-results/screenshots/${name}.png`, fullPage: true });
}
