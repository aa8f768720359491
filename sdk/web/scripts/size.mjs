// The size budget: the IIFE core must stay at or under 5 KB minified + gzipped.
// Exits 1 when over (npm run size; .ci/run and tests/test_sdk_unit.py run it).
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

const BUDGET = 5 * 1024;
const file = "dist/streamslo.iife.min.js";
const raw = readFileSync(file);
const gz = gzipSync(raw, { level: 9 }).length;
const verdict = gz <= BUDGET ? "ok" : "OVER BUDGET";
console.log(`${file}: ${raw.length} B min, ${gz} B min+gzip, budget ${BUDGET} B: ${verdict}`);
console.log(`RESULT min_bytes=${raw.length} gzip_bytes=${gz} budget_bytes=${BUDGET}`);
process.exit(gz <= BUDGET ? 0 : 1);
