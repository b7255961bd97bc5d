// Stand-ins for what workerd has and Node lacks, each named like workerd's class:
// `Response` that allows 101 with a `webSocket`, `WebSocketPair`, `Fetcher` (the ASSETS
// binding serving wrangler.toml's [assets] directory, and service bindings forwarding to a
// loopback server), and an outbound `fetch` that also opens WebSockets, as workerd's does.
import fs from "node:fs";
import path from "node:path";
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

export class WebSocket extends EventTarget {
  constructor() {
    super();
    this.peer = null;
    this.accepted = false;
    this.readyState = 1;
  }
  accept() {
    this.accepted = true;
  }
  send(data) {
    this.peer?.dispatchEvent(Object.assign(new Event("message"), { data }));
  }
  close(code = 1000, reason = "") {
    this.readyState = 3;
    this.peer?.dispatchEvent(Object.assign(new Event("close"), { code, reason }));
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
  if (headers.get("upgrade")?.toLowerCase() !== "websocket") return await nodeFetch(input, init);
  const url = new URL(request ? request.url : String(input));
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const protocols = (headers.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim()).filter(Boolean);
  for (const name of ["upgrade", "connection", "sec-websocket-protocol"]) headers.delete(name);
  const client = new WebSocketClient(url, protocols, { headers: Object.fromEntries(headers) });
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
