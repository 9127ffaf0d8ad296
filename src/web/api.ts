/**
 * The dashboard's only way to the server: same-origin fetches with the
 * session cookie, and the CSRF token as a header on every state change.
 */
let csrfToken = "";

export function setCsrf(token: string): void {
  csrfToken = token;
}

/** A refused or failed call, with the server's error message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
  /** The route is not on this server (a feature not merged or not enabled). */
  get missing(): boolean {
    return this.status === 404 && /^no route /.test(this.message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data: unknown =
    text && res.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text;
  if (!res.ok) {
    const message = (data as { error?: { message?: string } }).error?.message ?? res.statusText;
    throw new ApiError(res.status, message);
  }
  return data as T;
}

/** A query string of the set values. */
export function qs(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const formatBytes = (n: number | null): string =>
  n === null
    ? "—"
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(0)} KiB`
      : `${(n / 1048576).toFixed(1)} MiB`;

export const formatTime = (iso: string | null): string =>
  iso ? new Date(iso).toLocaleTimeString() : "—";

/** A view's call failed: a lost session goes back to the login; anything else is shown. */
export function failure(err: unknown, onUnauthorized: () => void): string {
  if (err instanceof ApiError && err.status === 401) onUnauthorized();
  return err instanceof Error ? err.message : String(err);
}
