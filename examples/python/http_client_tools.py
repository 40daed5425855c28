"""An agent that speaks to `pyeval serve` over HTTP only (any language would do; this uses
nothing but Python's standard library): the program it sends calls two tools the agent
itself provides, at the same time, and the agent answers each call as it arrives on the
stream of events, while the output streams in.

    pyeval serve --listen 127.0.0.1:8000 &
    python3 examples/python/http_client_tools.py http://127.0.0.1:8000
"""

import json
import sys
import urllib.request

PROGRAM = """
import asyncio
print("asking both...")
weather, rate = await asyncio.gather(forecast(city="Lisbon"), exchange(pair="EUR/NOK"))
print(f"Lisbon: {weather['celsius']} °C; 100 EUR = {100 * rate:.0f} NOK")
"""

TOOLS = [
    {"name": "forecast", "description": "Today's weather in a city.",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"]}},
    {"name": "exchange", "description": "An exchange rate, such as EUR/NOK.",
     "parameters": {"type": "object", "properties": {"pair": {"type": "string"}},
                    "required": ["pair"]}},
]


def answer(tool, arguments):
    """What the agent's own tools answer."""
    if tool == "forecast":
        return {"result": {"city": arguments["city"], "celsius": 21}}
    if tool == "exchange":
        return {"result": 11.5}
    return {"error": f"no tool {tool}"}


def post(base, path, body, **headers):
    request = urllib.request.Request(
        base + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", **headers})
    return urllib.request.urlopen(request, timeout=60)


def events(response):
    """`(event, data)` pairs of a stream of server-sent events."""
    name, data = "message", []
    for raw in response:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
        elif not line and data:
            yield name, json.loads("\n".join(data))
            name, data = "message", []


def main(base):
    body = {"code": PROGRAM, "client_tools": TOOLS}
    with post(base, "/v1/eval", body, Accept="text/event-stream") as stream:
        for event, data in events(stream):
            if event in ("stdout", "stderr"):
                print(f"[{event}] {data['text']}", end="")
            elif event == "call":
                print(f"[call] {data['tool']}({data['arguments']})")
                post(base, f"/v1/calls/{data['id']}", answer(data["tool"], data["arguments"]))
            elif event == "outcome":
                print(f"[done] value={data['value']!r} error={data['error']!r}")
            elif event == "error":
                print(f"[failed] {data['status']} {data['error']['message']}")
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"))
