/**
 * Warden's admin dashboard: a login, then four views (live, security, usage,
 * keys) over the admin API. Preact + htm, bundled by `npm run build`.
 */
import { html, render } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, setCsrf } from "./api.js";
import { Keys } from "./keys.js";
import { Live } from "./live.js";
import { Security } from "./security.js";
import { Usage } from "./usage.js";

interface Session {
  csrfToken: string;
  keyId: string;
  userId: string;
  expiresAt: string;
}

const VIEWS = [
  ["live", "Live", Live],
  ["security", "Security", Security],
  ["usage", "Usage", Usage],
  ["keys", "Keys", Keys],
] as const;
type ViewName = (typeof VIEWS)[number][0];

function Login(props: { onLogin: (s: Session) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const submit = async (e: Event) => {
    e.preventDefault();
    setError("");
    try {
      const s = await api<Session>("POST", "/dashboard/login", { token });
      setToken("");
      props.onLogin(s);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return html`<main class="login">
    <h1>Warden dashboard</h1>
    <form onSubmit=${submit}>
      <label for="token">Admin API key</label>
      <input
        id="token"
        type="password"
        autocomplete="off"
        required
        value=${token}
        onInput=${(e: Event) => setToken((e.target as HTMLInputElement).value)}
      />
      <button type="submit">Log in</button>
      ${error && html`<p role="alert" class="error">${error}</p>`}
    </form>
  </main>`;
}

function viewFromHash(): ViewName {
  const name = location.hash.slice(1);
  return VIEWS.some(([n]) => n === name) ? (name as ViewName) : "live";
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [view, setView] = useState<ViewName>(viewFromHash());
  useEffect(() => {
    api<Session>("GET", "/dashboard/session")
      .then(login)
      .catch(() => setSession(null));
    const onHash = () => setView(viewFromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const login = (s: Session) => {
    setCsrf(s.csrfToken);
    setSession(s);
  };
  const logout = async () => {
    await api("POST", "/dashboard/logout").catch(() => undefined);
    setCsrf("");
    setSession(null);
  };
  if (session === undefined) return html`<p class="loading">Loading…</p>`;
  if (session === null) return html`<${Login} onLogin=${login} />`;
  const Current = VIEWS.find(([n]) => n === view)![2];
  return html`<header>
      <h1>Warden</h1>
      <nav aria-label="Views">
        ${VIEWS.map(
          ([name, label]) =>
            html`<a href=${`#${name}`} aria-current=${view === name ? "page" : undefined}
              >${label}</a
            >`,
        )}
      </nav>
      <span class="who">${session.userId} (${session.keyId})</span>
      <button type="button" onClick=${logout}>Log out</button>
    </header>
    <main id="view">
      <${Current} onUnauthorized=${() => setSession(null)} />
    </main>`;
}

render(html`<${App} />`, document.getElementById("app")!);
