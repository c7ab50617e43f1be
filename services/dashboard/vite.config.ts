// Builds the dashboard (Preact, no other runtime dependency) into
// dist/dashboard, which the coordinator serves (services/coordinator/src/http).
// `npm run build` runs it after tsc; assets get content-hashed names.
import { defineConfig } from "vite";

const here = (p: string): string => decodeURIComponent(new URL(p, import.meta.url).pathname);

export default defineConfig({
  root: here("."),
  // Relative URLs: the page also works behind a reverse proxy under a path prefix.
  base: "./",
  publicDir: false,
  logLevel: "warn",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: here("../../dist/dashboard"),
    emptyOutDir: true,
    target: "es2022",
    // No inline script: the coordinator's Content-Security-Policy allows only 'self'.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
