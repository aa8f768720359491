/**
 * Play attempts of one `<video>`: time to first rendered frame, media errors, exits before start.
 *
 * Use it through `reporter.watchVideo(video)`. An attempt starts at the
 * `play` event (fired by `play()` or autoplay) while no frame of the current
 * source has been shown, and ends at exactly one of:
 *  - the first rendered frame (`requestVideoFrameCallback`, else `playing`) → `first_frame`;
 *  - a media error → `error` with the `MediaError` code (`fatal` unless MEDIA_ERR_ABORTED);
 *  - pause, a new source, page hide or detach first → `exit_before_start` (not an error).
 * Resuming after a pause is not a new attempt; loading a new source is.
 *
 *     const detach = watch(video, sink);
 */

import type { EventType, WireEvent } from "./types";

/** What the watcher needs from the reporter. */
export interface VideoSink {
  now(): number;
  record(type: EventType, fields?: Omit<WireEvent, "type" | "ts">): void;
  /** Run `hook` when the page hides (before the unload send); returns the unsubscribe. */
  onHide(hook: () => void): () => void;
}

/** `MediaError.code` → the `code` label (1..4 as the HTML spec numbers them). */
export const MEDIA_ERRORS: Record<number, string> = {
  1: "MEDIA_ERR_ABORTED",
  2: "MEDIA_ERR_NETWORK",
  3: "MEDIA_ERR_DECODE",
  4: "MEDIA_ERR_SRC_NOT_SUPPORTED",
};

type FrameVideo = HTMLVideoElement & {
  requestVideoFrameCallback?: (cb: (now: number, meta: { expectedDisplayTime?: number }) => void) => number;
  cancelVideoFrameCallback?: (handle: number) => void;
};

export function watch(el: HTMLVideoElement, sink: VideoSink): () => void {
  const video = el as FrameVideo;
  const hasFrameCallback = typeof video.requestVideoFrameCallback === "function";
  let t0: number | null = null; // start of the attempt in progress
  let shown = false; // a frame of the current source was rendered
  let frameHandle: number | null = null;

  const end = (): number => {
    if (frameHandle !== null) video.cancelVideoFrameCallback?.(frameHandle);
    frameHandle = null;
    const elapsed = sink.now() - (t0 as number);
    t0 = null;
    return Math.max(0, elapsed);
  };
  const firstFrame = (at: number): void => {
    if (t0 === null) return;
    frameHandle = null;
    const value = Math.max(0, at - t0);
    end();
    shown = true;
    sink.record("first_frame", { value_ms: value });
  };
  const begin = (): void => {
    if (t0 !== null || shown) return;
    t0 = sink.now();
    if (hasFrameCallback) {
      // The callback runs for the first frame presented to the compositor.
      frameHandle = (video.requestVideoFrameCallback as NonNullable<FrameVideo["requestVideoFrameCallback"]>)(
        (now, meta) => firstFrame(meta.expectedDisplayTime ?? now),
      );
    }
  };
  const abandon = (): void => {
    if (t0 !== null) sink.record("exit_before_start", { value_ms: end() });
  };
  const onPlaying = (): void => {
    if (!hasFrameCallback) firstFrame(sink.now());
  };
  const onEmptied = (): void => {
    abandon();
    shown = false;
  };
  const onError = (): void => {
    const code = video.error?.code ?? 0;
    const aborted = code === 1;
    if (t0 !== null) {
      if (aborted) abandon();
      else end();
    }
    sink.record("error", { code: MEDIA_ERRORS[code] ?? "MEDIA_ERR_UNKNOWN", fatal: !aborted });
  };

  const listeners: [string, () => void][] = [
    ["play", begin], ["playing", onPlaying], ["pause", abandon], ["emptied", onEmptied], ["error", onError],
  ];
  for (const [type, fn] of listeners) video.addEventListener(type, fn);
  const stopHide = sink.onHide(abandon);
  // Watched while already starting (autoplay ran first): the attempt starts now.
  if (!video.paused && video.readyState < 2) begin();
  else if (!video.paused) shown = true;

  return () => {
    for (const [type, fn] of listeners) video.removeEventListener(type, fn);
    stopHide();
    abandon();
  };
}
