/**
 * The browser's side of the project chat (docs/protocols/project-chat.md, wire/chat.py): the
 * history page, the viewer WebSocket's frames and the messages inside them, declared once
 * here. tests/pages/projectProtocol.test.ts checks every golden file of
 * tests/golden/project_chat/ against FIELDS below, so the two cannot drift.
 *
 * A message's frame is an agent session's frame (agent/protocol.ts, with the session's own
 * seq) or one the control plane adds (ControlFrame); the chat is ordered by the message's
 * project-wide `seq`.
 */

import { ProtocolError, decodeTypedObject } from "../jsonFrame";
import { SERVER_TYPES, type SessionFrame, checkServerFrame } from "../agent/protocol";

/** wire.chat.MAX_PAGE_MESSAGES: the most one GET of a chat's history returns. */
export const MAX_PAGE_MESSAGES = 500;

export type ChatStatus = "starting" | "active" | "stopped" | "failed";
export type MessageRole = "user" | "assistant" | "thinking" | "tool" | "plan" | "system";

/** One step of a chat's run (TaskRunner): workspace → workspace_ready → agent_session → linked. */
export interface RunStep {
  step: string;
  status: string;
  detail: string | null;
}

/** Frames the control plane adds to a chat itself. */
export type ControlFrame =
  | { type: "prompt"; text: string; prompt_id: string }
  | ({ type: "run"; run_id: string } & RunStep);

export interface ChatMessage {
  seq: number;
  id: string;
  chat_id: string;
  role: MessageRole;
  frame: SessionFrame | ControlFrame;
  /** Over wire.chat.MAX_MESSAGE_BYTES: `frame` is only its type and a prefix. */
  truncated: boolean;
  created_at: string;
}

export interface ChatInfo {
  id: string;
  project_id: string;
  topic: string;
  status: ChatStatus;
  workspace_id: string | null;
  agent_session_id: string | null;
  run_id: string | null;
  message_count: number;
  last_seq: number;
  created_at: string;
  last_activity_at: string;
}

/** GET /api/projects/{pid}/chats/{cid}/messages?before=&after=&limit= */
export interface MessagePage {
  messages: ChatMessage[];
  has_more: boolean;
}

export type ViewerFrame =
  | { type: "message"; message: ChatMessage }
  | { type: "chat"; chat: ChatInfo }
  | { type: "caught_up"; last_seq: number }
  | { type: "chat_deleted"; chat_id: string }
  | { type: "error"; code: string; message: string };

/** Every frame's fields, in the wire's order (the golden test checks them). */
export const FIELDS: { readonly [K in ViewerFrame["type"]]: readonly string[] } = {
  message: ["type", "message"],
  chat: ["type", "chat"],
  caught_up: ["type", "last_seq"],
  chat_deleted: ["type", "chat_id"],
  error: ["type", "code", "message"],
};
export const MESSAGE_FIELDS = ["seq", "id", "chat_id", "role", "frame", "truncated", "created_at"] as const;
export const CHAT_FIELDS = [
  "id",
  "project_id",
  "topic",
  "status",
  "workspace_id",
  "agent_session_id",
  "run_id",
  "message_count",
  "last_seq",
  "created_at",
  "last_activity_at",
] as const;
const CONTROL_FIELDS: Record<ControlFrame["type"], readonly string[]> = {
  prompt: ["type", "text", "prompt_id"],
  run: ["type", "run_id", "step", "status", "detail"],
};

const TYPES: ReadonlySet<string> = new Set(Object.keys(FIELDS));

/** Parse one text frame of the viewer WebSocket; throws ProtocolError on anything else. */
export function decodeViewerFrame(text: string): ViewerFrame {
  const frame = decodeTypedObject(text, TYPES);
  requireFields(frame, FIELDS[frame.type as ViewerFrame["type"]], `a ${frame.type} frame`);
  if (frame.type === "message") checkMessage(frame.message);
  if (frame.type === "chat") requireFields(frame.chat, CHAT_FIELDS, "a chat");
  return frame as unknown as ViewerFrame;
}

/** `value` as a ChatMessage (a history page's or a frame's); throws ProtocolError otherwise. */
export function checkMessage(value: unknown): ChatMessage {
  const message = requireFields(value, MESSAGE_FIELDS, "a message");
  if (typeof message.seq !== "number" || message.seq < 1) {
    throw new ProtocolError(`a message with seq ${JSON.stringify(message.seq)}`);
  }
  const frame = requireFields(message.frame, ["type"], `message ${message.seq}'s frame`);
  // A truncated frame is only a prefix; an agent frame newer than this page is skipped later.
  if (message.truncated === true || typeof frame.type !== "string") return message as unknown as ChatMessage;
  const control = CONTROL_FIELDS[frame.type as ControlFrame["type"]];
  if (control && !("seq" in frame)) requireFields(frame, control, `a ${frame.type} message`);
  else if (SERVER_TYPES.has(frame.type)) checkServerFrame(frame as Record<string, unknown> & { type: string });
  return message as unknown as ChatMessage;
}

function requireFields(value: unknown, fields: readonly string[], what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError(`${what} must be a JSON object`);
  }
  const missing = fields.filter((name) => !(name in value));
  if (missing.length > 0) throw new ProtocolError(`${what} without ${missing.join(", ")}`);
  return value as Record<string, unknown>;
}
