#!/usr/bin/env bash
# The five-minute tour of README.md, line for line (tests/test_readme_session.py checks that the two are the same
# and that every command gives exactly the answer its "# →" comment promises). Start the gateway on a fresh database:
#   GATEWAY_OPERATOR_USERNAME=ops GATEWAY_OPERATOR_PASSWORD='choose a long passphrase' ./run.sh
# then, in another terminal: examples/resident-session.sh
# (with API=http://127.0.0.1:<port>/api/v1 in front when ./run.sh printed another API address). Needs curl and jq.

API=${API:-http://127.0.0.1:8080/api/v1}   # the API address that ./run.sh printed
post() { curl -sS -X POST "$API$1" -H 'Content-Type: application/json' ${3:+-H "Authorization: Bearer $3"} -d "$2"; }
put() { curl -sS -X PUT "$API$1" -H 'Content-Type: application/json' -H "Authorization: Bearer $3" -d "$2"; }
get() { curl -sS "$API$1" -H "Authorization: Bearer $2"; }

# The operator signs in, creates a property, records the lessor's contract and publishes the agreement.
OP=$(post /auth/login '{"username":"ops","password":"choose a long passphrase"}' | jq -r .token)
post /properties '{"id":"elm","name":"Elm Court"}' "$OP" | jq -c '{id,name}'
# → {"id":"elm","name":"Elm Court"}
put /operator/properties/elm/contract '{"starts_at":"2026-01-01T00:00:00Z","internet":{"provided_by":"lessor"}}' "$OP" | jq -c '{in_force}'
# → {"in_force":true}
post /operator/agreements '{"version":"1","text":"Home automation for your own unit. Not a security system."}' "$OP" | jq -c '{version}'
# → {"version":"1"}

# The operator creates a property manager, who activates her account with its one-time code and signs in.
CODE=$(post /operator/accounts '{"username":"maria","role":"manager","property_id":"elm"}' "$OP" | jq -r .activation_code)
post /auth/activate '{"username":"maria","activation_code":"'"$CODE"'","password":"a long manager passphrase"}' | jq -c '{username,role,status}'
# → {"username":"maria","role":"manager","status":"active"}
PM=$(post /auth/login '{"username":"maria","password":"a long manager passphrase"}' | jq -r .token)

# The manager creates unit 101, binds the simulated unit's devices to it and moves a resident, Dana, in.
post /properties/elm/units '{"id":"u101","label":"101"}' "$PM" | jq -c '{id,unit:.label}'
# → {"id":"u101","unit":"101"}
for DEVICE in $(get /properties/elm/devices/unbound "$PM" | jq -r '.[].id | select(startswith("fwsim-u101-"))'); do
  post /properties/elm/units/u101/devices '{"device_id":"'"$DEVICE"'"}' "$PM" >/dev/null
done
get /properties/elm/units/u101 "$PM" | jq -c '[.devices[].id]'
# → ["fwsim-u101-dimmer","fwsim-u101-leak","fwsim-u101-light","fwsim-u101-lock","fwsim-u101-thermostat"]
CODE=$(post /properties/elm/units/u101/residents '{"username":"dana","display_name":"Dana"}' "$PM" | jq -r .activation_code)

# Dana activates her account and signs in from her phone. Nothing is controlled until she accepts the agreement.
post /auth/activate '{"username":"dana","activation_code":"'"$CODE"'","password":"a long resident passphrase"}' | jq -c '{username,role,status}'
# → {"username":"dana","role":"resident","status":"active"}
TOKEN=$(post /auth/login '{"username":"dana","password":"a long resident passphrase","client":"Dana phone"}' | jq -r .token)
post /me/entities/light.u101-light.light/commands '{"command":{"on":true}}' "$TOKEN" | jq -c '{status,code,version}'
# → {"status":403,"code":"agreement_not_accepted","version":"1"}
post /me/agreement/accept '{"version":"1","age_confirmed":true}' "$TOKEN" | jq -c '{accepted_current}'
# → {"accepted_current":true}

# A command answers with its real outcome: confirmed once the device reports the new state.
post /me/entities/light.u101-light.light/commands '{"command":{"on":true}}' "$TOKEN" | jq -c '{status,command}'
# → {"status":"confirmed","command":{"on":true}}
post /me/entities/lock.u101-lock.lock/commands '{"command":{"action":"unlock"}}' "$TOKEN" | jq -c '{status,command}'
# → {"status":"confirmed","command":{"action":"unlock"}}
get /me/devices/fwsim-u101-lock "$TOKEN" | jq -c '.entities[] | select(.kind == "lock") | .state'
# → {"status":"unlocked"}
post /me/entities/lock.u101-lock.lock/commands '{"command":{"action":"lock"}}' "$TOKEN" | jq -c '{status,command}'
# → {"status":"confirmed","command":{"action":"lock"}}
post /me/entities/climate.u101-thermostat.climate/commands '{"command":{"target_temperature":35}}' "$TOKEN" | jq -c '{status,code,field}'
# → {"status":422,"code":"out_of_range","field":"target_temperature"}
get /me/devices/fwsim-u102-lock "$TOKEN" | jq -c '{status,code}'
# → {"status":404,"code":"device_not_found"}

# What the manager's console shows (open the console's address in a browser and sign in as maria).
get /properties/elm/console "$PM" | jq -c '.units[] | {unit: .label, residents: [.residents[] | {username, accepted_version}]}'
# → {"unit":"101","residents":[{"username":"dana","accepted_version":"1"}]}
