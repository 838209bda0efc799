"use strict";
// Device credentials: managers, installers and operators manage the devices' broker logins; a new password is
// shown once, then dropped from the page.

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

