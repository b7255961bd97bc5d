/**
 * One workspace's terminals over one WebSocket (docs/protocols/terminal.md), reconnecting.
 *
 * The client keeps, per session, its **end offset**: how many bytes of the session's output
 * the screen already has. After a dropped connection it fetches a fresh URL (a terminal
 * token lives 5 minutes), lists the tabs and attaches every live one at its end offset, so
 * the agent sends exactly the missing bytes. Output is also trimmed against the end
 * offset, so a byte is never written twice, whatever the agent repeats.
 *
 *     connecting ──open+sessions──▶ open ──drop──▶ reconnecting ──(backoff)──▶ … open
 *          │                                            │
 *          └── token refused (workspace not running) ───┴──▶ stopped      dispose() ▶ closed
 */

import { reconnectDelayMs } from "./backoff";
import {
  type ClientFrame,
  type ExitReason,
  type ServerFrame,
  type SessionInfo,
  decodeOutput,
  decodeServerFrame,
  encodeClientFrame,
  encodeInputChunks,
  frames,
} from "./protocol";

export type ConnectionStatus = "connecting" | "open" | "reconnecting" | "stopped" | "closed";

export interface TabExit {
  exitCode: number | null;
  signal: number | null;
  reason: ExitReason | "gone";
}

export interface Tab {
  sessionId: string;
  name: string;
  live: boolean;
  cols: number | null;
  rows: number | null;
  exit: TabExit | null;
  /** An agent's command: watched, never typed into, resized, renamed or closed. */
  readOnly: boolean;
  /** The agent session that runs it (read-only tabs). */
  owner: string | null;
}

export interface TerminalListener {
  /** Bytes for the session's screen, in order, each exactly once. */
  output(sessionId: string, data: Uint8Array): void;
  /** Clear the session's screen: what follows starts over (the ring was cut). */
  clear(sessionId: string): void;
  /** The session is attached (again) on a fresh connection: a good time to send its size. */
  attached(sessionId: string): void;
  /** The session ended (after its last output). */
  exited(sessionId: string, exit: TabExit): void;
  /** Tabs, status or the active tab changed. */
  changed(): void;
  /** A request failed, or the connection cannot be made; `message` is for the user. */
  problem(message: string, code: string): void;
}

/** What a refused URL request means for reconnecting. */
export class ConnectRefused extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** false: stop trying (e.g. the workspace is not running); true: back off and retry. */
    readonly retry: boolean,
  ) {
    super(message);
  }
}

export interface SocketLike {
  binaryType: BinaryType;
  readyState: number;
  onopen: ((event: Event) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  send(data: string | ArrayBufferView | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
}

export interface TerminalClientOptions {
  /** A fresh WebSocket URL (with its token) for every connection attempt. */
  connectUrl: () => Promise<string>;
  listener: TerminalListener;
  /** Open a first tab when the workspace has none. */
  autoCreate?: { cols: number; rows: number };
  openSocket?: (url: string) => SocketLike;
  random?: () => number;
  setTimer?: (callback: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

const OPEN = 1;
/** A close code of our own: the client dropped the socket to test or recover. */
export const CLIENT_DROP_CODE = 4000;

export class TerminalClient {
  status: ConnectionStatus = "connecting";
  tabs: Tab[] = [];
  /** The next reconnect's delay, while status is "reconnecting". */
  retryInMs: number | null = null;

  private readonly ends = new Map<string, number>();
  private readonly sizes = new Map<string, string>();
  private readonly pendingCreates = new Set<string>();
  /** Tabs this browser asked to close: they go when their `exit` comes. */
  private readonly closing = new Set<string>();
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private attempt = 0;
  private requestCounter = 0;
  private disposed = false;
  private listedOnce = false;
  private readonly options: Required<Omit<TerminalClientOptions, "autoCreate">> &
    Pick<TerminalClientOptions, "autoCreate">;

  /** Called with the session id of a tab this browser created (to make it active). */
  onCreated: ((sessionId: string) => void) | null = null;

  constructor(options: TerminalClientOptions) {
    this.options = {
      openSocket: (url) => new WebSocket(url),
      random: Math.random,
      setTimer: (callback, ms) => setTimeout(callback, ms),
      clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
      ...options,
    };
  }

  // --- lifecycle ----------------------------------------------------------------------------

  start(): void {
    void this.connect();
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer !== null) this.options.clearTimer(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = socket.onmessage = socket.onerror = socket.onopen = null;
      socket.close(1000, "page closed");
    }
    this.setStatus("closed");
  }

  /** Drop the socket as a network failure would (it reconnects). For tests and recovery. */
  drop(): void {
    this.socket?.close(CLIENT_DROP_CODE, "dropped by the client");
  }

  /** Try again now (after `stopped`, e.g. once the workspace is running again). */
  reconnect(): void {
    if (this.disposed) return;
    if (this.timer !== null) this.options.clearTimer(this.timer);
    this.timer = null;
    this.attempt = 0;
    if (this.socket === null) void this.connect();
  }

  endOffset(sessionId: string): number | undefined {
    return this.ends.get(sessionId);
  }

  private async connect(): Promise<void> {
    this.timer = null;
    if (this.disposed) return;
    this.setStatus(this.attempt === 0 && !this.listedOnce ? "connecting" : "reconnecting");
    let url: string;
    try {
      url = await this.options.connectUrl();
    } catch (error) {
      if (this.disposed) return;
      const refused =
        error instanceof ConnectRefused
          ? error
          : new ConnectRefused(String((error as Error)?.message ?? error), "connect_failed", true);
      if (!refused.retry) {
        this.setStatus("stopped");
        this.options.listener.problem(refused.message, refused.code);
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (this.disposed) return;
    const socket = this.options.openSocket(url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => this.send(frames.list(this.nextRequestId()));
    socket.onmessage = (event) => this.receive(event.data);
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.sizes.clear(); // a new connection sends every size again
      if (!this.disposed) this.scheduleReconnect();
    };
  }

  private scheduleReconnect(): void {
    const delay = reconnectDelayMs(this.attempt, this.options.random);
    this.attempt += 1;
    this.retryInMs = delay;
    this.setStatus("reconnecting");
    this.timer = this.options.setTimer(() => void this.connect(), delay);
  }

  // --- requests -----------------------------------------------------------------------------

  create(cols: number, rows: number, sessionId: string | null = null): void {
    const requestId = this.nextRequestId();
    this.pendingCreates.add(requestId);
    this.send(frames.create(requestId, cols, rows, null, sessionId));
  }

  close(sessionId: string): void {
    const tab = this.tabs.find((t) => t.sessionId === sessionId);
    if (tab && !tab.live && tab.exit) {
      this.forget(sessionId); // already ended: only this browser still shows it
      return;
    }
    this.closing.add(sessionId);
    this.send(frames.close(this.nextRequestId(), sessionId));
  }

  rename(sessionId: string, name: string): void {
    this.send(frames.rename(this.nextRequestId(), sessionId, name));
  }

  resize(sessionId: string, cols: number, rows: number): void {
    const size = `${cols}x${rows}`;
    if (this.sizes.get(sessionId) === size || !this.isOpen() || this.isReadOnly(sessionId)) return;
    this.sizes.set(sessionId, size);
    this.send(frames.resize(null, sessionId, cols, rows));
  }

  /** Keystrokes or a paste for the session's shell; false when they could not be sent. */
  input(sessionId: string, data: Uint8Array): boolean {
    if (!this.isOpen() || !this.ends.has(sessionId) || this.isReadOnly(sessionId)) return false;
    for (const chunk of encodeInputChunks(sessionId, data)) this.socket!.send(chunk);
    return true;
  }

  private isReadOnly(sessionId: string): boolean {
    return this.tabs.some((t) => t.sessionId === sessionId && t.readOnly);
  }

  private isOpen(): boolean {
    return this.socket !== null && this.socket.readyState === OPEN;
  }

  private send(frame: ClientFrame): void {
    if (this.isOpen()) this.socket!.send(encodeClientFrame(frame));
  }

  private nextRequestId(): string {
    this.requestCounter += 1;
    return `r${this.requestCounter}`;
  }

  // --- what the agent sends -----------------------------------------------------------------

  private receive(data: unknown): void {
    if (data instanceof ArrayBuffer) {
      this.receiveOutput(new Uint8Array(data));
      return;
    }
    if (typeof data !== "string") return;
    let frame: ServerFrame;
    try {
      frame = decodeServerFrame(data);
    } catch (error) {
      console.warn("terminal: ignoring a frame", error);
      return;
    }
    this.handle(frame);
  }

  private receiveOutput(raw: Uint8Array): void {
    const { sessionId, offset, data } = decodeOutput(raw);
    const end = this.ends.get(sessionId);
    if (end === undefined) return; // not attached here
    let fresh = data;
    if (offset < end) {
      // Already on screen (a replay that overlaps): keep only what is new.
      if (offset + data.length <= end) return;
      fresh = data.subarray(end - offset);
    } else if (offset > end) {
      console.warn(`terminal: ${offset - end} bytes missing in session ${sessionId}`);
    }
    this.ends.set(sessionId, offset + data.length);
    this.options.listener.output(sessionId, fresh);
  }

  private handle(frame: ServerFrame): void {
    const listener = this.options.listener;
    switch (frame.type) {
      case "sessions":
        this.adoptTabs(frame.sessions);
        break;
      case "created": {
        this.upsertTab(frame.session);
        this.ends.set(frame.session.session_id, 0);
        const mine = frame.request_id !== null && this.pendingCreates.delete(frame.request_id);
        listener.attached(frame.session.session_id);
        if (mine) this.onCreated?.(frame.session.session_id);
        break;
      }
      case "attached": {
        const id = frame.session.session_id;
        this.upsertTab(frame.session);
        if (frame.reset) listener.clear(id);
        this.ends.set(id, frame.offset);
        listener.attached(id);
        break;
      }
      case "reset":
        listener.clear(frame.session_id);
        this.ends.set(frame.session_id, frame.offset);
        break;
      case "exit": {
        const tab = this.tabs.find((t) => t.sessionId === frame.session_id);
        this.ends.delete(frame.session_id);
        if (this.closing.delete(frame.session_id)) {
          this.forget(frame.session_id);
        } else if (tab) {
          tab.live = false;
          tab.exit = { exitCode: frame.exit_code, signal: frame.signal, reason: frame.reason };
          listener.exited(frame.session_id, tab.exit);
        }
        break;
      }
      case "renamed":
        this.patchTab(frame.session_id, { name: frame.name });
        break;
      case "resized":
        this.patchTab(frame.session_id, { cols: frame.cols, rows: frame.rows });
        break;
      case "detached":
        this.ends.delete(frame.session_id);
        break;
      case "error":
        if (frame.request_id !== null) this.pendingCreates.delete(frame.request_id);
        if (frame.code === "unknown_session" && frame.session_id) {
          // A shell that is gone (e.g. after a restart): its tab says so in words, with a
          // button for a new one; the agent's protocol message is for developers.
          this.markGone(frame.session_id);
          break;
        }
        listener.problem(frame.message, frame.code);
        break;
    }
    listener.changed();
  }

  private adoptTabs(sessions: SessionInfo[]): void {
    const known = new Set(sessions.map((s) => s.session_id));
    // Tabs this browser showed that the agent no longer has ended while it was away.
    for (const tab of this.tabs) {
      if (!known.has(tab.sessionId) && tab.exit === null) this.markGone(tab.sessionId);
    }
    for (const session of sessions) {
      this.upsertTab(session);
      if (session.live) {
        const end = this.ends.get(session.session_id);
        this.send(frames.attach(this.nextRequestId(), session.session_id, end ?? null));
      }
    }
    const firstTime = !this.listedOnce;
    this.listedOnce = true;
    this.attempt = 0;
    this.retryInMs = null;
    this.setStatus("open");
    if (firstTime && sessions.length === 0 && this.options.autoCreate) {
      this.create(this.options.autoCreate.cols, this.options.autoCreate.rows);
    }
  }

  private upsertTab(session: SessionInfo): void {
    const tab = this.tabs.find((t) => t.sessionId === session.session_id);
    const fields = {
      name: session.name,
      live: session.live,
      cols: session.cols,
      rows: session.rows,
      readOnly: session.read_only ?? false,
      owner: session.owner ?? null,
    };
    if (tab) {
      Object.assign(tab, fields);
      if (session.live) tab.exit = null;
    } else {
      this.tabs.push({ sessionId: session.session_id, exit: null, ...fields });
    }
  }

  private patchTab(sessionId: string, fields: Partial<Tab>): void {
    const tab = this.tabs.find((t) => t.sessionId === sessionId);
    if (tab) Object.assign(tab, fields);
  }

  private markGone(sessionId: string): void {
    this.ends.delete(sessionId);
    const tab = this.tabs.find((t) => t.sessionId === sessionId);
    if (tab && tab.exit === null) {
      tab.live = false;
      tab.exit = { exitCode: null, signal: null, reason: "gone" };
    }
  }

  private forget(sessionId: string): void {
    this.ends.delete(sessionId);
    this.closing.delete(sessionId);
    this.sizes.delete(sessionId);
    this.tabs = this.tabs.filter((t) => t.sessionId !== sessionId);
    this.options.listener.changed();
  }

  private setStatus(status: ConnectionStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.options.listener.changed();
  }
}
