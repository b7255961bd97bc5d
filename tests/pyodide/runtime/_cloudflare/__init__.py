"""The harness's stand-in for workerd's `_cloudflare` package (its top-level entropy gate).

Only inside workerd does `_cloudflare` exist; the vendored workers-runtime-sdk finds it and
registers its package patches (`_workers_sdk_entropy_import_context`, loaded by a `.pth`
file) through `allow_entropy` and `import_patch_manager`. This package offers the same
names with the same meaning, written for the harness:

- `allow_entropy`: a counter of getentropy calls the running import may make; the Node
  host reads it from Pyodide's memory and refuses any call beyond it.
- `import_patch_manager`: a meta path finder that runs a module's import inside the
  context a patch registered for it.
- `stdlib_patches`: the allowances workerd itself grants the standard library.
- `gate`: closes the gate before the main module's import and opens it for requests.
"""
