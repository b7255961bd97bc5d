// Stand-ins for what workerd has and Node lacks, each named like workerd's class:
// `Response` that allows 101 with a `webSocket`, `WebSocketPair`, and the `Fetcher` that
// serves wrangler.toml's [assets] directory as the ASSETS binding.
import fs from "node:fs";
import path from "node:path";

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

/** wrangler.toml's [assets] with not_found_handling = "single-page-application". */
export class Fetcher {
  constructor(directory) {
    this.directory = directory;
  }
  async fetch(input, init) {
    const request = new Request(input, init);
    const wanted = decodeURIComponent(new URL(request.url).pathname);
    let file = path.join(this.directory, path.normalize(wanted));
    if (!file.startsWith(this.directory) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      file = path.join(this.directory, "index.html");
    }
    const type = CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream";
    return new Response(fs.readFileSync(file), { headers: { "content-type": type } });
  }
}
