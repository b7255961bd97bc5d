// The test's side of WebSockets the Worker answers with a 101: each client end is kept
// under a number, what arrives on it is queued until the test asks for it, and the test
// sends, closes, or drops the connection (no Close frame) through it.

let nextSocket = 0;
const clients = new Map(); // number → {socket, events, waiters}

/** Keep the client end `socket` (accepted, as a browser's is on open); its number. */
export function keepClient(socket) {
  const id = ++nextSocket;
  const client = { socket, events: [], waiters: [] };
  const arrive = (event) => {
    client.events.push(event);
    client.waiters.splice(0).forEach((wake) => wake());
  };
  socket.accept?.();
  socket.addEventListener("message", (event) => arrive({ type: "message", data: String(event.data) }));
  socket.addEventListener("close", (event) => arrive({ type: "close", code: event.code, reason: event.reason }));
  clients.set(id, client);
  return id;
}

function client(id) {
  const found = clients.get(id);
  if (!found) throw new Error(`there is no client WebSocket ${id}: it was never opened or is forgotten`);
  return found;
}

/** The next event on client `id` ({type: "message", data} or {type: "close", code,
 * reason}), waiting up to `timeoutMs` for one. */
export async function nextEvent(id, timeoutMs) {
  const kept = client(id);
  if (kept.events.length === 0) {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing arrived on client WebSocket ${id} within ${timeoutMs} ms`)), timeoutMs);
      kept.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return kept.events.shift();
}

export function sendOn(id, data) {
  client(id).socket.send(data);
}

export function closeClient(id, code, reason) {
  client(id).socket.close(code, reason);
}

/** The client vanishes without a Close frame, as a dropped connection does. */
export function dropClient(id) {
  const { socket } = client(id);
  if (typeof socket.fail !== "function") throw new Error(`client WebSocket ${id} cannot be dropped: it is not one end of a WebSocketPair`);
  socket.fail("WebSocket disconnected without sending Close frame.");
  clients.delete(id);
}
