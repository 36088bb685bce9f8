"""For bench_delivery --jitter only: send `count` chat.postEphemeral calls through slack_sdk's
WebClient, each leaving exactly `spacing` seconds after the previous one left (a pacer that
spaces calls from when they leave, with no regard to answers), and print when each call left and
when its answer came (time.monotonic, shared by the processes of one machine) as JSON. Runs as its own process, as the relay does.

Run: python bench/_open_loop_probe.py API_URL TOKEN CHANNEL USER SPACING COUNT
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time

from relay.slack.api import make_client


def main() -> None:
    api_url, token, channel, user = sys.argv[1:5]
    spacing, count = float(sys.argv[5]), int(sys.argv[6])
    client = make_client(api_url, token)
    lock = threading.Lock()
    trips: list[tuple[float, float]] = []     # (left, answered), on the machine's monotonic clock

    def call(i: int) -> None:
        left = time.monotonic()
        client.api_call("chat.postEphemeral", json={"channel": channel, "user": user, "text": f"probe {i}"})
        with lock:
            trips.append((left, time.monotonic()))

    # A few callers wait on a queue, as a pacer's lane threads would: the scheduler hands each
    # call over on its slot, so a call never waits for the previous one's answer.
    slots: queue.Queue[int | None] = queue.Queue()

    def caller() -> None:
        while (i := slots.get()) is not None:
            call(i)

    workers = [threading.Thread(target=caller) for _ in range(8)]
    for t in workers:
        t.start()
    slot = time.monotonic()
    for i in range(count):
        slot += spacing
        threading.Event().wait(max(0.0, slot - time.monotonic()))
        slot = max(slot, time.monotonic())      # the next leaves one spacing after this one did
        slots.put(i)
    for _ in workers:
        slots.put(None)
    for t in workers:
        t.join(60)
    print(json.dumps({"trips": sorted(trips)}))


if __name__ == "__main__":
    main()
