import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// `enclii serve` serves dist/ at /; during `npm run dev`, API calls go to a running serve.
export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    reportCompressedSize: true,
  },
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8000", ws: true },
      "/ui/config.json": "http://127.0.0.1:8000",
    },
  },
});
