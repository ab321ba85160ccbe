// AILB dashboard: polls GET /api/dashboard every 2 s and draws it. Plain DOM, no library, no build step.
// Every text that comes from the gateway goes into the page as textContent (never as markup), and the token is
// kept in sessionStorage and sent as an Authorization header, never in a URL.
"use strict";

(() => {
  const POLL_MS = 2000;
  const TOKEN_KEY = "ailb.dashboard.token";
  const SVG = "http://www.w3.org/2000/svg";
  const COLORS = ["#2f5fd0", "#e8710a", "#1a9e62", "#c2185b", "#7b4fd0", "#00838f", "#a1887f", "#5d6b7c"];
  const $ = (id) => document.getElementById(id);
  let timer = null;

  // --- DOM helpers (text only) ---------------------------------------------------------------------------
  function el(tag, options = {}, children = []) {
    const node = document.createElement(tag);
    if (options.className) node.className = options.className;
    if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
    if (options.title) node.title = String(options.title);
    for (const [name, value] of Object.entries(options.data || {})) node.dataset[name] = String(value);
    for (const child of children) node.append(child);
    return node;
  }

  function svg(tag, attributes = {}, text = null) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    if (text !== null) node.textContent = String(text);
    return node;
  }

  // --- formatting ---------------------------------------------------------------------------------------
  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  const count = (n) => (n === null || n === undefined ? "–" : integer.format(n));
  const rate = (n) => (n === null || n === undefined ? "–" : decimal.format(n));
  function ms(value) {
    if (value === null || value === undefined) return "–";
    return value >= 1000 ? `${decimal.format(value / 1000)} s` : `${integer.format(value)} ms`;
  }
  function pair(first, second) {
    if (first !== null && second !== null && first < 1000 && second < 1000) {
      return `${integer.format(first)} / ${integer.format(second)} ms`;
    }
    return `${ms(first)} / ${ms(second)}`;
  }
  function tokens(n) {
    if (n >= 1e6) return `${decimal.format(n / 1e6)}M`;
    if (n >= 1e4) return `${decimal.format(n / 1e3)}k`;
    return integer.format(n);
  }
  function usd(n) {
    if (!n) return "$0";
    return n < 0.01 ? `$${n.toPrecision(2)}` : `$${decimal.format(n)}`;
  }
  function duration(seconds) {
    if (seconds < 120) return `${Math.round(seconds)} s`;
    if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${decimal.format(seconds / 3600)} h`;
    return `${decimal.format(seconds / 86400)} d`;
  }
  const STATUS_CLASSES = { ok: "ok", closed: "ok", degraded: "warn", half_open: "warn", loading: "warn", disabled: "" };
  const statusClass = (status) => (status in STATUS_CLASSES ? STATUS_CLASSES[status] : "bad");

  // --- the token prompt ---------------------------------------------------------------------------------
  function showLogin(message) {
    clearDashboard();
    $("dashboard").hidden = true;
    $("sign-out").hidden = true;
    $("gateway-status").hidden = true;
    $("gateway-meta").textContent = "";
    $("connection").textContent = "";
    $("login").hidden = false;
    $("login-error").hidden = !message;
    $("login-error").textContent = message || "";
    $("token").value = "";
    $("token").focus();
  }

  function clearDashboard() {
    for (const id of ["overview", "legend", "stores", "chart-rps", "chart-errors", "chart-latency"]) $(id).replaceChildren();
    for (const id of ["deployments", "routes", "collections"]) $(id).tBodies[0].replaceChildren();
  }

  // --- polling ------------------------------------------------------------------------------------------
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    let response;
    try {
      response = await fetch("/api/dashboard", { headers, cache: "no-store", credentials: "omit", redirect: "error" });
    } catch (error) {
      $("connection").textContent = "The gateway does not answer; retrying…";
      schedule();
      return;
    }
    if (response.status === 401 || response.status === 403) {
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      showLogin(token ? "That token was not accepted." : "");
      return;
    }
    if (!response.ok) {
      $("connection").textContent = `The gateway answered HTTP ${response.status}; retrying…`;
      schedule();
      return;
    }
    const data = await response.json();
    $("login").hidden = true;
    $("dashboard").hidden = false;
    $("sign-out").hidden = !token;
    render(data);
    $("connection").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    schedule();
  }

  // --- rendering ----------------------------------------------------------------------------------------
  function render(data) {
    const names = Object.keys(data.deployments);
    const colors = Object.fromEntries(names.map((name, i) => [name, COLORS[i % COLORS.length]]));
    renderHeader(data.gateway);
    renderOverview(data);
    renderLegend(names, colors);
    renderCharts(data.series, names, colors);
    renderDeployments(data.deployments, colors);
    renderRoutes(data.routes, colors);
    renderStores(data.memory, data.rag);
  }

  function renderHeader(gateway) {
    const status = $("gateway-status");
    status.hidden = false;
    status.className = `badge ${statusClass(gateway.status)}`;
    status.textContent = gateway.status;
    $("gateway-meta").textContent = `${gateway.module_id} · v${gateway.version} · up ${duration(gateway.uptime_seconds)}`;
  }

  function card(label, value, note, field) {
    return el("div", { className: "card", data: { field } }, [
      el("div", { className: "label", text: label }),
      el("div", { className: "value", text: value }),
      el("div", { className: "note", text: note || "" }),
    ]);
  }

  function renderOverview(data) {
    const requests = data.requests;
    const errors = Object.entries(requests.status_codes).filter(([code]) => Number(code) >= 500).reduce((sum, [, n]) => sum + n, 0);
    const budget = data.retry_budget;
    $("overview").replaceChildren(
      card("Requests / s", rate(requests.per_second), "last minute", "per-second"),
      card("Requests", count(requests.total), `${count(requests.active)} in flight`, "total"),
      card("Latency p50 / p95", pair(requests.p50_ms, requests.p95_ms), "last 10,000 answers", "latency"),
      card("Errors (5xx)", count(errors), `of ${count(requests.total)}`, "errors"),
      card("Strategy", data.strategy, "default routing strategy", "strategy"),
      card("Retry budget", `${Math.round(budget.ratio * 100)} %`,
        `${count(budget.retries)} retries / ${count(budget.requests)} requests in ${budget.window_seconds} s`, "retry-budget"),
    );
  }

  function renderLegend(names, colors) {
    $("legend").replaceChildren(...names.map((name) =>
      el("span", { data: { deployment: name } }, [el("span", { className: "swatch" }), document.createTextNode(name)])));
    for (const item of $("legend").children) item.firstChild.style.background = colors[item.dataset.deployment];
  }

  // --- charts -------------------------------------------------------------------------------------------
  const W = 480, H = 200, PAD = { left: 44, right: 10, top: 10, bottom: 22 };

  // The top of the y axis: four gridline steps of a round size (1, 2, 2.5 or 5 times a power of ten).
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const rough = value / 4;
    const magnitude = 10 ** Math.floor(Math.log10(rough));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= rough) return 4 * step * magnitude;
    return 40 * magnitude;
  }

  function renderCharts(series, names, colors) {
    const span = series.interval_seconds * Math.max(series.times.length, Math.round(120 / series.interval_seconds));
    $("charts-title").textContent = `Last ${Math.round(span / 60)} minutes`;
    const caption = $("chart-errors").parentElement.querySelector("figcaption");
    caption.textContent = `Errors per ${series.interval_seconds} s`;
    drawChart($("chart-rps"), series, names, colors, "requests_per_second", span);
    drawChart($("chart-errors"), series, names, colors, "errors", span);
    drawChart($("chart-latency"), series, names, colors, "latency_ms", span);
  }

  function drawChart(target, series, names, colors, field, span) {
    const slots = series.times.length;
    // The axis spans what has been sampled, at least 2 minutes (up to the 10 minutes the gateway keeps).
    const capacity = Math.max(slots, Math.round(120 / series.interval_seconds));
    const values = names.flatMap((name) => (series.deployments[name] ? series.deployments[name][field] : []));
    const top = niceMax(Math.max(0, ...values.filter((v) => v !== null)));
    const plotW = W - PAD.left - PAD.right, plotH = H - PAD.top - PAD.bottom;
    const x = (i) => PAD.left + plotW * (1 - (slots - 1 - i) / Math.max(capacity - 1, 1));
    const y = (v) => PAD.top + plotH * (1 - v / top);
    const parts = [];
    for (let g = 0; g <= 4; g++) {
      const value = (top * g) / 4;
      parts.push(svg("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(value), y2: y(value) }));
      parts.push(svg("text", { class: "axis", x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end" }, rate(value)));
    }
    const minutes = Math.round((capacity * series.interval_seconds) / 60);
    parts.push(svg("text", { class: "axis", x: PAD.left, y: H - 4 }, `−${minutes} min`));
    parts.push(svg("text", { class: "axis", x: W - PAD.right, y: H - 4, "text-anchor": "end" }, "now"));
    for (const name of names) {
      const points = series.deployments[name] ? series.deployments[name][field] : [];
      let d = "", pen = "M", last = -1;
      points.forEach((value, i) => {
        if (value === null) { pen = "M"; return; }
        d += `${pen}${x(i).toFixed(1)},${y(value).toFixed(1)} `;
        pen = "L";
        last = i;
      });
      if (!d) continue;
      parts.push(svg("path", { class: "series", d: d.trim(), stroke: colors[name], "data-deployment": name }));
      parts.push(svg("circle", { cx: x(last).toFixed(1), cy: y(points[last]).toFixed(1), r: 2.5, fill: colors[name] }));
    }
    target.setAttribute("viewBox", `0 0 ${W} ${H}`);
    target.setAttribute("aria-label", `${field} per deployment over the last ${Math.round(span / 60)} minutes`);
    target.replaceChildren(...parts);
  }

  // --- tables -------------------------------------------------------------------------------------------
  function cell(text, field, className, title) {
    return el("td", { text, className, title, data: field ? { field } : {} });
  }

  function circuitBadge(deployment) {
    const circuit = deployment.circuit;
    let label = circuit.state.replace("_", "-");
    if (circuit.state === "open" && circuit.retry_in_seconds > 0) label += ` · ${Math.ceil(circuit.retry_in_seconds)} s`;
    const badges = [el("span", { className: `badge ${statusClass(circuit.state)}`, text: label })];
    if (deployment.misconfigured) badges.push(document.createTextNode(" "), el("span", { className: "badge bad", text: "misconfigured" }));
    return el("td", { data: { field: "circuit" } }, badges);
  }

  function renderDeployments(deployments, colors) {
    const rows = Object.entries(deployments).map(([name, d]) => {
      const swatch = el("span", { className: "swatch" });
      swatch.style.background = colors[name];
      const error = d.last_error ? d.last_error.message : "";
      const ago = d.last_error && d.last_error.seconds_ago !== null ? `${duration(d.last_error.seconds_ago)} ago: ` : "";
      return el("tr", { data: { deployment: name } }, [
        el("td", { data: { field: "name" } }, [swatch, document.createTextNode(name)]),
        cell(d.provider, "provider"),
        circuitBadge(d),
        cell(count(d.requests), "requests", "num"),
        cell(count(d.failures), "errors", "num"),
        cell(count(d.in_flight), "in-flight", "num"),
        cell(ms(d.latency.p50_ms), "p50", "num"),
        cell(ms(d.latency.p95_ms), "p95", "num"),
        cell(ms(d.ttft.p50_ms), "ttft", "num"),
        cell(`${tokens(d.tokens.input)} / ${tokens(d.tokens.output)}`, "tokens", "num"),
        cell(usd(d.cost_usd), "cost", "num"),
        cell(error ? ago + error : "", "last-error", "wrap", error),
      ]);
    });
    $("deployments").tBodies[0].replaceChildren(...rows);
  }

  function renderRoutes(routes, colors) {
    const rows = [];
    for (const route of routes) {
      route.deployments.forEach((d, i) => {
        const swatch = el("span", { className: "swatch" });
        swatch.style.background = colors[d.name] || "#999";
        const bar = el("span", { className: "share" });
        bar.style.width = `${Math.round(d.share * 120)}px`;
        rows.push(el("tr", { className: i === 0 ? "group-start" : "", data: { route: route.route, deployment: d.name } }, [
          cell(i === 0 ? route.route : "", "route"),
          el("td", {}, [swatch, document.createTextNode(d.name)]),
          cell(`${d.traffic}`, "traffic", "num", `configured weight ${d.weight}`),
          el("td", { data: { field: "share" } }, [el("span", { className: "share-track" }, [bar]), document.createTextNode(`${Math.round(d.share * 100)} %`)]),
        ]));
      });
    }
    $("routes").tBodies[0].replaceChildren(...rows);
  }

  function fact(term, value, status) {
    const dd = el("dd", { data: { field: term.toLowerCase() } });
    if (status) dd.append(el("span", { className: `badge ${statusClass(value)}`, text: value }));
    else dd.textContent = value;
    return [el("dt", { text: term }), dd];
  }

  function renderStores(memory, rag) {
    const facts = [...fact("Memory", memory.status, true)];
    if (memory.status !== "disabled") {
      facts.push(...fact("Memory store", [memory.store, memory.collection].filter(Boolean).join(" · ")));
      facts.push(...fact("Turns", `${count(memory.stored_turns)} stored · ${count(memory.queued)} queued · ${count(memory.cached_sessions)} sessions cached`));
    }
    facts.push(...fact("Knowledge bases", rag.status, true));
    if (rag.status !== "disabled") facts.push(...fact("RAG store", `${rag.store} · ${rag.embedder}`));
    $("stores").replaceChildren(...facts);
    const collections = rag.collections || [];
    const rows = collections.map((c) => el("tr", { data: { collection: c.name } }, [
      cell(c.name, "name"), cell(count(c.chunks), "chunks", "num"), cell(c.description, "description", "wrap"),
    ]));
    if (rag.status !== "disabled" && rag.collections === null) rows.push(el("tr", {}, [cell("The store does not answer.", "", "wrap")]));
    else if (rag.status !== "disabled" && !rows.length) rows.push(el("tr", {}, [cell("No collections yet.", "", "wrap")]));
    $("collections").hidden = rag.status === "disabled";
    $("collections").tBodies[0].replaceChildren(...rows);
  }

  // --- start --------------------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const token = $("token").value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      $("token").value = "";
      $("login-error").hidden = true;
      poll();
    });
    $("sign-out").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      clearTimeout(timer);
      showLogin("");
    });
    poll();
  });
})();
