// Stand-ins for what workerd has and Node lacks, each named like workerd's class:
// `Response` that allows 101 with a `webSocket`, `WebSocketPair`, `Fetcher` (the ASSETS
// binding serving wrangler.toml's [assets] directory, and service bindings forwarding to a
// loopback server), and an outbound `fetch` that also opens WebSockets, as workerd's does.
// Over https, an upstream named `localhost` or `*.localhost` (a node agent on this machine)
// is reached on 127.0.0.1 and verified against exactly the CAs the set-up names, as the
// twin does (twin/tls_trust.py) where Cloudflare's proxy would check the origin.
import fs from "node:fs";
import https from "node:https";
import path from "node:path";
import v8 from "node:v8";
import WebSocketClient from "ws";

const NodeResponse = globalThis.Response;

export class Response extends NodeResponse {
  constructor(body, init = {}) {
    const switching = init?.status === 101;
    super(switching ? null : body, switching ? { ...init, status: 200 } : init);
    if (switching) Object.defineProperty(this, "status", { value: 101 });
    this.webSocket = init?.webSocket ?? null;
  }
}

const MAX_ATTACHMENT_BYTES = 2048; // workerd's limit on a serialized attachment
const CLOSED = 3;
const NOT_ACCEPTED = "You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.";

/**
 * One end of a WebSocketPair. Events reach the other end on a later turn, in order, as
 * over a network. An end accepted with `ctx.acceptWebSocket` (`hibernate`) hands its
 * events to the object's handlers instead of listeners; its attachment and tags live
 * with the socket, so they outlast the object's instance.
 */
export class WebSocket extends EventTarget {
  constructor() {
    super();
    this.peer = null;
    this.accepted = false;
    this.readyState = 1;
    this._attachment = null;
    this._hibernation = null; // (event) => void, once accepted by a Durable Object
    this._delivery = Promise.resolve();
    this._pending = []; // what arrived before this end was accepted, as workerd buffers it
  }
  accept() {
    if (this.accepted) return;
    this.accepted = true;
    this._pending.splice(0).forEach((event) => this._deliver(event));
  }
  hibernate(deliver) {
    if (this.accepted) throw new TypeError("This WebSocket has already been accepted.");
    this._hibernation = deliver;
    this.accept();
  }
  send(data) {
    if (!this.accepted) throw new TypeError(NOT_ACCEPTED);
    if (this.readyState === CLOSED) throw new TypeError("Can't call WebSocket send() after close().");
    this.peer?._receive(Object.assign(new Event("message"), { data }));
  }
  close(code = 1000, reason = "") {
    if (!this.accepted) throw new TypeError(NOT_ACCEPTED);
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.peer?._receive(Object.assign(new Event("close"), { code, reason, wasClean: true }));
  }
  /** The peer vanished without a Close frame (a dropped connection). */
  fail(message) {
    this.readyState = CLOSED;
    this.peer?._receive(Object.assign(new Event("error"), { error: new Error(message) }));
  }
  serializeAttachment(value) {
    const bytes = v8.serialize(value); // structured clone: a Python object (a proxy) is refused
    if (bytes.byteLength > MAX_ATTACHMENT_BYTES) {
      throw new RangeError(`A WebSocket attachment is limited to ${MAX_ATTACHMENT_BYTES} bytes serialized; this one is ${bytes.byteLength}.`);
    }
    this._attachment = bytes;
  }
  deserializeAttachment() {
    return this._attachment === null ? null : v8.deserialize(this._attachment);
  }
  _receive(event) {
    if (this.accepted) this._deliver(event);
    else this._pending.push(event);
  }
  _deliver(event) {
    if (event.type === "close" && this.readyState !== CLOSED) {
      // The peer started the closing handshake: answer it, as workerd does for both ends.
      this.readyState = CLOSED;
      this.peer?._receive(Object.assign(new Event("close"), { code: event.code, reason: event.reason, wasClean: true }));
    }
    if (event.type === "error") this.readyState = CLOSED;
    // A later turn, one event after another: a handler's await does not reorder them.
    this._delivery = this._delivery
      .then(() => (this._hibernation ? this._hibernation(event) : this.dispatchEvent(event)))
      .catch((error) => process.stderr.write(`a WebSocket ${event.type} listener failed: ${error?.stack ?? error}\n`));
  }
}

export class WebSocketPair {
  constructor() {
    this[0] = new WebSocket();
    this[1] = new WebSocket();
    this[0].peer = this[1];
    this[1].peer = this[0];
  }
}

const CONTENT_TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml" };

/** A binding that answers requests: `handle(request)` gives its Response. */
export class Fetcher {
  constructor(handle) {
    this._handle = handle;
  }
  async fetch(input, init) {
    return await this._handle(new Request(input, init));
  }
}

/** wrangler.toml's [assets] with not_found_handling = "single-page-application". */
export function assetsFetcher(directory) {
  return new Fetcher(async (request) => {
    const wanted = decodeURIComponent(new URL(request.url).pathname);
    let file = path.join(directory, path.normalize(wanted));
    if (!file.startsWith(directory) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      file = path.join(directory, "index.html");
    }
    const type = CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream";
    return new Response(fs.readFileSync(file), { headers: { "content-type": type } });
  });
}

/** A service binding (wrangler's [[services]]) played by a loopback server at `origin`. */
export function serviceFetcher(origin) {
  return new Fetcher(async (request) => {
    const url = new URL(request.url);
    const body = ["GET", "HEAD"].includes(request.method) ? undefined : await request.arrayBuffer();
    return await nodeFetch(new URL(url.pathname + url.search, origin), { method: request.method, headers: request.headers, body });
  });
}

const nodeFetch = globalThis.fetch;

let loopbackCas = null;

/** The CAs (PEM file paths) that vouch for `*.localhost` upstreams over TLS. */
export function trustLoopbackCas(files) {
  loopbackCas = files.map((file) => fs.readFileSync(file, "utf8"));
}

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

function isLoopbackName(hostname) {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost");
}

/** TLS options for a loopback upstream: this machine, its name checked, these CAs only. */
function loopbackTls(url) {
  if (!loopbackCas?.length) throw new Error(`no CA is trusted for ${url.hostname}: its certificate cannot be verified`);
  const lookup = (_hostname, options, callback) =>
    options?.all ? callback(null, [{ address: "127.0.0.1", family: 4 }]) : callback(null, "127.0.0.1", 4);
  return { ca: loopbackCas, lookup, servername: url.hostname, rejectUnauthorized: true };
}

/** One https request to a loopback upstream, answered as a fetch Response. */
async function loopbackFetch(url, request) {
  const body = ["GET", "HEAD"].includes(request.method) ? null : Buffer.from(await request.arrayBuffer());
  return await new Promise((resolve, reject) => {
    const options = { method: request.method, headers: Object.fromEntries(request.headers), ...loopbackTls(url) };
    const outgoing = https.request(url, options, (answer) => {
      const chunks = [];
      answer.on("data", (chunk) => chunks.push(chunk));
      answer.on("error", reject);
      answer.on("end", () => {
        const headers = new Headers();
        for (let i = 0; i < answer.rawHeaders.length; i += 2) headers.append(answer.rawHeaders[i], answer.rawHeaders[i + 1]);
        const content = NULL_BODY_STATUSES.has(answer.statusCode) ? null : Buffer.concat(chunks);
        resolve(new NodeResponse(content, { status: answer.statusCode, statusText: answer.statusMessage, headers }));
      });
    });
    outgoing.on("error", reject);
    outgoing.end(body ?? undefined);
  });
}

/** The socket a `101` answer to an outbound `fetch` carries: the upstream end, accepted. */
class UpstreamWebSocket extends EventTarget {
  constructor(client) {
    super();
    this._client = client;
    this.readyState = 1;
    client.on("message", (data, isBinary) => {
      this.dispatchEvent(Object.assign(new Event("message"), { data: isBinary ? new Uint8Array(data) : data.toString() }));
    });
    client.on("close", (code, reason) => {
      this.readyState = 3;
      this.dispatchEvent(Object.assign(new Event("close"), { code, reason: reason.toString() }));
    });
  }
  accept() {}
  send(data) {
    this._client.send(data);
  }
  close(code = 1000, reason = "") {
    this._client.close(code, reason);
  }
}

/**
 * workerd's outbound `fetch`: plain HTTP through Node's, and a request with `Upgrade:
 * websocket` opened as a real WebSocket (the `ws` package), answered `101` with the socket.
 */
export async function fetch(input, init = {}) {
  const request = input instanceof Request ? input : null;
  const headers = new Headers(init.headers ?? request?.headers);
  const url = new URL(request ? request.url : String(input));
  const loopbackTlsUrl = url.protocol === "https:" && isLoopbackName(url.hostname);
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return loopbackTlsUrl ? await loopbackFetch(url, new Request(input, init)) : await nodeFetch(input, init);
  }
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const protocols = (headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  for (const name of ["upgrade", "connection", "sec-websocket-protocol"]) headers.delete(name);
  const tls = loopbackTlsUrl ? loopbackTls(url) : {};
  const client = new WebSocketClient(url, protocols, { headers: Object.fromEntries(headers), ...tls });
  return await new Promise((resolve, reject) => {
    client.once("open", () => {
      const chosen = client.protocol ? { "sec-websocket-protocol": client.protocol } : {};
      resolve(new Response(null, { status: 101, headers: chosen, webSocket: new UpstreamWebSocket(client) }));
    });
    client.once("unexpected-response", (_request, answer) => {
      resolve(new Response(null, { status: answer.statusCode }));
      answer.resume();
    });
    client.once("error", reject);
  });
}
