/**
 * The browser's side of the terminal protocol (docs/protocols/terminal.md): the wire
 * types, declared once, and their codecs. tests/pages/protocol.test.ts pins every frame
 * against the agent's golden files (tests/golden/terminal/*.json), so the two cannot drift.
 *
 *   output (agent → browser): 0x01 · id_len u8 · session id · offset u64 BE · bytes
 *   input  (browser → agent): 0x02 · id_len u8 · session id · bytes
 *   control: JSON text frames, one object each, discriminated by "type"
 */

import { ProtocolError, decodeTypedObject } from "../jsonFrame";

export const OUTPUT_FRAME = 0x01;
export const INPUT_FRAME = 0x02;
const OFFSET_BYTES = 8;
const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The agent refuses frames over SAM_MAX_FRAME_BYTES (64 KiB); pastes are split below it. */
export const MAX_INPUT_CHUNK_BYTES = 32 * 1024;

export { ProtocolError };

// --- session info and the agent's frames --------------------------------------------------

export interface SessionInfo {
  session_id: string;
  name: string;
  live: boolean;
  cols: number | null;
  rows: number | null;
  offset: number | null;
  viewers: number;
  /** A command an agent session runs (ACP terminal/*): watch only; input, resize, rename
   * and close are refused. Absent from agents older than the agent's command tabs. */
  read_only?: boolean;
  /** The agent session that runs it. */
  owner?: string | null;
}

export type ExitReason = "exited" | "closed" | "orphaned" | "workspace_stopped" | "agent_stopping" | "killed";

export type ErrorCode =
  | "bad_frame"
  | "frame_too_large"
  | "rate_limited"
  | "unknown_session"
  | "session_exists"
  | "too_many_sessions"
  | "workspace_not_running"
  | "spawn_failed"
  | "input_overflow"
  | "read_only";

export type ServerFrame =
  | { type: "created"; request_id: string | null; session: SessionInfo }
  | {
      type: "attached";
      request_id: string | null;
      session: SessionInfo;
      offset: number;
      reset: boolean;
    }
  | { type: "detached"; request_id: string | null; session_id: string }
  | { type: "renamed"; request_id: string | null; session_id: string; name: string }
  | { type: "resized"; request_id: string | null; session_id: string; cols: number; rows: number }
  | { type: "sessions"; request_id: string | null; sessions: SessionInfo[] }
  | { type: "reset"; session_id: string; offset: number }
  | {
      type: "exit";
      session_id: string;
      exit_code: number | null;
      signal: number | null;
      reason: ExitReason;
    }
  | {
      type: "error";
      request_id: string | null;
      session_id: string | null;
      code: ErrorCode | string;
      message: string;
    };

export type ServerFrameType = ServerFrame["type"];
const SERVER_TYPES: ReadonlySet<string> = new Set<ServerFrameType>([
  "created",
  "attached",
  "detached",
  "renamed",
  "resized",
  "sessions",
  "reset",
  "exit",
  "error",
]);

/** Parse one JSON text frame from the agent; throws ProtocolError on anything else. */
export function decodeServerFrame(text: string): ServerFrame {
  return decodeTypedObject(text, SERVER_TYPES) as unknown as ServerFrame;
}

// --- the browser's requests ---------------------------------------------------------------

export type ClientFrame =
  | {
      type: "create";
      request_id: string | null;
      name: string | null;
      cols: number;
      rows: number;
      session_id: string | null;
    }
  | { type: "attach"; request_id: string | null; session_id: string; offset: number | null }
  | { type: "detach"; request_id: string | null; session_id: string }
  | { type: "close"; request_id: string | null; session_id: string }
  | { type: "rename"; request_id: string | null; session_id: string; name: string }
  | { type: "resize"; request_id: string | null; session_id: string; cols: number; rows: number }
  | { type: "input"; request_id: string | null; session_id: string; data: string }
  | { type: "list"; request_id: string | null };

// One builder per request, fields in the protocol page's order.
export const frames = {
  create: (
    requestId: string | null,
    cols: number,
    rows: number,
    name: string | null = null,
    sessionId: string | null = null,
  ): ClientFrame => ({
    type: "create",
    request_id: requestId,
    name,
    cols,
    rows,
    session_id: sessionId,
  }),
  attach: (requestId: string | null, sessionId: string, offset: number | null): ClientFrame => ({
    type: "attach",
    request_id: requestId,
    session_id: sessionId,
    offset,
  }),
  detach: (requestId: string | null, sessionId: string): ClientFrame => ({
    type: "detach",
    request_id: requestId,
    session_id: sessionId,
  }),
  close: (requestId: string | null, sessionId: string): ClientFrame => ({
    type: "close",
    request_id: requestId,
    session_id: sessionId,
  }),
  rename: (requestId: string | null, sessionId: string, name: string): ClientFrame => ({
    type: "rename",
    request_id: requestId,
    session_id: sessionId,
    name,
  }),
  resize: (requestId: string | null, sessionId: string, cols: number, rows: number): ClientFrame => ({
    type: "resize",
    request_id: requestId,
    session_id: sessionId,
    cols,
    rows,
  }),
  input: (requestId: string | null, sessionId: string, data: string): ClientFrame => ({
    type: "input",
    request_id: requestId,
    session_id: sessionId,
    data,
  }),
  list: (requestId: string | null): ClientFrame => ({ type: "list", request_id: requestId }),
};

export function encodeClientFrame(frame: ClientFrame): string {
  return JSON.stringify(frame);
}

// --- binary frames ------------------------------------------------------------------------

function sessionIdBytes(sessionId: string): Uint8Array {
  if (!SESSION_ID.test(sessionId)) {
    throw new ProtocolError(`invalid session id ${JSON.stringify(sessionId)}`);
  }
  return new TextEncoder().encode(sessionId); // ASCII by the pattern above
}

/** An input frame: the bytes go to the session's shell unchanged. */
export function encodeInput(sessionId: string, data: Uint8Array): Uint8Array {
  const id = sessionIdBytes(sessionId);
  const frame = new Uint8Array(2 + id.length + data.length);
  frame[0] = INPUT_FRAME;
  frame[1] = id.length;
  frame.set(id, 2);
  frame.set(data, 2 + id.length);
  return frame;
}

/** Input frames for `data`, split so that none is over MAX_INPUT_CHUNK_BYTES of payload. */
export function encodeInputChunks(sessionId: string, data: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let start = 0; start < data.length; start += MAX_INPUT_CHUNK_BYTES) {
    chunks.push(encodeInput(sessionId, data.subarray(start, start + MAX_INPUT_CHUNK_BYTES)));
  }
  return chunks;
}

export interface OutputFrame {
  sessionId: string;
  /** The offset of data[0] in the session's output. */
  offset: number;
  data: Uint8Array;
}

/** Decode an output frame; `data` is a view into `frame` (no copy). */
export function decodeOutput(frame: Uint8Array): OutputFrame {
  if (frame.length < 2 || frame[0] !== OUTPUT_FRAME) {
    throw new ProtocolError(`not an output frame (kind ${frame[0]})`);
  }
  const idLength = frame[1];
  const header = 2 + idLength + OFFSET_BYTES;
  if (idLength === 0 || frame.length < header) {
    throw new ProtocolError("output frame cut short");
  }
  const sessionId = new TextDecoder().decode(frame.subarray(2, 2 + idLength));
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  // Two halves rather than getBigUint64: exact below 2^53, and no BigInt on the hot path.
  const offset = view.getUint32(2 + idLength) * 2 ** 32 + view.getUint32(2 + idLength + 4);
  return { sessionId, offset, data: frame.subarray(header) };
}
