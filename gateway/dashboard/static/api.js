// The gateway's JSON APIs with the key from sessionStorage: no cookies, nothing stored beyond the tab.

const STORAGE_KEY = "switchyard.dashboard.key";

export const session = {
  get key() {
    return sessionStorage.getItem(STORAGE_KEY);
  },
  save(key) {
    sessionStorage.setItem(STORAGE_KEY, key);
  },
  clear() {
    sessionStorage.removeItem(STORAGE_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, {
      headers: { authorization: `Bearer ${session.key}` },
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    throw new ApiError(0, `The gateway did not answer (${error.message}).`);
  }
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return response;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error?.message || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

export async function getJSON(path, params) {
  return (await request(path, params)).json();
}

/** "admin" with the deployments (the admin API answers), or "tenant" (it refuses with 403). A
 * missing or unknown key raises ApiError with status 401. */
export async function whoami() {
  try {
    return { role: "admin", deployments: await getJSON("/admin/v1/deployments") };
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return { role: "tenant", deployments: null };
    throw error;
  }
}

/** Fetch an export with the key and hand it to the browser as a download (a link to a blob). */
export async function download(path, params, fallbackName) {
  const response = await request(path, params);
  const disposition = response.headers.get("content-disposition") || "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] || fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  // The download reads the blob after click() returns: free it a while later.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return name;
}
