/** Security view: the audit trail's refusals and limit hits as a filterable feed, with counts over time. */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, failure, qs } from "./api.js";
import { BarChart } from "./chart.js";
import { Table } from "./table.js";

/** What the feed shows unless one event is picked. */
export const SECURITY_EVENTS = [
  "network_denied",
  "rejected",
  "policy_findings",
  "timeout",
  "memory_limit",
  "output_limit",
  "disk_limit",
  "auth_failure",
  "forbidden",
  "rate_limited",
  "quota_exceeded",
  "validation_failed",
  "artifact_rejected",
  "killed",
];

interface AuditEvent {
  id: number;
  timestamp: string;
  executionId: string | null;
  userId: string | null;
  level: string;
  event: string;
  message: string;
}

interface Filters {
  event: string;
  userId: string;
  level: string;
  executionId: string;
  bucket: string;
}

const EMPTY: Filters = { event: "", userId: "", level: "", executionId: "", bucket: "hour" };

export function Security(props: { onUnauthorized: () => void }) {
  const [form, setForm] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [buckets, setBuckets] = useState<{ start: string; counts: Record<string, number> }[]>([]);
  const [error, setError] = useState("");
  const query = (f: Filters) => ({
    event: f.event || SECURITY_EVENTS.join(","),
    userId: f.userId,
    level: f.level,
    executionId: f.executionId,
  });
  const load = async (f: Filters, after?: string) => {
    try {
      const page = await api<{ events: AuditEvent[]; nextCursor: string | null }>(
        "GET",
        `/api/sandbox/audit${qs({ ...query(f), limit: 50, cursor: after })}`,
      );
      setEvents((old) => (after ? [...old, ...page.events] : page.events));
      setCursor(page.nextCursor);
      if (!after) {
        const counts = await api<{ buckets: typeof buckets }>(
          "GET",
          `/api/sandbox/audit/counts${qs({ bucket: f.bucket, event: query(f).event })}`,
        );
        setBuckets(counts.buckets);
      }
      setError("");
    } catch (e) {
      setError(failure(e, props.onUnauthorized));
    }
  };
  useEffect(() => void load(filters), [filters]);
  const field = (name: keyof Filters) => (e: Event) =>
    setForm({ ...form, [name]: (e.target as HTMLInputElement).value });
  const totals: Record<string, number> = {};
  for (const b of buckets)
    for (const [k, n] of Object.entries(b.counts)) totals[k] = (totals[k] ?? 0) + n;
  const tick = (iso: string) =>
    filters.bucket === "day"
      ? iso.slice(5, 10)
      : new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const exportQs = (format: string) => `/api/sandbox/audit${qs({ ...query(filters), format })}`;
  return html`<section aria-labelledby="sec-h">
    <h2 id="sec-h">Security</h2>
    <form class="filters" onSubmit=${(e: Event) => (e.preventDefault(), setFilters(form))}>
      <label
        >Event
        <select value=${form.event} onChange=${field("event")}>
          <option value="">All security events</option>
          ${SECURITY_EVENTS.map((n) => html`<option value=${n}>${n}</option>`)}
        </select>
      </label>
      <label>User <input value=${form.userId} onInput=${field("userId")} /></label>
      <label
        >Level
        <select value=${form.level} onChange=${field("level")}>
          <option value="">Any</option>
          ${["info", "warn", "error"].map((n) => html`<option value=${n}>${n}</option>`)}
        </select>
      </label>
      <label
        >Execution
        <input value=${form.executionId} onInput=${field("executionId")} placeholder="exec_…"
      /></label>
      <label
        >Per
        <select value=${form.bucket} onChange=${field("bucket")}>
          <option value="minute">minute (last hour)</option>
          <option value="hour">hour (last day)</option>
          <option value="day">day (last 30 days)</option>
        </select>
      </label>
      <button type="submit">Apply</button>
      <a href=${exportQs("csv")} download>Export CSV</a>
      <a href=${exportQs("ndjson")} download>Export NDJSON</a>
    </form>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    <${BarChart}
      title="Security events over time"
      bars=${buckets.map((b) => ({
        label: tick(b.start),
        value: Object.values(b.counts).reduce((n, c) => n + c, 0),
        detail: Object.entries(b.counts)
          .map(([k, n]) => `${k} ${n}`)
          .join(", "),
      }))}
    />
    <ul class="totals" aria-label="Totals in the chart's range">
      ${Object.entries(totals).map(([k, n]) => html`<li><span class="tag">${k}</span> ${n}</li>`)}
    </ul>
    <${Table}
      class="feed"
      columns=${["Time", "Level", "Event", "User", "Execution", "Message"]}
      empty="No matching events."
      rows=${events}
      row=${(e: AuditEvent) =>
        html`<tr class=${`level-${e.level}`}>
          <td>${new Date(e.timestamp).toLocaleString()}</td>
          <td>${e.level}</td>
          <td><span class="tag">${e.event}</span></td>
          <td>${e.userId ?? "—"}</td>
          <td>${e.executionId ? html`<code>${e.executionId}</code>` : "—"}</td>
          <td>${e.message}</td>
        </tr>`}
    />
    ${cursor && html`<button type="button" onClick=${() => load(filters, cursor)}>Load more</button>`}
  </section>`;
}
