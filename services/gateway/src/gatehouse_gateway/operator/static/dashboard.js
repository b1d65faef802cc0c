// The operator dashboard: sign in, then poll the admin API and draw routes,
// backends and their charts. No library, no inline code (the page's CSP
// allows only scripts and styles from the gateway itself). Data from the API
// only ever goes into textContent and attributes, never into HTML.
"use strict";

(function () {
  const TOKEN_KEY = "gatehouse.admin.token";
  const POLL_MS = 2000;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const rows = new Map(); // "route\u0000backend" -> row elements
  let timer = null;
  let polling = false;

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function claims(jwt) {
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch (e) {
      return {};
    }
  }

  function show(signedIn) {
    $("signin").hidden = signedIn;
    $("board").hidden = !signedIn;
    $("signout").hidden = !signedIn;
    const who = signedIn ? claims(token()) : {};
    $("who").textContent = signedIn ? "signed in as " + (who.email || who.sub || "?") : "";
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (timer) { clearTimeout(timer); timer = null; }
    show(false);
    $("signin-error").textContent = message || "";
  }

  function signedIn(jwt) {
    sessionStorage.setItem(TOKEN_KEY, jwt);
    $("signin-error").textContent = "";
    show(true);
    poll();
  }

  async function login(event) {
    event.preventDefault();
    const body = JSON.stringify({ email: $("email").value, password: $("password").value });
    $("signin-error").textContent = "";
    let response;
    try {
      response = await fetch("/login", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: body,
      });
    } catch (e) {
      $("signin-error").textContent = "the gateway did not answer";
      return;
    }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After");
      $("signin-error").textContent = "too many attempts; try again in " + (wait || "a few") + " s";
      return;
    }
    if (!response.ok) {
      $("signin-error").textContent = response.status === 401
        ? "wrong email or password" : "sign-in failed (" + response.status + ")";
      return;
    }
    const data = await response.json();
    $("password").value = "";
    signedIn(data.access_token);
  }

  function useToken(event) {
    event.preventDefault();
    const value = $("token").value.trim();
    $("token").value = "";
    if (value) signedIn(value);
  }

  async function api(path, options) {
    const headers = { Authorization: "Bearer " + token() };
    if (options && options.body) headers["Content-Type"] = "application/json";
    const response = await fetch("/-/admin/" + path, Object.assign({}, options, {
      headers: headers, cache: "no-store",
    }));
    if (response.status === 401) { signOut("your session ended; sign in again"); return null; }
    if (response.status === 403) { signOut("this account is not an admin"); return null; }
    if (!response.ok) {
      let detail = "";
      try { detail = ": " + ((await response.json()).detail || ""); } catch (e) { detail = ""; }
      throw new Error("the admin API answered " + response.status + detail);
    }
    return response.json();
  }

  async function poll() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!token() || polling) return;
    polling = true;
    try {
      const [state, history, quotas] = await Promise.all(
        [api("state"), api("history"), api("quotas?top=5")]);
      if (state && history && quotas) {
        render(state, history);
        renderQuotas(quotas);
        $("board-error").textContent = "";
      }
    } catch (e) {
      $("board-error").textContent = "cannot reach the admin API: " + e.message;
    } finally {
      polling = false;
      if (token()) timer = setTimeout(poll, POLL_MS);
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chart(kind) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("class", "chart " + kind);
    svg.setAttribute("viewBox", "0 0 120 30");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.appendChild(document.createElementNS(SVG, "title"));
    svg.appendChild(document.createElementNS(SVG, "polyline"));
    return svg;
  }

  // A fixed time axis: `slots` buckets across, the newest at the right edge.
  function draw(svg, values, slots, ceiling, label) {
    const max = Math.max(ceiling, ...values);
    const step = 120 / Math.max(slots - 1, 1);
    const offset = slots - values.length;
    const points = values.map((v, i) => ((offset + i) * step).toFixed(1) + ","
      + (29 - (v / max) * 27).toFixed(1));
    svg.lastChild.setAttribute("points", points.join(" "));
    svg.setAttribute("data-points", String(values.length));
    svg.firstChild.textContent = label;
  }

  function routeSection(route) {
    let section = document.querySelector('section.route[data-route="' + CSS.escape(route.name) + '"]');
    if (!section) {
      section = el("section", "route");
      section.dataset.route = route.name;
      const heading = el("h2", null, route.name);
      heading.appendChild(el("span", "muted"));
      section.appendChild(heading);
      const table = el("table");
      const head = el("tr");
      for (const title of ["", "Backend", "Status", "In flight", "Req/s", "Errors",
        "Weight", "Requests/s", "Error rate", ""]) head.appendChild(el("th", null, title));
      table.appendChild(el("thead")).appendChild(head);
      table.appendChild(el("tbody"));
      section.appendChild(table);
      $("routes").appendChild(section);
    }
    splitPanel(section, route);
    section.querySelector("h2 .muted").textContent = route.strategy + " · "
      + (route.hosts.length ? route.hosts.join(", ") : "any host") + " · "
      + route.path_prefix.join(", ") + " · " + route.available_backends + "/"
      + route.backends.length + " available"
      + (route.websocket && route.websocket.enabled
        ? " · " + route.websocket.active + " WebSocket" + (route.websocket.active === 1 ? "" : "s")
        : "");
    return section;
  }

  function backendRow(section, route, backend) {
    const key = route.name + "\u0000" + backend.name;
    let row = rows.get(key);
    if (!row) {
      const tr = el("tr");
      tr.dataset.route = route.name;
      tr.dataset.backend = backend.name;
      const cells = {};
      cells.dot = el("span", "dot");
      tr.appendChild(el("td")).appendChild(cells.dot);
      cells.name = tr.appendChild(el("td", "name", backend.name));
      cells.group = cells.name.appendChild(el("span", "muted group"));
      for (const name of ["status", "inflight", "rps", "errors", "weight"]) {
        cells[name] = tr.appendChild(el("td", name === "status" ? "status" : "num " + name));
      }
      cells.rpsChart = chart("rps");
      cells.errChart = chart("errors");
      tr.appendChild(el("td")).appendChild(cells.rpsChart);
      tr.appendChild(el("td")).appendChild(cells.errChart);
      cells.button = el("button");
      cells.button.type = "button";
      cells.button.addEventListener("click", () => toggle(tr, cells.button));
      tr.appendChild(el("td")).appendChild(cells.button);
      row = { tr: tr, cells: cells };
      rows.set(key, row);
    }
    section.querySelector("tbody").appendChild(row.tr); // keeps config order
    return row;
  }

  function describe(backend) {
    if (backend.status === "drained") {
      const by = backend.drain && backend.drain.by ? " by " + backend.drain.by : "";
      return "drained" + by;
    }
    if (backend.status === "ejected") return "ejected " + backend.ejected_for_seconds + " s";
    if (backend.status === "down") return "down";
    return "up";
  }

  // One row per limit, rebuilt each poll (a handful of rows, textContent only).
  function renderLimits(limits) {
    const store = limits.store;
    $("ratelimit-state").textContent = store.state === "redis"
      ? "shared through Redis (" + store.replicas_seen + " process(es) seen)"
      : store.state === "fallback"
        ? "Redis unreachable: each limit's on_store_failure" + (store.last_error ? " (" + store.last_error + ")" : "")
        : "this process only (no Redis)";
    const body = $("ratelimits");
    const lines = [];
    for (const route of limits.routes) {
      for (const limit of route.limits) {
        const tr = el("tr");
        tr.dataset.route = route.name;
        tr.dataset.limit = limit.name;
        const top = limit.recently_refused.slice(0, 3)
          .map((entry) => entry.consumer + " (" + entry.refusals + ")").join(", ");
        for (const [text, num] of [[route.name], [limit.name], [limit.key.by + (limit.key.name ? " " + limit.key.name : "")],
          [limit.rate + "/" + limit.per, true], [String(limit.burst), true],
          [String(limit.allowed), true], [String(limit.refused), true], [top || "-"]]) {
          tr.appendChild(el("td", num ? "num" : "", text));
        }
        lines.push(tr);
      }
    }
    body.replaceChildren(...lines);
    $("ratelimits-panel").hidden = lines.length === 0;
  }

  function render(state, history) {
    const config = state.config;
    $("config-version").textContent = "version " + config.version + " from " + config.source
      + (config.last_reload_error ? " (last reload failed: " + config.last_reload_error + ")" : "");
    $("cursor-state").textContent = state.cursor.state
      + (state.cursor.shared ? " (shared by every replica)" : " (this process only)");
    $("drain-state").textContent = state.drains.shared
      ? "shared through Redis (" + state.drains.state + ")" : "this process only (no Redis)";
    const weights = state.canary_weights;
    $("weights-state").textContent = (weights.shared
      ? "shared through Redis (" + weights.state + ")" : "this process only (no Redis)")
      + " · " + weights.overrides + " route(s) set at run time";
    $("jwks-state").textContent = state.jwks
      ? state.jwks.key_ids.length + " key(s)" + (state.jwks.last_error ? ", last error: " + state.jwks.last_error : "")
      : "not configured";
    renderLimits(state.rate_limits);
    $("updated").textContent = new Date().toLocaleTimeString();
    const seen = new Set();
    const sections = new Set();
    for (const route of state.routes) {
      const section = routeSection(route);
      sections.add(section);
      const series = history.routes[route.name] || {};
      for (const backend of route.backends) {
        const row = backendRow(section, route, backend);
        seen.add(route.name + "\u0000" + backend.name);
        const c = row.cells;
        row.tr.dataset.status = backend.status;
        c.dot.className = "dot status-" + backend.status;
        c.status.textContent = describe(backend);
        c.inflight.textContent = String(backend.in_flight);
        c.rps.textContent = (backend.recent_requests / 60).toFixed(1);
        c.errors.textContent = (backend.recent_error_rate * 100).toFixed(1) + "%";
        c.weight.textContent = String(backend.weight);
        c.group.textContent = route.split ? " · " + backend.group : "";
        const points = series[backend.name] || { requests_per_second: [], error_rate: [] };
        const rps = points.requests_per_second;
        const errs = points.error_rate;
        draw(c.rpsChart, rps, history.buckets, 1, "requests/s, latest " + (rps.length ? rps[rps.length - 1] : 0));
        draw(c.errChart, errs, history.buckets, 1, "error rate, latest " + (errs.length ? errs[errs.length - 1] : 0));
        if (!c.button.disabled) {
          c.button.textContent = backend.drained ? "Restore" : "Drain";
          c.button.className = backend.drained ? "restore" : "drain";
        }
      }
    }
    for (const [key, row] of rows) {
      if (!seen.has(key)) { row.tr.remove(); rows.delete(key); }
    }
    for (const section of document.querySelectorAll("section.route")) {
      if (!sections.has(section)) section.remove();
    }
  }

  function duration(seconds) {
    if (seconds >= 86400) return Math.floor(seconds / 86400) + " d " + Math.floor(seconds % 86400 / 3600) + " h";
    if (seconds >= 3600) return Math.floor(seconds / 3600) + " h " + Math.floor(seconds % 3600 / 60) + " min";
    return Math.ceil(seconds / 60) + " min";
  }

  function usage(consumers) {
    if (!consumers.length) return "none";
    return consumers.map(function (c) {
      return c.consumer + " " + c.used + " (" + Math.round(c.share * 100) + "%)";
    }).join(", ");
  }

  // Rebuilt whole at each poll: a handful of rows, every value set as text.
  function renderQuotas(answer) {
    const rowsOf = $("quota-rows");
    $("quotas").hidden = answer.quotas.length === 0;
    $("quota-store").textContent = answer.store.shared
      ? "shared through Redis (" + answer.store.state + ")" : "this process only (no Redis)";
    const fresh = [];
    for (const quota of answer.quotas) {
      const tr = el("tr");
      tr.dataset.quota = quota.route + "/" + quota.name;
      const key = quota.key.by + (quota.key.name ? " " + quota.key.name : "");
      for (const [text, cls] of [[quota.route], [quota.name], [String(quota.limit), "num"],
        [quota.period + " · " + key], [duration(quota.window.resets_in)],
        [usage(quota.top), "top"], [usage(quota.near), "near"]]) {
        tr.appendChild(el("td", cls || null, text));
      }
      if (quota.near.length) tr.dataset.near = "true";
      fresh.push(tr);
    }
    rowsOf.replaceChildren.apply(rowsOf, fresh);
  }

  // A route's groups and weights, with inputs an admin changes them with. An
  // input being edited is left alone by the poll until it is saved or reset.
  function splitPanel(section, route) {
    let panel = section.querySelector("div.split");
    if (!route.split) { if (panel) panel.remove(); return; }
    if (!panel) {
      panel = el("div", "split");
      panel.appendChild(el("h3", null, "Groups and weights"));
      panel.appendChild(el("p", "muted split-state"));
      panel.appendChild(el("div", "weights"));
      const save = el("button", "save-weights", "Save weights");
      save.type = "button";
      save.addEventListener("click", () => changeWeights(section, panel, "PUT"));
      const reset = el("button", "reset-weights", "Back to the config's");
      reset.type = "button";
      reset.addEventListener("click", () => changeWeights(section, panel, "DELETE"));
      const actions = panel.appendChild(el("div", "actions"));
      actions.appendChild(save);
      actions.appendChild(reset);
      panel.appendChild(el("p", "error split-error"));
      section.insertBefore(panel, section.querySelector("table"));
    }
    const split = route.split;
    const total = Object.values(split.weights).reduce((a, b) => a + b, 0) || 1;
    const box = panel.querySelector("div.weights");
    const wanted = route.groups.map((g) => g.name);
    for (const label of Array.from(box.children)) {
      if (!wanted.includes(label.dataset.group)) label.remove();
    }
    for (const group of route.groups) {
      let label = box.querySelector('label[data-group="' + CSS.escape(group.name) + '"]');
      if (!label) {
        label = el("label", "group");
        label.dataset.group = group.name;
        label.appendChild(el("span", "group-name", group.name));
        const input = el("input");
        input.type = "number";
        input.min = "0";
        input.max = "1000000";
        input.step = "1";
        input.setAttribute("aria-label", "weight of " + group.name);
        input.addEventListener("input", () => { input.dataset.dirty = "1"; });
        label.appendChild(input);
        label.appendChild(el("span", "muted share"));
        box.appendChild(label);
      }
      const weight = split.weights[group.name] || 0;
      const input = label.querySelector("input");
      if (!input.dataset.dirty && document.activeElement !== input) input.value = String(weight);
      label.querySelector(".share").textContent = (100 * weight / total).toFixed(1) + "% · "
        + group.available_backends + "/" + group.backends.length + " up · " + group.strategy;
    }
    const rules = split.rules.map((r) => (r.header ? r.header + (r.equals !== undefined
      ? ": " + r.equals : " present") : "cookie " + r.cookie + "=" + r.equals) + " \u2192 " + r.group);
    const override = split.override;
    panel.querySelector(".split-state").textContent = (override
      ? "set at run time by " + override.by + (override.at
        ? " at " + new Date(override.at * 1000).toLocaleTimeString() : "")
      : "the config's weights")
      + (split.override_unusable ? " (runtime weights unusable: " + split.override_unusable + ")" : "")
      + (split.redis_value_ignored ? " (Redis value ignored: " + split.redis_value_ignored + ")" : "")
      + (rules.length ? " · rules first: " + rules.join(", ") : "")
      + (split.sticky ? " · sticky by " + split.sticky.by + (split.sticky.name ? " " + split.sticky.name : "") : "");
  }

  async function changeWeights(section, panel, method) {
    const error = panel.querySelector(".split-error");
    const inputs = Array.from(panel.querySelectorAll("label.group input"));
    const options = { method: method };
    if (method === "PUT") {
      const weights = {};
      for (const input of inputs) {
        const value = Number(input.value);
        if (!Number.isInteger(value) || value < 0) {
          error.textContent = "weights are whole numbers, 0 or more";
          return;
        }
        weights[input.parentNode.dataset.group] = value;
      }
      options.body = JSON.stringify({ weights: weights });
    }
    for (const button of panel.querySelectorAll("button")) button.disabled = true;
    try {
      await api("routes/" + encodeURIComponent(section.dataset.route) + "/weights", options);
      error.textContent = "";
      for (const input of inputs) delete input.dataset.dirty;
    } catch (e) {
      error.textContent = "weights not changed: " + e.message;
    } finally {
      for (const button of panel.querySelectorAll("button")) button.disabled = false;
      poll();
    }
  }

  async function toggle(tr, button) {
    const action = button.className === "restore" ? "restore" : "drain";
    button.disabled = true;
    try {
      await api("routes/" + encodeURIComponent(tr.dataset.route) + "/backends/"
        + encodeURIComponent(tr.dataset.backend) + "/" + action, { method: "POST" });
    } catch (e) {
      $("board-error").textContent = action + " failed: " + e.message;
    } finally {
      button.disabled = false;
      poll();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", login);
    $("token-form").addEventListener("submit", useToken);
    $("signout").addEventListener("click", () => signOut(""));
    if (token()) { show(true); poll(); } else { show(false); }
  });
})();
