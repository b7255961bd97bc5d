// The project chat's viewer frames (pages/src/projects/protocol.ts) against every golden frame
// of tests/golden/project_chat/ (written from wire/chat.py), and how a chat's messages become
// the conversation the project page shows (the Agent tab's reducer, ordered by project seq).
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { beforeAll, describe, expect, it } from "vitest";

import { ConversationView } from "../../pages/src/agent/ConversationView";
import { loadMarkdown } from "../../pages/src/agent/markdownLoader";
import { ProtocolError } from "../../pages/src/jsonFrame";
import { applyMessage, chatConversation, mergeMessages } from "../../pages/src/projects/chatConversation";
import {
  CHAT_FIELDS,
  type ChatMessage,
  FIELDS,
  MESSAGE_FIELDS,
  checkMessage,
  decodeViewerFrame,
} from "../../pages/src/projects/protocol";
import { type Golden, goldens } from "./golden";

const all = goldens("project_chat");
const byName = (name: string) => all.find((g) => g.name === `${name}.json`)!.frame!;
const golden = (name: string) => (byName(name) as unknown as { message: ChatMessage }).message;

describe("project-chat golden files", () => {
  it("cover every frame type the page declares, and no other", () => {
    expect(new Set(all.map((g) => g.frame!.type))).toEqual(new Set(Object.keys(FIELDS)));
  });

  it.each(all.map((g) => [g.name, g] as [string, Golden]))("%s has exactly the declared fields", (_, g) => {
    const frame = g.frame!;
    expect(Object.keys(frame)).toEqual(FIELDS[frame.type as keyof typeof FIELDS]);
    if (frame.type === "message") expect(Object.keys(frame.message as object)).toEqual([...MESSAGE_FIELDS]);
    if (frame.type === "chat") expect(Object.keys(frame.chat as object)).toEqual([...CHAT_FIELDS]);
  });

  it.each(all.map((g) => [g.name, g] as [string, Golden]))("%s decodes to itself", (_, g) => {
    expect(decodeViewerFrame(JSON.stringify(g.frame))).toEqual(g.frame);
  });
});

describe("the decoder refuses what is not a frame", () => {
  const prompt = byName("message-prompt") as unknown as { message: Record<string, unknown> };
  const chunk = byName("message-agent-chunk") as unknown as { message: { frame: Record<string, unknown> } };
  it.each([
    ["not JSON", "{"],
    ["an unknown type", JSON.stringify({ type: "hello" })],
    ["a message without its message", JSON.stringify({ type: "message" })],
    ["a message without a seq", JSON.stringify({ type: "message", message: { ...prompt.message, seq: undefined } })],
    ["a message with seq 0", JSON.stringify({ type: "message", message: { ...prompt.message, seq: 0 } })],
    ["a run message without its step", JSON.stringify({ type: "message", message: { ...golden("message-run-step"), frame: { type: "run", run_id: "r1" } } })],
    ["an agent update without its update", JSON.stringify({ type: "message", message: { ...chunk.message, frame: { seq: 3, type: "update" } } })],
    ["a chat without its status", JSON.stringify({ type: "chat", chat: { id: "c1" } })],
  ])("%s", (_, text) => {
    expect(() => decodeViewerFrame(text)).toThrow(ProtocolError);
  });

  it("lets a truncated frame through as it is (only its type and a prefix are kept)", () => {
    expect(checkMessage(golden("message-truncated")).truncated).toBe(true);
  });
});

describe("a chat's messages as a conversation", () => {
  const history = [
    "message-prompt",
    "message-run-step",
    "message-started",
    "message-agent-chunk",
    "message-tool-call",
    "message-permission-request",
  ].map(golden);

  it("shows the prompt, the run's progress, the answer, the tool and the question in seq order", () => {
    const c = chatConversation(history);
    expect(c.items.map((i) => i.kind)).toEqual(["prompt", "run", "message", "tool", "permission"]);
    expect(c.items[0]).toMatchObject({ text: "What is in notes.txt?" });
    expect(c.items[2]).toMatchObject({ text: "It holds **three** lines." });
    expect(c.lastSeq).toBe(7); // the project's seq, not the agent's
  });

  it("keeps one progress card per run, a step's newer status replacing the older", () => {
    const c = chatConversation([golden("message-run-step"), golden("message-run-failed")]);
    expect(c.items).toHaveLength(1);
    expect(c.items[0]).toMatchObject({
      kind: "run",
      runId: "r1",
      steps: [{ step: "workspace", status: "failed", detail: expect.stringContaining("Settings") }],
    });
  });

  it("applies a replayed message once: a reconnect that overlaps shows nothing twice", () => {
    const once = chatConversation(history);
    const again = history.reduce(applyMessage, once);
    expect(again).toBe(once);
  });

  it("orders by the project seq: a second session's frames restart their own seq and still show", () => {
    const chunk = golden("message-agent-chunk");
    const second: ChatMessage = {
      ...chunk,
      seq: 20,
      id: "s2:3",
      frame: { seq: 3, type: "update", update: { sessionUpdate: "agent_message_chunk", messageId: "m9", content: { type: "text", text: "Again." } } },
    };
    const c = chatConversation([...history, second]);
    expect(c.items.at(-1)).toMatchObject({ kind: "message", text: "Again." });
  });

  it("marks a truncated message instead of reading its prefix", () => {
    const c = chatConversation([golden("message-truncated")]);
    expect(c.items).toEqual([{ kind: "truncated", seq: 8, role: "tool" }]);
  });

  it("skips a frame type newer than the page", () => {
    const future: ChatMessage = { ...golden("message-started"), seq: 9, frame: { seq: 2, type: "hologram" } as never };
    const c = chatConversation([...history, future]);
    expect(c.items).toHaveLength(5);
    expect(c.lastSeq).toBe(9);
  });

  it("builds the same conversation from pages loaded newest first as from the whole chat", () => {
    const newest = history.slice(3);
    const older = history.slice(0, 3);
    expect(chatConversation(mergeMessages(older, newest))).toEqual(chatConversation(history));
    expect(mergeMessages(history, history.slice(2))).toEqual(history);
  });
});

const render = (messages: ChatMessage[]) =>
  renderToStaticMarkup(
    createElement(ConversationView, { conversation: chatConversation(messages), answered: {}, onAnswer: () => {} }),
  );

describe("a chat shown before the markdown renderer has loaded", () => {
  it("shows the agent's answer as plain text, all of it", () => {
    const html = render([golden("message-agent-chunk")]);
    expect(html).toContain('data-testid="agent-message"');
    expect(html).toContain("**three**");
    expect(html).not.toContain("<strong>");
  });
});

describe("a chat as the page shows it", () => {
  beforeAll(() => loadMarkdown());

  it("shows a run's steps inline, a failure with what to do", () => {
    const html = render([golden("message-prompt"), golden("message-run-failed")]);
    expect(html).toContain("What is in notes.txt?");
    expect(html).toContain('aria-label="Run progress"');
    expect(html).toContain('data-status="failed"');
    expect(html).toContain("add a Hetzner token in Settings");
  });

  it("says a truncated message was left out, and renders the rest with the Agent tab's parts", () => {
    const html = render([golden("message-agent-chunk"), golden("message-permission-request"), golden("message-truncated")]);
    expect(html).toContain("<strong>three</strong>");
    expect(html).toContain("Write notes.txt");
    expect(html).toContain("too large to keep whole");
  });
});
