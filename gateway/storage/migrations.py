"""Numbered schema migrations; ``PRAGMA user_version`` records the last one applied."""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[str, ...] = (
    # 1: devices, entities, commands, events, gateway runs
    """
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        name TEXT,
        manufacturer TEXT,
        model TEXT,
        sw_version TEXT,
        first_seen TEXT NOT NULL
    );
    CREATE TABLE entities (
        key TEXT PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id),
        component TEXT NOT NULL,
        kind TEXT NOT NULL,
        unique_id TEXT,
        name TEXT,
        config TEXT NOT NULL,
        discovered_at TEXT NOT NULL,
        removed_at TEXT,
        state TEXT,
        state_at TEXT,
        state_error TEXT,
        state_error_at TEXT,
        available INTEGER,
        availability_at TEXT,
        last_seen TEXT
    );
    CREATE UNIQUE INDEX entities_unique_id ON entities(unique_id) WHERE unique_id IS NOT NULL;
    CREATE INDEX entities_device ON entities(device_id);
    CREATE TABLE commands (
        id TEXT PRIMARY KEY,
        entity_key TEXT NOT NULL REFERENCES entities(key),
        actor TEXT NOT NULL,
        command TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        detail TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX commands_entity ON commands(entity_key, created_at);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        entity_key TEXT REFERENCES entities(key),
        type TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_entity ON events(entity_key, at);
    CREATE TABLE gateway_runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL,
        stopped_at TEXT
    );
    """,  # 2: properties, units, device bindings, accounts, sessions, login throttling, audit log
    """
    CREATE TABLE properties (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE units (
        id TEXT PRIMARY KEY,
        property_id TEXT NOT NULL REFERENCES properties(id),
        label TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (property_id, label)
    );
    CREATE TABLE bindings (
        id INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id),
        unit_id TEXT NOT NULL REFERENCES units(id),
        bound_at TEXT NOT NULL,
        bound_by TEXT NOT NULL,
        unbound_at TEXT,
        unbound_by TEXT
    );
    CREATE UNIQUE INDEX bindings_current ON bindings(device_id) WHERE unbound_at IS NULL;
    CREATE INDEX bindings_unit ON bindings(unit_id);
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        display_name TEXT,
        role TEXT NOT NULL,
        property_id TEXT REFERENCES properties(id),
        unit_id TEXT REFERENCES units(id),
        password_hash TEXT,
        status TEXT NOT NULL,
        status_reason TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT,
        activated_at TEXT,
        ended_at TEXT
    );
    CREATE INDEX accounts_unit ON accounts(unit_id);
    CREATE TABLE activation_codes (
        account_id TEXT PRIMARY KEY REFERENCES accounts(id),
        code_hash TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at TEXT
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        client TEXT,
        created_at TEXT NOT NULL,
        last_used_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revoked_at TEXT,
        revoked_reason TEXT
    );
    CREATE INDEX sessions_account ON sessions(account_id);
    CREATE TABLE login_attempts (
        username TEXT PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_failure_at TEXT NOT NULL,
        locked_until TEXT
    );
    CREATE TABLE device_names (
        unit_id TEXT NOT NULL REFERENCES units(id),
        device_id TEXT NOT NULL REFERENCES devices(id),
        name TEXT NOT NULL,
        set_by TEXT NOT NULL,
        set_at TEXT NOT NULL,
        PRIMARY KEY (unit_id, device_id)
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor_id TEXT,
        actor_role TEXT,
        action TEXT NOT NULL,
        property_id TEXT,
        unit_id TEXT,
        target TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_property ON audit_log(property_id, id);
    CREATE INDEX events_type ON events(type);
    """,  # 3: lessor contracts, agreement versions, acceptances, arbitration opt-outs, gateway settings
    """
    CREATE TABLE contracts (
        property_id TEXT PRIMARY KEY REFERENCES properties(id),
        status TEXT NOT NULL,
        status_reason TEXT,
        starts_at TEXT NOT NULL,
        ends_at TEXT,
        offers_service INTEGER NOT NULL,
        internet_provided_by TEXT NOT NULL,
        internet_provider_name TEXT,
        internet_provider_contact TEXT,
        plan TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL
    );
    CREATE TABLE agreement_versions (
        version TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        effective_at TEXT NOT NULL,
        published_at TEXT NOT NULL,
        published_by TEXT NOT NULL
    );
    CREATE TABLE agreement_acceptances (
        id INTEGER PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id),
        version TEXT NOT NULL REFERENCES agreement_versions(version),
        accepted_at TEXT NOT NULL,
        age_confirmed INTEGER NOT NULL CHECK (age_confirmed = 1),
        client TEXT,
        session_id TEXT,
        UNIQUE (account_id, version)
    );
    CREATE TABLE arbitration_opt_outs (
        account_id TEXT PRIMARY KEY REFERENCES accounts(id),
        recorded_at TEXT NOT NULL,
        client TEXT
    );
    CREATE TABLE gateway_settings (
        key TEXT PRIMARY KEY,
        value TEXT,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL
    );
    """,  # 4: connectivity intervals, self-tests, failure-report outbox, resident notifications
    """
    CREATE TABLE outages (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('broadband', 'broker', 'power', 'device', 'storm')),
        started_at TEXT NOT NULL,
        ended_at TEXT,
        cause TEXT NOT NULL,
        property_id TEXT REFERENCES properties(id),
        device_id TEXT,
        detail TEXT,
        declared_by TEXT,
        CHECK (ended_at IS NULL OR ended_at >= started_at)
    );
    CREATE INDEX outages_open ON outages(kind, ended_at);
    CREATE INDEX outages_started ON outages(started_at);
    CREATE TABLE self_tests (
        id TEXT PRIMARY KEY,
        unit_id TEXT NOT NULL REFERENCES units(id),
        trigger TEXT NOT NULL CHECK (trigger IN ('resident', 'manager', 'automatic')),
        actor_id TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        passed INTEGER NOT NULL CHECK (passed IN (0, 1)),
        result TEXT NOT NULL
    );
    CREATE INDEX self_tests_unit ON self_tests(unit_id, finished_at);
    CREATE TABLE reports (
        id TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        property_id TEXT REFERENCES properties(id),
        unit_id TEXT REFERENCES units(id),
        created_at TEXT NOT NULL,
        created_by TEXT,
        body TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_attempt_at TEXT,
        last_error TEXT,
        delivered_at TEXT
    );
    CREATE INDEX reports_pending ON reports(delivered_at, created_at);
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        unit_id TEXT NOT NULL REFERENCES units(id),
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX notifications_unit ON notifications(unit_id, id);
    """,  # 5: broker credentials (device plane): argon2 hashes only, one live username, client id and namespace each
    """
    CREATE TABLE broker_credentials (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('device', 'bridge', 'gateway')),
        property_id TEXT REFERENCES properties(id),
        client_id TEXT,
        namespace TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        label TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT,
        revoked_at TEXT,
        revoked_by TEXT,
        CHECK ((kind = 'gateway') = (property_id IS NULL))
    );
    CREATE UNIQUE INDEX broker_credentials_username ON broker_credentials(username) WHERE revoked_at IS NULL;
    CREATE UNIQUE INDEX broker_credentials_client ON broker_credentials(client_id)
        WHERE revoked_at IS NULL AND client_id IS NOT NULL;
    CREATE INDEX broker_credentials_property ON broker_credentials(property_id, created_at);
    """,
    # 6: pinned device wiring: per entity of a bound device, the wiring staff approved (digest and JSON) and a
    # changed one awaiting them (pending); pinned NULL for an entity added to a bound device after it was bound
    """
    CREATE TABLE wiring (
        entity_key TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        pinned_digest TEXT,
        pinned TEXT,
        pinned_at TEXT,
        pinned_by TEXT,
        pending_digest TEXT,
        pending TEXT,
        held_since TEXT,
        rejected_at TEXT,
        rejected_by TEXT,
        CHECK ((pinned IS NULL) = (pinned_digest IS NULL)),
        CHECK ((pending IS NULL) = (pending_digest IS NULL))
    );
    CREATE INDEX wiring_device ON wiring(device_id);
    """,  # 7: a device credential may have no property (the gateway's own simulated devices); SQLite cannot alter a
    # CHECK, so the table is rebuilt (nothing references it)
    """
    CREATE TABLE broker_credentials_7 (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('device', 'bridge', 'gateway')),
        property_id TEXT REFERENCES properties(id),
        client_id TEXT,
        namespace TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        label TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT,
        revoked_at TEXT,
        revoked_by TEXT,
        CHECK (kind <> 'gateway' OR property_id IS NULL),
        CHECK (kind <> 'bridge' OR property_id IS NOT NULL)
    );
    INSERT INTO broker_credentials_7 (
        id, username, kind, property_id, client_id, namespace, password_hash, label, created_at, created_by,
        revoked_at, revoked_by
    )
    SELECT id, username, kind, property_id, client_id, namespace, password_hash, label, created_at, created_by,
        revoked_at, revoked_by
    FROM broker_credentials;
    DROP TABLE broker_credentials;
    ALTER TABLE broker_credentials_7 RENAME TO broker_credentials;
    CREATE UNIQUE INDEX broker_credentials_username ON broker_credentials(username) WHERE revoked_at IS NULL;
    CREATE UNIQUE INDEX broker_credentials_client ON broker_credentials(client_id)
        WHERE revoked_at IS NULL AND client_id IS NOT NULL;
    CREATE INDEX broker_credentials_property ON broker_credentials(property_id, created_at);
    """,
    # 8: device owners (device plane): the broker credential that first published a device owns its id (property
    # NULL: a credential of no property, the simulated unit's). No foreign keys: the persister writes these after the
    # device rows, and a claim must never hold back the registry's batch.
    """
    CREATE TABLE device_owners (
        device_id TEXT PRIMARY KEY,
        credential_id TEXT NOT NULL,
        property_id TEXT,
        claimed_at TEXT NOT NULL
    );
    CREATE INDEX device_owners_property ON device_owners(property_id);
    """,
    # 9: sign-in failures per (username, source address): the lock an attacker earns is theirs alone, while
    # login_attempts keeps the username-wide count, which only ever slows sign-ins (gateway/accounts/throttle.py).
    """
    CREATE TABLE login_attempts_by_source (
        username TEXT NOT NULL,
        source TEXT NOT NULL,
        failures INTEGER NOT NULL,
        last_failure_at TEXT NOT NULL,
        locked_until TEXT,
        PRIMARY KEY (username, source)
    );
    """,
    # 10: residents' privacy requests (access, correction, deletion, restriction) with their deadline, answer, the
    # legal holds named in it and an appeal; the disclosure log (exports, reports sent upstream); restrictions in
    # force. No foreign keys to accounts: an erasure re-keys what a hold keeps to a pseudonym.
    """
    CREATE TABLE privacy_requests (
        id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        property_id TEXT,
        unit_id TEXT,
        kind TEXT NOT NULL CHECK (kind IN ('access', 'correction', 'deletion', 'restriction')),
        state TEXT NOT NULL CHECK (state IN ('open', 'in_progress', 'granted', 'refused', 'answered', 'appealed',
            'closed')),
        detail TEXT,
        created_at TEXT NOT NULL,
        due_at TEXT NOT NULL,
        handled_by TEXT,
        answered_at TEXT,
        answer TEXT,
        refusal_code TEXT,
        held TEXT,
        appealed_at TEXT,
        appeal TEXT,
        closed_at TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX privacy_requests_account ON privacy_requests(account_id, created_at);
    CREATE INDEX privacy_requests_queue ON privacy_requests(state, due_at);
    CREATE TABLE disclosures (
        id INTEGER PRIMARY KEY,
        account_id TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('export', 'report')),
        recipient TEXT NOT NULL,
        reference TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX disclosures_account ON disclosures(account_id, id);
    CREATE TABLE restrictions (
        account_id TEXT PRIMARY KEY,
        since TEXT NOT NULL,
        request_id TEXT NOT NULL
    );
    """,
    # 11: firmware rollouts (gateway/firmware): one row per rollout, one per device in it with its stage and step,
    # so that a rollout resumes (or is reported) after a restart.
    """
    CREATE TABLE firmware_rollouts (
        id TEXT PRIMARY KEY,
        property_id TEXT NOT NULL REFERENCES properties(id),
        scope TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        created_by TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX firmware_rollouts_property ON firmware_rollouts(property_id, created_at);
    CREATE TABLE firmware_rollout_devices (
        rollout_id TEXT NOT NULL REFERENCES firmware_rollouts(id),
        device_id TEXT NOT NULL,
        unit_id TEXT,
        entity_id TEXT NOT NULL,
        stage INTEGER NOT NULL,
        kind TEXT,
        status TEXT NOT NULL,
        from_version TEXT,
        target_version TEXT,
        started_at TEXT,
        finished_at TEXT,
        reason TEXT,
        PRIMARY KEY (rollout_id, device_id)
    );
    """,
    # 12: retention (gateway/retention): the operator's retention days per category and the database's size budget
    # (defaults in code, only overrides stored); and the events_type index goes: no query reads events by type, and
    # every state change paid for it (an index entry, ~40 bytes and a B-tree insert per row)
    """
    CREATE TABLE retention_settings (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL
    );
    DROP INDEX IF EXISTS events_type;
    """,
    # 13: the persister appends (gateway/storage/staging.py): each flush's events and each changed entity's reported
    # columns go to two unindexed tables, merged into events (with its index) and entities in bulk; a state change
    # at a quiet rate dirtied two scattered pages (its entity's row, its place in events_entity), now it shares an
    # appended one. The views are what the tables say together (what a merge leaves unchanged).
    """
    CREATE TABLE events_recent (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        entity_key TEXT REFERENCES entities(key),
        type TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE TABLE entity_reports (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL,
        state TEXT,
        state_at TEXT,
        state_error TEXT,
        state_error_at TEXT,
        available INTEGER,
        availability_at TEXT,
        last_seen TEXT
    );
    CREATE VIEW all_events AS
        SELECT id, at, entity_key, type, data FROM events
        UNION ALL SELECT id, at, entity_key, type, data FROM events_recent;
    CREATE VIEW current_entities AS
        SELECT e.key, e.device_id, e.component, e.kind, e.unique_id, e.name, e.config, e.discovered_at, e.removed_at,
            iif(r.id IS NULL, e.state, r.state) AS state,
            iif(r.id IS NULL, e.state_at, r.state_at) AS state_at,
            iif(r.id IS NULL, e.state_error, r.state_error) AS state_error,
            iif(r.id IS NULL, e.state_error_at, r.state_error_at) AS state_error_at,
            iif(r.id IS NULL, e.available, r.available) AS available,
            iif(r.id IS NULL, e.availability_at, r.availability_at) AS availability_at,
            iif(r.id IS NULL, e.last_seen, r.last_seen) AS last_seen
        FROM entities e LEFT JOIN (
            SELECT * FROM entity_reports WHERE id IN (SELECT max(id) FROM entity_reports GROUP BY key)
        ) r ON r.key = e.key;
    """,
)
