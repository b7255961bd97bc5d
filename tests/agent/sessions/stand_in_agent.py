"""A stand-in ACP agent on stdio for fault injection: what it does on a prompt is what the
prompt's text says.

    malformed   a line that is not JSON, then the end of the turn
    oversized   a line of OVERSIZED_BYTES, then the end of the turn
    crash       a lot of stderr, then exit code 3 mid-turn
    anything    one agent_message_chunk echoing it, then the end of the turn
"""

import json
import sys

OVERSIZED_BYTES = 17 * 1024 * 1024  # over agent/sessions/adapter.py's MAX_MESSAGE_BYTES


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        method, params, rid = request.get("method"), request.get("params") or {}, request.get("id")
        if method == "initialize":
            send(
                {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "result": {
                        "protocolVersion": 1,
                        "agentInfo": {"name": "stand-in", "version": "1"},
                    },
                }
            )
        elif method == "session/new":
            send({"jsonrpc": "2.0", "id": rid, "result": {"sessionId": "stand-in-1"}})
        elif method == "session/set_mode":
            send({"jsonrpc": "2.0", "id": rid, "result": {}})
        elif method == "session/prompt":
            text = params["prompt"][0]["text"]
            if text == "crash":
                sys.stderr.write("boom\n" * 5000 + "the last words\n")
                sys.stderr.flush()
                sys.exit(3)
            if text == "malformed":
                sys.stdout.write("this is not json\n")
            elif text == "oversized":
                sys.stdout.write('{"pad": "' + "x" * OVERSIZED_BYTES + '"}\n')
            else:
                update = {
                    "sessionUpdate": "agent_message_chunk",
                    "content": {"type": "text", "text": text},
                }
                send(
                    {
                        "jsonrpc": "2.0",
                        "method": "session/update",
                        "params": {"sessionId": "stand-in-1", "update": update},
                    }
                )
            send({"jsonrpc": "2.0", "id": rid, "result": {"stopReason": "end_turn"}})


if __name__ == "__main__":
    main()
