/**
 * Usage view: executions per second and latency percentiles (this node's
 * Prometheus metrics), CPU-seconds by user and top users, and quotas (the
 * usage API; a server without it says so instead of failing).
 */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, failure, qs } from "./api.js";
import { BarChart, type Bar } from "./chart.js";
import { Table } from "./table.js";

interface UsageRow {
  userId?: string;
  executions: number;
  cpuSeconds: number;
  sessionSeconds: number;
  egressBytes: number;
}
interface Quota {
  id: string;
  subjectType: string;
  subjectId: string;
  metric: string;
  period: string;
  limit: number;
  used: number;
  resetsAt: string;
}

const METRICS_MS = 5000;

/** Sums of the samples of one metric (all label sets), by `le` for histogram buckets. */
export function parseMetrics(text: string) {
  let total = 0;
  const le = new Map<number, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("warden_executions_total")) total += Number(line.split(" ").pop());
    const m = /^warden_execution_duration_seconds_bucket\{.*le="([^"]+)".*\} (\S+)/.exec(line);
    if (m) {
      const bound = m[1] === "+Inf" ? Infinity : Number(m[1]);
      le.set(bound, (le.get(bound) ?? 0) + Number(m[2]));
    }
  }
  return { total, buckets: [...le].sort((a, b) => a[0] - b[0]) };
}

/** The bucket bound under which a share `q` of observations fall (Prometheus-style, upper bound). */
function quantile(buckets: [number, number][], q: number): string {
  const count = buckets[buckets.length - 1]?.[1] ?? 0;
  if (count === 0) return "—";
  const hit = buckets.find(([, n]) => n >= q * count);
  return !hit || hit[0] === Infinity ? "> max bucket" : `≤ ${hit[0]} s`;
}

function Unavailable(props: { what: string }) {
  return html`<p class="notice">
    ${props.what}: not available on this server (its API answered 404).
  </p>`;
}

export function Usage(props: { onUnauthorized: () => void }) {
  const [rates, setRates] = useState<Bar[]>([]);
  const [latency, setLatency] = useState<[number, number][]>([]);
  const [users, setUsers] = useState<UsageRow[] | "missing" | null>(null);
  const [quotas, setQuotas] = useState<Quota[] | "missing" | null>(null);
  const [error, setError] = useState("");
  const [form, setForm] = useState({
    subjectType: "user",
    subjectId: "",
    metric: "cpuSeconds",
    period: "day",
    limit: "",
  });

  useEffect(() => {
    let last: { at: number; total: number } | null = null;
    const sample = async () => {
      const res = await fetch("/metrics");
      const m = parseMetrics(await res.text());
      const at = Date.now();
      if (last)
        setRates((r) => [
          ...r.slice(-59),
          {
            label: new Date(at).toLocaleTimeString(),
            value: Math.round(((m.total - last!.total) / ((at - last!.at) / 1000)) * 100) / 100,
          },
        ]);
      last = { at, total: m.total };
      setLatency(m.buckets);
    };
    void sample().catch(() => undefined);
    const timer = setInterval(() => void sample().catch(() => undefined), METRICS_MS);
    return () => clearInterval(timer);
  }, []);

  const loadQuotas = () =>
    api<{ quotas: Quota[] }>("GET", "/api/sandbox/quotas")
      .then((q) => setQuotas(q.quotas))
      .catch((e) =>
        e instanceof ApiError && e.missing
          ? setQuotas("missing")
          : setError(failure(e, props.onUnauthorized)),
      );
  useEffect(() => {
    const from = new Date(Date.now() - 30 * 86_400_000).toISOString();
    api<{ rows: UsageRow[] }>(
      "GET",
      `/api/sandbox/usage${qs({ from, granularity: "month", groupBy: "user" })}`,
    )
      .then((u) => {
        const byUser = new Map<string, UsageRow>();
        for (const r of u.rows) {
          const id = r.userId ?? "?";
          const sum = byUser.get(id) ?? {
            userId: id,
            executions: 0,
            cpuSeconds: 0,
            sessionSeconds: 0,
            egressBytes: 0,
          };
          sum.executions += r.executions;
          sum.cpuSeconds += r.cpuSeconds;
          sum.sessionSeconds += r.sessionSeconds;
          sum.egressBytes += r.egressBytes;
          byUser.set(id, sum);
        }
        setUsers([...byUser.values()].sort((a, b) => b.cpuSeconds - a.cpuSeconds));
      })
      .catch((e) =>
        e instanceof ApiError && e.missing
          ? setUsers("missing")
          : setError(failure(e, props.onUnauthorized)),
      );
    void loadQuotas();
  }, []);

  const saveQuota = async (e: Event) => {
    e.preventDefault();
    try {
      await api("PUT", "/api/sandbox/quotas", { ...form, limit: Number(form.limit) });
      await loadQuotas();
    } catch (err) {
      setError(failure(err, props.onUnauthorized));
    }
  };
  const field = (name: keyof typeof form) => (e: Event) =>
    setForm({ ...form, [name]: (e.target as HTMLInputElement).value });

  return html`<section aria-labelledby="usage-h">
    <h2 id="usage-h">Usage</h2>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    <${BarChart} title="Executions per second (this node, sampled every 5 s)" bars=${rates} />
    <dl class="cards">
      <div>
        <dt>Latency p50</dt>
        <dd>${quantile(latency, 0.5)}</dd>
      </div>
      <div>
        <dt>Latency p95</dt>
        <dd>${quantile(latency, 0.95)}</dd>
      </div>
      <div>
        <dt>Latency p99</dt>
        <dd>${quantile(latency, 0.99)}</dd>
      </div>
    </dl>
    <h3>CPU-seconds by user (last 30 days)</h3>
    ${
      users === "missing"
        ? html`<${Unavailable} what="Usage accounting" />`
        : users === null
          ? html`<p>Loading…</p>`
          : html`<${BarChart}
                title="CPU-seconds, top users"
                unit=" s"
                bars=${users.slice(0, 20).map((u) => ({ label: u.userId ?? "?", value: Math.round(u.cpuSeconds * 100) / 100 }))}
              />
              <${Table}
                columns=${["User", "Executions", "CPU s", "Session s", "Egress bytes"]}
                rows=${users.slice(0, 20)}
                row=${(u: UsageRow) =>
                  html`<tr>
                    <td>${u.userId}</td>
                    <td>${u.executions}</td>
                    <td>${u.cpuSeconds.toFixed(2)}</td>
                    <td>${u.sessionSeconds.toFixed(0)}</td>
                    <td>${u.egressBytes}</td>
                  </tr>`}
              />`
    }
    <h3>Quotas</h3>
    ${
      quotas === "missing"
        ? html`<${Unavailable} what="Quotas" />`
        : html`<${Table}
              columns=${["Subject", "Metric", "Period", "Used / limit", "Resets"]}
              actions=${true}
              rows=${quotas ?? []}
              row=${(q: Quota) =>
                html`<tr>
                  <td>${q.subjectType} ${q.subjectId}</td>
                  <td>${q.metric}</td>
                  <td>${q.period}</td>
                  <td>${q.used} / ${q.limit}</td>
                  <td>${new Date(q.resetsAt).toLocaleString()}</td>
                  <td>
                    <button
                      type="button"
                      class="danger"
                      aria-label=${`Delete quota ${q.id}`}
                      onClick=${() => api("DELETE", `/api/sandbox/quotas/${q.id}`).then(loadQuotas, (e) => setError(failure(e, props.onUnauthorized)))}
                    >
                      Delete
                    </button>
                  </td>
                </tr>`}
            />
            <form class="filters" onSubmit=${saveQuota} aria-label="Set a quota">
              <label
                >Subject
                <select value=${form.subjectType} onChange=${field("subjectType")}>
                  <option value="user">user</option>
                  <option value="key">key</option>
                </select></label
              >
              <label
                >ID <input required value=${form.subjectId} onInput=${field("subjectId")}
              /></label>
              <label
                >Metric
                <select value=${form.metric} onChange=${field("metric")}>
                  ${["cpuSeconds", "executions", "sessionHours", "egressBytes"].map((m) => html`<option value=${m}>${m}</option>`)}
                </select></label
              >
              <label
                >Period
                <select value=${form.period} onChange=${field("period")}>
                  <option value="day">day</option>
                  <option value="month">month</option>
                </select></label
              >
              <label
                >Limit
                <input required type="number" min="0" value=${form.limit} onInput=${field("limit")}
              /></label>
              <button type="submit">Set quota</button>
            </form>`
    }
  </section>`;
}
