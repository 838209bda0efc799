"use strict";
// The manager's view of the lessor's contract and, per unit, who accepted which agreement version when.

const LAPSES = Object.freeze({
  no_contract: "no contract has been recorded for this property",
  not_started: "the contract has not started yet",
  ended: "the contract has ended",
  suspended: "the contract is suspended",
  terminated: "the contract was terminated",
  service_withdrawn: "the lessor no longer offers the service to residents",
});

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

function renderAgreements(view) {
  renderContract(view);
  renderResidents(view);
}

