// The binding conformance suite (tests/twin/conformance) on workerd's D1, KV and R2. It gets
// a Miniflare of its own with one fresh binding per case (every case starts empty, as on the
// twin, and the Worker's migrated bindings stay untouched), each held by the same
// class-named forwarders as the Worker's, so the SDK wraps them as on Cloudflare. The cases
// themselves run in Python: runtime/_conformance_calls.py.
import { Miniflare } from "miniflare";
import { D1Database, KvNamespace, R2Bucket, TRIVIAL_WORKER } from "./bindings.mjs";

const SUITE_PARENT = "/harness/conformance"; // holds the suite as the package `conformance`

const BINDINGS = {
  d1: async (miniflare, name) => new D1Database(await miniflare.getD1Database(name)),
  kv: async (miniflare, name) => new KvNamespace(await miniflare.getKVNamespace(name)),
  r2: async (miniflare, name) => new R2Bucket(await miniflare.getR2Bucket(name)),
};

/** Runs every case workerd can run; {case id: null when it passed, else the failure}. */
export async function runConformance(pyodide, suiteDir) {
  if (!pyodide.FS.analyzePath(`${SUITE_PARENT}/conformance`).exists) {
    pyodide.FS.mkdirTree(`${SUITE_PARENT}/conformance`);
    pyodide.mountNodeFS(`${SUITE_PARENT}/conformance`, suiteDir);
  }
  const calls = pyodide.pyimport("_conformance_calls");
  const plan = JSON.parse(calls.plan(SUITE_PARENT)); // [[binding name, kind], ...]
  const named = (kind) => plan.filter(([, of]) => of === kind).map(([name]) => name);
  const miniflare = new Miniflare({
    modules: true,
    script: TRIVIAL_WORKER,
    d1Databases: named("d1"),
    kvNamespaces: named("kv"),
    r2Buckets: named("r2"),
  });
  try {
    const env = {};
    for (const [name, kind] of plan) env[name] = await BINDINGS[kind](miniflare, name);
    return JSON.parse(await calls.run(env));
  } finally {
    await miniflare.dispose();
  }
}
