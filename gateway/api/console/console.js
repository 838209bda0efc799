"use strict";
// The property console's start: sign in (or resume the console session after a reload), pick the property, show
// what the signed-in role does, and keep the overview live. Everything shown is set as text, never as HTML, so
// nothing a resident typed can run here.

const STAFF = Object.freeze(["manager", "installer", "operator"]);
const ROLE_HELP = Object.freeze({
  manager:
    "As the property manager you watch every unit's devices, residents and monthly self-test, move residents in " +
    "and out, run self-tests, declare storms, and read the property's audit log.",
  installer:
    "As the installer you bind and unbind devices, watch their availability, staleness and batteries, and manage " +
    "the devices' broker credentials. Residents and their data are the manager's.",
  operator:
    "As the service operator you see the gateway's connectivity, the failure reports of every property, the " +
    "audit log and each property's device credentials; properties, contracts, agreements and accounts are " +
    "managed through the API.",
});

let stopLive = null;
let missed = false; // the live stream dropped since the overview was loaded

function show(grant) {
  const signedIn = grant !== null;
  $("sign-in").hidden = signedIn;
  $("app").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("who").textContent = signedIn ? `Signed in as ${grant.account.username} (${grant.account.role}).` : "";
  if (!signedIn) {
    if (stopLive) stopLive();
    stopLive = null;
    model.role = null;
    model.units = new Map();
    forgetIssued();
    forgetCode();
    for (const id of ["unit-list", "alert-list", "outage-list", "report-list", "audit-list", "notice-list", "property"]) {
      $(id).replaceChildren();
    }
    $("credential-list").tBodies[0].replaceChildren();
  }
}

async function start(grant) {
  if (!STAFF.includes(grant.account.role)) {
    await signOut();
    $("sign-in-error").textContent = "This console is for property staff.";
    return;
  }
  model.role = grant.account.role;
  show(grant);
  const role = model.role;
  $("role-help").textContent = ROLE_HELP[role];
  $("manager-view").hidden = role !== "manager";
  $("move-in").hidden = role !== "manager";
  $("storms").hidden = role !== "manager";
  $("bind").hidden = role === "operator";
  $("overview").hidden = role === "operator";
  $("operator-view").hidden = role !== "operator";
  $("filter").closest("label").hidden = role === "operator"; // the filter is the units'; the operator has none
  $("audit").hidden = role === "installer";
  if (role === "operator") await loadOperator();
  await loadProperties();
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  $("sign-in-error").textContent = "";
  try {
    const grant = await openSession(form.elements.username.value, form.elements.password.value);
    form.elements.password.value = "";
    await start(grant);
  } catch (error) {
    form.elements.password.value = "";
    $("sign-in-error").textContent = describe(error);
  }
}

async function signOut() {
  try {
    await closeSession();
  } catch (error) {
    // The session may have ended already; the page forgets the token either way.
  }
  token = null;
  show(null);
}

async function resume() {
  try {
    await start(await resumeSession());
  } catch (error) {
    token = null;
    show(null);
  }
}

async function loadProperties() {
  const select = $("property");
  select.replaceChildren();
  try {
    for (const property of await call("GET", API.properties)) {
      const option = element("option", `${property.name} (${property.id})`);
      option.value = property.id;
      select.append(option);
    }
  } catch (error) {
    failed(error);
    return;
  }
  await refresh();
}

async function refresh() {
  const id = $("property").value;
  $("overview-error").textContent = "";
  if (stopLive) stopLive();
  stopLive = null;
  if (!id) {
    $("overview-error").textContent = "No property is assigned to this account.";
    return;
  }
  model.propertyId = id;
  missed = false;
  try {
    if (model.role === "operator") {
      await loadCredentials(); // the operator's view of a property: its devices' broker credentials
      return;
    }
    // The stream first, then the overview: a change while loading is in the answer or comes after it.
    stopLive = liveStream(id, onLive, liveStatus);
    await loadOverview();
    if (!$("bind").hidden) await loadUnbound();
  } catch (error) {
    failed(error);
  }
  await loadCredentials();
}

function liveStatus(state, error) {
  const words = {
    live: "Live: changes appear as they happen.",
    reconnecting: "Live updates interrupted; reconnecting…",
    stopped: `Live updates stopped: ${error ? describe(error) : ""}`,
  };
  $("live").textContent = words[state];
  if (state === "reconnecting") missed = true;
  if (state === "live" && missed) {
    missed = false;
    loadOverview().catch(failed); // catch up on what changed while disconnected
  }
}

async function loadOperator() {
  try {
    const link = await call("GET", API.connectivity);
    $("connectivity").textContent =
      `Broadband: ${link.uplink_state}; broker ${link.broker_connected ? "connected" : "not connected"}; ` +
      `${link.open_outages.length} outages going on; ${link.reports_pending} reports waiting to be delivered.`;
    const reports = await call("GET", API.operatorReports);
    $("operator-reports").replaceChildren(
      ...reports.slice(0, 50).map((r) => element("li", `${when(r.created_at)}: ${r.kind}, property ` +
        `${r.property_id || "—"}, unit ${r.unit_id || "—"}, ${r.delivered_at ? "delivered" : "not delivered"}`)),
    );
  } catch (error) {
    failed(error);
  }
}

function failed(error) {
  if (error.status === 401) {
    token = null;
    show(null);
    $("sign-in-error").textContent = describe(error);
    return;
  }
  $("overview-error").textContent = describe(error);
}

document.addEventListener("DOMContentLoaded", () => {
  $("credential-form").addEventListener("submit", createCredential);
  $("copy-password").addEventListener("click", copyPassword);
  $("issued-done").addEventListener("click", forgetIssued);
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", refresh);
  $("property").addEventListener("change", refresh);
  $("filter").addEventListener("change", renderOverview);
  $("move-in-form").addEventListener("submit", moveIn);
  $("code-done").addEventListener("click", forgetCode);
  $("bind-form").addEventListener("submit", bindDevice);
  $("storm-form").addEventListener("submit", declareStorm);
  $("read-audit").addEventListener("click", readAudit);
  resume();
});
