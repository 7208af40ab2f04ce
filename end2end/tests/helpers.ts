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
