// Playback after the first frame: stalls, played-time heartbeats, live latency; error classes and dimensions.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createReporterWith } from "../src/reporter";
import type { ReporterOptions, WatchOptions, WireEvent } from "../src/types";
import { FakeVideo, fakeBrowser } from "./fake";

const OPTS: ReporterOptions = { collector: "https://c.example/", region: "eu-west-1", flushIntervalMs: 600_000 };

/**
 * One step of a scripted session: a number advances the clock by that many ms; a string is a
 * media event dispatched on the video (`frame` presents a frame now, `hide` hides the page).
 */
type Step = number | string;

function setup(opts: Partial<ReporterOptions> = {}) {
  const b = fakeBrowser();
  return { ...b, slo: createReporterWith(b.env, { ...OPTS, ...opts }) };
}

async function sent(b: ReturnType<typeof setup>): Promise<WireEvent[]> {
  await b.slo.flush();
  return b.sent.flatMap((s) => s.beacon.events);
}

/** Watch a fresh video, run `steps`, and return what was sent as `[type, value_ms]` pairs. */
async function run(steps: Step[], opts: Partial<ReporterOptions> = {}, watch: WatchOptions = {}, v = new FakeVideo()) {
  const b = setup(opts);
  b.slo.watchVideo(v.element, watch);
  for (const step of steps) {
    if (typeof step === "number") vi.advanceTimersByTime(step);
    else if (step === "frame") v.presentFrame(b.env.now());
    else if (step === "hide") b.hide();
    else v.emit(step);
  }
  return (await sent(b)).map((e) => [e.type, e.value_ms]);
}

const pick = (events: (string | number | undefined)[][], type: string) => events.filter((e) => e[0] === type);
const total = (events: (string | number | undefined)[][], type: string) =>
  pick(events, type).reduce((sum, e) => sum + (e[1] as number), 0);

// play, then the first frame 100 ms later; a long heartbeat so only the end of playback sends one
const START: Step[] = ["play", 100, "frame"];
const QUIET = { heartbeatMs: 600_000 };

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("stalls", () => {
  it.each([
    { steps: [...START, 1000, "waiting", 700, "playing", 500, "pause"], stalls: [700],
      why: "a waiting after the first frame, ended by playing, is one stall of its duration" },
    { steps: ["play", "waiting", 400, "playing", "frame", 500, "pause"], stalls: [],
      why: "a wait before the first frame is part of the start, not a stall" },
    { steps: [...START, 1000, "seeking", "waiting", 800, "seeked", "playing", 200, "pause"], stalls: [],
      why: "the wait of a seek is not a stall" },
    { steps: [...START, "seeking", "seeked", 300, "waiting", 250, "playing", "pause"], stalls: [],
      why: "a wait after seeked but before the seek's playing is still the seek's" },
    { steps: [...START, "seeking", "seeked", "playing", 300, "waiting", 250, "playing", "pause"], stalls: [250],
      why: "once the seek played, the next waiting is a stall again" },
    { steps: [...START, "seeking", "seeked", 300, "waiting", 250, "playing", "pause"], ready: true, stalls: [250],
      why: "a seek over at seeked (data there, no playing) lets the next waiting be a stall" },
    { steps: [...START, 200, "waiting", 300, "seeking", "waiting", 900, "seeked", "playing", "pause"], stalls: [300],
      why: "a stall cut short by a seek counts up to the seek" },
    { steps: [...START, 200, "waiting", 400, "pause", 5000, "play", "playing", "pause"], stalls: [400],
      why: "pausing during a stall ends it: the paused time is not rebuffering" },
    { steps: [...START, "pause", "waiting", 900, "play", "playing", "pause"], stalls: [],
      why: "a waiting while paused is no stall" },
    { steps: [...START, "waiting", 100, "playing", 50, "waiting", 250, "playing", "pause"], stalls: [100, 250],
      why: "two episodes are two stalls" },
    { steps: [...START, "waiting", 650, "hide"], stalls: [650],
      why: "a stall in progress when the page hides is sent up to then" },
    { steps: [...START, "waiting", 650, "hide", 200, "playing", "pause"], stalls: [650, 200],
      why: "a stall the page comes back to goes on as a new one" },
    { steps: [...START, "waiting", 320, "emptied"], stalls: [320],
      why: "a new source ends the stall of the old one" },
    { steps: [...START, "waiting", 30, "playing", "waiting", 40, "ended"], stalls: [30, 40],
      why: "the end of the video ends a stall" },
  ])("$why", async ({ steps, stalls, ready }) => {
    const v = new FakeVideo();
    if (ready) v.readyState = 4;
    expect(pick(await run(steps, QUIET, {}, v), "stall").map((e) => e[1])).toEqual(stalls);
  });

  it("a stall longer than the collector's 10 minutes is sent as 10 minutes, not dropped", async () => {
    expect(pick(await run([...START, "waiting", 700_000, "playing", "pause"], QUIET), "stall")).toEqual([["stall", 600_000]]);
  });
});

describe("playing heartbeats", () => {
  it.each([
    { steps: [...START, 2500, "pause", 5000, "play", "playing", 1200, "ended"], beats: [1000, 1000, 500, 1000, 200],
      why: "every heartbeatMs while playing and at pause and the end; nothing while paused" },
    { steps: [...START, 1500, "waiting", 2000, "playing", 500, "pause"], beats: [1000, 500, 500],
      why: "stalled time is not played time" },
    { steps: [...START, 400, "seeking", "waiting", 3000, "seeked", "playing", 300, "pause"], beats: [400, 300],
      why: "seeking time is not played time" },
    { steps: [...START, 400, "seeking", 300, "seeked", "playing", 200, "pause"], beats: [600],
      why: "a seek without a waiting stops the clock too" },
    { steps: [...START, 400, "seeking", 300, "seeked", 200, "pause"], ready: true, beats: [600],
      why: "a seek whose data is there resumes at seeked, without a playing" },
    { steps: [...START, 700, "hide", 600, "pause"], beats: [700, 300, 300],
      why: "the page hiding sends the time played so far, and the clock goes on" },
    { steps: [...START, 900, "emptied", 5000], beats: [900],
      why: "a new source sends the old one's played time" },
    { steps: ["play", 500, "pause", 3000], beats: [],
      why: "no frame shown, nothing played" },
  ])("$why", async ({ steps, beats, ready }) => {
    const v = new FakeVideo();
    if (ready) v.readyState = 4;
    const got = await run(steps, { heartbeatMs: 1000 }, {}, v);
    expect(pick(got, "playing").map((e) => e[1])).toEqual(beats);
  });

  it("the heartbeats sum exactly to the time played across pauses, stalls and seeks", async () => {
    const playing = [1234, 5678, 9012, 345, 6789];
    const steps: Step[] = [...START];
    for (const ms of playing) steps.push(ms, "waiting", 777, "playing", 100, "pause", 4321, "play", "seeking", 55, "seeked", "playing");
    steps.push("ended");
    const got = await run(steps, { heartbeatMs: 2500 });
    const played = playing.reduce((a, b) => a + b + 100, 0);
    expect(total(got, "playing")).toBe(played);
    expect(total(got, "stall")).toBe(777 * playing.length);
    expect(pick(got, "playing").every((e) => (e[1] as number) <= 2500)).toBe(true);
  });

  it("the default heartbeat is every 10 s", async () => {
    expect(pick(await run([...START, 25_000, "pause"]), "playing").map((e) => e[1])).toEqual([10_000, 10_000, 5_000]);
  });

  it("a starved timer's share over the collector's 10 minutes goes out in pieces", async () => {
    const b = fakeBrowser();
    b.env.setTimeout = () => 0; // a background tab whose timers never fire
    const slo = createReporterWith(b.env, { ...OPTS, heartbeatMs: 1000 });
    const v = new FakeVideo();
    slo.watchVideo(v.element);
    v.emit("play");
    v.presentFrame(b.env.now());
    vi.advanceTimersByTime(700_000);
    v.emit("pause");
    await slo.flush();
    const beats = b.sent.flatMap((s) => s.beacon.events).filter((e) => e.type === "playing");
    expect(beats.map((e) => e.value_ms)).toEqual([600_000, 100_000]);
  });

  it("a video already playing when watched counts from then; detach sends the rest", async () => {
    const b = setup({ heartbeatMs: 60_000 });
    const v = new FakeVideo();
    v.paused = false;
    v.readyState = 4;
    const detach = b.slo.watchVideo(v.element);
    vi.advanceTimersByTime(1500);
    detach();
    vi.advanceTimersByTime(60_000);
    expect((await sent(b)).map((e) => [e.type, e.value_ms])).toEqual([["playing", 1500]]);
  });
});

describe("live latency", () => {
  /** A video 4 s behind the end of its seekable range. */
  function behindTheEdge(duration: number): FakeVideo {
    const v = new FakeVideo();
    v.duration = duration;
    v.currentTime = 96;
    v.seekableEnd = 100;
    return v;
  }

  it.each([
    { duration: Infinity, watch: {}, want: [4000, 4000, 4000], why: "a live stream (duration Infinity) is sampled at the first frame and every heartbeat" },
    { duration: 3600, watch: {}, want: [], why: "a stream with a finite duration is not live" },
    { duration: 3600, watch: { live: true }, want: [4000, 4000, 4000], why: "live: true makes a finite duration live" },
    { duration: Infinity, watch: { live: false }, want: [], why: "live: false wins over duration Infinity" },
    { duration: Infinity, watch: { liveLatency: () => 2345 }, want: [2345, 2345, 2345], why: "the liveLatency hook replaces the measurement" },
    { duration: Infinity, watch: { liveLatency: () => undefined }, want: [], why: "a hook returning undefined sends no sample" },
    { duration: Infinity, watch: { liveLatency: () => -5 }, want: [], why: "a negative distance (clock error) is not sent" },
    { duration: Infinity, watch: { liveLatency: () => 700_000 }, want: [], why: "over 10 minutes behind (deep in a DVR window) is not sent" },
  ])("$why", async ({ duration, watch, want }) => {
    const got = await run([...START, 2500, "pause"], { heartbeatMs: 1000 }, watch as WatchOptions, behindTheEdge(duration));
    expect(pick(got, "live_latency").map((e) => e[1])).toEqual(want);
  });

  it("prefers the program date time: wall clock − (start date + currentTime)", async () => {
    const v = behindTheEdge(Infinity);
    const b = setup({ heartbeatMs: 1000 });
    (v as unknown as { getStartDate: () => Date }).getStartDate = () => new Date(b.env.wall() - 96_000 - 1750);
    b.slo.watchVideo(v.element);
    v.emit("play");
    v.presentFrame(b.env.now());
    expect((await sent(b)).find((e) => e.type === "live_latency")?.value_ms).toBe(1750);
  });

  it("without program date time (an invalid start date) falls back to the seekable end", async () => {
    const v = behindTheEdge(Infinity);
    (v as unknown as { getStartDate: () => Date }).getStartDate = () => new Date(NaN);
    expect(pick(await run([...START], {}, {}, v), "live_latency")).toEqual([["live_latency", 4000]]);
  });

  it("an empty seekable range gives no sample", async () => {
    const v = behindTheEdge(Infinity);
    v.seekableEnd = null;
    expect(pick(await run([...START, 1000, "pause"], { heartbeatMs: 500 }, {}, v), "live_latency")).toEqual([]);
  });
});

describe("error classes", () => {
  it.each([
    { call: ["E"], want: "warning", why: "an error without options is a warning (as a non-fatal one always was)" },
    { call: ["E", { fatal: true }], want: "fatal", why: "fatal: true is class fatal" },
    { call: ["E", { fatal: false }], want: "warning", why: "fatal: false is class warning" },
    { call: ["E", { class: "business" }], want: "business", why: "an explicit class is sent" },
    { call: ["GEO_BLOCKED", { fatal: true }], want: "business", why: "a businessErrorCodes code is business" },
    { call: ["GEO_BLOCKED", { class: "fatal" }], want: "fatal", why: "an explicit class wins over businessErrorCodes" },
    { call: ["E", { class: "nonsense", fatal: true }], want: "fatal", why: "an unknown class is ignored, not sent" },
  ])("$why", async ({ call, want }) => {
    const b = setup({ businessErrorCodes: ["GEO_BLOCKED", "ENTITLEMENT"] });
    (b.slo.error as (...args: unknown[]) => void)(...call);
    const [event] = await sent(b);
    expect(event).toMatchObject({ type: "error", code: call[0], class: want });
    expect(event?.fatal).toBeUndefined();
  });

  it("businessErrorCodes applies to media errors too", async () => {
    const b = setup({ businessErrorCodes: ["MEDIA_ERR_SRC_NOT_SUPPORTED"] });
    const v = new FakeVideo();
    b.slo.watchVideo(v.element);
    v.emit("play");
    v.error = { code: 4 };
    v.emit("error");
    expect(await sent(b)).toMatchObject([{ type: "error", code: "MEDIA_ERR_SRC_NOT_SUPPORTED", class: "business" }]);
  });

  it("a media error after the first frame ends the stall and sends the played time first", async () => {
    const v = new FakeVideo();
    v.error = { code: 3 }; // read when the error event comes
    expect(await run([...START, 800, "waiting", 200, "error", 5000], QUIET, {}, v)).toEqual([
      ["first_frame", 100], ["stall", 200], ["playing", 800], ["error", undefined],
    ]);
  });
});

describe("dimensions", () => {
  it.each([
    { dimensions: undefined, want: undefined, why: "no dimensions option: the beacon has no dimensions field" },
    { dimensions: {}, want: undefined, why: "an empty dimensions option: no field either" },
    { dimensions: { cdn: "fastly" }, want: { cdn: "fastly" }, why: "the dimensions go as the beacon's top-level dimensions" },
    { dimensions: { cdn: "f".repeat(70), ["k".repeat(70)]: "v" }, want: { cdn: "f".repeat(64), ["k".repeat(64)]: "v" },
      why: "keys and values are cut to 64 characters" },
    { dimensions: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`d${i}`, `v${i}`])),
      want: Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`d${i}`, `v${i}`])), why: "at most 8 are sent" },
    { dimensions: { cdn: "akamai", platform: 7 as unknown as string }, want: { cdn: "akamai" },
      why: "a value that is not a string is left out" },
  ])("$why", async ({ dimensions, want }) => {
    const b = setup({ dimensions });
    b.slo.error("E");
    b.hide(); // the unload path carries them too
    b.slo.error("F");
    await b.slo.flush();
    expect(b.sent).toHaveLength(2);
    for (const s of b.sent) expect(s.beacon.dimensions).toEqual(want);
  });
});
