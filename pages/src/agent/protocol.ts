/**
 * The browser's side of the agent-session protocol (docs/protocols/agent-sessions.md): the
 * routes' bodies and the viewer WebSocket's frames, declared once here from
 * wire/agent_session.py. tests/pages/agentProtocol.test.ts checks every golden file of
 * tests/golden/agent_session/ against FIELDS below, so the two cannot drift.
 *
 * The ACP payloads inside frames (`update`, `tool_call`, `options`) are the adapter's own
 * JSON, typed by the ACP SDK's own schema (`@agentclientprotocol/sdk`, the version the adapter
 * uses), not declared again here.
 */

import type { PermissionOption, SessionUpdate, ToolCallUpdate } from "@agentclientprotocol/sdk";
import { ProtocolError, decodeTypedObject } from "../jsonFrame";

/** wire.agent_session.MAX_PROMPT_CHARS: a longer prompt is refused (400). */
export const MAX_PROMPT_CHARS = 100_000;

export type PermissionMode = "ask" | "accept_edits" | "bypass";
export type SessionState = "starting" | "idle" | "prompting" | "restarting" | "stopped" | "crashed";

/** POST /workspaces/{id}/agent-sessions */
export interface NewAgentSession {
  agent: string;
  prompt: string | null;
  permission_mode: PermissionMode;
}

export interface AgentSessionInfo {
  id: string;
  workspace_id: string;
  agent: string;
  permission_mode: PermissionMode;
  state: SessionState;
  acp_session_id: string | null;
  last_seq: number;
  created_at: string;
  /** Token totals of the session's model requests (the model proxy's count); null before one. */
  model_usage?: {
    requests: number;
    input_tokens: number;
    output_tokens: number;
    cache_creation_input_tokens: number;
    cache_read_input_tokens: number;
  } | null;
}

export interface AgentSessionList {
  sessions: AgentSessionInfo[];
}

// --- viewer frames: server → client ----------------------------------------------------------

export type SessionFrame =
  | {
      seq: number;
      type: "started";
      agent: string;
      acp_session_id: string;
      permission_mode: PermissionMode;
      initialize: Record<string, unknown>;
      agent_info: { name?: string; version?: string; title?: string } | null;
    }
  | { seq: number; type: "prompt"; text: string; prompt_id?: string | null }
  | { seq: number; type: "update"; update: SessionUpdate }
  | {
      seq: number;
      type: "permission_request";
      request_id: string;
      tool_call: ToolCallUpdate;
      options: PermissionOption[];
    }
  | {
      seq: number;
      type: "permission_resolved";
      request_id: string;
      outcome: "selected" | "cancelled";
      option_id: string | null;
      by: "viewer" | "timeout" | "cancel" | "stop";
    }
  | { seq: number; type: "turn_ended"; stop_reason: string }
  | {
      seq: number;
      type: "agent_error";
      code: "malformed_message" | "message_too_large" | "prompt_failed" | "prompt_timeout";
      message: string;
    }
  | {
      seq: number;
      type: "crashed";
      exit_code: number | null;
      stderr_tail: string;
      hint: string;
      /** true: a `restarting` frame follows; false (or absent, from an older agent): the end. */
      restarting?: boolean;
    }
  | {
      seq: number;
      type: "restarting";
      cause: "crashed" | "agent_restarted";
      attempt: number;
      limit: number;
      delay_seconds: number;
    }
  | { seq: number; type: "resumed"; acp_session_id: string; context: "loaded" | "lost" }
  | { seq: number; type: "stopped"; reason: "requested" | "workspace_stopped" };

/** About this connection only: no `seq`. */
export type ConnectionFrame =
  | { type: "gap"; after: number; first_seq: number }
  | { type: "error"; code: "bad_frame" | "unknown_request" | "frame_too_large" | "rate_limited"; message: string };

export type ServerFrame = SessionFrame | ConnectionFrame;

// --- viewer frames: client → server ----------------------------------------------------------

export interface AnswerPermission {
  type: "answer_permission";
  request_id: string;
  option_id: string;
}

export type ClientFrame = AnswerPermission;

/** Every frame's fields, in the wire's order: the decoder checks them, the golden test
 * checks them against the agent's files. */
export const FIELDS: { [K in ServerFrame["type"] | ClientFrame["type"]]: readonly string[] } = {
  started: ["seq", "type", "agent", "acp_session_id", "permission_mode", "initialize", "agent_info"],
  prompt: ["seq", "type", "text", "prompt_id"],
  update: ["seq", "type", "update"],
  permission_request: ["seq", "type", "request_id", "tool_call", "options"],
  permission_resolved: ["seq", "type", "request_id", "outcome", "option_id", "by"],
  turn_ended: ["seq", "type", "stop_reason"],
  agent_error: ["seq", "type", "code", "message"],
  crashed: ["seq", "type", "exit_code", "stderr_tail", "hint", "restarting"],
  restarting: ["seq", "type", "cause", "attempt", "limit", "delay_seconds"],
  resumed: ["seq", "type", "acp_session_id", "context"],
  stopped: ["seq", "type", "reason"],
  gap: ["type", "after", "first_seq"],
  error: ["type", "code", "message"],
  answer_permission: ["type", "request_id", "option_id"],
};

/** Fields an agent older than the page may leave out (nodes update after the control plane). */
export const OPTIONAL_FIELDS: { readonly [K in keyof typeof FIELDS]?: readonly string[] } = {
  crashed: ["restarting"],
  prompt: ["prompt_id"],
};

export const SERVER_TYPES: ReadonlySet<string> = new Set(Object.keys(FIELDS).filter((t) => t !== "answer_permission"));

export { ProtocolError };

/** Parse one text frame of the viewer WebSocket; throws ProtocolError on anything else. */
export function decodeServerFrame(text: string): ServerFrame {
  return checkServerFrame(decodeTypedObject(text, SERVER_TYPES));
}

/** `frame` as a ServerFrame when it has its type's fields (a project chat's messages carry
 * these frames inside); throws ProtocolError otherwise. */
export function checkServerFrame(frame: Record<string, unknown> & { type: string }): ServerFrame {
  const type = frame.type;
  if (!SERVER_TYPES.has(type)) throw new ProtocolError(`unknown frame type ${JSON.stringify(type)}`);
  const optional = OPTIONAL_FIELDS[type as ServerFrame["type"]] ?? [];
  const missing = FIELDS[type as ServerFrame["type"]].filter((name) => !(name in frame) && !optional.includes(name));
  if (missing.length > 0) throw new ProtocolError(`a ${type} frame without ${missing.join(", ")}`);
  if ("seq" in frame && (typeof frame.seq !== "number" || frame.seq < 1)) {
    throw new ProtocolError(`a ${type} frame with seq ${JSON.stringify(frame.seq)}`);
  }
  return frame as unknown as ServerFrame;
}

export function answerPermission(requestId: string, optionId: string): string {
  const frame: AnswerPermission = { type: "answer_permission", request_id: requestId, option_id: optionId };
  return JSON.stringify(frame);
}
