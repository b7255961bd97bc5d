// The SPA's build (`npm run build` → pages/dist/, which wrangler.toml's [assets] serves) and
// its unit tests (`npx vitest run`: tests/pages/*.test.ts, in Node, against the golden files).
import { fileURLToPath } from "node:url";

import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

const pagesDir = fileURLToPath(new URL(".", import.meta.url));
const repoRoot = fileURLToPath(new URL("..", import.meta.url));

export default defineConfig({
  root: pagesDir,
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // xterm.js alone is ~400 kB; one bundle is fine for an app that is all terminal.
    chunkSizeWarningLimit: 1024,
  },
  test: {
    root: repoRoot,
    include: ["tests/pages/**/*.test.ts"],
    environment: "node",
  },
});
