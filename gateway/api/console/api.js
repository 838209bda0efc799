"use strict";
// The console's link to the gateway: every API path it calls, the calls (the token kept in this page's memory
// only, never in a URL or browser storage), the console session (an HttpOnly cookie the page cannot read, sent
// only to the console-session endpoint, so a reload resumes without a new sign-in) and the property's live stream.

const API = Object.freeze({
  openSession: "/api/v1/auth/console-session",
  resumeSession: "/api/v1/auth/console-session/resume",
  properties: "/api/v1/properties",
  console: "/api/v1/properties/{property_id}/console",
  units: "/api/v1/properties/{property_id}/units",
  unit: "/api/v1/properties/{property_id}/units/{unit_id}",
  health: "/api/v1/properties/{property_id}/health",
  compliance: "/api/v1/properties/{property_id}/compliance",
  outages: "/api/v1/properties/{property_id}/outages",
  reports: "/api/v1/properties/{property_id}/reports",
  stream: "/api/v1/properties/{property_id}/stream",
  audit: "/api/v1/properties/{property_id}/audit",
  unbound: "/api/v1/properties/{property_id}/devices/unbound",
  bind: "/api/v1/properties/{property_id}/units/{unit_id}/devices",
  unbind: "/api/v1/properties/{property_id}/units/{unit_id}/devices/{device_id}",
  residents: "/api/v1/properties/{property_id}/units/{unit_id}/residents",
  moveOut: "/api/v1/properties/{property_id}/units/{unit_id}/residents/{account_id}/move-out",
  reissue: "/api/v1/properties/{property_id}/units/{unit_id}/residents/{account_id}/activation-code",
  notifications: "/api/v1/properties/{property_id}/notifications",
  selfTest: "/api/v1/properties/{property_id}/units/{unit_id}/self-test",
  storms: "/api/v1/properties/{property_id}/storms",
  endStorm: "/api/v1/properties/{property_id}/storms/{storm_id}/end",
  credentials: "/api/v1/properties/{property_id}/broker-credentials",
  credential: "/api/v1/properties/{property_id}/broker-credentials/{credential_id}",
  connectivity: "/api/v1/operator/connectivity",
  operatorReports: "/api/v1/operator/reports",
  operatorAudit: "/api/v1/operator/audit",
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
  return answer(await fetch(url, init));
}

async function answer(response) {
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// The console session: the only requests that carry the cookie (credentials: "same-origin"), each with the
// X-Console header the gateway asks for, which a page of another site cannot send.
async function session(method, url, body) {
  const headers = { Accept: "application/json", "X-Console": "1" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const grant = await answer(await fetch(url, init));
  token = grant ? grant.token : null;
  return grant;
}

const openSession = (username, password) =>
  session("POST", API.openSession, { username, password, client: "property console" });
const resumeSession = () => session("POST", API.resumeSession);
const closeSession = () => session("DELETE", API.openSession);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function button(text, onClick, label) {
  const node = element("button", text);
  node.type = "button";
  if (label) node.setAttribute("aria-label", label);
  node.addEventListener("click", onClick);
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

function describe(error) {
  return error.code ? `${error.message} (${error.code})` : String(error.message || error);
}

// The property's Server-Sent Events, read with fetch so that the token goes in a header (EventSource cannot send
// one). Calls onEvent(name, data) per event; reconnects after a drop until stopped.
function liveStream(propertyId, onEvent, onStatus) {
  const control = new AbortController();
  let delay = 1000;
  async function run() {
    while (!control.signal.aborted) {
      try {
        const response = await fetch(fill(API.stream, { property_id: propertyId }), {
          headers: { Accept: "text/event-stream", Authorization: `Bearer ${token}` },
          credentials: "omit",
          cache: "no-store",
          signal: control.signal,
        });
        if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
        onStatus("live");
        delay = 1000;
        await readEvents(response.body.getReader(), onEvent);
      } catch (error) {
        if (control.signal.aborted) return;
        if (error.status === 401 || error.status === 403) {
          onStatus("stopped", error);
          return;
        }
      }
      onStatus("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
  }
  run();
  return () => control.abort();
}

async function readEvents(reader, onEvent) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trim());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}
