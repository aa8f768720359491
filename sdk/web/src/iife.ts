// The plain <script> build: exposes window.StreamSLO = { createReporter, VERSION }.
import { createReporter, VERSION } from "./reporter";

(globalThis as unknown as { StreamSLO: unknown }).StreamSLO = { createReporter, VERSION };
