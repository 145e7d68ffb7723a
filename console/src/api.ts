// The API as the console calls it: same-origin JSON, the session cookie sent by the browser,
// and the session's CSRF token (from the tenure_csrf cookie) on every change.

export class ApiError extends Error {
  constructor(
    public status: number,
    public field: string,
    public reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

function csrfToken(): string | undefined {
  return document.cookie
    .split(';')
    .map((c) => c.trim().split('='))
    .find(([name]) => name === 'tenure_csrf')?.[1];
}

/** An error as the pages show it: the field the API named and its reason. */
export const describe = (e: unknown) => (e instanceof ApiError ? `${e.field}: ${e.reason}` : String(e));

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const token = csrfToken();
  if (method !== 'GET' && token) headers['X-CSRF-Token'] = token;
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = json?.error ?? {};
    throw new ApiError(response.status, error.field ?? 'request', error.reason ?? response.statusText);
  }
  return json as T;
}

export function query(params: Record<string, string | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export interface Whoami {
  tenant: string;
  name: string;
  roles: string[];
  via: string;
  csrf_token?: string;
}

export interface Hold {
  id: number;
  destination: string;
  person_key: string;
  job_id: number;
  operations: { op: string; target: string | null; destructive: boolean; detail: unknown }[];
  state: string;
  decided_by: string | null;
  note: string | null;
  created_ms: number;
}

export interface Job {
  id: number;
  person_key: string;
  state: string;
  attempts: number;
  last_error: string | null;
  hold_reason: string | null;
  created_ms: number;
}

export interface AuditEntry {
  seq: number;
  ts_ms: number;
  kind: string;
  actor: string;
  person_key: string | null;
  destination: string | null;
  data: unknown;
}

export const when = (ms: number | null | undefined) => (ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '');
