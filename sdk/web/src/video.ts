/**
 * One watched `<video>`: its play attempts, stalls, played time and, when live, its live latency.
 *
 * Use it through `reporter.watchVideo(video, options)`. An attempt starts at
 * the `play` event (fired by `play()` or autoplay) while no frame of the
 * current source has been shown, and ends at exactly one of:
 *  - the first rendered frame (`requestVideoFrameCallback`, else `playing`) → `first_frame`;
 *  - a media error → `error` with the `MediaError` code (`fatal` unless MEDIA_ERR_ABORTED);
 *  - a `fatal` or `business` error reported by the page (`reporter.error`) → that error;
 *  - pause, a new source, page hide or detach first → `exit_before_start` (not an error).
 * Resuming after a pause is not a new attempt; loading a new source is.
 *
 * After the first frame:
 *  - a `waiting` starts a stall, which the next `playing` ends (→ `stall`, its duration); a pause,
 *    seek, new source, error, the end or detach ends it early; page hide sends it so far. A wait
 *    between a `seeking` and the next `playing` is the seek's, not a stall.
 *  - the time actually playing (not paused, stalled or seeking) goes out as `playing` heartbeats:
 *    every `heartbeatMs` while the video plays, and on pause, the end, a new source, an error,
 *    page hide and detach, so their sum is the time played.
 *  - a live stream (`options.live`, default `duration === Infinity`) sends `live_latency` at the
 *    first frame and with every periodic heartbeat.
 *
 *     const detach = watch(video, sink, { live: true });
 */

import { MAX_VALUE_MS } from "./transport";
import type { Env, EventType, WatchOptions, WireEvent } from "./types";

/** What the watcher needs from the reporter. */
export interface VideoSink extends Pick<Env, "now" | "wall" | "setTimeout" | "clearTimeout"> {
  record(type: EventType, fields?: Omit<WireEvent, "type" | "ts">): void;
  /** Run `hook` when the page hides (before the unload send); returns the unsubscribe. */
  onHide(hook: () => void): () => void;
  /** Run `hook` when the page reports a `fatal` or `business` error; returns the unsubscribe. */
  onFail(hook: () => void): () => void;
  /** Milliseconds between two periodic `playing` heartbeats. */
  heartbeatMs: number;
}

/** `MediaError.code` → the `code` label (1..4 as the HTML spec numbers them). */
export const MEDIA_ERRORS: Record<number, string> = {
  1: "MEDIA_ERR_ABORTED",
  2: "MEDIA_ERR_NETWORK",
  3: "MEDIA_ERR_DECODE",
  4: "MEDIA_ERR_SRC_NOT_SUPPORTED",
};

type WatchedVideo = HTMLVideoElement & {
  requestVideoFrameCallback?: (cb: (now: number, meta: { expectedDisplayTime?: number }) => void) => number;
  cancelVideoFrameCallback?: (handle: number) => void;
  /** Safari: the program date time of `currentTime = 0` (an invalid Date without one). */
  getStartDate?: () => Date;
};

/** readyState HAVE_FUTURE_DATA: playback can advance. */
const HAVE_FUTURE_DATA = 3;

export function watch(el: HTMLVideoElement, sink: VideoSink, options: WatchOptions = {}): () => void {
  const video = el as WatchedVideo;
  const hasFrameCallback = typeof video.requestVideoFrameCallback === "function";
  let t0: number | null = null; // start of the attempt in progress
  let shown = false; // a frame of the current source was rendered
  let frameHandle: number | null = null;
  let playingSince: number | null = null; // the play clock runs (not paused, stalled or seeking)
  let unreported = 0; // ms played since the last heartbeat
  let stallSince: number | null = null;
  let seekWait = false; // a seek happened: waits until the next `playing` are its own
  let timer: unknown = null; // the next periodic heartbeat

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
    resume();
    sampleLatency();
  };
  const begin = (): void => {
    if (t0 !== null || shown) return;
    t0 = sink.now();
    if (hasFrameCallback) {
      // The callback runs for the first frame presented to the compositor.
      frameHandle = (video.requestVideoFrameCallback as NonNullable<WatchedVideo["requestVideoFrameCallback"]>)(
        (now, meta) => firstFrame(meta.expectedDisplayTime ?? now),
      );
    }
  };
  const abandon = (): void => {
    if (t0 !== null) sink.record("exit_before_start", { value_ms: end() });
  };

  /** Start the play clock (and the heartbeat timer) once a frame of this source was shown. */
  const resume = (): void => {
    if (!shown) return;
    if (playingSince === null) playingSince = sink.now();
    if (timer === null) timer = sink.setTimeout(tick, sink.heartbeatMs);
  };
  /** Stop the play clock; the time it ran waits for the next heartbeat. */
  const hold = (): void => {
    if (playingSince !== null) unreported += sink.now() - playingSince;
    playingSince = null;
  };
  /** Send the time played since the last heartbeat; the clock keeps running if it ran. */
  const heartbeat = (): void => {
    const running = playingSince !== null;
    hold();
    if (running) playingSince = sink.now();
    // A starved timer's long share goes out in pieces the collector takes.
    for (; unreported > MAX_VALUE_MS; unreported -= MAX_VALUE_MS) sink.record("playing", { value_ms: MAX_VALUE_MS });
    if (unreported > 0) sink.record("playing", { value_ms: unreported });
    unreported = 0;
  };
  const tick = (): void => {
    timer = null;
    heartbeat();
    sampleLatency();
    if (playingSince !== null || stallSince !== null) timer = sink.setTimeout(tick, sink.heartbeatMs);
  };
  /** Playback stopped (pause, end, new source, error, detach): send the played time, stop the timer. */
  const halt = (): void => {
    endStall();
    hold();
    heartbeat();
    sink.clearTimeout(timer);
    timer = null;
  };
  const endStall = (): void => {
    if (stallSince === null) return;
    sink.record("stall", { value_ms: Math.min(MAX_VALUE_MS, sink.now() - stallSince) });
    stallSince = null;
  };

  const sampleLatency = (): void => {
    if (!(options.live ?? video.duration === Infinity)) return;
    const ms = options.liveLatency ? options.liveLatency() : edgeDistance();
    // Far behind (a viewer deep in a DVR window) is not latency; negative is a clock error.
    if (ms !== undefined && ms >= 0 && ms <= MAX_VALUE_MS) sink.record("live_latency", { value_ms: ms });
  };
  /** How far `currentTime` is behind the live edge: program date time, else the seekable end. */
  const edgeDistance = (): number | undefined => {
    const start = video.getStartDate?.().getTime();
    if (start !== undefined && Number.isFinite(start)) return sink.wall() - start - video.currentTime * 1000;
    const seekable = video.seekable;
    return seekable && seekable.length ? (seekable.end(seekable.length - 1) - video.currentTime) * 1000 : undefined;
  };

  const onPlaying = (): void => {
    if (!hasFrameCallback) firstFrame(sink.now());
    seekWait = false;
    endStall();
    resume();
  };
  const onWaiting = (): void => {
    hold();
    if (shown && !seekWait && !video.paused && stallSince === null) stallSince = sink.now();
  };
  const onSeeking = (): void => {
    endStall();
    hold();
    seekWait = true;
  };
  const onSeeked = (): void => {
    // Data at the new position is there and the video plays: the seek is over, no `playing` need follow.
    if (video.paused || video.readyState < HAVE_FUTURE_DATA) return;
    seekWait = false;
    resume();
  };
  const onPause = (): void => {
    abandon();
    halt();
  };
  const onEmptied = (): void => {
    abandon();
    halt();
    shown = false;
    seekWait = false;
  };
  const onError = (): void => {
    const code = video.error?.code ?? 0;
    const aborted = code === 1;
    if (t0 !== null) {
      if (aborted) abandon();
      else end();
    }
    halt();
    sink.record("error", { code: MEDIA_ERRORS[code] ?? "MEDIA_ERR_UNKNOWN", fatal: !aborted });
  };
  const onHide = (): void => {
    // The page may never come back: what is measured so far goes out now, and if it does
    // come back, a stall still going on goes on as a new one.
    abandon();
    const stalled = stallSince !== null;
    endStall();
    if (stalled) stallSince = sink.now();
    heartbeat();
  };

  const listeners: [string, () => void][] = [
    ["play", begin], ["playing", onPlaying], ["pause", onPause], ["emptied", onEmptied], ["error", onError],
    ["waiting", onWaiting], ["seeking", onSeeking], ["seeked", onSeeked], ["ended", halt],
  ];
  for (const [type, fn] of listeners) video.addEventListener(type, fn);
  const stopHide = sink.onHide(onHide);
  // The page's own failure or refusal (a geo-block) ends the attempt: it is no exit before start.
  const stopFail = sink.onFail(() => void (t0 !== null && end()));
  // Watched while already starting (autoplay ran first): the attempt starts now.
  if (!video.paused && video.readyState < 2) begin();
  else if (!video.paused) {
    shown = true;
    resume();
  }

  return () => {
    for (const [type, fn] of listeners) video.removeEventListener(type, fn);
    stopHide();
    stopFail();
    abandon();
    halt();
  };
}
