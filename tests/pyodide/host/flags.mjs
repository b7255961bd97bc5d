// The compatibility flags workerd would register as `_cloudflare_compat_flags`, from
// wrangler.toml: the flags it lists plus those its date turns on. Only the flags the
// vendored SDK or this harness read are listed, with the dates from workerd's
// src/workerd/io/compatibility-date.capnp.
// flag: [the date it is on from, the flag that turns it off]
const ENABLED_FROM = {
  python_request_headers_preserve_commas: ["2026-02-17", "disable_python_request_headers_preserve_commas"],
  python_workflows_implicit_dependencies: ["2026-02-25", "no_python_workflows_implicit_dependencies"],
  enable_python_external_sdk: ["2026-04-21", "disable_python_external_sdk"],
  python_process_pth_files: ["2026-05-26", "disable_python_process_pth_files"],
};
// The runtime the vendored wheels (cp314, pyemscripten_2026_0_wasm32) are built for.
const PYODIDE_314_FLAG = "python_workers_20260610";

export function compatibilityFlags(config) {
  const listed = config.compatibility_flags ?? [];
  const flags = Object.fromEntries(listed.map((flag) => [flag, true]));
  for (const [flag, [date, disabledBy]] of Object.entries(ENABLED_FROM)) {
    flags[flag] ??= config.compatibility_date >= date && !listed.includes(disabledBy);
  }
  if (!flags[PYODIDE_314_FLAG]) {
    throw new Error(`wrangler.toml lacks ${PYODIDE_314_FLAG}: Cloudflare would run Pyodide 0.28 / CPython 3.13, not the 314 runtime the vendored wheels and this harness are for`);
  }
  if (!flags.enable_python_external_sdk) {
    throw new Error(`compatibility_date ${config.compatibility_date} selects workerd's built-in workers SDK (before 2026-04-21), not the vendored workers-runtime-sdk`);
  }
  return flags;
}
