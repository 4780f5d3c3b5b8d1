// Pure transforms of the gateway's JSON (usage report rows + totals, budgets) into chart series and
// table rows. Money stays integer micro-USD until it is printed, as in the gateway.

const HOUR = 3_600_000;
const DAY = 86_400_000;
export const OTHER = "(other)";
const UNSAFE = /[^A-Za-z0-9._:@\/-]/g; // gateway.admission.safe(): budget scopes name teams and keys so

/** The `since` and `bucket` of a range name, in UTC; the report's `until` is the gateway's now. */
export function rangeQuery(range, now = new Date()) {
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const ranges = {
    today: [midnight, "hour"],
    "7d": [midnight - 6 * DAY, "day"],
    month: [Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1), "day"],
    "30d": [midnight - 29 * DAY, "day"],
  };
  const [since, bucket] = ranges[range] ?? ranges.month;
  return { since: isoSeconds(since), bucket, sinceMs: since, untilMs: now.getTime() };
}

export function isoSeconds(ms) {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Every bucket start in [since, until), plus any the rows hold (the gateway's clock may be ahead). */
export function periods(sinceMs, untilMs, bucket, rows = []) {
  const step = bucket === "hour" ? HOUR : DAY;
  const found = new Set(rows.map((row) => row.period_start).filter(Boolean));
  for (let t = sinceMs; t < untilMs; t += step) found.add(isoSeconds(t));
  return [...found].sort();
}

export function periodLabel(iso, bucket) {
  return bucket === "hour" ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(0, 10);
}

export function usd(micro) {
  const sign = micro < 0 ? "-" : "";
  const abs = Math.abs(Math.round(micro));
  return `${sign}${Math.floor(abs / 1e6)}.${String(abs % 1e6).padStart(6, "0")}`;
}

export function count(n) {
  return n.toLocaleString("en-US");
}

export function groupName(value) {
  return value === null || value === undefined || value === "" ? "(none)" : String(value);
}

/** Rows summed by `keyOf(row)`, highest cost first. */
export function sumBy(rows, keyOf) {
  const groups = new Map();
  for (const row of rows) {
    const key = keyOf(row);
    const group = groups.get(key) ?? { key, requests: 0, errors: 0, tokens: 0, cost: 0 };
    group.requests += row.requests;
    group.errors += row.errors;
    group.tokens += row.prompt_tokens + row.completion_tokens;
    group.cost += row.cost_micro_usd;
    groups.set(key, group);
  }
  return [...groups.values()].sort(
    (a, b) => b.cost - a.cost || b.requests - a.requests || String(a.key).localeCompare(String(b.key)),
  );
}

/** Cost per period for the `limit` costliest values of `dimension`, the rest summed as OTHER. */
export function spendSeries(rows, dimension, labels, limit = 8) {
  const ranked = sumBy(rows, (row) => groupName(row[dimension]));
  const shown = new Set(ranked.slice(0, limit).map((group) => group.key));
  const names = [...shown, ...(ranked.length > limit ? [OTHER] : [])];
  const series = new Map(names.map((name) => [name, labels.map(() => 0)]));
  const index = new Map(labels.map((period, i) => [period, i]));
  for (const row of rows) {
    const i = index.get(row.period_start);
    if (i === undefined) continue;
    const name = groupName(row[dimension]);
    series.get(shown.has(name) ? name : OTHER)[i] += row.cost_micro_usd;
  }
  return { ranked, series: [...series].map(([key, values]) => ({ key, values })) };
}

export function budgetId(budget) {
  return `${budget.tenant}|${budget.scope}|${budget.period}`;
}

export function budgetStatus(budget) {
  if (budget.spend_usd >= budget.limit_usd) return ["exhausted", "over"];
  if (budget.projected_spend_usd !== null && budget.projected_spend_usd > budget.limit_usd) {
    return ["projected over", "warn"];
  }
  return ["on track", "ok"];
}

/** Whether a report row (grouped by tenant, team, key) counts against the budget's scope. */
export function inScope(budget, row) {
  if (row.tenant !== budget.tenant) return false;
  if (budget.scope === "tenant") return true;
  const colon = budget.scope.indexOf(":");
  const kind = budget.scope.slice(0, colon);
  const name = budget.scope.slice(colon + 1);
  const value = kind === "team" ? row.team : kind === "key" ? row.key : null;
  return value !== null && value !== undefined && String(value).replace(UNSAFE, "_") === name;
}

/** Remaining budget (USD) per bucket of the budget's period: `actual` up to now, from the rows of
 * the period; `projected` from now to the period's end at the pace so far (the gateway's projection). */
export function burndown(budget, rows, now = new Date()) {
  const bucket = budget.period === "day" ? "hour" : "day";
  const labels = periods(budget.period_start * 1000, budget.period_end * 1000, bucket);
  const limit = Math.round(budget.limit_usd * 1e6);
  const spent = new Map();
  for (const row of rows) {
    if (inScope(budget, row)) spent.set(row.period_start, (spent.get(row.period_start) ?? 0) + row.cost_micro_usd);
  }
  const nowMs = now.getTime();
  let current = 0;
  let cumulative = 0;
  const actual = labels.map((period, i) => {
    if (Date.parse(period) > nowMs) return null;
    current = i;
    cumulative += spent.get(period) ?? 0;
    return (limit - cumulative) / 1e6;
  });
  // The budget's own counter is what admission enforces: the line ends on it.
  const remainingNow = budget.limit_usd - budget.spend_usd;
  actual[current] = remainingNow;
  const last = labels.length - 1;
  const remainingEnd = budget.limit_usd - (budget.projected_spend_usd ?? budget.spend_usd);
  const projected = labels.map((_, i) => {
    if (i < current) return null;
    if (last === current) return remainingEnd;
    return remainingNow + ((remainingEnd - remainingNow) * (i - current)) / (last - current);
  });
  return { bucket, labels, actual, projected };
}
