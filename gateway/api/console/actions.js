"use strict";
// What a manager or installer does from the console: move residents in (the activation code shown once) and out,
// bind and unbind devices, run a unit's self-test, declare and end storms, read the audit log. A refusal is shown
// with the gateway's own code and words, next to the action.

function actionFailed(error) {
  if (error.status === 401) {
    failed(error);
    return;
  }
  $("action-error").textContent = describe(error);
}

function done(text) {
  $("action-error").textContent = "";
  $("action-status").textContent = text;
}

function renderUnitChoices() {
  for (const id of ["move-in-unit", "bind-unit"]) {
    const select = $(id);
    const chosen = select.value;
    select.replaceChildren(
      ...[...model.units.values()].map((d) => {
        const option = element("option", d.unit.label);
        option.value = d.unit.id;
        return option;
      }),
    );
    if (chosen) select.value = chosen;
  }
}

async function moveIn(event) {
  event.preventDefault();
  const form = event.target;
  const unitId = form.elements.unit.value;
  try {
    const created = await call("POST", forProperty(API.residents, { unit_id: unitId }), {
      username: form.elements.username.value.trim(),
      display_name: form.elements.display_name.value.trim() || null,
    });
    form.reset();
    showCode(created);
    done(`${created.account.username} moved in.`);
  } catch (error) {
    actionFailed(error);
    return;
  }
  await reloadQuietly();
}

async function reissueCode(unitId, resident) {
  try {
    const issued = await call("POST", forProperty(API.reissue, { unit_id: unitId, account_id: resident.id }));
    showCode(issued);
    done(`A new activation code for ${resident.username}; the old one no longer works.`);
  } catch (error) {
    actionFailed(error);
  }
}

function showCode(created) {
  $("code-login").textContent = `Username: ${created.account.username}; expires ${when(created.activation_expires_at)}.`;
  $("activation-code").value = created.activation_code;
  $("activation").hidden = false;
  $("activation-code").focus();
}

function forgetCode() {
  $("activation-code").value = "";
  $("code-login").textContent = "";
  $("activation").hidden = true;
}

async function moveOut(unitId, resident) {
  const question =
    `Move ${resident.username} out? Their account ends, their sessions end at once, and their personal data ` +
    "in the gateway is wiped.";
  if (!window.confirm(question)) return;
  try {
    await call("POST", forProperty(API.moveOut, { unit_id: unitId, account_id: resident.id }), {
      reason: "moved out",
    });
    done(`${resident.username} moved out.`);
  } catch (error) {
    actionFailed(error);
    return;
  }
  await reloadQuietly();
}

async function loadUnbound() {
  const select = $("bind-device");
  try {
    const devices = await call("GET", forProperty(API.unbound));
    select.replaceChildren(
      ...devices.map((d) => {
        const option = element("option", `${d.name} (${d.id})`);
        option.value = d.id;
        return option;
      }),
    );
    $("no-unbound").hidden = devices.length > 0;
  } catch (error) {
    actionFailed(error);
  }
}

async function bindDevice(event) {
  event.preventDefault();
  const form = event.target;
  const deviceId = form.elements.device.value;
  if (!deviceId) return;
  try {
    await call("POST", forProperty(API.bind, { unit_id: form.elements.unit.value }), { device_id: deviceId });
    done(`${deviceId} bound.`);
  } catch (error) {
    actionFailed(error);
    return;
  }
  await reloadQuietly();
}

async function unbindDevice(unitId, device) {
  if (!window.confirm(`Unbind ${device.name} from its unit? Its residents can no longer control it.`)) return;
  try {
    await call("DELETE", forProperty(API.unbind, { unit_id: unitId, device_id: device.id }));
    done(`${device.name} unbound.`);
  } catch (error) {
    actionFailed(error);
    return;
  }
  await reloadQuietly();
}

async function runSelfTest(unitId) {
  done("Self-test running…");
  try {
    const result = await call("POST", forProperty(API.selfTest, { unit_id: unitId }));
    model.lastTest.set(unitId, result);
    done(testSummary(result));
  } catch (error) {
    actionFailed(error);
    return;
  }
  await reloadQuietly();
}

async function declareStorm(event) {
  event.preventDefault();
  const form = event.target;
  try {
    await call("POST", forProperty(API.storms), { description: form.elements.description.value.trim() || null });
    form.reset();
    done("Storm declared: every unit's self-test is due once it is over.");
  } catch (error) {
    actionFailed(error);
    return;
  }
  await reloadQuietly();
}

async function endStorm(stormId) {
  try {
    await call("POST", forProperty(API.endStorm, { storm_id: stormId }), {});
    done("Storm ended.");
  } catch (error) {
    actionFailed(error);
    return;
  }
  await reloadQuietly();
}

async function readAudit() {
  const url = model.role === "operator" ? API.operatorAudit : forProperty(API.audit);
  try {
    const page = await call("GET", url);
    $("audit-list").replaceChildren(
      ...page.entries.map((e) => {
        const who = `${e.actor_role || "system"} ${e.actor_id || ""}`.trim();
        const what = [e.action, e.unit_id && `unit ${e.unit_id}`, e.target].filter(Boolean).join(" ");
        return element("li", `${when(e.at)}: ${who} — ${what}`);
      }),
    );
    $("audit-status").textContent = `${page.entries.length} entries, newest first.`;
  } catch (error) {
    actionFailed(error);
  }
}

async function reloadQuietly() {
  try {
    await loadOverview();
    if (!$("bind").hidden) await loadUnbound();
  } catch (error) {
    failed(error);
  }
}
