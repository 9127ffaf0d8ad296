/**
 * Keys view: create (the token is shown once), list, revoke, rotate, and edit
 * scopes, egress allowlist and policy. Rotate and edit use the key-update
 * API; a server without it says so.
 */
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, failure, formatTime } from "./api.js";
import { Table } from "./table.js";

interface Key {
  id: string;
  name: string;
  userId: string;
  scopes: string[];
  networkAllow: string[] | null;
  policy: string | null;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

const SCOPES = ["execute", "sessions", "admin", "delegate"];
const list = (s: string): string[] | null => {
  const items = s
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
  return items.length ? items : null;
};

interface Draft {
  name: string;
  userId: string;
  scopes: string[];
  networkAllow: string;
  policy: string;
}
const NEW: Draft = { name: "", userId: "", scopes: ["execute"], networkAllow: "", policy: "" };

function KeyForm(props: {
  draft: Draft;
  submit: string;
  onSubmit: (d: Draft) => void;
  withName: boolean;
  label: string;
}) {
  const [d, setD] = useState(props.draft);
  const set = (name: keyof Draft) => (e: Event) =>
    setD({ ...d, [name]: (e.target as HTMLInputElement).value });
  const toggle = (scope: string) =>
    setD({
      ...d,
      scopes: d.scopes.includes(scope) ? d.scopes.filter((s) => s !== scope) : [...d.scopes, scope],
    });
  return html`<form
    class="filters"
    aria-label=${props.label}
    onSubmit=${(e: Event) => (e.preventDefault(), props.onSubmit(d))}
  >
    ${
      props.withName &&
      html`<label
          >Name <input required maxlength="128" value=${d.name} onInput=${set("name")}
        /></label>
        <label
          >User <input value=${d.userId} onInput=${set("userId")} placeholder="default: the name"
        /></label>`
    }
    <fieldset>
      <legend>Scopes</legend>
      ${SCOPES.map(
        (s) =>
          html`<label class="check"
            ><input type="checkbox" checked=${d.scopes.includes(s)} onChange=${() => toggle(s)} />
            ${s}</label
          >`,
      )}
    </fieldset>
    <label
      >Egress allowlist
      <input
        value=${d.networkAllow}
        onInput=${set("networkAllow")}
        placeholder="pypi.org, *.example.com"
    /></label>
    <label
      >Policy
      <select value=${d.policy} onChange=${set("policy")}>
        <option value="">server default</option>
        <option value="off">off</option>
        <option value="audit">audit</option>
        <option value="block">block</option>
      </select></label
    >
    <button type="submit">${props.submit}</button>
  </form>`;
}

export function Keys(props: { onUnauthorized: () => void }) {
  const [keys, setKeys] = useState<Key[]>([]);
  const [token, setToken] = useState<{ id: string; token: string } | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [notice, setNotice] = useState("");
  const fail = (e: unknown, what: string) =>
    setError(
      e instanceof ApiError && e.missing
        ? `${what}: not available on this server (its API answered 404).`
        : failure(e, props.onUnauthorized),
    );
  const load = () =>
    api<Key[]>("GET", "/api/sandbox/keys").then(setKeys, (e) => fail(e, "Listing keys"));
  useEffect(() => void load(), []);

  const body = (d: Draft) => ({
    scopes: d.scopes,
    networkAllow: list(d.networkAllow),
    policy: d.policy || null,
  });
  const create = async (d: Draft) => {
    try {
      const k = await api<Key & { token: string }>("POST", "/api/sandbox/keys", {
        name: d.name,
        ...(d.userId ? { userId: d.userId } : {}),
        ...body(d),
      });
      setToken({ id: k.id, token: k.token });
      setError("");
      await load();
    } catch (e) {
      fail(e, "Creating keys");
    }
  };
  const revoke = async (k: Key) => {
    if (!confirm(`Revoke ${k.name} (${k.id})? Requests with it are refused at once.`)) return;
    await api("DELETE", `/api/sandbox/keys/${k.id}`).then(
      () => setNotice(`Revoked ${k.id}.`),
      (e) => fail(e, "Revoking"),
    );
    await load();
  };
  const rotate = async (k: Key) => {
    try {
      const r = await api<{ key: Key; token: string }>("POST", `/api/sandbox/keys/${k.id}/rotate`);
      setToken({ id: r.key.id, token: r.token });
      await load();
    } catch (e) {
      fail(e, "Rotating keys");
    }
  };
  const update = async (k: Key, d: Draft) => {
    try {
      await api("PATCH", `/api/sandbox/keys/${k.id}`, body(d));
      setEditing(null);
      setNotice(`Updated ${k.id}.`);
      await load();
    } catch (e) {
      fail(e, "Editing keys");
    }
  };

  return html`<section aria-labelledby="keys-h">
    <h2 id="keys-h">Keys</h2>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    <p class="muted" aria-live="polite">${notice}</p>
    ${
      token &&
      html`<div class="token" role="status">
        <p>Token of <code>${token.id}</code>, shown this once: copy it now.</p>
        <input
          aria-label="New token"
          readonly
          value=${token.token}
          onFocus=${(e: Event) => (e.target as HTMLInputElement).select()}
        />
        <button type="button" onClick=${() => setToken(null)}>Done</button>
      </div>`
    }
    <h3>Create a key</h3>
    <${KeyForm}
      draft=${NEW}
      submit="Create key"
      withName=${true}
      label="Create a key"
      onSubmit=${create}
    />
    <h3>All keys</h3>
    <${Table}
      columns=${["ID", "Name", "User", "Scopes", "Egress", "Policy", "Last used", "State"]}
      actions=${true}
      rows=${keys}
      row=${(k: Key) =>
        html`<tr data-id=${k.id} class=${k.revokedAt ? "revoked" : ""}>
            <td><code>${k.id}</code></td>
            <td>${k.name}</td>
            <td>${k.userId}</td>
            <td>${k.scopes.join(", ")}</td>
            <td>${k.networkAllow?.join(", ") ?? "server's"}</td>
            <td>${k.policy ?? "server's"}</td>
            <td>${formatTime(k.lastUsedAt)}</td>
            <td>${k.revokedAt ? "revoked" : "active"}</td>
            <td class="actions">
              ${
                !k.revokedAt &&
                html`<button
                    type="button"
                    aria-label=${`Edit ${k.id}`}
                    onClick=${() => setEditing(editing === k.id ? null : k.id)}
                  >
                    Edit
                  </button>
                  <button type="button" aria-label=${`Rotate ${k.id}`} onClick=${() => rotate(k)}>
                    Rotate
                  </button>
                  <button
                    type="button"
                    class="danger"
                    aria-label=${`Revoke ${k.id}`}
                    onClick=${() => revoke(k)}
                  >
                    Revoke
                  </button>`
              }
            </td>
          </tr>
          ${
            editing === k.id &&
            html`<tr>
              <td colspan="9">
                <${KeyForm}
                  label=${`Edit ${k.id}`}
                  submit="Save"
                  withName=${false}
                  draft=${{ name: k.name, userId: k.userId, scopes: k.scopes, networkAllow: k.networkAllow?.join(", ") ?? "", policy: k.policy ?? "" }}
                  onSubmit=${(d: Draft) => update(k, d)}
                />
              </td>
            </tr>`
          }`}
    />
    <p class="muted">Quotas per key or user: see Usage.</p>
  </section>`;
}
