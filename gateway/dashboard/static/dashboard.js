// The dashboard page: sign-in, then the usage report, budgets and (admin key) deployments, drawn
// with Chart.js (the UMD build loaded before this module sets `window.Chart`).
import { ApiError, download, getJSON, session, whoami } from "./api.js";
import {
  budgetId,
  budgetStatus,
  burndown,
  count,
  groupName,
  isoSeconds,
  OTHER,
  periodLabel,
  periods,
  rangeQuery,
  spendSeries,
  sumBy,
  usd,
} from "./report.js";

const { Chart } = window;
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily;

const COLORS = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777", "#4b5563"];
const REPORT_GROUPS = "tenant,team,model,key,deployment";
const HEALTH_EVERY_MS = 5_000;
const REPORT_EVERY_MS = 60_000;

const $ = (id) => document.getElementById(id);
const charts = new Map();
const state = { role: null, deployments: [], report: null, query: null, budgets: [], timers: [], busy: false };

const reportPath = () => (state.role === "admin" ? "/admin/v1/costs" : "/v1/usage");
const budgetPath = () => (state.role === "admin" ? "/admin/v1/budgets" : "/v1/budgets");
const OTHER_COLOR = "#9ca3af";
const color = (i, name) => (name === OTHER ? OTHER_COLOR : COLORS[i % COLORS.length]);

function setState(value) {
  document.body.dataset.state = value;
}

function draw(id, config) {
  const chart = charts.get(id);
  if (chart) {
    chart.data = config.data;
    chart.options = config.options ?? {};
    chart.update("none");
  } else {
    charts.set(id, new Chart($(id), config));
  }
}

function moneyAxis(extra = {}) {
  return { ticks: { callback: (value) => `$${Number(Number(value).toPrecision(3))}` }, ...extra };
}

/** columns: [label, (row) => text, {num, cls, swatch}] */
function fillTable(id, columns, rows) {
  const head = document.createElement("thead");
  const headRow = head.insertRow();
  for (const [label, , options = {}] of columns) {
    const th = document.createElement("th");
    th.textContent = label;
    if (options.num) th.className = "num";
    headRow.append(th);
  }
  const body = document.createElement("tbody");
  for (const row of rows) {
    const tr = body.insertRow();
    for (const [, value, options = {}] of columns) {
      const td = tr.insertCell();
      if (options.swatch) {
        const swatch = document.createElement("span");
        swatch.className = "swatch";
        swatch.style.background = options.swatch(row);
        td.append(swatch);
      }
      td.append(document.createTextNode(value(row)));
      td.className = [options.num ? "num" : "", options.cls ? options.cls(row) : ""].join(" ").trim();
    }
  }
  $(id).replaceChildren(head, body);
}

function renderTotals(totals) {
  $("total-cost").textContent = `$${totals.cost_usd}`;
  $("total-requests").textContent = count(totals.requests);
  $("total-tokens").textContent = count(totals.prompt_tokens + totals.completion_tokens);
  $("total-errors").textContent = count(totals.errors);
}

function renderSpend() {
  const { report, query } = state;
  const dimension = $("split").value;
  const labels = periods(query.sinceMs, query.untilMs, query.bucket, report.rows);
  const { ranked, series } = spendSeries(report.rows, dimension, labels);
  draw("chart-spend", {
    type: "bar",
    data: {
      labels: labels.map((period) => periodLabel(period, query.bucket)),
      datasets: series.map((s, i) => ({
        label: s.key,
        data: s.values.map((micro) => micro / 1e6),
        backgroundColor: color(i, s.key),
      })),
    },
    options: { scales: { x: { stacked: true }, y: moneyAxis({ stacked: true }) } },
  });
  const share = (group) => (report.totals.cost_micro_usd ? (100 * group.cost) / report.totals.cost_micro_usd : 0);
  fillTable(
    "table-groups",
    [
      [dimension, (g) => g.key, { swatch: (g) => (ranked.indexOf(g) < 8 ? color(ranked.indexOf(g), g.key) : OTHER_COLOR) }],
      ["requests", (g) => count(g.requests), { num: true }],
      ["tokens", (g) => count(g.tokens), { num: true }],
      ["cost USD", (g) => usd(g.cost), { num: true }],
      ["share", (g) => `${share(g).toFixed(1)}%`, { num: true }],
    ],
    ranked,
  );
}

function renderTop(chartId, tableId, groups, label, columns) {
  const top = groups.slice(0, 10);
  draw(chartId, {
    type: "bar",
    data: {
      labels: top.map(label),
      datasets: [{ label: "cost USD", data: top.map((g) => g.cost / 1e6), backgroundColor: COLORS[0] }],
    },
    options: { indexAxis: "y", plugins: { legend: { display: false } }, scales: { x: moneyAxis() } },
  });
  fillTable(tableId, columns, top);
}

function renderTops() {
  const rows = state.report.rows;
  const numbers = [
    ["requests", (g) => count(g.requests), { num: true }],
    ["tokens", (g) => count(g.tokens), { num: true }],
    ["cost USD", (g) => usd(g.cost), { num: true }],
  ];
  renderTop("chart-models", "table-models", sumBy(rows, (row) => groupName(row.model)), (g) => g.key, [
    ["model", (g) => g.key],
    ...numbers,
  ]);
  const keys = sumBy(rows, (row) => JSON.stringify([groupName(row.tenant), groupName(row.key)])).map((g) => {
    const [tenant, key] = JSON.parse(g.key);
    return { ...g, tenant, name: key };
  });
  renderTop("chart-keys", "table-keys", keys, (g) => `${g.tenant} / ${g.name}`, [
    ["tenant", (g) => g.tenant],
    ["key", (g) => g.name],
    ...numbers,
  ]);
}

function renderBudgets() {
  const select = $("budget");
  const previous = select.value;
  select.replaceChildren(
    ...state.budgets.map((b) => new Option(`${b.tenant} · ${b.scope} · ${b.period}`, budgetId(b))),
  );
  if (state.budgets.some((b) => budgetId(b) === previous)) select.value = previous;
  const pct = (b) => `${(100 * b.utilization).toFixed(1)}%`;
  fillTable(
    "table-budgets",
    [
      ["tenant", (b) => b.tenant],
      ["scope", (b) => b.scope],
      ["period", (b) => b.period],
      ["limit USD", (b) => usd(b.limit_usd * 1e6), { num: true }],
      ["spent USD", (b) => usd(b.spend_usd * 1e6), { num: true }],
      ["in flight USD", (b) => usd(b.reserved_usd * 1e6), { num: true }],
      ["used", pct, { num: true }],
      ["projected USD", (b) => (b.projected_spend_usd === null ? "–" : usd(b.projected_spend_usd * 1e6)), { num: true }],
      ["status", (b) => budgetStatus(b)[0], { cls: (b) => `state-${budgetStatus(b)[1]}` }],
    ],
    state.budgets,
  );
}

async function renderBurndown() {
  const budget = state.budgets.find((b) => budgetId(b) === $("budget").value);
  if (!budget || budget.period_start === null) {
    draw("chart-budget", { type: "line", data: { labels: [], datasets: [] } });
    return;
  }
  const bucket = budget.period === "day" ? "hour" : "day";
  const report = await getJSON(reportPath(), {
    since: isoSeconds(budget.period_start * 1000),
    bucket,
    group_by: "tenant,team,key",
    tenant: state.role === "admin" ? budget.tenant : undefined,
  });
  const line = burndown(budget, report.rows);
  draw("chart-budget", {
    type: "line",
    data: {
      labels: line.labels.map((period) => periodLabel(period, line.bucket)),
      datasets: [
        { label: "remaining", data: line.actual, borderColor: COLORS[0], backgroundColor: COLORS[0], pointRadius: 2 },
        {
          label: "projected",
          data: line.projected,
          borderColor: COLORS[1],
          backgroundColor: COLORS[1],
          borderDash: [6, 4],
          pointRadius: 0,
        },
        { label: "exhausted", data: line.labels.map(() => 0), borderColor: "#9ca3af", borderWidth: 1, pointRadius: 0 },
      ],
    },
    options: { spanGaps: false, scales: { y: moneyAxis() } },
  });
}

function renderHealth() {
  const traffic = new Map(sumBy(state.report?.rows ?? [], (row) => groupName(row.deployment)).map((g) => [g.key, g]));
  const none = { requests: 0, errors: 0, cost: 0 };
  const ms = (seconds) => (seconds === null || seconds === undefined ? "–" : (seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0));
  const rows = state.deployments.map((d) => ({ ...d, traffic: traffic.get(d.deployment) ?? none }));
  fillTable(
    "table-deployments",
    [
      ["model", (d) => d.model],
      ["deployment", (d) => d.deployment],
      ["provider", (d) => `${d.provider} (${d.kind})`],
      ["circuit", (d) => d.circuit, { cls: (d) => `state-${d.circuit}` }],
      ["in flight", (d) => count(d.in_flight), { num: true }],
      ["queue", (d) => (d.server?.waiting ?? null) === null ? "–" : count(d.server.waiting), { num: true }],
      ["server", (d) => (d.server ? (d.server.healthy ? "up" : "down") : "–")],
      ["EWMA ms", (d) => ms(d.latency.ewma_latency_s), { num: true }],
      ["p95 ms", (d) => ms(d.latency.p95_latency_s), { num: true }],
      ["errors", (d) => (d.latency.error_rate === null ? "–" : `${(100 * d.latency.error_rate).toFixed(1)}%`), { num: true }],
      ["requests", (d) => count(d.traffic.requests), { num: true }],
      ["cost USD", (d) => usd(d.traffic.cost), { num: true }],
    ],
    rows,
  );
  const labels = rows.map((d) => d.deployment);
  draw("chart-traffic", {
    type: "bar",
    data: {
      labels,
      datasets: [
        { label: "requests", data: rows.map((d) => d.traffic.requests), backgroundColor: COLORS[0] },
        { label: "errors", data: rows.map((d) => d.traffic.errors), backgroundColor: COLORS[4] },
      ],
    },
  });
  const latency = (field) => rows.map((d) => (d.latency[field] === null ? null : d.latency[field] * 1000));
  draw("chart-latency", {
    type: "bar",
    data: {
      labels,
      datasets: [
        { label: "EWMA ms", data: latency("ewma_latency_s"), backgroundColor: COLORS[2] },
        { label: "p95 ms", data: latency("p95_latency_s"), backgroundColor: COLORS[3] },
        { label: "EWMA first token ms", data: latency("ewma_ttft_s"), backgroundColor: COLORS[5] },
      ],
    },
  });
}

function fail(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut(`The key was rejected: ${error.message}`);
    return;
  }
  $("error").textContent = error.message;
  setState("error");
}

async function refreshAll() {
  if (state.busy) return;
  state.busy = true;
  $("refresh").disabled = true;
  try {
    const query = rangeQuery($("range").value);
    const [report, budgets, deployments] = await Promise.all([
      getJSON(reportPath(), { since: query.since, bucket: query.bucket, group_by: REPORT_GROUPS }),
      getJSON(budgetPath()),
      state.role === "admin" ? getJSON("/admin/v1/deployments") : null,
    ]);
    Object.assign(state, { report, query, budgets: budgets.data });
    if (deployments) state.deployments = deployments.data;
    const tenant = state.budgets[0]?.tenant ?? report.rows[0]?.tenant;
    $("whoami").textContent = state.role === "admin" ? "admin key" : `tenant ${tenant ?? ""}`.trim();
    renderTotals(report.totals);
    renderSpend();
    renderTops();
    renderBudgets();
    if (state.role === "admin") renderHealth();
    await renderBurndown();
    $("error").textContent = "";
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    setState("ready");
  } catch (error) {
    fail(error);
  } finally {
    state.busy = false;
    $("refresh").disabled = false;
  }
}

async function refreshHealth() {
  try {
    state.deployments = (await getJSON("/admin/v1/deployments")).data;
    renderHealth();
  } catch (error) {
    fail(error);
  }
}

async function signIn() {
  setState("loading");
  try {
    const who = await whoami();
    state.role = who.role;
    state.deployments = who.deployments?.data ?? [];
  } catch (error) {
    fail(error);
    return;
  }
  document.body.dataset.role = state.role;
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("admin").hidden = state.role !== "admin";
  $("split").value = state.role === "admin" ? "tenant" : "model";
  await refreshAll();
  state.timers.push(setInterval(refreshAll, REPORT_EVERY_MS));
  if (state.role === "admin") state.timers.push(setInterval(refreshHealth, HEALTH_EVERY_MS));
}

function signOut(message = "") {
  state.timers.forEach(clearInterval);
  Object.assign(state, { role: null, deployments: [], report: null, budgets: [], timers: [] });
  session.clear();
  for (const chart of charts.values()) chart.destroy();
  charts.clear();
  // Nothing of the last key's data stays in the page, hidden or not.
  for (const table of document.querySelectorAll("table")) table.replaceChildren();
  for (const tile of document.querySelectorAll(".tile strong")) tile.textContent = "–";
  $("budget").replaceChildren();
  $("error").textContent = "";
  $("whoami").textContent = "";
  delete document.body.dataset.role;
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("key").focus();
  setState("login");
}

async function exportReport(button, params, fallbackName) {
  button.disabled = true;
  try {
    const query = rangeQuery($("range").value);
    const name = await download(reportPath(), { since: query.since, bucket: query.bucket, ...params }, fallbackName);
    $("updated").textContent = `downloaded ${name}`;
    document.body.dataset.download = name;
  } catch (error) {
    fail(error);
  } finally {
    button.disabled = false;
  }
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  $("key").value = "";
  $("login-error").textContent = "";
  session.save(key);
  signIn();
});
$("logout").addEventListener("click", () => signOut());
$("refresh").addEventListener("click", refreshAll);
$("range").addEventListener("change", refreshAll);
$("split").addEventListener("change", () => state.report && renderSpend());
$("budget").addEventListener("change", () => renderBurndown().catch(fail));
$("export-csv").addEventListener("click", (event) =>
  exportReport(event.currentTarget, { format: "csv", group_by: "tenant,team,model" }, "switchyard-costs.csv"),
);
$("export-focus").addEventListener("click", (event) =>
  exportReport(event.currentTarget, { format: "focus" }, "switchyard-focus.csv"),
);

if (session.key) signIn();
else signOut();
