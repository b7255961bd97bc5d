// The reconnecting terminal client against a scripted agent: offsets, resume, backoff, exit.
import { beforeEach, describe, expect, it } from "vitest";

import { BASE_DELAY_MS, MAX_DELAY_MS, reconnectDelayMs } from "../../pages/src/terminal/backoff";
import {
  ConnectRefused,
  type SocketLike,
  type TabExit,
  TerminalClient,
} from "../../pages/src/terminal/client";
import { decodeOutput } from "../../pages/src/terminal/protocol";
import { golden } from "./golden";

/** A WebSocket the test plays the agent on. */
class FakeSocket implements SocketLike {
  binaryType: BinaryType = "blob";
  readyState = 0;
  onopen: ((event: Event) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  sent: (string | Uint8Array)[] = [];

  constructor(readonly url: string) {}

  send(data: string | ArrayBufferView | ArrayBuffer): void {
    this.sent.push(typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer));
  }

  close(): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({} as CloseEvent);
  }

  // --- the agent's side ---
  open(): void {
    this.readyState = 1;
    this.onopen?.({} as Event);
  }

  reply(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) } as MessageEvent);
  }

  output(sessionId: string, offset: number, text: string): void {
    const id = new TextEncoder().encode(sessionId);
    const data = new TextEncoder().encode(text);
    const frame = new Uint8Array(2 + id.length + 8 + data.length);
    frame[0] = 1;
    frame[1] = id.length;
    frame.set(id, 2);
    new DataView(frame.buffer).setBigUint64(2 + id.length, BigInt(offset));
    frame.set(data, 2 + id.length + 8);
    this.onmessage?.({ data: frame.buffer } as MessageEvent);
  }

  requests(): Record<string, unknown>[] {
    return this.sent.filter((s): s is string => typeof s === "string").map((s) => JSON.parse(s));
  }

  lastRequest(): Record<string, unknown> {
    const all = this.requests();
    return all[all.length - 1];
  }
}

const session = (id: string, offset = 0, live = true) => ({
  session_id: id,
  name: `Terminal ${id}`,
  live,
  cols: live ? 80 : null,
  rows: live ? 24 : null,
  offset: live ? offset : null,
  viewers: 1,
});

const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("TerminalClient", () => {
  let sockets: FakeSocket[];
  let timers: { callback: () => void; ms: number }[];
  let screens: Map<string, string>;
  let clears: string[];
  let exits: [string, TabExit][];
  let problems: string[];
  let urlCalls: number;
  let refuse: ConnectRefused | null;
  let client: TerminalClient;

  const socket = () => sockets[sockets.length - 1];
  const fireTimer = async () => {
    const timer = timers.shift();
    expect(timer).toBeDefined();
    timer!.callback();
    await flush();
  };

  beforeEach(async () => {
    sockets = [];
    timers = [];
    screens = new Map();
    clears = [];
    exits = [];
    problems = [];
    urlCalls = 0;
    refuse = null;
    client = new TerminalClient({
      connectUrl: async () => {
        urlCalls += 1;
        if (refuse) throw refuse;
        return `ws://ws-w1.localhost/workspaces/w1/terminal/ws?token=t${urlCalls}`;
      },
      autoCreate: { cols: 100, rows: 30 },
      openSocket: (url) => {
        const made = new FakeSocket(url);
        sockets.push(made);
        return made;
      },
      random: () => 1,
      setTimer: (callback, ms) => timers.push({ callback, ms }),
      clearTimer: () => undefined,
      listener: {
        output: (id, data) => screens.set(id, (screens.get(id) ?? "") + new TextDecoder().decode(data)),
        clear: (id) => {
          clears.push(id);
          screens.set(id, "");
        },
        attached: () => undefined,
        exited: (id, exit) => exits.push([id, exit]),
        changed: () => undefined,
        problem: (message) => problems.push(message),
      },
    });
    client.start();
    await flush();
  });

  it("lists, opens a first tab when there is none, and streams its output", () => {
    expect(client.status).toBe("connecting");
    expect(socket().url).toContain("token=t1");
    socket().open();
    expect(socket().requests()).toEqual([{ type: "list", request_id: "r1" }]);
    socket().reply({ type: "sessions", request_id: "r1", sessions: [] });
    expect(client.status).toBe("open");
    expect(socket().lastRequest()).toMatchObject({ type: "create", cols: 100, rows: 30, session_id: null });
    socket().reply({ type: "created", request_id: "r2", session: session("s1") });
    socket().output("s1", 0, "$ ");
    expect(client.tabs.map((t) => t.sessionId)).toEqual(["s1"]);
    expect(screens.get("s1")).toBe("$ ");
    expect(client.endOffset("s1")).toBe(2);
  });

  it("sends keystrokes as binary input frames", () => {
    socket().open();
    socket().reply({ type: "sessions", request_id: "r1", sessions: [session("3f9a1c2e7b40")] });
    socket().reply({ type: "attached", request_id: "r2", session: session("3f9a1c2e7b40"), offset: 0, reset: false });
    expect(client.input("3f9a1c2e7b40", new TextEncoder().encode("ls\r"))).toBe(true);
    const binary = socket().sent.filter((s) => typeof s !== "string") as Uint8Array[];
    expect(Buffer.from(binary[0]).toString("hex")).toBe(golden("binary-input").binary!.hex);
  });

  it("watches an agent's command tab without typing into or resizing it", () => {
    const agentTab = { ...session("as-1-t1"), name: "npm test", read_only: true, owner: "as-1" };
    socket().open();
    socket().reply({ type: "sessions", request_id: "r1", sessions: [session("s1"), agentTab] });
    socket().reply({ type: "attached", request_id: "r2", session: session("s1"), offset: 0, reset: false });
    socket().reply({ type: "attached", request_id: "r3", session: agentTab, offset: 0, reset: false });
    socket().output("as-1-t1", 0, "PASS");
    expect(screens.get("as-1-t1")).toBe("PASS");
    expect(client.tabs.map((t) => [t.sessionId, t.readOnly, t.owner])).toEqual([
      ["s1", false, null],
      ["as-1-t1", true, "as-1"],
    ]);
    const before = socket().sent.length;
    expect(client.input("as-1-t1", new TextEncoder().encode("q"))).toBe(false);
    client.resize("as-1-t1", 100, 30);
    expect(socket().sent.length).toBe(before); // nothing the agent would refuse with read_only
    expect(client.input("s1", new TextEncoder().encode("q"))).toBe(true);
  });

  it("after a drop, reattaches at its end offset: nothing lost, nothing repeated", async () => {
    socket().open();
    socket().reply({ type: "sessions", request_id: "r1", sessions: [session("s1", 10)] });
    expect(socket().lastRequest()).toEqual({ type: "attach", request_id: "r2", session_id: "s1", offset: null });
    socket().reply({ type: "attached", request_id: "r2", session: session("s1", 10), offset: 0, reset: false });
    socket().output("s1", 0, "0123456789");
    socket().output("s1", 10, "abc");

    socket().close(); // the network drops
    expect(client.status).toBe("reconnecting");
    expect(timers[0].ms).toBe(BASE_DELAY_MS);
    expect(client.input("s1", new Uint8Array([1]))).toBe(false);
    await fireTimer();
    expect(urlCalls).toBe(2); // a fresh token for every connection
    socket().open();
    socket().reply({ type: "sessions", request_id: "r3", sessions: [session("s1", 20)] });
    expect(socket().lastRequest()).toEqual({ type: "attach", request_id: "r4", session_id: "s1", offset: 13 });
    socket().reply({ type: "attached", request_id: "r4", session: session("s1", 20), offset: 13, reset: false });
    // An agent that replays a little too much is trimmed to what is new.
    socket().output("s1", 11, "bcdefg");
    socket().output("s1", 17, "hij");
    expect(screens.get("s1")).toBe("0123456789abcdefghij");
    expect(client.endOffset("s1")).toBe(20);
    expect(clears).toEqual([]);
    expect(client.status).toBe("open");
  });

  it("clears the screen when the ring no longer holds its offset", () => {
    socket().open();
    socket().reply({ type: "sessions", request_id: "r1", sessions: [session("s1", 5)] });
    socket().reply({ type: "attached", request_id: "r2", session: session("s1"), offset: 0, reset: false });
    socket().output("s1", 0, "old");
    socket().reply({ ...golden("reset").frame, session_id: "s1", offset: 500 });
    socket().output("s1", 500, "new");
    expect(clears).toEqual(["s1"]);
    expect(screens.get("s1")).toBe("new");
  });

  it("backs off exponentially with jitter while the agent cannot be reached", async () => {
    const delays: number[] = [];
    for (let attempt = 0; attempt < 8; attempt++) {
      socket().close();
      delays.push(timers[0].ms);
      await fireTimer();
    }
    expect(delays.slice(0, 4)).toEqual([500, 1000, 2000, 4000]);
    expect(Math.max(...delays)).toBe(MAX_DELAY_MS);
    expect(reconnectDelayMs(3, () => 0)).toBe(2000); // the jitter spans [½·d, d]
    expect(reconnectDelayMs(3, () => 0.5)).toBe(3000);
  });

  it("stops trying when the workspace is not running, and says why", async () => {
    socket().open();
    socket().reply({ type: "sessions", request_id: "r1", sessions: [session("s1")] });
    refuse = new ConnectRefused("Workspace w1 is stopped; restart it.", "workspace_not_running", false);
    socket().close();
    await fireTimer();
    expect(client.status).toBe("stopped");
    expect(problems).toEqual(["Workspace w1 is stopped; restart it."]);
    expect(timers).toEqual([]);
  });

  it("shows an exit with its code and keeps the tab until it is closed", () => {
    socket().open();
    socket().reply({ type: "sessions", request_id: "r1", sessions: [session("3f9a1c2e7b40")] });
    socket().reply({ ...golden("attached").frame, request_id: "r2" });
    socket().reply(golden("exit").frame!);
    expect(exits).toEqual([["3f9a1c2e7b40", { exitCode: 3, signal: null, reason: "exited" }]]);
    expect(client.tabs[0]).toMatchObject({ live: false, exit: { exitCode: 3 } });
    client.close("3f9a1c2e7b40");
    expect(client.tabs).toEqual([]);
  });

  it("a tab closed here goes away when its exit arrives", () => {
    socket().open();
    socket().reply({ type: "sessions", request_id: "r1", sessions: [session("s1"), session("s2")] });
    client.close("s1");
    expect(socket().lastRequest()).toMatchObject({ type: "close", session_id: "s1" });
    socket().reply({ type: "exit", session_id: "s1", exit_code: null, signal: 1, reason: "closed" });
    expect(client.tabs.map((t) => t.sessionId)).toEqual(["s2"]);
    expect(exits).toEqual([]);
  });

  it("restores every tab from the agent's list, live or not", () => {
    socket().open();
    socket().reply(golden("sessions").frame!);
    expect(client.tabs.map((t) => [t.name, t.live])).toEqual([
      ["Terminal 1", true],
      ["old tab", false],
    ]);
    // Only the live one is attached; no tab is created on top of restored ones.
    const sent = socket().requests().map((r) => r.type);
    expect(sent).toEqual(["list", "attach"]);
  });

  it("decodes what it is sent with the golden codec", () => {
    const out = decodeOutput(Buffer.from(golden("binary-output").binary!.hex, "hex"));
    expect(out.offset).toBe(1532);
  });
});
