// The Durable Object state a Python class runs on, which workerd cannot lend to Node:
// DurableObjectState, DurableObjectStorage (KV-style values, alarms, transactionSync) and
// SqlStorage with its cursor, on sql.js (SQLite compiled to WebAssembly). Names follow
// workerd's classes, since workers-runtime-sdk picks its wrappers by constructor name.
import nodeCrypto from "node:crypto";
import v8 from "node:v8";
import initSqlJs from "sql.js";

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

export class DurableObjectState {
  constructor(id) {
    this.id = id;
    this.storage = new DurableObjectStorage();
    this._waiting = [];
  }
  waitUntil(promise) {
    this._waiting.push(promise);
  }
  async blockConcurrencyWhile(callback) {
    return await callback();
  }
}

/**
 * One class's objects. `call(instance, method, args)` runs an RPC method through the
 * dispatcher; arguments cross by value (structured clone), as over Workers RPC.
 */
export class DurableObjectNamespace {
  constructor(className, construct, call) {
    this._className = className;
    this._construct = construct;
    this._call = call;
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
        return async (...args) => namespace._call(await namespace.object(id), prop, structuredClone(args));
      },
    });
  }
  /** The live object for `id`, constructed on first use (its state outlives instances). */
  async object(id) {
    const key = id.toString();
    let entry = this._objects.get(key);
    if (!entry) {
      entry = { state: new DurableObjectState(id), instance: null };
      this._objects.set(key, entry);
    }
    entry.instance ??= await this._construct(this._className, entry.state);
    return entry;
  }
}
