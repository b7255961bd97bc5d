// Loads Pyodide the way workerd prepares a Python Worker, with the top-level entropy gate:
//   /session/metadata        the dry-run bundle (entry.py, worker/, …, python_modules/)
//   site-packages/            the harness's Python side (tests/pyodide/runtime/): the
//                             entropy gate `_cloudflare` and the dispatcher's `_harness_calls`
// then the search path workerd builds (bundle first, python_modules before site-packages,
// its .pth files processed from python_process_pth_files on).
import nodeCrypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { loadPyodide } from "pyodide";

const SESSION = "/session/metadata";
const PYTHON_MODULES = `${SESSION}/python_modules`;

// Every getentropy the main module's import makes goes through one of these two functions.
function hookEntropy(pyodide, allowanceAddress, refused) {
  let open = false;
  const heap = () => pyodide._module.HEAP8;
  function spendOrRefuse(what) {
    if (open) return false;
    if (heap()[allowanceAddress] > 0) {
      heap()[allowanceAddress] -= 1;
      return true;
    }
    refused.push(`${what} at top level, not allowed by any runtime patch\n${new Error().stack}`);
    throw new pyodide.FS.ErrnoError(29); // EIO: the call fails inside Python, as on workerd
  }
  const randomFillSync = nodeCrypto.randomFillSync;
  nodeCrypto.randomFillSync = function (view, ...rest) {
    // Allowed calls get constant bytes, as workerd hands out "bad entropy" before requests.
    return spendOrRefuse("getentropy") ? view.fill(43) : randomFillSync.call(this, view, ...rest);
  };
  const getRandomValues = globalThis.crypto.getRandomValues.bind(globalThis.crypto);
  globalThis.crypto.getRandomValues = (view) =>
    spendOrRefuse("crypto.getRandomValues") ? view.fill(43) : getRandomValues(view);
  return () => {
    open = true;
  };
}

function copyTree(pyodide, from, to) {
  pyodide.FS.mkdirTree(to);
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (entry.name === "__pycache__") continue;
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) copyTree(pyodide, source, `${to}/${entry.name}`);
    else pyodide.FS.writeFile(`${to}/${entry.name}`, fs.readFileSync(source));
  }
}

/**
 * Pyodide with the bundle mounted and the gate closed, ready to import the main module.
 * `flags` is the compatibility-flag object workerd would register; `helper` the
 * `_pyodide_entrypoint_helper` module; `extraPaths` go first on sys.path (the canary).
 */
export async function preparePython({ bundleDir, runtimeDir, extraPaths, flags, helper, log }) {
  const importTimes = [];
  let collectImportTimes = false;
  const pyodide = await loadPyodide({
    env: { PYTHONPROFILEIMPORTTIME: "1" },
    stdout: (line) => log(line),
    stderr: (line) => {
      if (!line.startsWith("import time:")) return log(line);
      if (collectImportTimes) importTimes.push(line);
    },
  });
  pyodide.FS.mkdirTree(SESSION);
  pyodide.mountNodeFS(SESSION, bundleDir);
  copyTree(pyodide, runtimeDir, pyodide.runPython("import site\nsite.getsitepackages()[0]"));
  extraPaths.forEach((dir, index) => {
    pyodide.FS.mkdirTree(`/harness/extra${index}`);
    pyodide.mountNodeFS(`/harness/extra${index}`, dir);
  });
  pyodide.registerJsModule("_pyodide_entrypoint_helper", helper);
  pyodide.registerJsModule("_cloudflare_compat_flags", flags);

  const refused = [];
  const address = pyodide.runPython(
    "import sys\nsys.path_importer_cache.clear()\nfrom _cloudflare.gate import before_top_level\nbefore_top_level()",
  );
  const openGate = hookEntropy(pyodide, address, refused);
  pyodide.runPython(`
import site, sys
sys.path.insert(0, ${JSON.stringify(SESSION)})
for index, entry in enumerate(sys.path):
    if "site-packages" in entry:
        sys.path.insert(index, ${JSON.stringify(PYTHON_MODULES)})
        break
if ${flags.python_process_pth_files ? "True" : "False"}:
    site.addsitedir(${JSON.stringify(PYTHON_MODULES)})
for index in range(${extraPaths.length}):
    sys.path.insert(0, f"/harness/extra{index}")
`);
  return {
    pyodide,
    /** Import `name` inside the closed gate; the import's per-module times are kept. */
    async importMain(name) {
      collectImportTimes = true;
      const started = performance.now();
      try {
        return await pyodide.runPythonAsync(`import importlib\nimportlib.import_module(${JSON.stringify(name)})`);
      } finally {
        collectImportTimes = false;
        this.importMilliseconds = performance.now() - started;
      }
    },
    importTimes,
    importMilliseconds: 0,
    /** Entropy refused during the import: in JS (C getentropy) and in Python (os.urandom). */
    refusedEntropy() {
      const inPython = pyodide.runPython("from _cloudflare.allow_entropy import REFUSED\nlist(REFUSED)");
      return [...refused, ...inPython.toJs()];
    },
    /** What workerd does before the first request: reseed, unblock, let entropy through. */
    beforeFirstRequest() {
      pyodide.runPython("from _cloudflare.gate import before_first_request\nbefore_first_request()");
      openGate();
    },
  };
}
