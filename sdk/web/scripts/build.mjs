// Build dist/: ESM entries (index, react) and the minified IIFE for a plain <script> tag.
// Declarations come from tsc (npm run build runs it after this).
import { build } from "esbuild";
import { rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
const common = { bundle: true, target: "es2019", logLevel: "warning", legalComments: "none" };
await build({
  ...common,
  entryPoints: { index: "src/index.ts", react: "src/react.ts" },
  outdir: "dist",
  format: "esm",
  // index and react share one chunk: a page importing both loads the core once.
  splitting: true,
  chunkNames: "core-[hash]",
  external: ["react"],
});
await build({
  ...common,
  entryPoints: ["src/iife.ts"],
  outfile: "dist/streamslo.iife.min.js",
  format: "iife",
  minify: true,
});
