// Measurements of the reporter: interactions, errors, video play attempts; it never throws.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createReporterWith, ingestUrl } from "../src/reporter";
import type { ReporterOptions, WireEvent } from "../src/types";
import { FakeVideo, fakeBrowser } from "./fake";

const OPTS: ReporterOptions = { collector: "https://c.example/", region: "eu-west-1", flushIntervalMs: 1000 };

function setup(opts: Partial<ReporterOptions> = {}) {
  const b = fakeBrowser();
  return { ...b, slo: createReporterWith(b.env, { ...OPTS, ...opts }) };
}

async function events(b: ReturnType<typeof setup>): Promise<WireEvent[]> {
  await b.slo.flush();
  return b.sent.flatMap((s) => s.beacon.events);
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("interactions", () => {
  it("reports the round trip from interaction() to end(), once", async () => {
    const b = setup();
    const end = b.slo.interaction("poll_vote");
    vi.advanceTimersByTime(140);
    end();
    end();
    expect(await events(b)).toMatchObject([{ type: "interaction", name: "poll_vote", value_ms: 140 }]);
  });

  it("measure() resolves like the promise and reports its round trip", async () => {
    const b = setup();
    const p = b.slo.measure("chat_send", new Promise((r) => setTimeout(() => r("ok"), 80)));
    await vi.advanceTimersByTimeAsync(80);
    await expect(p).resolves.toBe("ok");
    expect(await events(b)).toMatchObject([{ type: "interaction", name: "chat_send", value_ms: 80 }]);
  });

  it("a rejected measure() reports the round trip and a warning error, and rejects unchanged", async () => {
    const b = setup();
    const boom = new Error("boom");
    const p = b.slo.measure("cohost_join", new Promise((_, rej) => setTimeout(() => rej(boom), 30)));
    const settled = p.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(30);
    expect(await settled).toBe(boom);
    const got = await events(b);
    expect(got).toMatchObject([
      { type: "interaction", name: "cohost_join", value_ms: 30 },
      { type: "error", code: "interaction_failed", name: "cohost_join", class: "warning" },
    ]);
  });
});

describe("errors and labels", () => {
  it("labels are cut to the collector's 64 characters", async () => {
    const b = setup();
    b.slo.error("x".repeat(100), { name: "y".repeat(65) });
    expect(await events(b)).toMatchObject([{ type: "error", code: "x".repeat(64), name: "y".repeat(64) }]);
  });

  it.each([
    { collector: "https://c.example", key: undefined, want: "https://c.example/v1/beacons" },
    { collector: "https://c.example/", key: "k 1/2", want: "https://c.example/v1/beacons?key=k%201%2F2" },
    { collector: "http://127.0.0.1:8080/v1/beacons", key: "k", want: "http://127.0.0.1:8080/v1/beacons?key=k" },
  ])("collector $collector with key $key posts to $want", ({ collector, key, want }) => {
    expect(ingestUrl(collector, key)).toBe(want);
  });
});

describe("never throws into the page", () => {
  it("survives a fetch that throws synchronously, and bad options", async () => {
    const b = fakeBrowser();
    b.env.fetch = () => {
      throw new Error("blocked by an extension");
    };
    const slo = createReporterWith(b.env, OPTS);
    slo.error("E1");
    await expect(slo.flush()).resolves.toBeUndefined();
    const bad = createReporterWith(b.env, undefined as unknown as ReporterOptions);
    expect(() => bad.interaction("x")()).not.toThrow();
    expect(bad.sampled).toBe(false);
  });

  it("drops (and counts) a value the collector would refuse, instead of losing the whole beacon", async () => {
    const b = setup();
    const end = b.slo.interaction("slow");
    vi.advanceTimersByTime(700_000);
    end();
    expect(await events(b)).toEqual([]);
    expect(b.slo.stats().droppedInvalid).toBe(1);
  });

  it("after shutdown() records nothing and sends what was left", async () => {
    const b = setup();
    b.slo.error("E1");
    await b.slo.shutdown();
    b.slo.error("E2");
    await b.slo.flush();
    expect(b.sent.flatMap((s) => s.beacon.events.map((e) => e.code))).toEqual(["E1"]);
  });
});

describe("watchVideo", () => {
  it("times the first rendered frame from the play event; resuming after a pause is no new attempt", async () => {
    const b = setup();
    const v = new FakeVideo();
    b.slo.watchVideo(v.element);
    vi.advanceTimersByTime(100);
    v.emit("play"); // t = 100
    v.emit("playing"); // ignored: the frame callback is the end point
    v.presentFrame(100 + 182.5);
    v.emit("pause");
    v.emit("play");
    v.presentFrame(900);
    expect(await events(b)).toMatchObject([{ type: "first_frame", value_ms: 182.5 }]);
  });

  it("falls back to the playing event without requestVideoFrameCallback", async () => {
    const b = setup();
    const v = new FakeVideo(false);
    b.slo.watchVideo(v.element);
    v.emit("play");
    vi.advanceTimersByTime(250);
    v.emit("playing");
    expect(await events(b)).toMatchObject([{ type: "first_frame", value_ms: 250 }]);
  });

  it.each([
    { how: "a pause", act: (v: FakeVideo) => v.emit("pause") },
    { how: "a new source", act: (v: FakeVideo) => v.emit("emptied") },
  ])("an attempt ended by $how before the first frame is an exit_before_start, not an error", async ({ act }) => {
    const b = setup();
    const v = new FakeVideo();
    b.slo.watchVideo(v.element);
    v.emit("play");
    vi.advanceTimersByTime(400);
    act(v);
    v.presentFrame(9999);
    expect(await events(b)).toMatchObject([{ type: "exit_before_start", value_ms: 400 }]);
  });

  it("a new source starts a new attempt", async () => {
    const b = setup();
    const v = new FakeVideo();
    b.slo.watchVideo(v.element);
    v.emit("play");
    v.presentFrame(50);
    v.emit("emptied");
    vi.advanceTimersByTime(1000);
    v.emit("play");
    v.presentFrame(1070);
    expect((await events(b)).map((e) => [e.type, e.value_ms])).toEqual([["first_frame", 50], ["first_frame", 70]]);
  });

  it.each([
    { code: 2, label: "MEDIA_ERR_NETWORK", cls: "fatal" },
    { code: 3, label: "MEDIA_ERR_DECODE", cls: "fatal" },
    { code: 4, label: "MEDIA_ERR_SRC_NOT_SUPPORTED", cls: "fatal" },
    { code: 1, label: "MEDIA_ERR_ABORTED", cls: "warning" },
  ])("MediaError $code is an error $label of class $cls", async ({ code, label, cls }) => {
    const b = setup();
    const v = new FakeVideo();
    b.slo.watchVideo(v.element);
    v.emit("play");
    v.error = { code };
    v.emit("error");
    const got = await events(b);
    const err = got.find((e) => e.type === "error");
    expect(err).toMatchObject({ code: label, class: cls });
    expect(err?.fatal).toBeUndefined(); // the SDK sends the class, not the older flag
    // an aborted load is the viewer leaving; a real failure is not also an exit
    expect(got.some((e) => e.type === "exit_before_start")).toBe(code === 1);
  });

  it("a page hidden while starting sends the exit_before_start in the unload beacon", () => {
    const b = setup();
    const v = new FakeVideo();
    b.slo.watchVideo(v.element);
    v.emit("play");
    vi.advanceTimersByTime(300);
    b.hide();
    expect(b.sent).toHaveLength(1);
    expect(b.sent[0]).toMatchObject({ via: "beacon", beacon: { events: [{ type: "exit_before_start", value_ms: 300 }] } });
  });

  it("the detach function stops watching (and ends a pending attempt as an exit)", async () => {
    const b = setup();
    const v = new FakeVideo();
    const detach = b.slo.watchVideo(v.element);
    v.emit("play");
    detach();
    v.presentFrame(10);
    v.emit("play");
    v.presentFrame(20);
    expect((await events(b)).map((e) => e.type)).toEqual(["exit_before_start"]);
  });

  it.each([
    { err: ["GEO_BLOCKED"] as const, leave: "pause", exit: false, why: "a business error (businessErrorCodes) then a pause" },
    { err: ["E", { class: "business" }] as const, leave: "hide", exit: false, why: "a business error then page hide" },
    { err: ["E", { class: "fatal" }] as const, leave: "hide", exit: false, why: "a fatal error before the first frame then page hide" },
    { err: ["E", { fatal: true }] as const, leave: "emptied", exit: false, why: "an older fatal: true error then a new source" },
    { err: ["E"] as const, leave: "hide", exit: true, why: "a warning (which does not end the attempt) then page hide" },
  ])("$why: exit_before_start sent is $exit", async ({ err, leave, exit }) => {
    const b = setup({ businessErrorCodes: ["GEO_BLOCKED"] });
    const v = new FakeVideo();
    b.slo.watchVideo(v.element);
    v.emit("play");
    vi.advanceTimersByTime(300);
    (b.slo.error as (...args: unknown[]) => void)(...err);
    vi.advanceTimersByTime(200);
    if (leave === "hide") b.hide();
    else v.emit(leave);
    const got = (await events(b)).map((e) => [e.type, e.value_ms]);
    expect(got).toEqual([["error", undefined], ...(exit ? [["exit_before_start", 500]] : [])]);
  });

  it("an attempt ended by a fatal error stays ended; the next source's attempt is watched again", async () => {
    const b = setup();
    const v = new FakeVideo();
    b.slo.watchVideo(v.element);
    v.emit("play");
    b.slo.error("E", { class: "fatal" }); // ends this attempt
    v.emit("emptied");
    v.emit("play");
    vi.advanceTimersByTime(100);
    v.emit("pause");
    expect((await events(b)).map((e) => [e.type, e.value_ms])).toEqual([["error", undefined], ["exit_before_start", 100]]);
  });
});
