"use strict";
// The property manager console: sign in, then one call shows the property's contract and, per unit, who has
// accepted which version of the end-user agreement. The token is kept in this page's memory only (never in a
// URL, a cookie or browser storage): reloading or closing the page leaves it behind. Everything shown is set as
// text, never as HTML, so nothing a resident typed can run here.

const API = Object.freeze({
  login: "/api/v1/auth/login",
  logout: "/api/v1/auth/logout",
  properties: "/api/v1/properties",
  console: "/api/v1/properties/{property_id}/console",
});

const LAPSES = Object.freeze({
  no_contract: "no contract has been recorded for this property",
  not_started: "the contract has not started yet",
  ended: "the contract has ended",
  suspended: "the contract is suspended",
  terminated: "the contract was terminated",
  service_withdrawn: "the lessor no longer offers the service to residents",
});

let token = null;

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
    if (grant.account.role !== "manager") {
      await signOut();
      $("sign-in-error").textContent = "This console is for property managers.";
      return;
    }
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
  try {
    render(await call("GET", fill(API.console, { property_id: id })));
  } catch (error) {
    failed(error);
  }
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

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", refresh);
  $("property").addEventListener("change", refresh);
});
