// DOM building and API calls shared by every view.
//
// Every text a view shows goes through `h` as a text node or an attribute
// value: no string is ever parsed as HTML, so package metadata cannot
// become markup (the console's output escaping is this one rule).

const TOKEN_KEY = "repod.token";

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// The signed-in token lives in this tab's sessionStorage: never in a URL,
// never in a cookie (so no other site can make the browser use it).
export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  set: (t) => sessionStorage.setItem(TOKEN_KEY, t),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function problem(res) {
  let detail = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body.detail) detail = body.detail;
  } catch (_) {
    // Not problem+json: the status line says enough.
  }
  return new ApiError(res.status, detail);
}

// One /api/v1 call with the session's token; throws ApiError with the
// server's problem detail when refused.
export async function api(method, path, body, { text = false } = {}) {
  const headers = { Authorization: `Bearer ${session.token()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`/api/v1${path}`, init);
  if (!res.ok) throw await problem(res);
  if (text) return res.text();
  // 204 No Content (a removal) and other empty answers: nothing to parse.
  const answer = await res.text();
  return answer ? JSON.parse(answer) : null;
}

// A file upload with progress (fetch has no upload progress).
export function upload(path, body, contentType, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/v1${path}`);
    xhr.setRequestHeader("Authorization", `Bearer ${session.token()}`);
    if (contentType) xhr.setRequestHeader("Content-Type", contentType);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", () => {
      let json = null;
      try {
        json = JSON.parse(xhr.responseText);
      } catch (_) {
        // Left null: the status says what happened.
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(json);
      else reject(new ApiError(xhr.status, (json && json.detail) || `${xhr.status} ${xhr.statusText}`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "the daemon did not answer")));
    xhr.send(body);
  });
}

export const ROLES = ["reader", "uploader", "maintainer", "admin"];

export function allows(role, needed) {
  return ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

export function when(ms) {
  if (!ms) return "";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function badge(state) {
  return h("span", { class: `badge s-${state}` }, state);
}

// A table from column titles and rows of cells.
export function table(caption, titles, rows) {
  return h(
    "table",
    {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, titles.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
  );
}

export function field(label, input) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

export function select(name, options, selected, attrs = {}) {
  return h(
    "select",
    { name, ...attrs },
    options.map(([value, label]) => h("option", { value, selected: value === selected }, label)),
  );
}

// Shows a message above the page: ok or an error, read out by screen readers.
export function flash(message, kind = "ok") {
  const el = document.getElementById("flash");
  replace(el, message ? h("p", { class: `flash ${kind}` }, message) : null);
}
