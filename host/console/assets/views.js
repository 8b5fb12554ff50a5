// One function per page: each takes the route context ({me, arg, params,
// rerender}) and returns the page's element. Actions call the same
// /api/v1 routes as the CLI; what a page offers follows the token's role,
// and the API refuses the rest anyway.

import { api, allows, badge, bytes, field, flash, h, replace, select, table, upload as sendFile, when } from "./dom.js";

const STATES = ["clean", "findings", "quarantined", "blocked", "approved", "rejected"];

let distCache = null;

// Drops what this tab fetched once (on sign-out).
export function forget() {
  distCache = null;
}

// Every served distribution, fetched once per signed-in tab.
async function distributionList() {
  if (!distCache) distCache = (await api("GET", "/distributions")).distributions;
  return distCache;
}

function distOptions(dists, blank) {
  const opts = dists.map((d) => [d.id, `${d.display_name} (${d.id})`]);
  return blank ? [["", blank], ...opts] : opts;
}

function packageLink(p) {
  return h("a", { href: `#/package/${encodeURIComponent(p.id)}` }, p.name);
}

function stateCounts(states) {
  const entries = Object.entries(states || {});
  if (!entries.length) return "—";
  return h("span", { class: "chips" }, entries.map(([s, n]) => h("span", { class: `badge s-${s}` }, `${n} ${s}`)));
}

// Runs an action and tells the person how it went; true when it was done
// (a removal answers with no body, so the answer itself can be null).
async function act(button, work, done) {
  button.disabled = true;
  flash("");
  try {
    const result = await work();
    flash(done(result), "ok");
    return true;
  } catch (e) {
    flash(e.message, "error");
    return false;
  } finally {
    button.disabled = false;
  }
}

export async function overview() {
  const { distributions } = await api("GET", "/overview");
  const rows = distributions.map((d) => {
    const setup = h("td", { colspan: 5 });
    const setupRow = h("tr", { class: "setup", hidden: true }, setup);
    const toggle = h("button", { type: "button", "aria-expanded": "false", "aria-label": `Client setup for ${d.id}` }, "Client setup");
    toggle.addEventListener("click", async () => {
      const open = setupRow.hidden;
      setupRow.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      if (!open || setup.childNodes.length) return;
      try {
        // The address this browser reached the daemon by, not the one the
        // daemon guesses from its Host header (wrong behind a TLS proxy).
        const base = encodeURIComponent(`${location.origin}/repos`);
        const path = `/distributions/${encodeURIComponent(d.id)}/client-config?base-url=${base}`;
        const text = await api("GET", path, undefined, { text: true });
        const pre = h("pre", { class: "snippet", tabindex: 0 }, text);
        const copy = h("button", { type: "button" }, "Copy");
        copy.addEventListener("click", async () => {
          try {
            await navigator.clipboard.writeText(text);
            flash(`Copied the ${d.id} client setup.`);
          } catch (_) {
            getSelection().selectAllChildren(pre);
            flash("Selected: press Ctrl+C to copy.");
          }
        });
        replace(setup, pre, copy);
      } catch (e) {
        replace(setup, h("p", { class: "flash error" }, e.message));
      }
    });
    const v = d.latest;
    return [
      h(
        "tr",
        {},
        h("th", { scope: "row" }, h("a", { href: `#/packages?distribution=${encodeURIComponent(d.id)}` }, d.display_name), h("div", { class: "muted" }, `${d.id} · ${d.family} · ${d.format}`)),
        h("td", { class: "num" }, v ? v.packages : 0),
        h("td", {}, v ? [h("a", { href: `#/versions/${encodeURIComponent(d.id)}` }, `#${v.number}`), ` ${when(v.created_ms)}`, h("div", { class: "muted" }, `${v.action} by ${v.actor}`)] : "no versions yet"),
        h("td", {}, stateCounts(d.scan_states)),
        h("td", {}, toggle),
      ),
      setupRow,
    ];
  });
  return h(
    "section",
    {},
    h("h1", {}, "Distributions"),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, ["Distribution", "Packages", "Latest version", "Scan states", "Setup"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
  );
}

export async function packages(ctx) {
  const p = ctx.params;
  const q = new URLSearchParams();
  for (const k of ["distribution", "search", "architecture", "state", "offset"]) if (p.get(k)) q.set(k, p.get(k));
  q.set("limit", "100");
  const [report, dists] = await Promise.all([api("GET", `/scans?${q}`), distributionList()]);
  const form = h(
    "form",
    { class: "filters", role: "search" },
    field("Distribution", select("distribution", distOptions(dists, "any"), p.get("distribution") || "")),
    field("Name contains", h("input", { name: "search", value: p.get("search") || "", autocomplete: "off" })),
    field("Architecture", h("input", { name: "architecture", value: p.get("architecture") || "", size: 8 })),
    field("Scan state", select("state", [["", "any"], ...STATES.map((s) => [s, s])], p.get("state") || "")),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
    location.hash = `#/packages?${next}`;
  });
  const rows = report.packages.map((r) => [
    packageLink(r.package),
    r.package.version,
    r.package.architecture,
    r.package.distribution,
    badge(r.state),
    r.worst,
    r.findings,
    when(r.package.created_at * 1000),
  ]);
  let more = null;
  if (report.next_offset !== null) {
    const next = new URLSearchParams(q);
    next.set("offset", report.next_offset);
    next.delete("limit");
    more = h("a", { href: `#/packages?${next}` }, "Next page");
  }
  return h(
    "section",
    {},
    h("h1", {}, "Packages"),
    form,
    h("p", { class: "muted" }, "By scan state, whatever the state filter: ", stateCounts(report.states)),
    rows.length
      ? table(null, ["Name", "Version", "Arch", "Distribution", "Scan", "Worst", "Findings", "Uploaded"], rows)
      : h("p", {}, "No package matches."),
    more,
  );
}

function findingsTable(findings) {
  if (!findings.length) return h("p", {}, "No findings.");
  return table(
    null,
    ["Severity", "Advisory", "Fixed in", "Summary"],
    findings.map((f) => [
      h("span", { class: `sev sev-${f.severity}` }, f.severity),
      [f.advisory_id, f.aliases.length ? h("div", { class: "muted" }, f.aliases.join(", ")) : null],
      f.fixed || "no fix yet",
      f.summary,
    ]),
  );
}

// Approve or reject with a justification (required here and by the API).
// The choice is a radio with no default and one submit button, so Enter in
// a field never decides by itself.
function decisionForm(pkg, done) {
  const label = `${pkg.name} ${pkg.version} in ${pkg.distribution}`;
  const justification = h("textarea", { name: "justification", required: true, rows: 2 });
  const expires = h("input", { name: "expires", type: "date" });
  const choice = (value, text) =>
    h("label", { class: "choice" }, h("input", { type: "radio", name: "decision", value, required: true }), ` ${text}`);
  const submit = h("button", { type: "submit", "aria-label": `Record the decision on ${label}` }, "Record decision");
  const form = h(
    "form",
    { class: "decision", "aria-label": `Decision on ${label}` },
    h("fieldset", {}, h("legend", {}, "Decision"), choice("approve", "Approve"), choice("reject", "Reject")),
    field("Justification", justification),
    field("Review again on (optional)", expires),
    submit,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const decision = new FormData(form).get("decision");
    const text = justification.value.trim();
    if (!text) {
      flash("A decision needs a justification.", "error");
      justification.focus();
      return;
    }
    const body = { decision, justification: text };
    if (expires.value) body.expires = expires.value;
    act(
      submit,
      () => api("POST", `/packages/${encodeURIComponent(pkg.id)}/decision`, body),
      (r) =>
        `${decision === "approve" ? "Approved" : "Rejected"} ${pkg.name} ${pkg.version}` +
        (r.distribution_version ? `: ${pkg.distribution} version ${r.distribution_version.number}` : ""),
    ).then((r) => r && done());
  });
  return form;
}

function promoteForm(pkg, dists, done) {
  const family = dists.find((d) => d.id === pkg.distribution)?.family;
  const targets = dists.filter((d) => d.family === family && d.id !== pkg.distribution);
  if (!targets.length) return null;
  const to = select("to_dist", distOptions(targets));
  const reason = h("input", { name: "reason", autocomplete: "off" });
  const form = h(
    "form",
    { class: "inline", "aria-label": "Promote" },
    field("Promote to", to),
    field("Reason", reason),
    h("button", { type: "submit" }, "Promote"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = {
      package: pkg.name,
      version: pkg.version,
      architecture: pkg.architecture,
      from_dist: pkg.distribution,
      to_dist: to.value,
    };
    if (reason.value.trim()) body.reason = reason.value.trim();
    act(e.submitter, () => api("POST", "/distributions/promote", body), (r) => {
      if (r.held.length) return `${pkg.name} is in ${r.to_dist} but held by its vulnerability gate: review it there.`;
      if (!r.promoted.length) return `${pkg.name} ${pkg.version} was already in ${r.to_dist}.`;
      return `Promoted ${pkg.name} ${pkg.version} to ${r.to_dist} (version ${r.distribution_version.number}).`;
    }).then((r) => r && done());
  });
  return form;
}

function removeForm(pkg, done) {
  const reason = h("input", { name: "reason", autocomplete: "off" });
  const form = h(
    "form",
    { class: "inline", "aria-label": "Remove" },
    field("Reason", reason),
    h("button", { type: "submit", class: "danger" }, `Remove from ${pkg.distribution}`),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = reason.value.trim() ? `?reason=${encodeURIComponent(reason.value.trim())}` : "";
    act(e.submitter, () => api("DELETE", `/packages/${encodeURIComponent(pkg.id)}${q}`), () => `Removed ${pkg.name} ${pkg.version} from ${pkg.distribution}.`).then(
      (r) => r && done(),
    );
  });
  return form;
}

export async function packagePage(ctx) {
  const [d, dists] = await Promise.all([api("GET", `/packages/${encodeURIComponent(ctx.arg)}/details`), distributionList()]);
  const p = d.package;
  const scan = d.scan;
  const maintainer = allows(ctx.me.role, "maintainer");
  const facts = [
    ["Distribution", p.distribution],
    ["File", p.filename],
    ["Size", bytes(p.size)],
    ["SHA-256", h("code", {}, p.sha256)],
    ["Uploaded", `${when(p.created_at * 1000)} by ${p.uploaded_by}`],
    ["Promoted from", p.origin ? h("a", { href: `#/package/${encodeURIComponent(p.origin)}` }, p.origin) : "— (an upload)"],
    ["Signature", p.signature ? `${p.signature} (key ${p.signature_key_id})` : "none"],
    ["In versions", d.memberships.length ? d.memberships.map((m) => (m.removed_in ? `${m.added_in}–${m.removed_in - 1}` : `${m.added_in} onwards`)).join(", ") : "none (held back)"],
  ];
  const actions = [];
  if (maintainer) {
    if (scan && scan.state !== "clean") actions.push(h("h3", {}, "Decide"), decisionForm(p, ctx.rerender));
    if (!d.held) {
      const promote = promoteForm(p, dists, ctx.rerender);
      if (promote) actions.push(h("h3", {}, "Promote"), promote);
    }
    actions.push(h("h3", {}, "Remove"), removeForm(p, () => (location.hash = `#/packages?distribution=${encodeURIComponent(p.distribution)}`)));
  }
  return h(
    "article",
    { class: "package" },
    h("h1", {}, `${p.name} ${p.version} `, h("span", { class: "muted" }, p.architecture), " ", scan ? badge(scan.state) : null),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    actions.length ? h("section", { class: "actions" }, h("h2", {}, "Actions"), actions) : null,
    h("h2", {}, "Findings"),
    scan ? [scan.reason ? h("p", {}, `Policy ${scan.policy}: ${scan.reason}`) : null, findingsTable(scan.findings)] : h("p", {}, "Not scanned."),
    h("h2", {}, "Decisions"),
    d.decisions.length
      ? table(
          null,
          ["When", "Decision", "By", "Justification", "Covers"],
          d.decisions.map((x) => [when(x.at_ms), x.decision + (x.inherited_from ? " (carried by promotion)" : ""), x.actor, x.justification, x.covers.join(", ")]),
        )
      : h("p", {}, "None."),
    h("h2", {}, "Same file elsewhere"),
    d.same_file.length
      ? h(
          "ul",
          {},
          d.same_file.map((s) =>
            h("li", {}, h("a", { href: `#/package/${encodeURIComponent(s.id)}` }, s.distribution), s.current ? "" : s.held ? " (held back)" : " (removed)"),
          ),
        )
      : h("p", {}, "In no other distribution."),
    h("h2", {}, "Files in the tree"),
    d.tree_paths.length ? h("ul", {}, d.tree_paths.map((t) => h("li", {}, h("code", {}, t)))) : h("p", {}, "None."),
    h("h2", {}, "Metadata"),
    d.entries.map((e) => h("section", { class: "entry" }, h("h3", {}, e.index), h("pre", { class: "metadata" }, e.text))),
  );
}

export async function review(ctx) {
  const state = ctx.params.get("state") || "quarantined";
  const report = await api("GET", `/scans?state=${encodeURIComponent(state)}&with_findings=true&limit=100`);
  const maintainer = allows(ctx.me.role, "maintainer");
  const picker = h(
    "nav",
    { class: "tabs", "aria-label": "Review states" },
    ["quarantined", "blocked", "findings", "approved", "rejected"].map((s) =>
      h("a", { href: `#/review?state=${s}`, "aria-current": s === state ? "page" : null }, `${s} (${report.states[s] || 0})`),
    ),
  );
  const items = report.packages.map((r) =>
    h(
      "article",
      { class: "card" },
      h("h2", {}, packageLink(r.package), ` ${r.package.version} ${r.package.architecture} in ${r.package.distribution} `, badge(r.state)),
      findingsTable(r.finding_list || []),
      maintainer ? decisionForm(r.package, ctx.rerender) : null,
    ),
  );
  return h(
    "section",
    {},
    h("h1", {}, "Vulnerability review"),
    picker,
    items.length ? items : h("p", {}, `No ${state} package.`),
  );
}

export async function upload(ctx) {
  const dists = await distributionList();
  const dist = select("distribution", distOptions(dists), ctx.params.get("distribution") || dists[0]?.id);
  const input = h("input", { type: "file", name: "file", multiple: true, accept: ".deb,.rpm" });
  const results = h("ul", { class: "uploads", "aria-live": "polite" });
  const send = async (files) => {
    for (const file of files) {
      const bar = h("progress", { max: 1, value: 0, "aria-label": `Upload of ${file.name}` });
      const status = h("span", {}, " sending…");
      results.appendChild(h("li", {}, h("strong", {}, file.name), " ", bar, status));
      const form = new FormData();
      form.append("distribution", dist.value);
      form.append("file", file, file.name);
      try {
        const r = await sendFile("/packages", form, null, (f) => (bar.value = f));
        bar.value = 1;
        replace(
          status,
          " stored as ",
          h("a", { href: `#/package/${encodeURIComponent(r.id)}` }, `${r.name} ${r.version} ${r.architecture}`),
          ` in ${r.distribution}`,
          r.distribution_version ? ` (version ${r.distribution_version})` : "",
          r.scan ? [" · scan: ", badge(r.scan.state)] : "",
        );
      } catch (e) {
        replace(status, h("span", { class: "error" }, ` refused: ${e.message}`));
      }
    }
  };
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    send(files);
  });
  const zone = h(
    "div",
    { class: "dropzone" },
    h("p", {}, "Drop .deb or .rpm files here, or choose them:"),
    field("Package files", input),
  );
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    send([...e.dataTransfer.files]);
  });
  return h("section", {}, h("h1", {}, "Upload"), field("Into distribution", dist), zone, results);
}

function key(p) {
  return `${p.name} ${p.version} ${p.architecture}`;
}

// What making `target`'s content current would add and remove.
function diff(current, target) {
  const now = new Set(current.map(key));
  const then = new Set(target.map(key));
  return {
    add: target.filter((p) => !now.has(key(p))),
    remove: current.filter((p) => !then.has(key(p))),
  };
}

function changeList(title, list) {
  return list.length ? [h("h4", {}, `${title} (${list.length})`), h("ul", {}, list.map((p) => h("li", {}, key(p))))] : null;
}

export async function versions(ctx) {
  const dists = await distributionList();
  const id = ctx.arg || dists[0]?.id;
  const picker = select("distribution", distOptions(dists), id, { "aria-label": "Distribution" });
  picker.addEventListener("change", () => (location.hash = `#/versions/${encodeURIComponent(picker.value)}`));
  const before = ctx.params.get("before");
  const page = before ? `?before=${encodeURIComponent(before)}` : "";
  const list = await api("GET", `/distributions/${encodeURIComponent(id)}/versions${page}`);
  const maintainer = allows(ctx.me.role, "maintainer");
  const base = `/distributions/${encodeURIComponent(id)}/versions`;
  const rows = list.versions.flatMap((v) => {
    const detail = h("td", { colspan: 8 });
    const detailRow = h("tr", { class: "detail", hidden: true }, detail);
    const show = h("button", { type: "button", class: "link" }, "What changed");
    show.addEventListener("click", async () => {
      detailRow.hidden = !detailRow.hidden;
      if (detailRow.hidden) return;
      try {
        const full = await api("GET", `${base}/${v.number}`);
        replace(detail, changeList("Added", full.added_packages) || "", changeList("Removed", full.removed_packages) || "", full.added_packages.length + full.removed_packages.length ? "" : "No package changed.");
      } catch (e) {
        replace(detail, h("p", { class: "error", role: "alert" }, e.message));
      }
    });
    let rollback = null;
    if (maintainer && v.number !== list.latest) {
      rollback = h("button", { type: "button" }, `Roll back to #${v.number}`);
      rollback.addEventListener("click", async () => {
        detailRow.hidden = false;
        let then, now;
        try {
          [then, now] = await Promise.all([api("GET", `${base}/${v.number}`), api("GET", `${base}/${list.latest}`)]);
        } catch (e) {
          replace(detail, h("p", { class: "error", role: "alert" }, e.message));
          return;
        }
        const change = diff(now.content, then.content);
        const reason = h("input", { name: "reason", autocomplete: "off" });
        const confirm = h("button", { type: "submit", class: "danger" }, `Make #${v.number}'s content current`);
        const form = h("form", { class: "inline", "aria-label": "Confirm rollback" }, field("Reason", reason), confirm);
        form.addEventListener("submit", (e) => {
          e.preventDefault();
          const body = { version: v.number };
          if (reason.value.trim()) body.reason = reason.value.trim();
          act(confirm, () => api("POST", `/distributions/${encodeURIComponent(id)}/rollback`, body), (r) =>
            (r.distribution_version ? `${id} now has version #${v.number}'s content as version #${r.distribution_version.number}.` : `${id} already had that content.`) +
            (r.held_back ? ` ${r.held_back} of its packages are held by the vulnerability gate and were left out.` : ""),
          ).then((r) => r && ctx.rerender());
        });
        replace(
          detail,
          h("p", {}, `Rolling back to #${v.number} (from #${list.latest}) would (packages the vulnerability gate holds now stay out):`),
          changeList("Add", change.add) || "",
          changeList("Remove", change.remove) || "",
          change.add.length + change.remove.length ? "" : h("p", {}, "change no package."),
          form,
        );
      });
    }
    return [
      h(
        "tr",
        {},
        h("th", { scope: "row" }, `#${v.number}`, v.number === list.published ? h("span", { class: "muted" }, " published") : null),
        h("td", {}, when(v.created_ms)),
        h("td", {}, v.actor),
        h("td", {}, v.action),
        h("td", {}, v.reason),
        h("td", { class: "num" }, `+${v.added} −${v.removed}`),
        h("td", { class: "num" }, v.packages),
        h("td", {}, show, " ", rollback),
      ),
      detailRow,
    ];
  });
  return h(
    "section",
    {},
    h("h1", {}, "Versions"),
    field("Distribution", picker),
    rows.length
      ? h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ["Version", "Made", "By", "Action", "Reason", "Changes", "Packages", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, rows),
        )
      : h("p", {}, `${id} has no versions yet.`),
    olderVersions(id, list),
  );
}

// A link to the next page while kept versions remain below this one.
function olderVersions(id, list) {
  const last = list.versions[list.versions.length - 1];
  if (!last || list.oldest === null || last.number <= list.oldest) return null;
  return h("a", { href: `#/versions/${encodeURIComponent(id)}?before=${last.number}` }, "Older versions");
}

export async function migrate() {
  const dists = await distributionList();
  const from = select("from_dist", distOptions(dists));
  const to = select("to_dist", distOptions(dists));
  const reason = h("input", { name: "reason", autocomplete: "off" });
  const result = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    {},
    field("From", from),
    field("To (same family)", to),
    field("Reason", reason),
    h("button", { type: "submit" }, "Migrate every package"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = { from_dist: from.value, to_dist: to.value };
    if (reason.value.trim()) body.reason = reason.value.trim();
    act(e.submitter, () => api("POST", "/distributions/migrate", body), (r) => {
      replace(result, r.skips.length ? table("Skipped", ["Package", "Why"], r.skips.map((s) => [key(s), s.reason])) : "");
      return `Copied ${r.copied} packages from ${r.from_dist} to ${r.to_dist}; ${r.already_present} already there, ${r.held.length} held for review, ${r.skipped} skipped.`;
    });
  });
  return h("section", {}, h("h1", {}, "Migrate a distribution"), h("p", {}, "Copies every package of one distribution into another of its family, by reference, as one new version."), form, result);
}

export async function audit(ctx) {
  const p = ctx.params;
  const q = new URLSearchParams();
  for (const k of ["actor", "action", "target", "limit"]) if (p.get(k)) q.set(k, p.get(k));
  const { entries } = await api("GET", `/audit?${q}`);
  const form = h(
    "form",
    { class: "filters", role: "search" },
    field("Actor", h("input", { name: "actor", value: p.get("actor") || "" })),
    field("Action starts with", h("input", { name: "action", value: p.get("action") || "", placeholder: "package." })),
    field("Target id", h("input", { name: "target", value: p.get("target") || "" })),
    field("At most", h("input", { name: "limit", type: "number", min: 1, max: 10000, value: p.get("limit") || 100 })),
    h("button", { type: "submit" }, "Filter"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
    location.hash = `#/audit?${next}`;
  });
  return h(
    "section",
    {},
    h("h1", {}, "Audit log"),
    form,
    entries.length ? table(null, ["When", "Actor", "Action", "Target", "Detail"], entries.map((e) => [when(e.at_ms), e.actor, e.action, h("code", {}, e.target), e.detail])) : h("p", {}, "No entry matches."),
  );
}

export async function plugins(ctx) {
  const list = await api("GET", "/plugins");
  const admin = allows(ctx.me.role, "admin");
  const rows = list.plugins.map((p) => {
    let remove = null;
    if (admin && p.status === "loaded") {
      // Two steps: removing a family retires its distributions.
      const confirm = h("button", { type: "button", class: "danger", hidden: true }, `Confirm: remove ${p.name}`);
      const ask = h("button", { type: "button", class: "link" }, "Remove…");
      ask.addEventListener("click", () => {
        ask.hidden = true;
        confirm.hidden = false;
        confirm.focus();
      });
      confirm.addEventListener("click", () =>
        act(confirm, () => api("DELETE", `/plugins/${encodeURIComponent(p.name)}`), () => `Removed plugin ${p.name}.`).then((r) => {
          distCache = null;
          if (r) ctx.rerender();
        }),
      );
      remove = [ask, confirm];
    }
    return p.status === "loaded"
      ? [badge("loaded"), p.name, p.kind, p.version, p.file, p.distributions.map((d) => d.id).join(", ") || p.description, remove]
      : [badge("failed"), "", "", "", p.file, h("span", { class: "error" }, p.error), null];
  });
  let add = null;
  if (admin) {
    const input = h("input", { type: "file", name: "plugin", accept: ".wasm", required: true });
    const bar = h("progress", { max: 1, value: 0, "aria-label": "Plugin upload" });
    add = h("form", { "aria-label": "Add a plugin" }, h("h2", {}, "Add or replace a plugin"), field("Plugin (.wasm)", input), bar, h("button", { type: "submit" }, "Upload"));
    add.addEventListener("submit", (e) => {
      e.preventDefault();
      const file = input.files[0];
      act(e.submitter, () => sendFile("/plugins", file, "application/wasm", (f) => (bar.value = f)), (r) => `Loaded plugin ${r.name || file.name}.`).then((r) => {
        distCache = null;
        if (r) ctx.rerender();
      });
    });
  }
  return h(
    "section",
    {},
    h("h1", {}, "Plugins"),
    h("p", { class: "muted" }, `Plugin contract ${list.contract}.`),
    table(null, ["Status", "Name", "Kind", "Version", "File", "Distributions or error", "Actions"], rows),
    add,
  );
}

export async function notFound() {
  return h("section", {}, h("h1", {}, "No such page"), h("p", {}, h("a", { href: "#/" }, "Back to the overview")));
}

export async function forbidden(ctx) {
  return h("section", {}, h("h1", {}, "Not for this token"), h("p", {}, `This page needs a ${ctx.arg} token or stronger.`));
}
