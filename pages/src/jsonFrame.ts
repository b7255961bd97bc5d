/**
 * What the terminal and agent WebSocket protocols share: JSON text frames, one object each,
 * discriminated by "type" (docs/protocols/terminal.md, docs/protocols/agent-sessions.md).
 */

export class ProtocolError extends Error {}

/** The object one JSON text frame carries, when its `type` is one of `types`; throws ProtocolError otherwise. */
export function decodeTypedObject(text: string, types: ReadonlySet<string>): Record<string, unknown> & { type: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProtocolError(`not JSON: ${text.slice(0, 80)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("a frame must be a JSON object");
  }
  const frame = value as Record<string, unknown>;
  if (typeof frame.type !== "string" || !types.has(frame.type)) {
    throw new ProtocolError(`unknown frame type ${JSON.stringify(frame.type)}`);
  }
  return frame as Record<string, unknown> & { type: string };
}
