// A stand-in ACP agent on stdio, for fault injection: what it does on a prompt is what the
// prompt's text says. It runs on the container tools' Node, on this machine or in a
// workspace container.
//
//   malformed              a line that is not JSON, then the end of the turn
//   oversized              a line over the gateway's 16 MiB limit, then the end of the turn
//   crash                  a lot of stderr, then exit code 3 mid-turn
//   read PATH              fs/read_text_file PATH (lines 2-3), and say what came back
//   write PATH TEXT        fs/write_text_file PATH with TEXT
//   ask                    session/request_permission, and say the outcome
//   stubborn               ignore the end of stdin and SIGTERM from now on; never end the turn
//   anything else          say it back
import { createInterface } from "node:readline";

const OVERSIZED_BYTES = 17 * 1024 * 1024;
let nextId = 1000;
const waiting = new Map();

const send = (message) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...message }) + "\n");
const say = (sessionId, text) =>
  send({
    method: "session/update",
    params: { sessionId, update: { sessionUpdate: "agent_message_chunk", content: { type: "text", text } } },
  });
const ask = (method, params) =>
  new Promise((resolve) => {
    const id = nextId++;
    waiting.set(id, resolve);
    send({ id, method, params });
  });

async function prompt(id, params) {
  const sessionId = params.sessionId;
  const [word, ...rest] = params.prompt[0].text.split(" ");
  if (word === "crash") {
    process.stderr.write("boom\n".repeat(5000) + "the last words\n", () => process.exit(3));
    return;
  }
  if (word === "stubborn") {
    process.on("SIGTERM", () => {});
    setInterval(() => {}, 1000);
    return;
  }
  if (word === "malformed") process.stdout.write("this is not json\n");
  else if (word === "oversized") process.stdout.write('{"pad": "' + "x".repeat(OVERSIZED_BYTES) + '"}\n');
  else if (word === "read") {
    const answer = await ask("fs/read_text_file", { sessionId, path: rest[0], line: 2, limit: 2 });
    say(sessionId, JSON.stringify(answer));
  } else if (word === "write") {
    const answer = await ask("fs/write_text_file", { sessionId, path: rest[0], content: rest.slice(1).join(" ") });
    say(sessionId, JSON.stringify(answer));
  } else if (word === "ask") {
    const options = [
      { optionId: "allow", name: "Allow", kind: "allow_once" },
      { optionId: "deny", name: "Deny", kind: "reject_once" },
    ];
    const toolCall = { toolCallId: "tool-1", title: "Do something", status: "pending" };
    const answer = await ask("session/request_permission", { sessionId, toolCall, options });
    say(sessionId, JSON.stringify(answer.result.outcome));
    if (answer.result.outcome.outcome === "cancelled") {
      send({ id, result: { stopReason: "cancelled" } });
      return;
    }
  } else say(sessionId, params.prompt[0].text);
  send({ id, result: { stopReason: "end_turn" } });
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  const message = JSON.parse(line);
  if (message.method === undefined) {
    waiting.get(message.id)?.(message);
    waiting.delete(message.id);
    return;
  }
  const { id, method, params } = message;
  if (method === "initialize") send({ id, result: { protocolVersion: 1, agentInfo: { name: "stand-in", version: "1" } } });
  else if (method === "session/new") send({ id, result: { sessionId: "stand-in-1" } });
  else if (method === "session/set_mode") send({ id, result: {} });
  else if (method === "session/prompt") prompt(id, params);
  else if (method !== "session/cancel") send({ id, error: { code: -32601, message: `no ${method}` } });
});
lines.on("close", () => {
  if (!process.listenerCount("SIGTERM")) process.exit(0);
});
