// The SPA's terminal codec against every golden frame of the agent (docs/protocols/terminal.md).
import { describe, expect, it } from "vitest";

import {
  type ClientFrame,
  MAX_INPUT_CHUNK_BYTES,
  ProtocolError,
  decodeOutput,
  decodeServerFrame,
  encodeClientFrame,
  encodeInput,
  encodeInputChunks,
  frames,
} from "../../pages/src/terminal/protocol";
import { type Golden, fromHex, golden, goldens, toHex } from "./golden";

/** Build the client's frame for a golden request with the client's own builder. */
function build(frame: Record<string, unknown>): ClientFrame {
  const f = frame as Record<string, never>;
  switch (frame.type) {
    case "create":
      return frames.create(f.request_id, f.cols, f.rows, f.name, f.session_id);
    case "attach":
      return frames.attach(f.request_id, f.session_id, f.offset);
    case "detach":
      return frames.detach(f.request_id, f.session_id);
    case "close":
      return frames.close(f.request_id, f.session_id);
    case "rename":
      return frames.rename(f.request_id, f.session_id, f.name);
    case "resize":
      return frames.resize(f.request_id, f.session_id, f.cols, f.rows);
    case "input":
      return frames.input(f.request_id, f.session_id, f.data);
    case "list":
      return frames.list(f.request_id);
    default:
      throw new Error(`the client has no builder for ${String(frame.type)}`);
  }
}

const all = goldens();
const jsonRequests = all.filter((g) => g.direction === "client_to_server" && g.frame);
const jsonReplies = all.filter((g) => g.direction === "server_to_client" && g.frame);
const binaryFrames = all.filter((g) => g.binary);

describe("golden files", () => {
  it("are all covered by one of the checks below", () => {
    expect(all.length).toBeGreaterThanOrEqual(20);
    for (const g of all) {
      expect([...jsonRequests, ...jsonReplies, ...binaryFrames]).toContain(g);
    }
  });
});

describe("JSON requests encode exactly as the golden frames", () => {
  it.each(jsonRequests.map((g) => [g.name, g] as [string, Golden]))("%s", (_, g) => {
    // Same fields, same order, same types: the exact text the agent's golden test parses.
    expect(encodeClientFrame(build(g.frame!))).toBe(JSON.stringify(g.frame));
  });
});

describe("JSON replies decode to the golden frames", () => {
  it.each(jsonReplies.map((g) => [g.name, g] as [string, Golden]))("%s", (_, g) => {
    const text = JSON.stringify(g.frame);
    expect(decodeServerFrame(text)).toEqual(g.frame);
  });

  it("refuses what is not a known frame", () => {
    expect(() => decodeServerFrame("not json")).toThrow(ProtocolError);
    expect(() => decodeServerFrame("[1]")).toThrow(ProtocolError);
    expect(() => decodeServerFrame('{"type":"surprise"}')).toThrow(ProtocolError);
    expect(() => decodeServerFrame('{"session_id":"x"}')).toThrow(ProtocolError);
  });
});

describe("binary frames", () => {
  it.each(binaryFrames.map((g) => [g.name, g] as [string, Golden]))("%s round-trips", (_, g) => {
    const bytes = fromHex(g.binary!.hex);
    expect(Buffer.from(bytes).toString("base64")).toBe(g.binary!.base64);
    const fields = g.fields!;
    if (fields.kind === "input") {
      expect(g.direction).toBe("client_to_server");
      expect(toHex(encodeInput(fields.session_id, fromHex(fields.data_hex)))).toBe(g.binary!.hex);
    } else {
      expect(g.direction).toBe("server_to_client");
      const decoded = decodeOutput(bytes);
      expect(decoded.sessionId).toBe(fields.session_id);
      expect(decoded.offset).toBe(fields.offset);
      expect(toHex(decoded.data)).toBe(fields.data_hex);
    }
  });

  it("a character split across two output frames decodes with one streaming decoder", () => {
    const first = decodeOutput(fromHex(golden("binary-output-utf8-split-1").binary!.hex));
    const second = decodeOutput(fromHex(golden("binary-output-utf8-split-2").binary!.hex));
    expect(second.offset).toBe(first.offset + first.data.length);
    const decoder = new TextDecoder();
    const text = decoder.decode(first.data, { stream: true }) + decoder.decode(second.data, { stream: true });
    expect(text).toBe("price: € 3\r\n");
  });

  it("reads offsets above 2^32 exactly", () => {
    const frame = fromHex("0101" + "61" + "0000001234567890" + "7a");
    expect(decodeOutput(frame)).toMatchObject({ sessionId: "a", offset: 0x1234567890 });
  });

  it("refuses truncated or foreign frames", () => {
    expect(() => decodeOutput(fromHex("02"))).toThrow(ProtocolError);
    expect(() => decodeOutput(fromHex("010c3366"))).toThrow(ProtocolError);
    expect(() => decodeOutput(fromHex("0100"))).toThrow(ProtocolError);
  });

  it("refuses session ids the agent would refuse", () => {
    expect(() => encodeInput("", new Uint8Array())).toThrow(ProtocolError);
    expect(() => encodeInput("a b", new Uint8Array())).toThrow(ProtocolError);
    expect(() => encodeInput("x".repeat(65), new Uint8Array())).toThrow(ProtocolError);
  });

  it("splits a large paste into frames under the agent's limit, bytes unchanged", () => {
    const paste = new Uint8Array(MAX_INPUT_CHUNK_BYTES * 2 + 5).map((_, i) => i % 251);
    const chunks = encodeInputChunks("s1", paste);
    expect(chunks).toHaveLength(3);
    const joined = Buffer.concat(chunks.map((c) => Buffer.from(c.subarray(4))));
    expect(Buffer.compare(joined, Buffer.from(paste))).toBe(0);
    for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(65536);
  });
});
