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
//   run [-limit N] LINE    terminal/create of the shell line LINE (no args), wait for its exit,
//                          terminal/output, terminal/release, and say the output and exit
//   start LINE             terminal/create of LINE, and say its terminal id (never released)
//   hang                   never end the turn (until killed)
//   updates N [EVERY_MS]   N updates, EVERY_MS apart (default 0: at once), each saying
//                          "update I sent T" with T the wall clock in ms when it was written
//                          (bench_agent_session.py measures update -> viewer with it)
//   big N                  say N times "x" (one update of that size)
//   anything else          say it back
//
// Environment: STAND_IN_STARTS=FILE counts starts in FILE and exits (code 5) on every
// start after the first; STAND_IN_NO_LOAD=1 does not offer session/load. session/load
// replays one update, as an adapter replays the conversation it reloads.
import { appendFileSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const startsFile = process.env.STAND_IN_STARTS;
if (startsFile) appendFileSync(startsFile, "start\n");
const refuse = startsFile && readFileSync(startsFile, "utf8").split("\n").length > 2;

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
  if (word === "hang") return;
  if (word === "updates") {
    const [count, everyMs = 0] = rest.map(Number);
    for (let i = 0; i < count; i++) {
      say(sessionId, `update ${i} sent ${performance.timeOrigin + performance.now()}`);
      if (everyMs > 0) await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
    send({ id, result: { stopReason: "end_turn" } });
    return;
  }
  if (word === "run") {
    const limited = rest[0] === "-limit";
    const outputByteLimit = limited ? Number(rest[1]) : undefined;
    const command = (limited ? rest.slice(2) : rest).join(" ");
    const created = await ask("terminal/create", { sessionId, command, outputByteLimit });
    const terminalId = created.result.terminalId;
    const exit = await ask("terminal/wait_for_exit", { sessionId, terminalId });
    const output = await ask("terminal/output", { sessionId, terminalId });
    await ask("terminal/release", { sessionId, terminalId });
    const after = await ask("terminal/output", { sessionId, terminalId });
    say(sessionId, JSON.stringify({ exit: exit.result, output: output.result, afterRelease: after.error }));
  } else if (word === "start") {
    const created = await ask("terminal/create", { sessionId, command: rest.join(" ") });
    say(sessionId, JSON.stringify(created));
  } else if (word === "big") say(sessionId, "x".repeat(Number(rest[0])));
  else if (word === "malformed") process.stdout.write("this is not json\n");
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

function serve() {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    const message = JSON.parse(line);
    if (message.method === undefined) {
      waiting.get(message.id)?.(message);
      waiting.delete(message.id);
      return;
    }
    const { id, method, params } = message;
    if (method === "initialize") {
      const agentCapabilities = { loadSession: !process.env.STAND_IN_NO_LOAD };
      send({ id, result: { protocolVersion: 1, agentCapabilities, agentInfo: { name: "stand-in", version: "1" } } });
    } else if (method === "session/new") send({ id, result: { sessionId: `stand-in-${process.pid}` } });
    else if (method === "session/load") {
      say(params.sessionId, "replayed from before");
      send({ id, result: {} });
    } else if (method === "session/set_mode") send({ id, result: {} });
    else if (method === "session/prompt") prompt(id, params);
    else if (method !== "session/cancel") send({ id, error: { code: -32601, message: `no ${method}` } });
  });
  lines.on("close", () => {
    if (!process.listenerCount("SIGTERM")) process.exit(0);
  });
}

if (refuse) process.stderr.write("the stand-in refuses to start again\n", () => process.exit(5));
else serve();
