/**
 * One workspace's agent sessions, seen from the page: the session routes and the viewer
 * WebSocket on `ws-{id}.{domain}` (docs/protocols/agent-sessions.md), with a terminal token
 * from POST /api/terminal/token as `?token=` (the edge answers the app's CORS), and the
 * conversation rebuilt from the frames (conversation.ts).
 *
 *   start ─▶ list ─▶ the session this tab last showed (sessionStorage), else the newest
 *        ─▶ viewer ?after=0: the whole conversation replayed, then live
 *   drop ─▶ (backoff) ─▶ viewer ?after=lastSeq: exactly what was missed
 *   stopped / crashed ─▶ the agent closes the viewer; nothing to reconnect to
 */

import { ApiError, api, request } from "../api/client";
import { LiveStore, type Problem, problemOf } from "../store";
import { reconnectDelayMs } from "../terminal/backoff";
import { type Conversation, applyFrame, emptyConversation } from "./conversation";
import {
  type AgentSessionInfo,
  type AgentSessionList,
  type NewAgentSession,
  type PermissionMode,
  ProtocolError,
  type SessionState,
  answerPermission,
  decodeServerFrame,
} from "./protocol";

export type ViewerStatus = "none" | "connecting" | "open" | "reconnecting" | "closed";

export interface AgentSnapshot {
  /** null until the first list arrives. */
  sessions: AgentSessionInfo[] | null;
  sessionId: string | null;
  conversation: Conversation;
  viewer: ViewerStatus;
  /** A session is being created (the adapter is starting). */
  creating: boolean;
  problem: Problem | null;
  /** The option this page chose, per permission request. */
  answered: Readonly<Record<string, string>>;
}

/** A token this many seconds from its end is replaced before use. */
const TOKEN_MARGIN_SECONDS = 30;
const STORAGE_PREFIX = "sam:agent-session:";
// What this tab answered, per session: after a reload it still says "answered here".
const ANSWERS_PREFIX = "sam:agent-answers:";
const ENDED = new Set(["stopped", "crashed"]);

interface Minted {
  token: string;
  expiresAt: number;
  /** `http(s)://ws-{id}.{domain}/workspaces/{id}` and its `ws(s)://` twin. */
  http: string;
  ws: string;
}

/** The session's state as the page should show it: the frames say, unless the node already
 * listed the session as ended (a replay of its old turns must not make it look alive). */
export function sessionState(snapshot: AgentSnapshot): SessionState | null {
  if (!snapshot.sessionId) return null;
  const info = snapshot.sessions?.find((s) => s.id === snapshot.sessionId);
  return info && ENDED.has(info.state) ? info.state : snapshot.conversation.state;
}

/** Failed reconnects after which the page asks the node whether the session still exists. */
const RECHECK_AFTER_ATTEMPTS = 3;

export class AgentSessions extends LiveStore<AgentSnapshot> {
  private minted: Minted | null = null;
  private socket: WebSocket | null = null;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly workspaceId: string) {
    super({
      sessions: null,
      sessionId: null,
      conversation: emptyConversation(),
      viewer: "none",
      creating: false,
      problem: null,
      answered: {},
    });
  }

  /** List the sessions and show the one this tab showed last (or the newest). */
  async start(): Promise<void> {
    this.update({ problem: null });
    const listed = await this.call(() => this.list());
    if (!listed) return;
    const remembered = sessionStorage.getItem(STORAGE_PREFIX + this.workspaceId);
    const chosen = listed.find((s) => s.id === remembered) ?? newest(listed);
    if (chosen) this.select(chosen.id);
  }

  /** Show `sessionId`: its whole conversation, replayed from the first frame. */
  select(sessionId: string): void {
    const info = this.current.sessions?.find((s) => s.id === sessionId);
    sessionStorage.setItem(STORAGE_PREFIX + this.workspaceId, sessionId);
    this.closeSocket();
    this.update({
      sessionId,
      conversation: emptyConversation(info?.state ?? "starting"),
      answered: JSON.parse(sessionStorage.getItem(ANSWERS_PREFIX + sessionId) ?? "{}") as Record<string, string>,
      problem: null,
    });
    this.attempt = 0;
    void this.connect();
  }

  async create(mode: PermissionMode, prompt: string): Promise<void> {
    const body: NewAgentSession = { agent: "claude-code", prompt: prompt.trim() || null, permission_mode: mode };
    this.update({ creating: true, problem: null });
    const created = await this.call(() => this.send<AgentSessionInfo>("POST", "", body));
    this.update({ creating: false });
    if (!created) return;
    this.update({ sessions: [...(this.current.sessions ?? []), created] });
    this.select(created.id);
  }

  async prompt(text: string): Promise<boolean> {
    const id = this.current.sessionId;
    if (!id) return false;
    return (await this.call(() => this.send("POST", `/${id}/prompt`, { text }))) !== null;
  }

  async cancel(): Promise<void> {
    const id = this.current.sessionId;
    if (id) await this.call(() => this.send("POST", `/${id}/cancel`));
  }

  async stop(): Promise<void> {
    const id = this.current.sessionId;
    if (!id) return;
    const stopped = await this.call(() => this.send<AgentSessionInfo>("POST", `/${id}/stop`));
    if (stopped) this.replaceInfo(stopped);
  }

  /** Answer a permission request; the first answer of any viewer wins. */
  answer = (requestId: string, optionId: string): void => {
    if (this.socket?.readyState !== WebSocket.OPEN) {
      this.update({ problem: { code: "not_connected", message: "Not connected to the agent: wait for the reconnect, then answer again." } });
      return;
    }
    this.socket.send(answerPermission(requestId, optionId));
    const answered = { ...this.current.answered, [requestId]: optionId };
    sessionStorage.setItem(ANSWERS_PREFIX + this.current.sessionId, JSON.stringify(answered));
    this.update({ answered });
  };

  dismissProblem(): void {
    this.update({ problem: null });
  }

  /** Close the viewer as a network failure would (the tests' way to drop it). */
  drop(): void {
    this.socket?.close();
  }

  override dispose(): void {
    super.dispose();
    this.closeSocket();
  }

  // --- internals ----------------------------------------------------------------------------

  private async list(): Promise<AgentSessionInfo[]> {
    const { sessions } = await this.send<AgentSessionList>("GET", "");
    this.update({ sessions });
    return sessions;
  }

  private async connect(): Promise<void> {
    const sessionId = this.current.sessionId;
    if (!sessionId || this.disposed) return;
    this.update({ viewer: this.attempt === 0 ? "connecting" : "reconnecting" });
    let minted: Minted;
    try {
      minted = await this.token();
    } catch (error) {
      this.retryOrGiveUp(error);
      return;
    }
    if (this.disposed || sessionId !== this.current.sessionId) return;
    const url = new URL(`${minted.ws}/agent-sessions/${encodeURIComponent(sessionId)}/ws`);
    url.searchParams.set("after", String(this.current.conversation.lastSeq));
    url.searchParams.set("token", minted.token);
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.update({ viewer: "open" });
    };
    socket.onmessage = (event: MessageEvent) => this.receive(event.data);
    socket.onclose = () => {
      if (this.socket !== socket) return; // replaced or closed on purpose
      this.socket = null;
      if (ENDED.has(sessionState(this.current) ?? "")) {
        this.update({ viewer: "closed" });
        void this.call(() => this.list());
        return;
      }
      this.scheduleReconnect();
    };
  }

  private receive(data: unknown): void {
    if (typeof data !== "string") return;
    try {
      const frame = decodeServerFrame(data);
      if (frame.type === "error") {
        this.update({ problem: { code: frame.code, message: frame.message } });
        return;
      }
      const conversation = applyFrame(this.current.conversation, frame);
      this.update({ conversation });
      this.followState(conversation.state);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.update({ problem: { code: "bad_frame", message: `The agent sent a frame this page does not understand: ${error.message}` } });
    }
  }

  private retryOrGiveUp(error: unknown): void {
    const retry = !(error instanceof ApiError) || error.status === 0 || error.status === 429 || error.status >= 500;
    if (!retry) {
      this.update({ viewer: "closed", problem: problemOf(error) });
      return;
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.disposed) return;
    this.update({ viewer: "reconnecting" });
    clearTimeout(this.retryTimer);
    const delay = reconnectDelayMs(this.attempt++);
    this.retryTimer = setTimeout(() => void this.reconnect(), delay);
  }

  private async reconnect(): Promise<void> {
    // A session that keeps refusing may be gone (its node replaced) or over: ask the node.
    if (this.attempt >= RECHECK_AFTER_ATTEMPTS) {
      const listed = await this.call(() => this.list());
      const info = listed?.find((s) => s.id === this.current.sessionId);
      if (listed && (!info || ENDED.has(info.state))) {
        this.update({ viewer: "closed" });
        if (!info) {
          const message = "This agent session is no longer on the workspace's node: start a new one.";
          this.update({ problem: { code: "agent_session_not_found", message } });
        }
        return;
      }
    }
    await this.connect();
  }

  private closeSocket(): void {
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    this.socket = null;
    socket?.close();
  }

  private async token(): Promise<Minted> {
    const now = Date.now() / 1000;
    if (this.minted && this.minted.expiresAt - TOKEN_MARGIN_SECONDS > now) return this.minted;
    const fresh = await api.terminalToken(this.workspaceId);
    // The terminal's URL names the workspace's host: ws(s)://ws-{id}.{domain}/workspaces/{id}/…
    const terminal = new URL(fresh.url);
    const base = `//${terminal.host}/workspaces/${encodeURIComponent(this.workspaceId)}`;
    const secure = terminal.protocol === "wss:";
    this.minted = {
      token: fresh.token,
      expiresAt: fresh.expires_at,
      http: `${secure ? "https:" : "http:"}${base}`,
      ws: `${secure ? "wss:" : "ws:"}${base}`,
    };
    return this.minted;
  }

  private async send<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    const minted = await this.token();
    const url = new URL(`${minted.http}/agent-sessions${path}`);
    url.searchParams.set("token", minted.token);
    return request<T>(method, url.toString(), body);
  }

  /** Run `action`; a failure becomes the snapshot's problem (and null). */
  private async call<T>(action: () => Promise<T>): Promise<T | null> {
    try {
      return await action();
    } catch (error) {
      this.update({ problem: problemOf(error) });
      return null;
    }
  }

  /** Keep the listed state of a live session in step with its frames. */
  private followState(state: SessionState): void {
    const info = this.current.sessions?.find((s) => s.id === this.current.sessionId);
    if (info && info.state !== state && !ENDED.has(info.state)) this.replaceInfo({ ...info, state });
  }

  private replaceInfo(info: AgentSessionInfo): void {
    const sessions = (this.current.sessions ?? []).map((s) => (s.id === info.id ? info : s));
    this.update({ sessions });
  }
}

function newest(sessions: AgentSessionInfo[]): AgentSessionInfo | undefined {
  return [...sessions].sort((a, b) => b.created_at.localeCompare(a.created_at))[0];
}
