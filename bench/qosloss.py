"""What a subscriber held up for a moment loses from a burst, subscribed at QoS 0 and at QoS 1, on a private Mosquitto
with its default queue limits: ``python -m bench.qosloss [messages] [publish qos]``."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.mqtt.broker import free_port

__all__ = ["lost"]

HOLD_SECONDS = 2.0
PAYLOAD = b'{"state":"ON","brightness":128,"pad":"' + b"x" * 60 + b'"}'


def lost(messages: int, publish_qos: int, subscribe_qos: int) -> int:
    """Messages a subscriber at ``subscribe_qos``, held up for 2 s by its first message, never receives."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            return _run(port, messages, publish_qos, subscribe_qos)
        finally:
            broker.kill()
            broker.wait()


def _run(port: int, messages: int, publish_qos: int, subscribe_qos: int) -> int:
    received = [0]
    held = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if not held.is_set():
            held.set()
            time.sleep(HOLD_SECONDS)  # a gateway whose loop is held up
        received[0] += 1

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="qosloss-sub")
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("t/#", subscribe_qos)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="qosloss-pub")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        time.sleep(0.3)
        info = None
        for i in range(messages):
            info = pub.publish(f"t/{i % 2000}", PAYLOAD, qos=publish_qos)
        if info is not None:
            info.wait_for_publish(60)
        time.sleep(HOLD_SECONDS + 2)
        return messages - received[0]
    finally:
        pub.loop_stop()
        sub.loop_stop()


def main() -> None:
    """Print the loss at each subscription QoS."""
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    publish_qos = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for subscribe_qos in (0, 1):
        print(
            f"published {messages} at QoS {publish_qos}, subscribed at QoS {subscribe_qos}: "
            f"{lost(messages, publish_qos, subscribe_qos)} lost",
            flush=True,
        )


if __name__ == "__main__":
    main()
