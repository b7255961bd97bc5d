// The harness's dispatcher: turns an event into a call on the main module's classes, as
// workerd does for Python Workers — a fresh `Default(ctx, env)` per event, one instance per
// Durable Object, the SDK's RPC conversions for `fetch` and RPC methods, raw arguments for
// `scheduled` and `alarm`.
import { DurableObjectNamespace } from "./durable_objects.mjs";

// The event being handled (the harness runs one at a time): `cloudflare:workers`'s
// `waitUntil` attaches work to it, as workerd attaches it to the current request.
let currentEvent = null;

export function waitUntil(promise) {
  if (!currentEvent) throw new Error("waitUntil called outside of an event");
  currentEvent.waitUntil(promise);
}

async function handle(ctx, run) {
  currentEvent = ctx;
  try {
    const result = await run();
    await ctx.settled();
    return result;
  } finally {
    currentEvent = null;
  }
}

class ExecutionContext {
  constructor() {
    this.pending = [];
  }
  get [Symbol.toStringTag]() {
    return "ExecutionContext";
  }
  waitUntil(promise) {
    // A Python awaitable arrives as a borrowed proxy: keep a copy until it settles.
    const kept = promise?.copy ? promise.copy() : promise;
    this.pending.push(Promise.resolve(kept).finally(() => kept?.destroy?.()));
  }
  passThroughOnException() {}
  async settled() {
    await Promise.allSettled(this.pending);
  }
}

class ScheduledController {
  constructor(cron, scheduledTime) {
    this.cron = cron;
    this.scheduledTime = scheduledTime;
  }
  noRetry() {}
}

export function makeDispatcher(pyodide, mainModule, env, durableObjectBindings) {
  const calls = pyodide.pyimport("_harness_calls");
  const construct = (className, ...args) => {
    const cls = mainModule[className];
    if (typeof cls !== "function") throw new TypeError(`There is no '${className}' class in the main module`);
    return cls(...args);
  };
  for (const { name, class_name: className } of durableObjectBindings) {
    env[name] = new DurableObjectNamespace(
      className,
      (cls, state) => construct(cls, state, env),
      (object, method, args) => calls.call_rpc(object.instance, method, ...args),
      (instance, handler, args) => calls.call_handler(instance, handler, ...args),
    );
  }

  return {
    env,
    async fetch(request) {
      const ctx = new ExecutionContext();
      const response = await handle(ctx, () => calls.call_rpc(construct("Default", ctx, env), "fetch", request));
      return response?.js_response ?? response;
    },
    async scheduled(cron, scheduledTime) {
      const ctx = new ExecutionContext();
      const controller = new ScheduledController(cron, scheduledTime);
      await handle(ctx, () => calls.call_handler(construct("Default", ctx, env), "scheduled", controller, env, ctx));
    },
    async durableObjectCall(binding, name, method, args) {
      const namespace = env[binding];
      return await namespace.getByName(name)[method](...args);
    },
    /** A request to the object's `fetch`, as the Worker's `stub.fetch(request)` sends it. */
    async durableObjectFetch(binding, name, request) {
      const response = await env[binding].getByName(name).fetch(request);
      return response?.js_response ?? response;
    },
    /** SQL on the object's own storage, outside any event: a test's way to roll back what
     * the object persisted, as a crash before its write would have left it. */
    durableObjectSql(binding, name, sql, params) {
      const namespace = env[binding];
      return namespace.object(namespace.idFromName(name)).state.storage.sql.exec(sql, ...params).toArray();
    },
    durableObjectEvict(binding, name) {
      const namespace = env[binding];
      return namespace.evict(namespace.idFromName(name));
    },
    /** The object's alarm, if one is set; with `retry`, workerd's re-run of an alarm whose
     * handler failed (a crash mid-step), set or not. */
    async durableObjectAlarm(binding, name, retry) {
      const namespace = env[binding];
      const object = namespace.object(namespace.idFromName(name));
      if (!retry) {
        if ((await object.state.storage.getAlarm()) === null) return false;
        await object.state.storage.deleteAlarm();
      }
      await calls.call_handler(object.instance, "alarm", { retryCount: retry ? 1 : 0, isRetry: Boolean(retry) });
      return true;
    },
    async durableObjectAlarmAt(binding, name) {
      const namespace = env[binding];
      const object = namespace.object(namespace.idFromName(name));
      return await object.state.storage.getAlarm();
    },
  };
}
