"""A minimal MCP server on stdio (no dependencies) with one tool, `die`, that exits in the
middle of its call: what a crashing server looks like to its client."""

import json
import sys

for line in sys.stdin:
    message = json.loads(line)
    method, ident = message.get("method"), message.get("id")
    if method == "initialize":
        result = {"protocolVersion": message["params"]["protocolVersion"],
                  "capabilities": {"tools": {}},
                  "serverInfo": {"name": "dies-mid-call", "version": "1"}}
    elif method == "tools/list":
        result = {"tools": [{"name": "die", "description": "Exits instead of answering.",
                             "inputSchema": {"type": "object", "properties": {}}}]}
    elif method == "tools/call":
        sys.exit(3)
    else:
        continue
    print(json.dumps({"jsonrpc": "2.0", "id": ident, "result": result}), flush=True)
