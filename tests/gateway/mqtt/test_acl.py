"""The broker credential model: MQTT wildcard semantics, scopes derived from namespaces, deny by default."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub
from pydantic import ValidationError

from gateway.mqtt.acl import Action, Credential, CredentialKind, Namespace, Scope, allowed, roots_overlap
from gateway.mqtt.topics import filter_covers, is_valid_filter, is_valid_topic, topic_matches

# Filters and topics over a small alphabet, so that matching and non-matching pairs are both common; "z" never
# appears in a generated filter, so it stands for every other level name when a witness topic is searched for.
LEVELS = ["a", "b", "", "$s"]
WITNESS_LEVELS = [*LEVELS, "z"]


@st.composite
def filters(draw: st.DrawFn, alphabet: tuple[str, ...] = tuple(LEVELS), max_levels: int = 4) -> str:
    levels = draw(st.lists(st.sampled_from([*alphabet, "+"]), min_size=1, max_size=max_levels))
    if (draw(st.booleans()) and len(levels) < max_levels) or levels == [""]:
        levels.append("#")
    return "/".join(levels)


@st.composite
def topics(draw: st.DrawFn) -> str:
    return draw(st.lists(st.sampled_from(WITNESS_LEVELS), min_size=1, max_size=5).map("/".join).filter(bool))


def _universe(depth: int) -> list[str]:
    topics = ("/".join(p) for n in range(1, depth + 1) for p in itertools.product(WITNESS_LEVELS, repeat=n))
    return [t for t in topics if t]


UNIVERSE = _universe(5)


@given(filters(), topics())
def test_matching_agrees_with_paho(topic_filter: str, topic: str) -> None:
    assert is_valid_filter(topic_filter) and is_valid_topic(topic)
    assert topic_matches(topic_filter, topic) == topic_matches_sub(topic_filter, topic)


@settings(max_examples=150, deadline=None)
@given(filters(), filters())
@example("/+/#", "/#")  # found by hypothesis: "/#"'s parent is the empty string, no topic
def test_a_filter_covers_another_exactly_when_no_topic_escapes_it(outer: str, inner: str) -> None:
    escapes = [t for t in UNIVERSE if topic_matches(inner, t) and not topic_matches(outer, t)]
    assert filter_covers(outer, inner) == (not escapes), escapes[:3]


@pytest.mark.parametrize(
    ("topic_filter", "valid"),
    [("a/#", True), ("#", True), ("+/+", True), ("a/#/b", False), ("a#", False), ("a/b+", False), ("", False),
     ("a\x00b", False), ("$SYS/#", True)],
)  # fmt: skip
def test_filter_validity(topic_filter: str, valid: bool) -> None:
    assert is_valid_filter(topic_filter) is valid


def test_wildcards_at_the_start_never_reach_dollar_topics() -> None:
    assert not topic_matches("#", "$SYS/broker")
    assert not topic_matches("+/broker", "$SYS/broker")
    assert topic_matches("$SYS/#", "$SYS/broker")
    assert not filter_covers("#", "$CONTROL/dynamic-security/v1")


# --- namespaces, credentials and scopes ----------------------------------------------------------------------


def device(username: str = "lock-u101", root: str = "fwsim/u101/lock", node: str = "u101-lock") -> Credential:
    namespace = Namespace(node_ids=(node,), state_roots=(root,), command_roots=(root,))
    return Credential(
        id=f"c-{username}", username=username, kind=CredentialKind.DEVICE, property_id="p1", client_id=username,
        namespace=namespace,
    )  # fmt: skip


def zigbee2mqtt_bridge() -> Credential:
    namespace = Namespace(node_ids=("0x00158d0001", "0x00158d0002"), state_roots=("z2m-b1",), command_roots=("z2m-b1",))
    return Credential(
        id="c-z2m", username="z2m-b1", kind=CredentialKind.BRIDGE, property_id="p1", client_id="z2m-b1",
        namespace=namespace,
    )  # fmt: skip


def tasmota() -> Credential:
    namespace = Namespace(
        node_ids=("tasmota_1A2B3C",), state_roots=("tele/probe1", "stat/probe1"), command_roots=("cmnd/probe1",)
    )
    return Credential(
        id="c-t", username="probe1", kind=CredentialKind.DEVICE, property_id="p1", client_id="DVES_1A2B3C",
        namespace=namespace,
    )  # fmt: skip


def test_a_device_publishes_its_own_discovery_state_and_availability_only() -> None:
    scope = Scope.of(device())
    for topic in (
        "homeassistant/lock/u101-lock/lock/config",
        "fwsim/u101/lock/lock",
        "fwsim/u101/lock/availability",
        "fwsim/u101/lock",
    ):
        assert allowed(scope, Action.PUBLISH, topic), topic
    for topic in (
        "homeassistant/lock/u102-lock/lock/config",  # another device's discovery
        "homeassistant/status",  # the gateway's birth
        "fwsim/u102/lock/lock/set",  # another device's command topic
        "fwsim/u101/lockx",  # a sibling that merely shares a prefix
        "aptgateway/gw/status",
        "$SYS/broker/uptime",
        "fwsim/u101/+",  # not a topic name
    ):
        assert not allowed(scope, Action.PUBLISH, topic), topic


def test_a_device_subscribes_to_its_own_command_topics_and_the_birth_only() -> None:
    scope = Scope.of(device())
    for topic_filter in (
        "fwsim/u101/lock/lock/set",
        "fwsim/u101/lock/#",
        "fwsim/u101/lock/+/set",
        "homeassistant/status",
    ):
        assert allowed(scope, Action.SUBSCRIBE, topic_filter), topic_filter
    for topic_filter in ("#", "+/#", "fwsim/#", "fwsim/+/lock/lock/set", "homeassistant/#", "$SYS/#", "fwsim/u101/#",
                         "homeassistant/lock/u101-lock/lock/config"):  # fmt: skip
        assert not allowed(scope, Action.SUBSCRIBE, topic_filter), topic_filter


def test_a_bridge_gets_what_zigbee2mqtt_needs() -> None:
    scope = Scope.of(zigbee2mqtt_bridge())
    assert allowed(scope, Action.SUBSCRIBE, "z2m-b1/#")
    assert allowed(scope, Action.SUBSCRIBE, "homeassistant/status")
    assert allowed(scope, Action.SUBSCRIBE, "homeassistant/+/0x00158d0001/#")  # its own stale configs, to clear them
    assert allowed(scope, Action.PUBLISH, "homeassistant/climate/0x00158d0002/climate/config")
    assert allowed(scope, Action.PUBLISH, "z2m-b1/bridge/state")
    assert not allowed(scope, Action.SUBSCRIBE, "homeassistant/#")
    assert not allowed(scope, Action.PUBLISH, "homeassistant/climate/0x00158d0003/climate/config")


def test_tasmota_reads_cmnd_and_writes_tele_and_stat() -> None:
    scope = Scope.of(tasmota())
    assert allowed(scope, Action.SUBSCRIBE, "cmnd/probe1/#")
    assert allowed(scope, Action.PUBLISH, "tele/probe1/SENSOR")
    assert allowed(scope, Action.PUBLISH, "stat/probe1/RESULT")
    assert not allowed(scope, Action.PUBLISH, "cmnd/probe1/POWER")  # its command root is not a state root
    assert not allowed(scope, Action.SUBSCRIBE, "tele/probe1/#")
    assert scope.owns_client_id("DVES_1A2B3C") and not scope.owns_client_id("probe1")


def test_the_gateway_may_do_everything() -> None:
    gateway = Credential(id="g", username="gateway", kind=CredentialKind.GATEWAY)
    scope = Scope.of(gateway)
    assert allowed(scope, Action.SUBSCRIBE, "#")
    assert allowed(scope, Action.PUBLISH, "fwsim/u101/lock/lock/set")
    assert allowed(scope, Action.PUBLISH, "$CONTROL/dynamic-security/v1")
    assert scope.owns_client_id("aptgateway-1234")
    assert not allowed(scope, Action.PUBLISH, "a/#")  # still only well-formed requests


@pytest.mark.parametrize(
    "namespace",
    [
        {"state_roots": ("fwsim/+/lock",)},
        {"state_roots": ("fwsim/#",)},
        {"state_roots": ("a\x00b",)},
        {"state_roots": ("$SYS/x",)},
        {"state_roots": ("a//b",)},
        {"state_roots": ("",)},
        {"state_roots": ("x" * 201,)},
        {"state_roots": ("/".join("a" * 13),)},
        {"state_roots": tuple(f"r{i}" for i in range(17))},
        {"command_roots": ("homeassistant",)},  # the whole discovery prefix
        {"command_roots": ("homeassistant/lock",)},
        {"state_roots": ("aptgateway/gw",)},  # the gateway's own tree
        {"node_ids": ("u101/lock",)},
        {"node_ids": ("+",)},
        {"discovery_prefix": "home/+"},
    ],
)
def test_namespaces_with_wildcards_reserved_trees_or_excess_are_refused(namespace: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Namespace.model_validate(namespace)


def test_credentials_are_consistent_with_their_kind() -> None:
    ns = Namespace(node_ids=("n1",))
    with pytest.raises(ValidationError):  # a bridge belongs to a property
        Credential(id="x", username="b1", kind=CredentialKind.BRIDGE, client_id="b1", namespace=ns)
    # A device may not (the gateway's own simulated devices), scoped as any other.
    own = Credential(id="x", username="d1", kind=CredentialKind.DEVICE, client_id="d1", namespace=ns)
    assert Scope.of(own).publish == ("homeassistant/+/n1/#",) and not Scope.of(own).everything
    with pytest.raises(ValidationError):  # a device owns a client id
        Credential(id="x", username="d1", kind=CredentialKind.DEVICE, property_id="p", namespace=ns)
    with pytest.raises(ValidationError):  # and a namespace
        Credential(id="x", username="d1", kind=CredentialKind.DEVICE, property_id="p", client_id="d1")
    with pytest.raises(ValidationError):  # the gateway has no namespace to be confined to
        Credential(id="x", username="gw", kind=CredentialKind.GATEWAY, namespace=ns)
    with pytest.raises(ValidationError):
        Credential(id="x", username="bad name", kind=CredentialKind.GATEWAY)
    too_many = Namespace(node_ids=tuple(f"n{i}" for i in range(9)))
    with pytest.raises(ValidationError):
        Credential(
            id="x", username="d1", kind=CredentialKind.DEVICE, property_id="p", client_id="d1", namespace=too_many
        )
    Credential(id="x", username="b1", kind=CredentialKind.BRIDGE, property_id="p", client_id="b1", namespace=too_many)


def test_models_are_frozen() -> None:
    credential = device()
    with pytest.raises(ValidationError):
        credential.username = "other"  # type: ignore[misc]


ROOT_LEVELS = st.sampled_from(["fwsim", "u101", "u102", "lock", "set", "z"])


@st.composite
def namespaces(draw: st.DrawFn) -> Namespace:
    roots = draw(st.lists(st.lists(ROOT_LEVELS, min_size=1, max_size=3).map("/".join), min_size=1, max_size=3))
    nodes = draw(st.lists(st.sampled_from(["n1", "n2", "n3"]), max_size=2, unique=True))
    return Namespace(node_ids=tuple(nodes), state_roots=tuple(roots), command_roots=tuple(roots))


@settings(max_examples=150, deadline=None)
@given(namespaces(), namespaces(), st.lists(ROOT_LEVELS, max_size=3))
def test_two_disjoint_namespaces_never_reach_each_others_topics(
    mine: Namespace, theirs: Namespace, tail: list[str]
) -> None:
    if any(roots_overlap(a, b) for a in mine.roots for b in theirs.roots) or set(mine.node_ids) & set(theirs.node_ids):
        return  # the credential store refuses overlapping namespaces; only disjoint ones coexist
    scope = Scope.of(
        Credential(
            id="m", username="mine", kind=CredentialKind.BRIDGE, property_id="p", client_id="mine", namespace=mine
        )
    )
    for root in theirs.roots:
        topic = "/".join([root, *tail])
        assert not allowed(scope, Action.PUBLISH, topic), topic
        assert not allowed(scope, Action.SUBSCRIBE, topic), topic
    for node in theirs.node_ids:
        assert not allowed(scope, Action.PUBLISH, f"homeassistant/lock/{node}/lock/config")
    for grant in (*scope.publish, *scope.subscribe):
        assert not filter_covers(grant, "#") and not grant.startswith(("#", "+", "$"))


@settings(max_examples=300)
@given(filters(("fwsim", "u101", "u102", "lock", "set", "homeassistant", "status", "$SYS"), max_levels=5))
def test_a_device_subscribes_inside_its_command_root_or_to_the_birth_and_nowhere_else(topic_filter: str) -> None:
    scope = Scope.of(device())
    inside = topic_filter in ("homeassistant/status", "fwsim/u101/lock") or topic_filter.startswith("fwsim/u101/lock/")
    assert allowed(scope, Action.SUBSCRIBE, topic_filter) == inside
