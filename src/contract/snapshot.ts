/** A session snapshot as every interface shows it (docs/pause.md). */
import { z } from "zod";
import { ContextLanguageSchema } from "./session.js";

export const SnapshotPackageSchema = z.object({
  manager: z.enum(["pip", "npm"]),
  name: z.string(),
  version: z.string(),
});

export const SnapshotSchema = z.object({
  id: z.string(),
  userId: z.string(),
  sessionId: z.string().describe("The session it was taken from."),
  createdAt: z.string(),
  language: ContextLanguageSchema.describe("The session's default language, used on restore."),
  environment: z
    .string()
    .optional()
    .describe("The session's environment, used on restore unless the new session names one."),
  sizeBytes: z.number().int().describe("The archive's size, as counted by Warden."),
  entries: z.number().int().describe("Files, directories and links in it."),
  skipped: z
    .number()
    .int()
    .describe(
      "Entries left out: devices, fifos, sockets, links that point out of /workspace, paths too long.",
    ),
  packages: z
    .array(SnapshotPackageSchema)
    .describe("Packages installed in the workspace (a venv or an npm prefix in it) when taken."),
  reason: z.enum(["requested", "paused"]).describe("Asked for, or taken when a pause ran out."),
});

export type SnapshotInfo = z.infer<typeof SnapshotSchema>;

/** Snapshot ids, as routes take them. */
export const SnapshotIdSchema = z.string().regex(/^snap_[0-9A-Z]{26}$/, "id: not a snapshot id");
