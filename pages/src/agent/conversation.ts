/**
 * How a session's frames become the conversation the page shows: one pure reducer, so a
 * page that reconnects (or reloads and replays from seq 0) builds exactly the same thing.
 *
 *   prompt                      → a user message; the session is prompting
 *   agent_message_chunk         → appended to the assistant message being written
 *   agent_thought_chunk         → appended to the thought being written (shown collapsed)
 *   tool_call / …_update        → one card per toolCallId, its fields merged as they come
 *   plan                        → the turn's plan, replaced whole by each update (ACP)
 *   permission_request/resolved → a question with the agent's options, then who answered
 *   turn_ended                  → idle again (a turn that did not end normally says why)
 *   agent_error, crashed, gap   → notes in the flow; crashed and stopped end the session
 *   restarting, resumed         → a crash the gateway recovers from: restarting, then idle
 *   run (project chats only)    → one progress card per run, a line per step
 *
 * A frame whose seq is not above the last one applied is ignored: a replay that overlaps
 * what the page has never shows anything twice. The Agent tab orders by the session's own
 * seq (`applyFrame`); a project chat by the project's seq of each message (`applyAt`), as
 * its frames come from several sessions and from the control plane.
 */

import type { ContentBlock, PlanEntry, ToolCall, ToolCallUpdate } from "@agentclientprotocol/sdk";

import type { ControlFrame, RunStep } from "../projects/protocol";
import type { PermissionMode, ServerFrame, SessionFrame, SessionState } from "./protocol";

export type ResolvedBy = Extract<SessionFrame, { type: "permission_resolved" }>["by"];

export interface PermissionItem {
  kind: "permission";
  seq: number;
  requestId: string;
  toolCall: ToolCallUpdate;
  options: Extract<SessionFrame, { type: "permission_request" }>["options"];
  resolved: { outcome: "selected" | "cancelled"; optionId: string | null; by: ResolvedBy } | null;
}

export type Item =
  | { kind: "prompt"; seq: number; text: string }
  | { kind: "message"; seq: number; text: string; messageId: string | null }
  | { kind: "thought"; seq: number; text: string; messageId: string | null }
  | { kind: "tool"; seq: number; call: ToolCall }
  | { kind: "plan"; seq: number; entries: PlanEntry[] }
  | PermissionItem
  | { kind: "turn_ended"; seq: number; stopReason: string }
  | { kind: "agent_error"; seq: number; code: string; message: string }
  | { kind: "crashed"; seq: number; exitCode: number | null; stderrTail: string; hint: string; restarting: boolean }
  | { kind: "restarting"; seq: number; cause: string; attempt: number; limit: number; delaySeconds: number }
  | { kind: "resumed"; seq: number; contextLost: boolean }
  | { kind: "stopped"; seq: number; reason: string }
  | { kind: "run"; seq: number; runId: string; steps: RunStep[] }
  | { kind: "truncated"; seq: number; role: string }
  | { kind: "gap"; after: number; firstSeq: number };

/** Stands for a project chat's message kept cut short (over wire.chat.MAX_MESSAGE_BYTES): its
 * frame is only a prefix, so the page says so instead of reading it. */
export interface TruncatedMark {
  type: "truncated";
  role: string;
}

export interface Conversation {
  items: Item[];
  /** The newest frame applied: a viewer reconnects with `after=lastSeq`. */
  lastSeq: number;
  state: SessionState;
  permissionMode: PermissionMode | null;
  agent: { name?: string; version?: string } | null;
}

export function emptyConversation(state: SessionState = "starting"): Conversation {
  return { items: [], lastSeq: 0, state, permissionMode: null, agent: null };
}

/** `conversation` with `frame` applied (a new object; the old one is left as it was). */
export function applyFrame(conversation: Conversation, frame: ServerFrame): Conversation {
  if (frame.type === "error") return conversation; // about one request of this viewer
  if (frame.type === "gap") {
    const gap: Item = { kind: "gap", after: frame.after, firstSeq: frame.first_seq };
    return { ...conversation, items: [...conversation.items, gap] };
  }
  return applyAt(conversation, frame.seq, frame);
}

/** `conversation` with `frame` applied as number `seq` of the stream (its own seq, if it has
 * one, is the agent session's and does not order a project chat). */
export function applyAt(conversation: Conversation, seq: number, frame: SessionFrame | ControlFrame | TruncatedMark): Conversation {
  if (seq <= conversation.lastSeq) return conversation;
  const next = { ...conversation, lastSeq: seq };
  switch (frame.type) {
    case "started":
      return {
        ...next,
        state: next.state === "starting" ? "idle" : next.state,
        permissionMode: frame.permission_mode,
        agent: frame.agent_info ?? { name: frame.agent },
      };
    case "prompt":
      return { ...next, state: "prompting", items: [...next.items, { kind: "prompt", seq, text: frame.text }] };
    case "update":
      return { ...next, items: applyUpdate(next.items, seq, frame.update) };
    case "permission_request":
      return {
        ...next,
        items: [
          ...next.items,
          { kind: "permission", seq, requestId: frame.request_id, toolCall: frame.tool_call, options: frame.options, resolved: null },
        ],
      };
    case "permission_resolved": {
      const resolved = { outcome: frame.outcome, optionId: frame.option_id, by: frame.by };
      const items = next.items.map((item) =>
        item.kind === "permission" && item.requestId === frame.request_id ? { ...item, resolved } : item,
      );
      return { ...next, items };
    }
    case "turn_ended": {
      const state = next.state === "prompting" ? "idle" : next.state;
      if (frame.stop_reason === "end_turn") return { ...next, state };
      return { ...next, state, items: [...next.items, { kind: "turn_ended", seq, stopReason: frame.stop_reason }] };
    }
    case "agent_error":
      return { ...next, items: [...next.items, { kind: "agent_error", seq, code: frame.code, message: frame.message }] };
    case "crashed": {
      const restarting = frame.restarting === true;
      const item: Item = { kind: "crashed", seq, exitCode: frame.exit_code, stderrTail: frame.stderr_tail, hint: frame.hint, restarting };
      return { ...next, state: restarting ? "restarting" : "crashed", items: [...next.items, item] };
    }
    case "restarting": {
      const { cause, attempt, limit } = frame;
      const item: Item = { kind: "restarting", seq, cause, attempt, limit, delaySeconds: frame.delay_seconds };
      return { ...next, state: "restarting", items: [...next.items, item] };
    }
    case "resumed":
      return { ...next, state: "idle", items: [...next.items, { kind: "resumed", seq, contextLost: frame.context === "lost" }] };
    case "stopped":
      return { ...next, state: "stopped", items: [...next.items, { kind: "stopped", seq, reason: frame.reason }] };
    case "run":
      return { ...next, items: mergeRunStep(next.items, seq, frame) };
    case "truncated":
      return { ...next, items: [...next.items, { kind: "truncated", seq, role: frame.role }] };
    default:
      return next; // a frame type newer than this page: skipped, never fatal
  }
}

/** Apply every frame in order. */
export function conversationOf(frames: ServerFrame[], state: SessionState = "starting"): Conversation {
  return frames.reduce(applyFrame, emptyConversation(state));
}

type Update = Extract<SessionFrame, { type: "update" }>["update"];

function applyUpdate(items: Item[], seq: number, update: Update): Item[] {
  switch (update.sessionUpdate) {
    case "agent_message_chunk":
      return appendChunk(items, seq, "message", update.content, update.messageId ?? null);
    case "agent_thought_chunk":
      return appendChunk(items, seq, "thought", update.content, update.messageId ?? null);
    case "tool_call":
    case "tool_call_update":
      return mergeToolCall(items, seq, update);
    case "plan":
      return replacePlan(items, seq, update.entries);
    default:
      // The prompt frame already shows the user's text; modes, commands, usage and the
      // session's title change nothing in the conversation.
      return items;
  }
}

function appendChunk(
  items: Item[],
  seq: number,
  kind: "message" | "thought",
  content: ContentBlock,
  messageId: string | null,
): Item[] {
  const text = textOf(content);
  const last = items[items.length - 1];
  if (last && last.kind === kind && (messageId === null || last.messageId === null || last.messageId === messageId)) {
    return [...items.slice(0, -1), { ...last, text: last.text + text }];
  }
  return [...items, { kind, seq, text, messageId }];
}

/** The text of a content block, as markdown; what is not text is named. */
export function textOf(content: ContentBlock): string {
  switch (content.type) {
    case "text":
      return content.text;
    case "resource_link":
      return `[${content.title ?? content.name}](${content.uri})`;
    case "resource":
      return "text" in content.resource ? content.resource.text : `(${content.resource.uri})`;
    default:
      return `(${content.type})`;
  }
}

function mergeToolCall(items: Item[], seq: number, update: ToolCallUpdate | ToolCall): Item[] {
  const index = items.findIndex((item) => item.kind === "tool" && item.call.toolCallId === update.toolCallId);
  const fields = Object.fromEntries(
    Object.entries(update).filter(([name, value]) => name !== "sessionUpdate" && value !== null && value !== undefined),
  );
  if (index < 0) {
    const call = { title: "Tool call", ...fields } as ToolCall;
    return [...items, { kind: "tool", seq, call }];
  }
  const found = items[index] as Extract<Item, { kind: "tool" }>;
  const merged: Item = { ...found, call: { ...found.call, ...fields } as ToolCall };
  return [...items.slice(0, index), merged, ...items.slice(index + 1)];
}

function replacePlan(items: Item[], seq: number, entries: PlanEntry[]): Item[] {
  // One plan per turn: an update replaces the turn's plan where it first appeared.
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i];
    if (item.kind === "prompt") break;
    if (item.kind === "plan") return [...items.slice(0, i), { ...item, entries }, ...items.slice(i + 1)];
  }
  return [...items, { kind: "plan", seq, entries }];
}

function mergeRunStep(items: Item[], seq: number, frame: Extract<ControlFrame, { type: "run" }>): Item[] {
  // One card per run; a step's later status replaces its earlier one in place.
  const step: RunStep = { step: frame.step, status: frame.status, detail: frame.detail };
  const index = items.findIndex((item) => item.kind === "run" && item.runId === frame.run_id);
  if (index < 0) return [...items, { kind: "run", seq, runId: frame.run_id, steps: [step] }];
  const found = items[index] as Extract<Item, { kind: "run" }>;
  const at = found.steps.findIndex((s) => s.step === frame.step);
  const steps = at < 0 ? [...found.steps, step] : found.steps.map((s, i) => (i === at ? step : s));
  return [...items.slice(0, index), { ...found, steps }, ...items.slice(index + 1)];
}

/** The permission requests no one has answered yet. */
export function openRequests(conversation: Conversation): PermissionItem[] {
  return conversation.items.filter((item): item is PermissionItem => item.kind === "permission" && item.resolved === null);
}
