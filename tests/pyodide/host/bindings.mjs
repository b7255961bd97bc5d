// D1, KV and R2 served by workerd's own implementations, through miniflare (offline: only
// Python Workers need the internet, and this script is JavaScript). miniflare hands Node
// proxies whose `constructor.name` is not the binding's class, while workers-runtime-sdk
// picks its wrappers by that name, so each proxy is held by a thin forwarder named like
// workerd's class (D1Database, D1PreparedStatement, KvNamespace, R2Bucket). Nothing is
// re-implemented: every call goes to workerd.
import fs from "node:fs";
import path from "node:path";
import { Miniflare } from "miniflare";

export const TRIVIAL_WORKER = "export default { fetch() { return new Response(null, { status: 404 }) } }";

function forwarder(name, methods) {
  const cls = {
    [name]: class {
      constructor(target) {
        this._target = target;
      }
    },
  }[name];
  for (const method of methods) {
    cls.prototype[method] = function (...args) {
      return this._target[method](...args.map(unwrap));
    };
  }
  return cls;
}

function unwrap(value) {
  if (Array.isArray(value)) return value.map(unwrap);
  return value && value._target ? value._target : value;
}

export const D1PreparedStatement = forwarder("D1PreparedStatement", ["first", "all", "run", "raw"]);
D1PreparedStatement.prototype.bind = function (...values) {
  return new D1PreparedStatement(this._target.bind(...values));
};
export const D1Database = forwarder("D1Database", ["batch", "exec", "dump"]);
D1Database.prototype.prepare = function (query) {
  return new D1PreparedStatement(this._target.prepare(query));
};
export const KvNamespace = forwarder("KvNamespace", ["get", "getWithMetadata", "put", "delete", "list"]);
export const R2Bucket = forwarder("R2Bucket", ["head", "get", "put", "delete", "list"]);

/** SQL statements of one migration file (no statement in ours holds a `;` in a literal). */
function statements(sql) {
  return sql
    .split("\n")
    .filter((line) => !line.trim().startsWith("--"))
    .join("\n")
    .split(";")
    .map((statement) => statement.trim())
    .filter(Boolean);
}

async function migrate(database, dir) {
  const files = fs.readdirSync(dir).filter((name) => name.endsWith(".sql")).sort();
  for (const file of files) {
    const sql = fs.readFileSync(path.join(dir, file), "utf8");
    await database.batch(statements(sql).map((statement) => database.prepare(statement)));
  }
}

/** The bindings of wrangler.toml's D1 databases, KV namespaces and R2 buckets, migrated. */
export async function startBindings(config, projectRoot) {
  const d1 = config.d1_databases ?? [];
  const kv = config.kv_namespaces ?? [];
  const r2 = config.r2_buckets ?? [];
  const miniflare = new Miniflare({
    modules: true,
    script: TRIVIAL_WORKER,
    d1Databases: Object.fromEntries(d1.map((db) => [db.binding, db.database_id])),
    kvNamespaces: Object.fromEntries(kv.map((ns) => [ns.binding, ns.id])),
    r2Buckets: Object.fromEntries(r2.map((bucket) => [bucket.binding, bucket.bucket_name])),
  });
  const env = {};
  for (const db of d1) {
    env[db.binding] = new D1Database(await miniflare.getD1Database(db.binding));
    await migrate(env[db.binding], path.join(projectRoot, db.migrations_dir));
  }
  for (const ns of kv) env[ns.binding] = new KvNamespace(await miniflare.getKVNamespace(ns.binding));
  for (const bucket of r2) env[bucket.binding] = new R2Bucket(await miniflare.getR2Bucket(bucket.binding));
  return { env, dispose: () => miniflare.dispose() };
}
