// The console's shell: sign in, navigation by role, and the hash router
// that picks a view. Views live in views.js.

import { api, allows, flash, h, replace, session, ApiError } from "./dom.js";
import * as views from "./views.js";

const main = document.getElementById("main");

// [hash prefix, title, role needed, view]
const PAGES = [
  ["#/", "Overview", "reader", views.overview],
  ["#/packages", "Packages", "reader", views.packages],
  ["#/review", "Review", "reader", views.review],
  ["#/upload", "Upload", "uploader", views.upload],
  ["#/versions", "Versions", "reader", views.versions],
  ["#/migrate", "Migrate", "maintainer", views.migrate],
  ["#/audit", "Audit log", "admin", views.audit],
  ["#/plugins", "Plugins", "reader", views.plugins],
];

let me = null; // {name, role} of the signed-in token

function route() {
  const hash = location.hash || "#/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  if (path.startsWith("#/package/")) {
    return [views.packagePage, decodeURIComponent(path.slice("#/package/".length)), "#/packages", params, "Package"];
  }
  const page = PAGES.find(([p]) => (p === "#/" ? path === "#/" : path === p || path.startsWith(`${p}/`)));
  if (!page) return [views.notFound, "", null, params, "No such page"];
  if (!allows(me.role, page[2])) return [views.forbidden, page[2], page[0], params, page[1]];
  const rest = page[0] === "#/" ? "" : decodeURIComponent(path.slice(page[0].length + 1));
  return [page[3], rest, page[0], params, page[1]];
}

function nav(current) {
  replace(
    document.getElementById("nav"),
    h(
      "ul",
      {},
      PAGES.filter(([, , role]) => allows(me.role, role)).map(([href, title]) =>
        h("li", {}, h("a", { href, "aria-current": href === current ? "page" : null }, title)),
      ),
    ),
  );
  replace(
    document.getElementById("who"),
    h("span", {}, `${me.name} (${me.role})`),
    h("button", { type: "button", class: "link", onclick: signOut }, "Sign out"),
  );
}

let renders = 0; // the newest render wins; a slower older one is dropped

async function render({ moved = false } = {}) {
  if (!me) return;
  const mine = ++renders;
  replace(main, h("p", { class: "loading" }, "Loading…"));
  try {
    const [view, arg, current, params, title] = route();
    nav(current);
    document.title = `${title} · repod`;
    const ctx = { me, arg, params, rerender: () => render() };
    const content = await view(ctx);
    if (mine !== renders) return;
    replace(main, content);
  } catch (e) {
    if (mine !== renders) return;
    if (e instanceof ApiError && e.status === 401) return signOut("The token was refused: sign in again.");
    replace(main, h("p", { class: "flash error", role: "alert" }, e.message));
  }
  // After a move to another page, screen readers start at the new page.
  if (moved) main.focus();
}

function signOut(message) {
  session.clear();
  views.forget();
  me = null;
  replace(document.getElementById("nav"));
  replace(document.getElementById("who"));
  flash(typeof message === "string" ? message : "", "error");
  signInForm();
}

function signInForm() {
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "off",
    required: true,
    "aria-describedby": "token-help",
  });
  const form = h(
    "form",
    { class: "signin", onsubmit: (e) => (e.preventDefault(), signIn(input.value.trim())) },
    h("h1", {}, "Sign in"),
    h("div", { class: "field" }, h("label", { for: "token" }, "API token"), input),
    h(
      "p",
      { id: "token-help", class: "help" },
      "A token from an admin (",
      h("code", {}, "repod token create"),
      "). It stays in this browser tab until you sign out or close it.",
    ),
    h("button", { type: "submit" }, "Sign in"),
  );
  input.id = "token";
  replace(main, form);
  input.focus();
}

async function signIn(token) {
  session.set(token);
  try {
    me = await api("GET", "/whoami");
  } catch (e) {
    signOut(e.status === 401 ? "That token is unknown or revoked." : e.message);
    return;
  }
  flash("");
  await render();
}

// Files dropped beside the upload zone must not navigate the tab away.
for (const kind of ["dragover", "drop"]) window.addEventListener(kind, (e) => e.preventDefault());

// A message stays across the move an action makes (a removal goes back
// to the list); the next action replaces it.
window.addEventListener("hashchange", () => render({ moved: true }));

if (session.token()) signIn(session.token());
else signInForm();
