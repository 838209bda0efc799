"use strict";
// The property overview: every unit with its residents, devices and self-test standing, worst first, with filters,
// the alerts a manager must not miss, open outages and filed reports. Kept current by the property's live stream
// (each state or availability change re-renders its unit), not by polling.

const model = {
  propertyId: null,
  role: null,
  units: new Map(), // unit id -> { unit, devices, residents }
  lowBattery: new Map(), // device id -> battery percent, from the health report
  compliance: new Map(), // unit id -> Compliance
  acceptances: new Map(), // account id -> the resident's agreement standing
  outages: [],
  reports: [],
  notices: [], // the notifications queued for the units' residents, newest first (managers)
  lastTest: new Map(), // unit id -> the self-test run from this page
};

const SEVERITY = { leak: 100, jammed: 90, lockOffline: 85, failing: 70, overdue: 60, offline: 50, battery: 40 };
const FILTERS = Object.freeze({
  all: () => true,
  attention: (found) => found.some((f) => f.severity >= 20),
  offline: (found) => found.some((f) => f.kind === "offline"),
  battery: (found) => found.some((f) => f.kind === "battery"),
  leak: (found) => found.some((f) => f.kind === "leak"),
  selftest: (found) => found.some((f) => f.kind === "selftest"),
  vacant: (found, unit) => !unit.residents || unit.residents.length === 0,
});

function forProperty(template, extra) {
  return fill(template, { property_id: model.propertyId, ...extra });
}

async function loadOverview() {
  const manager = model.role === "manager";
  const units = await call("GET", forProperty(API.units));
  const details = await Promise.all(units.map((u) => call("GET", forProperty(API.unit, { unit_id: u.id }))));
  model.units = new Map(details.map((d) => [d.unit.id, d]));
  const health = await call("GET", forProperty(API.health));
  model.lowBattery = new Map(
    health.issues.filter((i) => i.problems.includes("low_battery")).map((i) => [i.device_id, i.battery]),
  );
  model.outages = (await call("GET", forProperty(API.outages))).filter((o) => o.ended_at === null);
  if (manager) {
    const compliance = await call("GET", forProperty(API.compliance));
    model.compliance = new Map(compliance.units.map((c) => [c.unit_id, c]));
    model.reports = await call("GET", forProperty(API.reports));
    const agreements = await call("GET", forProperty(API.console));
    model.acceptances = new Map(agreements.units.flatMap((u) => u.residents.map((r) => [r.account_id, r])));
    renderAgreements(agreements);
    model.notices = await call("GET", forProperty(API.notifications) + "?limit=20");
  }
  renderOverview();
}

function entitiesOf(device) {
  return device.entities || [];
}

function findings(detail) {
  const found = [];
  const add = (severity, kind, text, alert) => found.push({ severity, kind, text, alert });
  for (const device of detail.devices) {
    const name = device.resident_name || device.name;
    const isLock = entitiesOf(device).some((e) => e.kind === "lock");
    if (entitiesOf(device).some((e) => e.available === false)) {
      if (isLock) add(SEVERITY.lockOffline, "offline", `Front door lock offline: ${name}`, true);
      else add(SEVERITY.offline, "offline", `Device offline: ${name}`, false);
    }
    for (const entity of entitiesOf(device)) {
      const state = entity.state || {};
      if (entity.kind === "leak_sensor" && state.on === true) {
        add(SEVERITY.leak, "leak", `Leak reported by ${name}`, true);
      }
      if (entity.kind === "lock" && state.status === "jammed") {
        add(SEVERITY.jammed, "jammed", `Front door lock jammed: ${name}`, true);
      }
    }
    if (model.lowBattery.has(device.id)) {
      const level = model.lowBattery.get(device.id);
      add(SEVERITY.battery, "battery", `Battery low (${level ?? "?"} %): ${name}`, true);
    }
  }
  const standing = model.compliance.get(detail.unit.id);
  if (standing && standing.status === "failing") {
    add(SEVERITY.failing, "selftest", `Self-test failing: ${standing.detail}`, true);
  } else if (standing && standing.status === "overdue") {
    add(SEVERITY.overdue, "selftest", `Self-test overdue: ${standing.detail}`, false);
  } else if (standing && standing.status === "due") {
    add(20, "selftest", `Self-test due: ${standing.detail}`, false);
  }
  for (const resident of detail.residents || []) {
    if (resident.status === "pending") add(5, "resident", `${resident.username} has not activated the account`, false);
    const accepted = model.acceptances.get(resident.id);
    if (resident.status === "active" && accepted && !accepted.up_to_date) {
      add(8, "resident", `${resident.username} has not accepted the current agreement`, false);
    }
  }
  return found.sort((a, b) => b.severity - a.severity);
}

function worst(found) {
  return found.length ? found[0].severity : 0;
}

function renderOverview() {
  const filter = FILTERS[$("filter").value] || FILTERS.all;
  const list = $("unit-list");
  const rows = [...model.units.values()].map((detail) => ({ detail, found: findings(detail) }));
  rows.sort((a, b) => worst(b.found) - worst(a.found) || a.detail.unit.label.localeCompare(b.detail.unit.label));
  const shown = rows.filter((r) => filter(r.found, r.detail));
  list.replaceChildren(...shown.map((r) => unitCard(r.detail, r.found)));
  $("unit-count").textContent = `${shown.length} of ${rows.length} units shown, worst first.`;
  renderAlerts(rows);
  renderOutages();
  renderUnitChoices();
}

function renderAlerts(rows) {
  const list = $("alert-list");
  const alerts = rows.flatMap((r) => r.found.filter((f) => f.alert).map((f) => ({ ...f, unit: r.detail.unit })));
  alerts.sort((a, b) => b.severity - a.severity);
  list.replaceChildren(
    ...alerts.map((a) => element("li", `Unit ${a.unit.label}: ${a.text}`, `alert ${a.kind}`)),
  );
  $("no-alerts").hidden = alerts.length > 0;
  $("notices").hidden = model.role !== "manager";
  $("notice-list").replaceChildren(
    ...model.notices.map((n) => {
      const unit = model.units.get(n.unit_id);
      return element("li", `${when(n.created_at)}, unit ${unit ? unit.unit.label : n.unit_id}: ${n.message}`);
    }),
  );
}

function renderOutages() {
  const list = $("outage-list");
  list.replaceChildren(
    ...model.outages.map((o) => {
      const item = element("li", `${o.kind} since ${when(o.started_at)}: ${o.detail || o.cause}`);
      if (o.kind === "storm" && model.role === "manager") {
        item.append(" ", button("End storm", () => endStorm(o.id), `End storm ${o.id}`));
      }
      return item;
    }),
  );
  $("no-outages").hidden = model.outages.length > 0;
  const reports = $("report-list");
  reports.replaceChildren(
    ...model.reports.slice(0, 20).map((r) => {
      const where = r.unit_id ? `unit ${r.unit_id}` : "the property";
      const sent = r.delivered_at ? `delivered ${when(r.delivered_at)}` : `not delivered yet (${r.attempts} tries)`;
      return element("li", `${when(r.created_at)}: ${r.kind} about ${where}, ${sent}`);
    }),
  );
  $("reports").hidden = model.role !== "manager";
}

function deviceLine(detail, device) {
  const item = element("li");
  const parts = [];
  for (const entity of entitiesOf(device)) {
    const state = entity.state || {};
    if (entity.kind === "lock" && state.status) parts.push(`lock ${state.status}`);
    if (entity.kind === "leak_sensor" && "on" in state) parts.push(state.on ? "LEAK" : "dry");
    if (entity.kind === "battery_sensor" && "value" in state) parts.push(`battery ${state.value} %`);
  }
  const offline = entitiesOf(device).some((e) => e.available === false);
  const stale = entitiesOf(device).find((e) => e.stale && e.available !== false);
  parts.unshift(offline ? "offline" : "online");
  if (stale) parts.push(`stale (${stale.stale_reason})`);
  item.append(element("span", device.resident_name || device.name, "device-name"), ` — ${parts.join(", ")}`);
  item.classList.toggle("bad", offline);
  item.append(" ", button("Unbind", () => unbindDevice(detail.unit.id, device), `Unbind ${device.name}`));
  return item;
}

function residentLine(detail, resident) {
  const accepted = model.acceptances.get(resident.id);
  let state = resident.status;
  if (resident.status === "active" && accepted && !accepted.up_to_date) state = "active, agreement not accepted";
  const item = element("li", `${resident.display_name || resident.username} (${resident.username}): ${state}`);
  if (resident.status === "pending") {
    const label = `New activation code for ${resident.username}`;
    item.append(" ", button("New code", () => reissueCode(detail.unit.id, resident), label));
  }
  item.append(" ", button("Move out", () => moveOut(detail.unit.id, resident), `Move out ${resident.username}`));
  return item;
}

function unitCard(detail, found) {
  const unit = detail.unit;
  const card = element("article", undefined, `unit sev-${Math.min(worst(found), 100)}`);
  const headingId = `unit-${unit.id}`;
  card.setAttribute("aria-labelledby", headingId);
  card.dataset.unit = unit.id;
  const heading = element("h3", `Unit ${unit.label}`);
  heading.id = headingId;
  card.append(heading);
  const summary = element("ul", undefined, "findings");
  for (const f of found) summary.append(element("li", f.text, `finding ${f.kind}`));
  if (!found.length) summary.append(element("li", "All well.", "finding ok"));
  card.append(summary);
  if (detail.residents !== null) {
    card.append(element("h4", detail.residents.length ? "Residents" : "Residents: vacant"));
    const people = element("ul", undefined, "residents");
    for (const r of detail.residents) people.append(residentLine(detail, r));
    card.append(people);
  }
  card.append(element("h4", `Devices (${detail.devices.length})`));
  const devices = element("ul", undefined, "devices");
  for (const d of detail.devices) devices.append(deviceLine(detail, d));
  card.append(devices);
  if (model.role === "manager") {
    card.append(button("Run self-test", () => runSelfTest(unit.id), `Run self-test of unit ${unit.label}`));
    const result = model.lastTest.get(unit.id);
    if (result) card.append(element("p", testSummary(result), result.passed ? "test-ok" : "test-failed"));
  }
  return card;
}

function testSummary(result) {
  const failed = [];
  const bad = (step) => step.status === "failed";
  if (bad(result.uplink)) failed.push(`broadband (${result.uplink.reason || result.uplink.detail || "failed"})`);
  if (bad(result.broker)) failed.push(`broker (${result.broker.reason || result.broker.detail || "failed"})`);
  for (const d of result.devices) if (bad(d)) failed.push(`${d.name} (${d.reason || d.detail || "failed"})`);
  const at = when(result.finished_at);
  return result.passed ? `Self-test passed at ${at}.` : `Self-test failed at ${at}: ${failed.join(", ")}.`;
}

// --- live updates ------------------------------------------------------------------------------------------

let healthTimer = null;

function onLive(name, data) {
  if (name === "state" || name === "availability") {
    const detail = model.units.get(data.unit_id);
    if (!detail) return;
    for (const device of detail.devices) {
      const index = entitiesOf(device).findIndex((e) => e.id === data.id);
      if (index >= 0) {
        const { unit_id: _, ...entity } = data;
        device.entities[index] = entity;
        if (entity.kind === "battery_sensor" || name === "availability") refreshHealthSoon();
      }
    }
    renderOverview();
  } else if (name === "notification") {
    refreshNotices().catch(failed);
  } else if (name === "lagged") {
    loadOverview().catch(failed);
  }
}

// A reminder or alert was queued: the units' self-test standing and the notices, without re-reading every unit
// (a manager's read of residents is audited).
async function refreshNotices() {
  if (model.role !== "manager") return;
  const compliance = await call("GET", forProperty(API.compliance));
  model.compliance = new Map(compliance.units.map((c) => [c.unit_id, c]));
  model.notices = await call("GET", forProperty(API.notifications) + "?limit=20");
  renderOverview();
}

// A battery reading changed: the gateway's health report says whether it is now below the threshold.
function refreshHealthSoon() {
  clearTimeout(healthTimer);
  healthTimer = setTimeout(async () => {
    try {
      const health = await call("GET", forProperty(API.health));
      model.lowBattery = new Map(
        health.issues.filter((i) => i.problems.includes("low_battery")).map((i) => [i.device_id, i.battery]),
      );
      renderOverview();
    } catch (error) {
      failed(error);
    }
  }, 300);
}
