"""Local stand-ins for the third-party clouds AFASA talks to (UbiBot, ThingsBoard).

Real HTTP servers speaking the documented APIs (see docs/reference-stack.md). The demo
profile of compose/docker-compose.yml runs them in containers (`python -m standins ...`);
tests start them in-process (`UbibotDouble().start()`, `ThingsboardDouble().start()`).
Standard library only, so they run in any Python 3.11 image.
"""
