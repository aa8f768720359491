/**
 * @streamslo/web: the player SDK. See docs/sdk.md.
 *
 *     import { createReporter } from "@streamslo/web";
 *     const slo = createReporter({ collector: "https://collector.example", key: "k-…", region: "eu-west-1" });
 *     slo.watchVideo(document.querySelector("video")!);
 */

export { createReporter, ingestUrl, VERSION } from "./reporter";
export type { ErrorOptions, Reporter } from "./reporter";
export { MEDIA_ERRORS } from "./video";
export type { ErrorClass, EventType, ReporterOptions, Stats, WatchOptions, WireBeacon, WireEvent } from "./types";
