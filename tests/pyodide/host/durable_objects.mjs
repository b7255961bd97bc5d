// The Durable Object state a Python class runs on, which workerd cannot lend to Node:
// DurableObjectState, DurableObjectStorage (KV-style values, alarms, transactionSync) and
// SqlStorage with its cursor, on sql.js (SQLite compiled to WebAssembly). Names follow
// workerd's classes, since workers-runtime-sdk picks its wrappers by constructor name.
import nodeCrypto from "node:crypto";
import v8 from "node:v8";
import initSqlJs from "sql.js";
import { WebSocket } from "./web.mjs";

const SQL = await initSqlJs();

class SqlStorageCursor {
  constructor(columnNames, rows, rowsWritten) {
    this.columnNames = columnNames;
    this._rows = rows;
    this.rowsRead = rows.length;
    this.rowsWritten = rowsWritten;
  }
  raw() {
    return new RawIterator(this._rows);
  }
  toArray() {
    return this._rows.map((row) => Object.fromEntries(this.columnNames.map((name, i) => [name, row[i]])));
  }
  one() {
    if (this._rows.length !== 1) throw new Error(`Expected exactly one result from SQL query, but got ${this._rows.length}.`);
    return this.toArray()[0];
  }
  [Symbol.iterator]() {
    return this.toArray()[Symbol.iterator]();
  }
}

class RawIterator {
  constructor(rows) {
    this._rows = rows.map((row) => [...row]);
    this._next = 0;
  }
  next() {
    return this._next < this._rows.length ? { value: this._rows[this._next++], done: false } : { value: undefined, done: true };
  }
  [Symbol.iterator]() {
    return this;
  }
}

class SqlStorage {
  constructor(db) {
    this._db = db;
  }
  exec(query, ...bindings) {
    if (bindings.length === 0) {
      // Several statements may be given at once; the cursor reads the last one's rows.
      const results = this._db.exec(query);
      const last = results.at(-1) ?? { columns: [], values: [] };
      return new SqlStorageCursor(last.columns, last.values, this._db.getRowsModified());
    }
    const statement = this._db.prepare(query);
    try {
      statement.bind(bindings.map((value) => (value === undefined ? null : value)));
      const rows = [];
      while (statement.step()) rows.push(statement.get());
      return new SqlStorageCursor(statement.getColumnNames(), rows, this._db.getRowsModified());
    } finally {
      statement.free();
    }
  }
  get databaseSize() {
    return this._db.export().byteLength;
  }
}

class DurableObjectStorage {
  constructor() {
    this._db = new SQL.Database();
    this._db.exec("CREATE TABLE _cf_KV (key TEXT PRIMARY KEY, value BLOB)");
    this.sql = new SqlStorage(this._db);
    this.alarm = null;
  }
  transactionSync(closure) {
    this._db.exec("SAVEPOINT transaction_sync");
    try {
      const result = closure();
      this._db.exec("RELEASE transaction_sync");
      return result;
    } catch (error) {
      this._db.exec("ROLLBACK TO transaction_sync; RELEASE transaction_sync");
      throw error;
    }
  }
  async get(keys) {
    const one = (key) => {
      const rows = this.sql.exec("SELECT value FROM _cf_KV WHERE key = ?", key).raw().next();
      return rows.done ? undefined : v8.deserialize(rows.value[0]);
    };
    if (!Array.isArray(keys)) return one(keys);
    return new Map(keys.map((key) => [key, one(key)]).filter(([, value]) => value !== undefined));
  }
  async put(key, value) {
    const entries = typeof key === "string" ? [[key, value]] : Object.entries(key);
    for (const [k, v] of entries) {
      this.sql.exec("INSERT OR REPLACE INTO _cf_KV VALUES (?, ?)", k, v8.serialize(v));
    }
  }
  async delete(keys) {
    const list = Array.isArray(keys) ? keys : [keys];
    const deleted = list.filter((key) => this.sql.exec("DELETE FROM _cf_KV WHERE key = ? RETURNING 1", key).rowsRead);
    return Array.isArray(keys) ? deleted.length : deleted.length === 1;
  }
  async getAlarm() {
    return this.alarm;
  }
  async setAlarm(scheduledTime) {
    this.alarm = Number(scheduledTime instanceof Date ? scheduledTime.getTime() : scheduledTime);
  }
  async deleteAlarm() {
    this.alarm = null;
  }
}

export class DurableObjectId {
  constructor(hex, name) {
    this._hex = hex;
    this.name = name;
  }
  toString() {
    return this._hex;
  }
  equals(other) {
    return other?.toString() === this._hex;
  }
}

const MAX_HIBERNATABLE_SOCKETS = 32768;
const MAX_TAGS_PER_SOCKET = 10;
const MAX_TAG_CHARS = 256;
const ACCEPT_PARAMETER = (position, type) =>
  `Failed to execute 'acceptWebSocket' on 'DurableObjectState': parameter ${position} is not of type '${type}'.`;

/**
 * The `ctx` an object is constructed with. It belongs to the object, not the instance:
 * storage and hibernatable WebSockets outlive an eviction. `deliver(handler, args)` runs
 * one of the object's handlers on its current instance (a fresh one after an eviction).
 */
export class DurableObjectState {
  constructor(id, deliver) {
    this.id = id;
    this.storage = new DurableObjectStorage();
    this._waiting = [];
    this._sockets = [];
    this._deliver = deliver;
  }
  waitUntil(promise) {
    this._waiting.push(promise);
  }
  async blockConcurrencyWhile(callback) {
    return await callback();
  }
  acceptWebSocket(ws, tags) {
    // workerd's binding takes a JS array: a Python list arrives as a proxy and is refused.
    if (!(ws instanceof WebSocket)) throw new TypeError(ACCEPT_PARAMETER("1", "WebSocket"));
    if (tags !== undefined && tags !== null && !Array.isArray(tags)) throw new TypeError(ACCEPT_PARAMETER("2", "Array"));
    const list = [...(tags ?? [])];
    if (this._sockets.length >= MAX_HIBERNATABLE_SOCKETS) {
      throw new Error(`A Durable Object cannot accept more than ${MAX_HIBERNATABLE_SOCKETS} WebSockets.`);
    }
    if (list.length > MAX_TAGS_PER_SOCKET) throw new RangeError(`A WebSocket cannot have more than ${MAX_TAGS_PER_SOCKET} tags.`);
    for (const tag of list) {
      if (typeof tag !== "string") throw new TypeError("WebSocket tags must be strings.");
      if (tag.length > MAX_TAG_CHARS) throw new RangeError(`A WebSocket tag cannot be longer than ${MAX_TAG_CHARS} chars.`);
    }
    ws.hibernate((event) => this._onSocketEvent(ws, event));
    ws.tags = list;
    this._sockets.push(ws);
  }
  getWebSockets(tag) {
    return this._sockets.filter((ws) => tag === undefined || tag === null || ws.tags.includes(tag));
  }
  getTags(ws) {
    if (!this._sockets.includes(ws)) throw new TypeError("getTags() needs a WebSocket accepted with ctx.acceptWebSocket().");
    return [...ws.tags];
  }
  async _onSocketEvent(ws, event) {
    if (event.type === "message") return await this._deliver("webSocketMessage", [ws, event.data]);
    this._sockets = this._sockets.filter((socket) => socket !== ws);
    if (event.type === "close") return await this._deliver("webSocketClose", [ws, event.code, event.reason, event.wasClean]);
    return await this._deliver("webSocketError", [ws, event.error]);
  }
}

/**
 * One class's objects. `call(instance, method, args)` runs an RPC method through the
 * dispatcher, `handle(instance, handler, args)` a handler with raw JS arguments; RPC
 * arguments cross by value (structured clone), as over Workers RPC.
 */
export class DurableObjectNamespace {
  constructor(className, construct, call, handle) {
    this._className = className;
    this._construct = construct;
    this._call = call;
    this._handle = handle;
    this._objects = new Map(); // id → {state, instance}
  }
  idFromName(name) {
    const hex = nodeCrypto.createHash("sha256").update(`${this._className}:${name}`).digest("hex");
    return new DurableObjectId(hex, name);
  }
  idFromString(hex) {
    return new DurableObjectId(hex);
  }
  newUniqueId() {
    return new DurableObjectId(nodeCrypto.randomBytes(32).toString("hex"));
  }
  getByName(name) {
    return this.get(this.idFromName(name));
  }
  get(id) {
    const namespace = this;
    const stub = { id, name: id.name };
    return new Proxy(stub, {
      get(target, prop) {
        if (typeof prop !== "string" || prop in target || prop === "then") return target[prop];
        // A Request is not cloneable: `fetch` hands it over as workerd does, RPC copies.
        const copy = prop === "fetch" ? (args) => args : structuredClone;
        return async (...args) => namespace._call(namespace.object(id), prop, copy(args));
      },
    });
  }
  /** The live object for `id`, constructed on first use (its state outlives instances);
   * constructing is synchronous, so two events at once never build two instances. */
  object(id) {
    const key = id.toString();
    let entry = this._objects.get(key);
    if (!entry) {
      entry = { state: null, instance: null };
      entry.state = new DurableObjectState(id, (handler, args) => this._deliver(entry, handler, args));
      this._objects.set(key, entry);
    }
    entry.instance ??= this._construct(this._className, entry.state);
    return entry;
  }
  /** Drop the object's instance, as workerd does to an idle or hibernating one: its
   * storage and accepted WebSockets stay, and the next event builds a fresh instance.
   * Whether there was an instance to drop. */
  evict(id) {
    const entry = this._objects.get(id.toString());
    const had = Boolean(entry?.instance);
    if (entry) entry.instance = null;
    return had;
  }
  async _deliver(entry, handler, args) {
    entry.instance ??= this._construct(this._className, entry.state);
    try {
      await this._handle(entry.instance, handler, args);
    } catch (error) {
      // The object's bug: workerd logs it and the socket stays up.
      process.stderr.write(`${this._className}.${handler} failed: ${error?.message ?? error}\n`);
    }
  }
}
