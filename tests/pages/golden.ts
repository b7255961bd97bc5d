// The golden frames (tests/golden/{terminal,agent_session,project_chat}/*.json),
// shared with tests/agent and tests/worker so that the browser and the agent cannot drift.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const GOLDEN_ROOT = join(import.meta.dirname, "..", "golden");
export type Protocol = "terminal" | "agent_session" | "project_chat";

export interface Golden {
  name: string;
  direction: "client_to_server" | "server_to_client";
  description: string;
  frame?: Record<string, unknown> & { type: string };
  binary?: { hex: string; base64: string };
  fields?: { kind: "input" | "output"; session_id: string; offset?: number; data_hex: string };
}

export function goldens(protocol: Protocol = "terminal"): Golden[] {
  const dir = join(GOLDEN_ROOT, protocol);
  return readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => ({ name: file, ...JSON.parse(readFileSync(join(dir, file), "utf8")) }));
}

export function golden(name: string, protocol: Protocol = "terminal"): Golden {
  const found = goldens(protocol).find((g) => g.name === `${name}.json`);
  if (!found) throw new Error(`no golden file ${name}.json`);
  return found;
}

export function fromHex(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
