// How frames become the conversation (pages/src/agent/conversation.ts), with the golden
// frames of the agent where there is one.
import { describe, expect, it } from "vitest";

import { type Conversation, applyFrame, conversationOf, openRequests } from "../../pages/src/agent/conversation";
import type { ServerFrame, SessionFrame } from "../../pages/src/agent/protocol";
import { golden } from "./golden";

const frame = (name: string) => golden(name, "agent_session").frame as unknown as ServerFrame;

let seq = 0;
function next<T extends Omit<SessionFrame, "seq">>(body: T): SessionFrame {
  seq += 1;
  return { seq, ...body } as unknown as SessionFrame;
}

function chunk(kind: "agent_message_chunk" | "agent_thought_chunk", text: string, messageId = "m1"): SessionFrame {
  return next({ type: "update", update: { sessionUpdate: kind, messageId, content: { type: "text", text } } });
}

function tool(update: Record<string, unknown>): SessionFrame {
  return next({ type: "update", update } as never);
}

describe("a turn", () => {
  it("streams the answer into one message, the thinking apart, and ends idle", () => {
    seq = 1;
    const frames = [
      frame("started"),
      next({ type: "prompt", text: "hi" }),
      chunk("agent_thought_chunk", "let me "),
      chunk("agent_thought_chunk", "think"),
      chunk("agent_message_chunk", "Hello, "),
      chunk("agent_message_chunk", "**world**"),
    ];
    const during = conversationOf(frames);
    expect(during.state).toBe("prompting");
    expect(during.items.map((i) => i.kind)).toEqual(["prompt", "thought", "message"]);
    expect(during.items[2]).toMatchObject({ text: "Hello, **world**" });
    const after = applyFrame(during, next({ type: "turn_ended", stop_reason: "end_turn" }));
    expect(after.state).toBe("idle");
    expect(after.items).toHaveLength(3); // a normal end adds nothing
    expect(after.agent).toEqual({ name: "@agentclientprotocol/claude-agent-acp", version: "0.101.0" });
  });

  it("starts a new message when the message id changes", () => {
    seq = 10;
    const c = conversationOf([chunk("agent_message_chunk", "one", "a"), chunk("agent_message_chunk", "two", "b")]);
    expect(c.items.map((i) => (i.kind === "message" ? i.text : i.kind))).toEqual(["one", "two"]);
  });

  it("says why a turn ended otherwise", () => {
    seq = 20;
    const c = conversationOf([next({ type: "prompt", text: "x" }), next({ type: "turn_ended", stop_reason: "cancelled" })]);
    expect(c.items.at(-1)).toMatchObject({ kind: "turn_ended", stopReason: "cancelled" });
    expect(c.state).toBe("idle");
  });
});

describe("tool calls", () => {
  it("are one card per id, updated in place with status and output", () => {
    seq = 30;
    const c = conversationOf([
      frame("update-tool-call"),
      chunk("agent_message_chunk", "between"),
      tool({ sessionUpdate: "tool_call_update", toolCallId: "toolu_01", status: "completed", title: null }),
      tool({
        sessionUpdate: "tool_call_update",
        toolCallId: "toolu_02",
        status: "in_progress",
        content: [{ type: "content", content: { type: "text", text: "out" } }],
      }),
    ]);
    const cards = c.items.filter((i) => i.kind === "tool");
    expect(cards).toHaveLength(2);
    expect(cards[0]).toMatchObject({ call: { toolCallId: "toolu_01", title: "Write out.txt", status: "completed" } });
    // The diff the tool call carried is kept (an update without content does not erase it).
    expect(cards[0]).toMatchObject({ call: { content: [{ type: "diff", path: "/workspaces/repo/out.txt" }] } });
    // An update for a call never announced still gets a card.
    expect(cards[1]).toMatchObject({ call: { toolCallId: "toolu_02", title: "Tool call", status: "in_progress" } });
  });
});

describe("the plan", () => {
  it("is replaced whole within a turn, and a new turn gets its own", () => {
    seq = 40;
    const plan = (status: string) =>
      next({ type: "update", update: { sessionUpdate: "plan", entries: [{ content: "a", priority: "high", status }] } } as never);
    const c = conversationOf([next({ type: "prompt", text: "1" }), plan("pending"), plan("completed"), next({ type: "prompt", text: "2" }), plan("pending")]);
    const plans = c.items.filter((i) => i.kind === "plan");
    expect(plans).toHaveLength(2);
    expect(plans[0]).toMatchObject({ entries: [{ status: "completed" }] });
  });
});

describe("permission requests", () => {
  it("stay open until resolved, then say the outcome and who answered", () => {
    const asked = conversationOf([frame("permission-request")]);
    expect(openRequests(asked).map((r) => r.requestId)).toEqual(["perm-1"]);
    const answered = applyFrame(asked, frame("permission-resolved"));
    expect(openRequests(answered)).toEqual([]);
    expect(answered.items[0]).toMatchObject({ resolved: { outcome: "selected", optionId: "allow-once", by: "viewer" } });
    // A resolution for a request this page never saw changes nothing but the seq.
    const other = applyFrame(asked, frame("permission-cancelled"));
    expect(openRequests(other)).toHaveLength(1);
  });
});

describe("the session's end and the replay", () => {
  it("crashed and stopped end the session with their details", () => {
    const crashed = conversationOf([frame("started"), frame("crashed")]);
    expect(crashed.state).toBe("crashed");
    expect(crashed.items.at(-1)).toMatchObject({ kind: "crashed", exitCode: 137, stderrTail: "Error: out of memory\n" });
    expect(conversationOf([frame("started"), frame("stopped")]).state).toBe("stopped");
  });

  it("a crash the gateway recovers from restarts, then resumes (with or without context)", () => {
    seq = 60;
    const crash = next({ type: "crashed", exit_code: 137, stderr_tail: "", hint: "restarting", restarting: true });
    const restarting = next({ type: "restarting", cause: "crashed", attempt: 1, limit: 3, delay_seconds: 1 });
    const during = conversationOf([frame("started"), crash, restarting]);
    expect(during.state).toBe("restarting");
    const lost = applyFrame(during, next({ type: "resumed", acp_session_id: "new", context: "lost" }));
    expect(lost.state).toBe("idle");
    expect(lost.items.at(-1)).toEqual({ kind: "resumed", seq: 63, contextLost: true });
  });

  it("ignores frames it already has, so an overlapping replay shows nothing twice", () => {
    seq = 50;
    const frames = [next({ type: "prompt", text: "x" }), chunk("agent_message_chunk", "a"), chunk("agent_message_chunk", "b")];
    const once = conversationOf(frames);
    const twice = frames.reduce<Conversation>(applyFrame, once);
    expect(twice).toEqual(once);
    expect(once.lastSeq).toBe(53);
  });

  it("notes a gap, and connection errors leave the conversation alone", () => {
    const c = conversationOf([frame("gap"), frame("error")]);
    expect(c.items).toEqual([{ kind: "gap", after: 3, firstSeq: 120 }]);
    expect(c.lastSeq).toBe(0);
  });

  it("an agent error is a note in the flow", () => {
    expect(conversationOf([frame("agent-error")]).items[0]).toMatchObject({ kind: "agent_error", code: "malformed_message" });
  });
});
