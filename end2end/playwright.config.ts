import { defineConfig } from "@playwright/test";

// The server under test is started by end2end/run.sh, which sets BERTH_E2E_URL.
const baseURL = process.env.BERTH_E2E_URL;
if (!baseURL) throw new Error("BERTH_E2E_URL is not set: run end2end/run.sh");

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "off",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ],
    },
  },
});
