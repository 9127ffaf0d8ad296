/** Live view: what runs now, refreshed every 2 s; kill an execution, end a session. */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, failure, formatBytes, formatTime } from "./api.js";

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
    <table>
      <thead>
        <tr>
          <th>ID</th>
          <th>User</th>
          <th>Language</th>
          <th>Status</th>
          <th>Started</th>
          <th>Memory</th>
          <th>CPU s</th>
          <th><span class="sr">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        ${
          live.executions.length === 0 &&
          html`<tr>
            <td colspan="8" class="muted">Nothing running or queued.</td>
          </tr>`
        }
        ${live.executions.map(
          (e) =>
            html`<tr data-id=${e.id}>
              <td><code>${e.id}</code></td>
              <td>${e.userId}</td>
              <td>${e.language}</td>
              <td>${e.status}</td>
              <td>${formatTime(e.startedAt)}</td>
              <td>${formatBytes(e.memoryBytes)}</td>
              <td>${cpu(e.cpuSeconds)}</td>
              <td>
                <button
                  type="button"
                  class="danger"
                  aria-label=${`Kill execution ${e.id}`}
                  onClick=${() => act(`Killed ${e.id}.`, "POST", `/api/sandbox/kill/${e.id}`)}
                >
                  Kill
                </button>
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h3>Sessions</h3>
    <table>
      <thead>
        <tr>
          <th>ID</th>
          <th>User</th>
          <th>Language</th>
          <th>State</th>
          <th>Created</th>
          <th>Memory</th>
          <th>CPU s</th>
          <th><span class="sr">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        ${
          live.sessions.length === 0 &&
          html`<tr>
            <td colspan="8" class="muted">No live sessions.</td>
          </tr>`
        }
        ${live.sessions.map(
          (s) =>
            html`<tr data-id=${s.id}>
              <td><code>${s.id}</code></td>
              <td>${s.userId}</td>
              <td>${s.language ?? "—"}</td>
              <td>${s.state}</td>
              <td>${formatTime(s.createdAt)}</td>
              <td>${formatBytes(s.memoryBytes)}</td>
              <td>${cpu(s.cpuSeconds)}</td>
              <td>
                <button
                  type="button"
                  class="danger"
                  aria-label=${`End session ${s.id}`}
                  onClick=${() => act(`Ended ${s.id}.`, "DELETE", `/api/sandbox/sessions/${s.id}`)}
                >
                  End
                </button>
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <h3>Per user</h3>
    <table>
      <thead>
        <tr>
          <th>User</th>
          <th>Running</th>
          <th>Queued</th>
          <th>Sessions</th>
        </tr>
      </thead>
      <tbody>
        ${live.perUser.map(
          (u) =>
            html`<tr>
              <td>${u.userId}</td>
              <td>${u.running}</td>
              <td>${u.queued}</td>
              <td>${u.sessions}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
