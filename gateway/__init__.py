"""The apartment gateway process: MQTT transport, device registry, commands, storage."""
