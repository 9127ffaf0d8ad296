/**
 * Where the REST interface serves what the core keeps. The core stores and
 * returns artifacts with these URLs but never builds one itself: the
 * composition root (src/warden.ts) hands it these functions.
 */
export function executionArtifactUrl(executionId: string, name: string): string {
  return `/v1/executions/${executionId}/artifacts/${encodeURI(name)}`;
}

export function sessionArtifactUrl(sessionId: string, name: string): string {
  return `/v1/sessions/${sessionId}/artifacts/${encodeURI(name)}`;
}
