"""MQTT topic names and filters (3.1.1, section 4.7): validity, matching, and one filter covering another."""

from __future__ import annotations

__all__ = [
    "MAX_TOPIC_BYTES",
    "filter_covers",
    "is_valid_filter",
    "is_valid_topic",
    "topic_matches",
]

MAX_TOPIC_BYTES = 65_535
"""The protocol's limit on a topic's UTF-8 length."""


def _well_formed(text: str) -> bool:
    return 0 < len(text.encode("utf-8", "surrogatepass")) <= MAX_TOPIC_BYTES and "\x00" not in text


def is_valid_topic(topic: str) -> bool:
    """Whether ``topic`` is a topic name a client may publish to (non-empty, no wildcards, no NUL)."""
    return _well_formed(topic) and "+" not in topic and "#" not in topic


def is_valid_filter(topic_filter: str) -> bool:
    """Whether ``topic_filter`` is a well-formed subscription (``+`` a whole level, ``#`` only the last level)."""
    if not _well_formed(topic_filter):
        return False
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter``; a filter starting with a wildcard never matches a ``$`` topic.

    Both are assumed valid (see ``is_valid_filter`` and ``is_valid_topic``).
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    wanted = topic_filter.split("/")
    levels = topic.split("/")
    for index, level in enumerate(wanted):
        if level == "#":
            return True  # "a/#" matches "a" itself as well as everything below it
        if index >= len(levels) or (level != "+" and level != levels[index]):
            return False
    return len(wanted) == len(levels)


def filter_covers(outer: str, inner: str) -> bool:
    """Whether every topic matching ``inner`` also matches ``outer`` (a subscription to ``inner`` grants no more).

    Both are assumed valid filters.
    """
    if inner.startswith("$") and outer[:1] in ("+", "#"):
        return False  # inner reaches $ topics, which a leading wildcard never does
    wide = outer.split("/")
    narrow = inner.split("/")
    for index, level in enumerate(wide):
        if level == "#":
            return True
        if index >= len(narrow):
            return False  # inner stops above this level: it matches a topic outer is too deep for
        mine = narrow[index]
        if mine == "#":
            # inner reaches any depth and its parent level too; outer "+/#" here misses only that parent, which is
            # no topic at all when it is the empty string (inner "/#" against outer "/+/#").
            return level == "+" and wide[index + 1 :] == ["#"] and narrow[:index] == [""]
        if level != "+" and (mine == "+" or mine != level):
            return False
    return len(narrow) == len(wide)
