"use strict";
// The property console: sign in; a manager sees the property's contract and, per unit, who has accepted which
// version of the end-user agreement; managers, installers and operators manage the devices' broker credentials
// (a new password is shown once, then dropped from the page). The token is kept in this page's memory only (never in a
// URL, a cookie or browser storage): reloading or closing the page leaves it behind. Everything shown is set as
// text, never as HTML, so nothing a resident typed can run here.

const API = Object.freeze({
  login: "/api/v1/auth/login",
  logout: "/api/v1/auth/logout",
  properties: "/api/v1/properties",
  console: "/api/v1/properties/{property_id}/console",
  credentials: "/api/v1/properties/{property_id}/broker-credentials",
  credential: "/api/v1/properties/{property_id}/broker-credentials/{credential_id}",
});

const STAFF = Object.freeze(["manager", "installer", "operator"]);

const LAPSES = Object.freeze({
  no_contract: "no contract has been recorded for this property",
  not_started: "the contract has not started yet",
  ended: "the contract has ended",
  suspended: "the contract is suspended",
  terminated: "the contract was terminated",
  service_withdrawn: "the lessor no longer offers the service to residents",
});

let token = null;
let role = null;

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `the gateway answered ${status}`);
    this.status = status;
    this.code = problem && problem.code ? problem.code : null;
  }
}

function fill(template, params) {
  return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(params[name]));
}

async function call(method, url, body) {
  const headers = { Accept: "application/json" };
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function element(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function describe(error) {
  return error.code ? `${error.message} (${error.code})` : String(error.message || error);
}

function show(signedIn) {
  $("sign-in").hidden = signedIn;
  $("overview").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  if (!signedIn) {
    role = null;
    forgetIssued();
    $("credential-list").tBodies[0].replaceChildren();
    $("contract").replaceChildren();
    $("residents").tBodies[0].replaceChildren();
    $("property").replaceChildren();
  }
}

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  $("sign-in-error").textContent = "";
  try {
    const grant = await call("POST", API.login, {
      username: form.elements.username.value,
      password: form.elements.password.value,
      client: "property console",
    });
    form.elements.password.value = "";
    token = grant.token;
    if (!STAFF.includes(grant.account.role)) {
      await signOut();
      $("sign-in-error").textContent = "This console is for property staff.";
      return;
    }
    role = grant.account.role;
    show(true);
    await loadProperties();
  } catch (error) {
    $("sign-in-error").textContent = describe(error);
  }
}

async function signOut() {
  if (token !== null) {
    try {
      await call("POST", API.logout);
    } catch (error) {
      // The session may have ended already; the page forgets the token either way.
    }
  }
  token = null;
  show(false);
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
  if (!id) {
    $("overview-error").textContent = "No property is assigned to this account.";
    return;
  }
  $("manager-view").hidden = role !== "manager";
  try {
    if (role === "manager") render(await call("GET", fill(API.console, { property_id: id })));
  } catch (error) {
    failed(error);
  }
  await loadCredentials();
}

function failed(error) {
  if (error.status === 401) {
    token = null;
    show(false);
    $("sign-in-error").textContent = describe(error);
    return;
  }
  $("overview-error").textContent = describe(error);
}

function term(list, name, value) {
  list.append(element("dt", name), element("dd", value));
}

function renderContract(view) {
  const state = $("service-state");
  state.textContent = view.service_in_force
    ? "The service is in force: residents can control their devices."
    : `The service is not in force: ${LAPSES[view.lapse] || view.lapse}. Residents cannot control their ` +
      "devices, and devices stay exactly as they are.";
  state.classList.toggle("off", !view.service_in_force);
  const list = $("contract");
  list.replaceChildren();
  const contract = view.contract;
  if (!contract) return;
  const plan = contract.plan;
  term(list, "Status", contract.status_reason ? `${contract.status} (${contract.status_reason})` : contract.status);
  term(list, "Starts", when(contract.starts_at));
  term(list, "Ends", contract.ends_at ? when(contract.ends_at) : "open-ended");
  term(list, "Offered to residents", contract.offers_service ? "yes" : "no");
  term(list, "Internet provided by", contract.internet.provided_by);
  term(list, "Internet provider", contract.internet.name || "—");
  term(list, "Provider contact", contract.internet.contact || "—");
  term(list, "Device kinds", [...plan.device_kinds].sort().join(", "));
  term(list, "Devices per unit", String(plan.devices_per_unit));
  term(list, "Resident accounts per unit", String(plan.accounts_per_unit));
  term(list, "App devices per account", `${plan.app_devices_per_account} (a further sign-in: ${plan.second_login})`);
}

function optOut(resident, at) {
  if (resident.arbitration_opt_out_at) return `recorded ${when(resident.arbitration_opt_out_at)}`;
  if (!resident.opt_out_deadline) return "—";
  const open = new Date(resident.opt_out_deadline) >= new Date(at);
  return `${open ? "not recorded; possible until" : "not recorded; closed"} ${when(resident.opt_out_deadline)}`;
}

function renderResidents(view) {
  $("agreement-current").textContent = view.current_version
    ? `Version in effect: ${view.current_version} (since ${when(view.current_effective_at)}).`
    : "No version of the end-user agreement is in effect yet.";
  const body = $("residents").tBodies[0];
  body.replaceChildren();
  for (const unit of view.units) {
    if (unit.residents.length === 0) {
      const row = element("tr");
      const empty = element("td", "no residents");
      empty.colSpan = 7;
      row.append(element("td", unit.label), empty);
      body.append(row);
    }
    for (const resident of unit.residents) {
      const row = element("tr");
      row.classList.toggle("stale", !resident.up_to_date);
      const earlier = resident.acceptances.slice(0, -1).map((a) => `${a.version} (${when(a.accepted_at)})`);
      const accepted = element("td", resident.accepted_version || "not accepted");
      accepted.className = "accepted";
      row.append(
        element("td", unit.label),
        element("td", resident.display_name ? `${resident.display_name} (${resident.username})` : resident.username),
        element("td", resident.status),
        accepted,
        element("td", when(resident.accepted_at)),
        element("td", resident.up_to_date ? "yes" : "no"),
        element("td", earlier.join(", ") || "—"),
        element("td", optOut(resident, view.at)),
      );
      body.append(row);
    }
  }
}

function render(view) {
  $("taken-at").textContent = `as of ${when(view.at)}`;
  renderContract(view);
  renderResidents(view);
}

// --- device credentials ------------------------------------------------------------------------------------

function words(text) {
  return text.split(/[\s,]+/).filter((word) => word !== "");
}

async function loadCredentials() {
  const id = $("property").value;
  $("credentials-error").textContent = "";
  const body = $("credential-list").tBodies[0];
  body.replaceChildren();
  if (!id) return;
  try {
    for (const credential of await call("GET", fill(API.credentials, { property_id: id }))) {
      body.append(credentialRow(id, credential));
    }
  } catch (error) {
    credentialsFailed(error);
  }
}

function credentialRow(propertyId, credential) {
  const row = element("tr");
  const revoke = element("button", "Revoke");
  revoke.type = "button";
  revoke.addEventListener("click", () => revokeCredential(propertyId, credential));
  const action = element("td");
  action.append(revoke);
  row.append(
    element("td", credential.label || "—"),
    element("td", credential.kind),
    element("td", credential.username),
    element("td", credential.client_id || "—"),
    element("td", credential.node_ids.join(", ") || "—"),
    element("td", credential.state_roots.join(", ") || "—"),
    element("td", credential.command_roots.join(", ") || "—"),
    element("td", when(credential.created_at)),
    action,
  );
  return row;
}

async function revokeCredential(propertyId, credential) {
  const question =
    `Revoke the credential "${credential.label || credential.username}"? The device or bridge using it is ` +
    "disconnected at once and cannot log in again.";
  if (!window.confirm(question)) return;
  try {
    await call("DELETE", fill(API.credential, { property_id: propertyId, credential_id: credential.id }));
  } catch (error) {
    credentialsFailed(error);
    return;
  }
  await loadCredentials();
}

async function createCredential(event) {
  event.preventDefault();
  const form = event.target;
  const id = $("property").value;
  $("credentials-error").textContent = "";
  const optional = (name) => form.elements[name].value.trim() || undefined;
  try {
    const issued = await call("POST", fill(API.credentials, { property_id: id }), {
      kind: form.elements.kind.value,
      label: form.elements.label.value,
      username: optional("username"),
      client_id: optional("client_id"),
      node_ids: words(form.elements.node_ids.value),
      state_roots: words(form.elements.state_roots.value),
      command_roots: words(form.elements.command_roots.value),
    });
    form.reset();
    showIssued(issued.login);
  } catch (error) {
    credentialsFailed(error);
    return;
  }
  await loadCredentials();
}

function showIssued(login) {
  const list = $("issued-login");
  list.replaceChildren();
  term(list, "Username", login.username);
  term(list, "Client id", login.client_id || login.username);
  term(list, "Broker", login.broker_url || "this gateway's broker");
  $("issued-password").value = login.password;
  $("copy-result").textContent = "";
  $("issued").hidden = false;
  $("issued-password").select();
}

function forgetIssued() {
  $("issued-password").value = "";
  $("issued-login").replaceChildren();
  $("copy-result").textContent = "";
  $("issued").hidden = true;
}

async function copyPassword() {
  const field = $("issued-password");
  try {
    await navigator.clipboard.writeText(field.value);
    $("copy-result").textContent = "Copied.";
  } catch (error) {
    // The clipboard needs a secure page (https or this machine); selecting lets the user copy by hand.
    field.select();
    $("copy-result").textContent = "Select the password and copy it by hand.";
  }
}

function credentialsFailed(error) {
  if (error.status === 401) {
    failed(error);
    return;
  }
  $("credentials-error").textContent = describe(error);
}

document.addEventListener("DOMContentLoaded", () => {
  $("credential-form").addEventListener("submit", createCredential);
  $("copy-password").addEventListener("click", copyPassword);
  $("issued-done").addEventListener("click", forgetIssued);
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", refresh);
  $("property").addEventListener("change", refresh);
});
