"""An agent's code mode: the model writes one program that calls the host's tools, and
pyeval runs it. The two tools here stand in for real ones (a weather service and an
exchange-rate service, each taking a moment to answer); the program calls both at once.

    python examples/python/agent_tools.py

prints the stubs the model is shown, then what the program printed and how long it took.
"""

import asyncio
import time

import pyeval


async def weather(city: str) -> dict:
    """Today's forecast for `city`: temperature in °C and conditions."""
    await asyncio.sleep(0.3)
    forecasts = {"Lisbon": (21, "sunny"), "Oslo": (4, "snow")}
    if city not in forecasts:
        raise LookupError(f"no forecast for {city}")
    temperature, conditions = forecasts[city]
    return {"city": city, "temperature_c": temperature, "conditions": conditions}


async def exchange_rate(base: str, quote: str) -> float:
    """How many `quote` one `base` buys (ISO 4217 codes)."""
    await asyncio.sleep(0.3)
    rates = {("EUR", "NOK"): 11.5, ("NOK", "EUR"): 1 / 11.5}
    return rates[(base, quote)]


# What a model wrote after reading the stubs: both calls at once, and a failure handled.
PROGRAM = """
import asyncio
from tools import ToolError

lisbon, oslo, rate = await asyncio.gather(
    weather(city="Lisbon"), weather(city="Oslo"), exchange_rate(base="EUR", quote="NOK"))
for report in (lisbon, oslo):
    print(f"{report['city']}: {report['temperature_c']} °C, {report['conditions']}")
print(f"100 EUR = {100 * rate:.0f} NOK")
try:
    await weather(city="Atlantis")
except ToolError as error:
    print(f"(no luck: {error})")
"""


def main():
    tools = [weather, exchange_rate]
    print(pyeval.tool_stubs(tools))
    started = time.monotonic()
    outcome = pyeval.Evaluator().eval(PROGRAM, tools=tools, timeout=10)
    elapsed = time.monotonic() - started
    print(outcome.stdout, end="")
    if outcome.error:
        print(outcome.error.traceback, end="")
    print(f"({elapsed:.1f} s: the three calls ran at the same time)")


if __name__ == "__main__":
    main()
