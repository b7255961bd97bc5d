// The SPA's agent-session frames (pages/src/agent/protocol.ts) against every golden frame of
// the agent (tests/golden/agent_session/, written from wire/agent_session.py): a frame type
// or a field added, renamed or removed on either side fails here.
import { describe, expect, it } from "vitest";

import { FIELDS, OPTIONAL_FIELDS, ProtocolError, answerPermission, decodeServerFrame } from "../../pages/src/agent/protocol";
import { type Golden, goldens } from "./golden";

const all = goldens("agent_session");
const replies = all.filter((g) => g.direction === "server_to_client");
const requests = all.filter((g) => g.direction === "client_to_server");

describe("agent-session golden files", () => {
  it("are all of a frame type the page declares", () => {
    expect(all.length).toBeGreaterThanOrEqual(14);
    const declared = new Set(Object.keys(FIELDS));
    for (const g of all) expect(declared).toContain(g.frame!.type);
  });

  it.each(all.map((g) => [g.name, g] as [string, Golden]))("%s has exactly the declared fields", (_, g) => {
    // In the wire's order; only a field an older agent may leave out can be missing.
    const frame = g.frame!;
    const type = frame.type as keyof typeof FIELDS;
    const optional = OPTIONAL_FIELDS[type] ?? [];
    const expected = FIELDS[type].filter((name) => name in frame || !optional.includes(name));
    expect(Object.keys(frame)).toEqual(expected);
  });

  it.each(replies.map((g) => [g.name, g] as [string, Golden]))("%s decodes to itself", (_, g) => {
    expect(decodeServerFrame(JSON.stringify(g.frame))).toEqual(g.frame);
  });

  it.each(requests.map((g) => [g.name, g] as [string, Golden]))("%s is what the page sends", (_, g) => {
    const frame = g.frame as unknown as { request_id: string; option_id: string };
    expect(answerPermission(frame.request_id, frame.option_id)).toBe(JSON.stringify(g.frame));
  });
});

describe("the decoder refuses what is not a frame", () => {
  it.each([
    ["not JSON", "nope"],
    ["an array", "[1]"],
    ["an unknown type", '{"type":"surprise","seq":1}'],
    ["a client frame", '{"type":"answer_permission","request_id":"r","option_id":"o"}'],
    ["a missing field", '{"type":"prompt","seq":2}'],
    ["a seq below 1", '{"type":"prompt","seq":0,"text":"x"}'],
    ["a seq that is not a number", '{"type":"prompt","seq":"2","text":"x"}'],
  ])("%s", (_, text) => {
    expect(() => decodeServerFrame(text)).toThrow(ProtocolError);
  });
});
