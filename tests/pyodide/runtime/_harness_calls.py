"""How the harness calls into a Python entrypoint, the way workerd does.

`fetch` and RPC methods get their arguments through `python_from_rpc` and return through
`python_to_rpc` (workerd's introspection wrapper); handlers such as `scheduled`, `alarm`
and `webSocketMessage` get workerd's raw JS arguments. All calls are relaxed: a handler
may declare fewer parameters than workerd passes.
"""

from inspect import isawaitable
from typing import Any

from pyodide.code import relaxed_call
from workers import python_from_rpc, python_to_rpc


async def call_rpc(instance: Any, name: str, *args: Any) -> Any:
    result = relaxed_call(getattr(instance, name), *[python_from_rpc(arg) for arg in args])
    return python_to_rpc(await result if isawaitable(result) else result)


async def call_handler(instance: Any, name: str, *args: Any) -> Any:
    result = relaxed_call(getattr(instance, name), *args)
    return await result if isawaitable(result) else result
