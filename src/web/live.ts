/** Live view: what runs now, refreshed every 2 s; kill an execution, end a session. */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, failure, formatBytes, formatTime } from "./api.js";
import { Table } from "./table.js";

interface LiveState {
  executions: {
    id: string;
    userId: string;
    language: string;
    status: string;
    createdAt: string;
    startedAt: string | null;
    memoryBytes: number | null;
    cpuSeconds: number | null;
  }[];
  sessions: {
    id: string;
    userId: string;
    language: string | null;
    createdAt: string;
    memoryBytes: number | null;
    cpuSeconds: number | null;
    state: string;
  }[];
  queueDepth: number;
  utilizationPercent: number;
  perUser: { userId: string; running: number; queued: number; sessions: number }[];
}

const POLL_MS = 2000;
const cpu = (s: number | null) => (s === null ? "—" : s.toFixed(2));

export function Live(props: { onUnauthorized: () => void }) {
  const [live, setLive] = useState<LiveState | null>(null);
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const [updated, setUpdated] = useState("");
  const load = () =>
    api<LiveState>("GET", "/api/sandbox/live")
      .then((l) => {
        setLive(l);
        setError("");
        setUpdated(new Date().toLocaleTimeString());
      })
      .catch((e) => setError(failure(e, props.onUnauthorized)));
  useEffect(() => {
    void load();
    const timer = setInterval(() => void load(), POLL_MS);
    return () => clearInterval(timer);
  }, []);
  const act = async (what: string, method: string, path: string) => {
    try {
      await api(method, path);
      setNotice(what);
      await load();
    } catch (e) {
      setError(failure(e, props.onUnauthorized));
    }
  };
  if (!live) return html`<p>${error || "Loading…"}</p>`;
  const running = live.executions.filter((e) => e.status === "running").length;
  return html`<section aria-labelledby="live-h">
    <h2 id="live-h">Live</h2>
    <p class="muted" aria-live="polite">Updated ${updated}. ${notice}</p>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    <dl class="cards">
      <div>
        <dt>Running</dt>
        <dd>${running}</dd>
      </div>
      <div>
        <dt>Queue depth</dt>
        <dd>${live.queueDepth}</dd>
      </div>
      <div>
        <dt>Utilisation</dt>
        <dd>${live.utilizationPercent}%</dd>
      </div>
      <div>
        <dt>Sessions</dt>
        <dd>${live.sessions.length}</dd>
      </div>
    </dl>
    <h3>Executions</h3>
    <${SandboxTable}
      rows=${live.executions.map((e) => ({
        id: e.id,
        userId: e.userId,
        language: e.language,
        state: e.status,
        since: e.startedAt,
        memoryBytes: e.memoryBytes,
        cpuSeconds: e.cpuSeconds,
      }))}
      columns=${["Status", "Started"]}
      empty="Nothing running or queued."
      action=${{
        label: "Kill",
        name: (id: string) => `Kill execution ${id}`,
        run: (id: string) => act(`Killed ${id}.`, "POST", `/api/sandbox/kill/${id}`),
      }}
    />
    <h3>Sessions</h3>
    <${SandboxTable}
      rows=${live.sessions.map((x) => ({
        id: x.id,
        userId: x.userId,
        language: x.language ?? "—",
        state: x.state,
        since: x.createdAt,
        memoryBytes: x.memoryBytes,
        cpuSeconds: x.cpuSeconds,
      }))}
      columns=${["State", "Created"]}
      empty="No live sessions."
      action=${{
        label: "End",
        name: (id: string) => `End session ${id}`,
        run: (id: string) => act(`Ended ${id}.`, "DELETE", `/api/sandbox/sessions/${id}`),
      }}
    />
    <h3>Per user</h3>
    <${Table}
      columns=${["User", "Running", "Queued", "Sessions"]}
      rows=${live.perUser}
      row=${(u: LiveState["perUser"][number]) =>
        html`<tr>
          <td>${u.userId}</td>
          <td>${u.running}</td>
          <td>${u.queued}</td>
          <td>${u.sessions}</td>
        </tr>`}
    />
  </section>`;
}

interface SandboxRow {
  id: string;
  userId: string;
  language: string;
  state: string;
  since: string | null;
  memoryBytes: number | null;
  cpuSeconds: number | null;
}

/** Executions and sessions share one table: what runs, whose, and what it holds now. */
function SandboxTable(props: {
  rows: SandboxRow[];
  /** The headers of the state and time columns. */
  columns: [string, string];
  empty: string;
  action: { label: string; name: (id: string) => string; run: (id: string) => void };
}) {
  const { rows, columns, empty, action } = props;
  return html`<${Table}
    columns=${["ID", "User", "Language", ...columns, "Memory", "CPU s"]}
    actions=${true}
    empty=${empty}
    rows=${rows}
    row=${(r: SandboxRow) =>
      html`<tr data-id=${r.id}>
        <td><code>${r.id}</code></td>
        <td>${r.userId}</td>
        <td>${r.language}</td>
        <td>${r.state}</td>
        <td>${formatTime(r.since)}</td>
        <td>${formatBytes(r.memoryBytes)}</td>
        <td>${cpu(r.cpuSeconds)}</td>
        <td>
          <button
            type="button"
            class="danger"
            aria-label=${action.name(r.id)}
            onClick=${() => action.run(r.id)}
          >
            ${action.label}
          </button>
        </td>
      </tr>`}
  />`;
}
