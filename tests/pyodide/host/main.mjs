// The real-Pyodide harness's Node process: loads the Worker once, then answers requests, one
// JSON object per line on stdin/stdout (tests/pyodide/harness.py is the other end). Its own
// logs and the Worker's output go to stderr.
//
// The first line is the set-up: {bundle, project, runtime, main, extra_paths, config, vars,
// services, secrets, loopback_cas} where `config` is wrangler.toml as JSON, `vars` override
// its [vars], `services` maps a service binding's name to the loopback origin that plays it,
// `secrets` are the Worker's secrets (name → value), and `loopback_cas` the PEM files of the
// CAs that vouch for https upstreams named `*.localhost` (as the twin's are). Each later line is {id, op, ...}; the answer is
// {id, ok: true, result} or {id, ok: false, error}.
import readline from "node:readline";
import { startBindings } from "./bindings.mjs";
import { closeClient, dropClient, keepClient, nextEvent, sendOn } from "./clients.mjs";
import { runConformance } from "./conformance.mjs";
import { makeDispatcher, waitUntil } from "./entrypoints.mjs";
import { compatibilityFlags } from "./flags.mjs";
import { preparePython } from "./python.mjs";
import { Response, WebSocketPair, assetsFetcher, fetch, serviceFetcher, trustLoopbackCas } from "./web.mjs";

const log = (line) => process.stderr.write(`${line}\n`);
const answer = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

process.on("uncaughtException", (error) => {
  // A set-up failure: say it in one message (a Pyodide error's own is the Python traceback).
  log(`harness host failed: ${error?.stack ?? error}`);
  process.exit(1);
});

const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const setup = JSON.parse((await lines.next()).value);
const flags = compatibilityFlags(setup.config);

globalThis.Response = Response;
globalThis.WebSocketPair = WebSocketPair;
globalThis.fetch = fetch;
trustLoopbackCas(setup.loopback_cas ?? []);

const bindings = await startBindings(setup.config, setup.project);
const env = { ...setup.config.vars, ...setup.vars, ...setup.secrets, ...bindings.env };
if (setup.config.assets?.binding) {
  env[setup.config.assets.binding] = assetsFetcher(`${setup.project}/${setup.config.assets.directory}`);
}
for (const [name, origin] of Object.entries(setup.services)) env[name] = serviceFetcher(origin);

const cloudflareWorkers = { env, waitUntil };
const helper = {
  cloudflareWorkersModule: cloudflareWorkers,
  cloudflareSocketsModule: {},
  async doAnImport(name) {
    if (name === "cloudflare:workers") return cloudflareWorkers;
    throw new Error(`the harness cannot import ${name}`);
  },
  // The harness's ExecutionContext keeps what waitUntil is handed itself.
  patchWaitUntil() {},
  *patch_env_helper() {
    yield;
  },
};

const python = await preparePython({
  bundleDir: setup.bundle,
  runtimeDir: setup.runtime,
  extraPaths: setup.extra_paths,
  flags,
  helper,
  log,
});

const report = { main: setup.main, imported: false, error: null, refused: [], import_ms: 0, import_times: [] };
let dispatcher = null;
try {
  const mainModule = await python.importMain(setup.main);
  report.imported = true;
  python.beforeFirstRequest();
  dispatcher = makeDispatcher(python.pyodide, mainModule, env, setup.config.durable_objects?.bindings ?? []);
} catch (error) {
  report.error = String(error.message ?? error);
}
report.refused = python.refusedEntropy();
report.import_ms = python.importMilliseconds;
report.import_times = python.importTimes;

function needWorker() {
  if (!dispatcher) {
    throw new Error(`the main module ${setup.main} did not import: ${report.error.trim().split("\n").at(-1)}`);
  }
  return dispatcher;
}

const WEB_SOCKET_REPLY_MS = 5000;

/** Send each text on a 101's socket (as the client would) and wait for one reply to each. */
async function converse(socket, texts) {
  const replies = [];
  socket.accept?.();
  for (const text of texts) {
    const reply = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no WebSocket reply to ${text} within ${WEB_SOCKET_REPLY_MS} ms`)), WEB_SOCKET_REPLY_MS);
      socket.addEventListener("message", (event) => { clearTimeout(timer); resolve(String(event.data)); }, { once: true });
    });
    socket.send(text);
    replies.push(await reply);
  }
  socket.close(1000, "done");
  return replies;
}

async function encodeResponse(response, webSocketTexts) {
  const body = response.status === 101 ? new Uint8Array() : new Uint8Array(await response.arrayBuffer());
  const socket = response.webSocket;
  return {
    status: response.status,
    headers: [...response.headers],
    body: Buffer.from(body).toString("base64"),
    web_socket: Boolean(socket),
    web_socket_replies: socket ? await converse(socket, webSocketTexts ?? []) : [],
  };
}

const operations = {
  report: async () => report,
  fetch: async ({ method, url, headers, body, web_socket_texts }) => {
    // An incoming request on workerd carries its Host header, as any HTTP request does.
    const withHost = { host: new URL(url).host, ...headers };
    const init = { method, headers: withHost, body: body ? Buffer.from(body, "base64") : undefined };
    return await encodeResponse(await needWorker().fetch(new Request(url, init)), web_socket_texts);
  },
  // A WebSocket opened to the Worker's route, or straight to an object's `fetch` when
  // `object` ({binding, name}) is given: the answer, and the kept client end's number.
  ws_connect: async ({ url, headers, object }) => {
    const upgrade = { host: new URL(url).host, upgrade: "websocket", connection: "Upgrade", ...headers };
    const request = new Request(url, { headers: upgrade });
    const worker = needWorker();
    const response = object ? await worker.durableObjectFetch(object.binding, object.name, request) : await worker.fetch(request);
    const socket = response.status === 101 ? response.webSocket : null;
    return {
      status: response.status,
      headers: [...response.headers],
      body: socket ? "" : Buffer.from(await response.arrayBuffer()).toString("base64"),
      socket: socket ? keepClient(socket) : null,
    };
  },
  ws_next: async ({ socket, timeout_ms }) => await nextEvent(socket, timeout_ms),
  ws_send: async ({ socket, data }) => sendOn(socket, data),
  ws_close: async ({ socket, code, reason }) => closeClient(socket, code, reason),
  ws_drop: async ({ socket }) => dropClient(socket),
  // Several operations at once (concurrent events into the Worker); each one's outcome.
  all: async ({ operations: batch }) =>
    (await Promise.allSettled(batch.map(({ op, ...args }) => operations[op](args)))).map((outcome) =>
      outcome.status === "fulfilled"
        ? { ok: true, result: outcome.value === undefined ? null : outcome.value }
        : { ok: false, error: String(outcome.reason?.message ?? outcome.reason) },
    ),
  scheduled: async ({ cron, scheduled_time }) => {
    await needWorker().scheduled(cron, scheduled_time);
    return null;
  },
  do_call: async ({ binding, name, method, args }) => await needWorker().durableObjectCall(binding, name, method, args),
  do_alarm: async ({ binding, name, retry }) => await needWorker().durableObjectAlarm(binding, name, retry),
  do_evict: async ({ binding, name }) => needWorker().durableObjectEvict(binding, name),
  do_sql: async ({ binding, name, sql, params }) => needWorker().durableObjectSql(binding, name, sql, params ?? []),
  do_alarm_at: async ({ binding, name }) => await needWorker().durableObjectAlarmAt(binding, name),
  conformance: async ({ suite }) => await runConformance(python.pyodide, suite),
  // The Worker's crypto seam alone (tests/pyodide/runtime/_harness_crypto.py), inside a
  // request's context like any Worker code that signs or seals.
  crypto: async ({ name, args }) => {
    needWorker();
    return JSON.parse(await python.pyodide.pyimport("_harness_crypto").call(name, JSON.stringify(args)));
  },
  r2_put: async ({ binding, key, body }) => {
    const bytes = Buffer.from(body, "base64");
    // A Node Buffer does not cross into workerd; a plain ArrayBuffer does.
    await env[binding].put(key, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return null;
  },
  kv_keys: async ({ binding, prefix }) => (await env[binding].list({ prefix })).keys.map((key) => key.name),
  d1: async ({ binding, sql, params }) => {
    const result = await env[binding].prepare(sql).bind(...(params ?? [])).all();
    return result.results;
  },
};

answer({ id: 0, ok: true, result: "ready" });
for await (const line of lines) {
  const { id, op, ...args } = JSON.parse(line);
  try {
    const result = await operations[op](args);
    answer({ id, ok: true, result: result === undefined ? null : result });
  } catch (error) {
    // Python's traceback printing imports lazily, and -X importtime reports that too.
    const errorLines = String(error?.message ?? error).split("\n");
    answer({ id, ok: false, error: errorLines.filter((line) => !line.startsWith("import time:")).join("\n") });
  }
}
await bindings.dispose();
// The test side is done: end now, rather than wait for idle keep-alive connections to the
// loopback servers (still up while the host closes) to time out.
process.exit(0);
