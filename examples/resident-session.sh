#!/usr/bin/env bash
# A resident session with curl, start to finish, against a running gateway:
#   GATEWAY_OPERATOR_USERNAME=ops GATEWAY_OPERATOR_PASSWORD='choose a long passphrase' ./run.sh
# then, in another terminal: OPERATOR_PASSWORD='choose a long passphrase' examples/resident-session.sh
# Needs curl and jq. API defaults to http://127.0.0.1:8080; the simulated unit u101 is on the embedded broker.
set -euo pipefail
API="${API:-http://127.0.0.1:8080}/api/v1"
OPERATOR="${OPERATOR:-ops}"
: "${OPERATOR_PASSWORD:?set OPERATOR_PASSWORD to the bootstrap operator password}"
PASS='a long resident passphrase'
post() { curl -sS -X POST "$API$1" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} -d "$2"; }
put() { curl -sS -X PUT "$API$1" -H 'Content-Type: application/json' -H "Authorization: Bearer $3" -d "$2"; }
get() { curl -sS "$API$1" -H "Authorization: Bearer $2"; }
step() { printf '\n== %s\n' "$*"; }

step "operator signs in, creates the property, records the lessor's contract, publishes the agreement"
OP=$(post /auth/login "{\"username\":\"$OPERATOR\",\"password\":\"$OPERATOR_PASSWORD\"}" | jq -r .token)
post /properties '{"id":"elm","name":"Elm Court"}' "$OP" | jq -c .
put /operator/properties/elm/contract "{\"starts_at\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",
  \"internet\":{\"provided_by\":\"lessor\",\"name\":\"Elm Fibre\",\"contact\":\"+1 555 0100\"}}" "$OP" | jq -c '{in_force,plan}'
post /operator/agreements '{"version":"2026-11","text":"Home automation for your own unit. Not a security system."}' "$OP" | jq -c '{version,effective_at}'
CODE=$(post /operator/accounts '{"username":"maria","role":"manager","property_id":"elm"}' "$OP" | jq -r .activation_code)
post /auth/activate "{\"username\":\"maria\",\"activation_code\":\"$CODE\",\"password\":\"$PASS\"}" | jq -c '{username,role,status}'
PM=$(post /auth/login "{\"username\":\"maria\",\"password\":\"$PASS\"}" | jq -r .token)

step "manager creates unit 101, binds the devices the gateway discovered, moves the resident in"
post /properties/elm/units '{"label":"101","id":"u101"}' "$PM" | jq -c .
for DEVICE in $(get /properties/elm/devices/unbound "$PM" | jq -r '.[].id | select(startswith("fwsim-u101-"))'); do
  post /properties/elm/units/u101/devices "{\"device_id\":\"$DEVICE\"}" "$PM" | jq -c '{id,name,unit_id}'
done
CODE=$(post /properties/elm/units/u101/residents '{"username":"dana","display_name":"Dana"}' "$PM" | jq -r .activation_code)

step "resident activates the account with the one-time code and signs in from the app"
post /auth/activate "{\"username\":\"dana\",\"activation_code\":\"$CODE\",\"password\":\"$PASS\"}" | jq -c '{username,role,status}'
TOKEN=$(post /auth/login "{\"username\":\"dana\",\"password\":\"$PASS\",\"client\":\"Dana's phone\"}" | jq -r .token)

step "nothing is controlled before the agreement is accepted, stating 18 or older"
post /me/entities/light.u101-light.light/commands '{"command":{"on":true}}' "$TOKEN" | jq -c '{status,code,version}'
post /me/agreement/accept '{"version":"2026-11","age_confirmed":true}' "$TOKEN" | jq -c '{accepted_current,opt_out_deadline}'
get /me/service "$TOKEN" | jq -c '{can_control,contract_in_force,agreement_version}'

step "my unit and my devices (state, availability, last seen, stale or not)"
get /me/unit "$TOKEN" | jq -c .
get /me/devices "$TOKEN" | jq -c '.[].entities[] | {id,kind,available,stale,state}'

step "live stream of my unit in the background (Server-Sent Events)"
curl -sSN "$API/me/stream" -H "Authorization: Bearer $TOKEN" --max-time 4 2>/dev/null | grep '^event: state' | head -n 2 | sed 's/^/  stream: /' &

step "commands, each with its real outcome"
sleep 0.5
post /me/entities/light.u101-light.light/commands '{"command":{"on":true}}' "$TOKEN" | jq -c '{status,finished_at}'
post /me/entities/lock.u101-lock.lock/commands '{"command":{"action":"lock"}}' "$TOKEN" | jq -c '{status}'
post /me/entities/climate.u101-thermostat.climate/commands '{"command":{"target_temperature":35}}' "$TOKEN" | jq -c '{status,code,detail}'
ID=$(post /me/entities/light.u101-dimmer.light/commands '{"command":{"brightness":64},"wait":false}' "$TOKEN" | jq -r .id)
sleep 1
get "/me/commands/$ID" "$TOKEN" | jq -c '{id,status}'
wait

step "the monthly self-test: each device is asked for its state; nothing is switched, locked or unlocked"
post /me/self-test '{}' "$TOKEN" | jq -c '{passed, broker: .broker.status, devices: [.devices[] | {device_id, status}]}'
get /me/self-test "$TOKEN" | jq -c '.compliance | {status, due_at}'

step "my unit's history, newest first, one page"
get "/me/events?limit=5" "$TOKEN" | jq -c '.events[] | {at,entity_id,type}'

step "another unit's id answers 404, exactly like an id that does not exist"
get /me/devices/fwsim-u999-lock "$TOKEN" | jq -c '{status,code}'

step "sign out: the token stops working at once"
curl -sS -o /dev/null -w '%{http_code}\n' -X POST "$API/auth/logout" -H "Authorization: Bearer $TOKEN"
get /me "$TOKEN" | jq -c '{status,code}'

step "move-out: the manager ends the account"
DANA=$(get /properties/elm/units/u101/residents "$PM" | jq -r '.[] | select(.username=="dana") | .id')
post "/properties/elm/units/u101/residents/$DANA/move-out" '{"reason":"moved out"}' "$PM" | jq -c '{status: .account.status, sessions_revoked, records_anonymised}'
