/** Sending a stored artifact: as a download, typed by its content, never rendered as Warden's page. */
import type { FastifyReply } from "fastify";
import { z } from "zod";
import type { StoredArtifact } from "../store/artifacts.js";

/** Active content (HTML, SVG) gets an opaque origin if a browser opens it anyway. */
const ARTIFACT_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'";

/** The listing of an owner's artifacts. */
export const ArtifactListSchema = z.array(
  z.object({ name: z.string(), size: z.number(), mimeType: z.string(), createdAt: z.string() }),
);

export function artifactListing(artifacts: StoredArtifact[]): z.infer<typeof ArtifactListSchema> {
  return artifacts.map(({ name, size, mimeType, createdAt }) => ({
    name,
    size,
    mimeType,
    createdAt,
  }));
}

export function sendArtifact(
  reply: FastifyReply,
  artifact: StoredArtifact & { content: Buffer },
): FastifyReply {
  const fileName = artifact.name.split("/").pop() ?? "artifact";
  return reply
    .type(artifact.mimeType)
    .header("content-disposition", `attachment; filename*=UTF-8''${encodeURIComponent(fileName)}`)
    .header("content-security-policy", ARTIFACT_CSP)
    .send(artifact.content);
}
